"""The local development stack behind ``make run``.

Starts every service and the gateway as processes of their own (so one can be restarted
alone), each with its own database under ``var/`` and its metrics port, after migrating
the databases and declaring the broker topology. Waits until the gateway's ``/readyz``
answers 200, writes ``var/stack.json`` (API.md "The development stack"), prints what runs
where, and stops every child cleanly on Ctrl-C or SIGTERM. A second stack on the same
``var/`` folder is refused with a plain message.

Settings (environment): ``AMQP_URI``, ``GATEWAY_HOST``/``GATEWAY_PORT`` (127.0.0.1:8000),
``METRICS_BASE_PORT`` (9100: gateway, then one per service), ``PANEL_VAR_DIR`` (var),
``PANEL_DATABASE_URL_TEMPLATE`` (e.g. ``postgresql://postgres@127.0.0.1/panel_{service}``;
default a SQLite file per service), ``STACK_READY_TIMEOUT`` (60 s), ``STANDINS_BASE_PORT``
(9200: sms +1, voice +2, SMTP +3, mail inbox +4, BMC +5, OS images +6, payments +7), ``BMC_POWER_DELAY``
(seconds the emulated servers take to change power; default random 1–11 s),
``PANEL_REPLICAS`` (1: how many processes of every service and of the gateway; above 1
the gateways listen on ports of their own and a round-robin balancer
(``deploy/standins/balancer.py``) takes the gateway's address, as a load balancer would —
use it with PostgreSQL, the stack creates the databases the template names).
"""

import fcntl
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import topology
from common.config import CONFIG_DIR, REPO_ROOT, SERVICES
from deploy import demo
from deploy.components import migrate, service_class

CHILD_WARNINGS = "ignore::DeprecationWarning"


# Stand-ins listen on STANDINS_BASE_PORT + 1 … + STANDIN_PORT_COUNT - 1 (see ``plan``).
STANDIN_PORT_COUNT = 16
# Locations with an S3-compatible endpoint each (moto's server mode in development).
S3_LOCATIONS = ("NL", "US")
S3_PORT_OFFSET = 8


def free_port_block(size, avoid=()):
    """A base port such that base..base+size-1 are free now (for a second stack beside the
    default one: tests, benchmarks), below the kernel's ephemeral range: a child restarted
    after a crash must find its port free again, and a port inside that range can meanwhile
    become the source port of some outgoing connection. No port of ``avoid`` (ports given
    out already but not bound yet) is in the block."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            ephemeral_low = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    for _ in range(200):
        base = random.randrange(20000, ephemeral_low - size)
        if any(base <= port < base + size for port in avoid):
            continue
        sockets = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                sockets.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no block of free ports below the ephemeral range")


def free_stack_ports():
    """``GATEWAY_PORT``, ``METRICS_BASE_PORT`` and ``STANDINS_BASE_PORT`` of a stack beside
    the default one, cut from one free block: blocks picked one by one could overlap, as
    none is bound until the stack starts (a gateway then found a stand-in on its port)."""
    metrics = len(SERVICES) + 1  # the gateway, then one per service
    base = free_port_block(1 + metrics + STANDIN_PORT_COUNT)
    return {"GATEWAY_PORT": str(base), "METRICS_BASE_PORT": str(base + 1),
            "STANDINS_BASE_PORT": str(base + 1 + metrics)}


def replica_name(component, replica):
    """``inventory``, ``inventory-2``, … (the first keeps the plain name)."""
    return component if replica == 0 else f"{component}-{replica + 1}"


def create_database_if_missing(url):
    """Create the PostgreSQL database ``url`` names when it does not exist (SQLite files
    are created by their engine)."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return
    from common.db import create_engine

    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                            {"name": parsed.database}).first() is None:
                conn.exec_driver_sql(f'CREATE DATABASE "{parsed.database}"')
    finally:
        admin.dispose()


class StackError(RuntimeError):
    """The stack cannot start or keep running; the message says why and what to do."""


class Settings:
    def __init__(self, env=None):
        env = os.environ if env is None else env
        self.amqp_uri = env.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
        self.gateway_host = env.get("GATEWAY_HOST", "127.0.0.1")
        self.gateway_port = int(env.get("GATEWAY_PORT", "8000"))
        self.metrics_base_port = int(env.get("METRICS_BASE_PORT", "9100"))
        self.var_dir = Path(env.get("PANEL_VAR_DIR", REPO_ROOT / "var")).resolve()
        self.database_url_template = env.get("PANEL_DATABASE_URL_TEMPLATE", "")
        self.ready_timeout = float(env.get("STACK_READY_TIMEOUT", "60"))
        self.standins_base_port = int(env.get("STANDINS_BASE_PORT", "9200"))
        self.auth_secret_key = env.get("AUTH_SECRET_KEY", "")
        # The BMC emulator's power changes take a random 1–11 s, like real servers; a fixed
        # number of seconds (e.g. 0 for benchmarks) when set.
        self.bmc_power_delay = env.get("BMC_POWER_DELAY", "")
        self.replicas = max(int(env.get("PANEL_REPLICAS", "1") or 1), 1)
        # The gateways' own addresses when a balancer stands at gateway_port (replicas > 1).
        if self.replicas == 1:
            self.gateway_ports = [self.gateway_port]
        else:
            taken = {self.gateway_port, *range(self.metrics_base_port, self.metrics_base_port + len(SERVICES) + 1),
                     *range(self.standins_base_port, self.standins_base_port + STANDIN_PORT_COUNT)}
            base = free_port_block(self.replicas, avoid=taken)
            self.gateway_ports = list(range(base, base + self.replicas))

    def standin_port(self, offset):
        """sms +1, voice +2, SMTP +3, mail inbox +4, BMC (Redfish) +5, OS images +6, payments +7."""
        return self.standins_base_port + offset

    def standin_url(self, offset):
        return f"http://127.0.0.1:{self.standin_port(offset)}"

    def secret_key(self):
        """AUTH_SECRET_KEY from the environment, else one generated once into
        var/secrets.env (kept, so a restart does not invalidate codes and TOTP)."""
        if self.auth_secret_key:
            return self.auth_secret_key
        path = self.var_dir / "secrets.env"
        if not path.exists():
            path.write_text(f"AUTH_SECRET_KEY={secrets.token_urlsafe(48)}\n")
            path.chmod(0o600)
        return path.read_text().strip().split("=", 1)[1]

    def database_url(self, service):
        if self.database_url_template:
            return self.database_url_template.format(service=service)
        return f"sqlite:///{self.var_dir / (service + '.db')}"

    @property
    def gateway_url(self):
        return f"http://{self.gateway_host}:{self.gateway_port}"

    def metrics_port(self, index):
        return self.metrics_base_port + index


class Process:
    """One child: a nameko service or the gateway (its pid is in ``var/stack.json``)."""

    def __init__(self, name, command, env, log_path, kind="service"):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_path
        self.kind = kind  # "standin", "service" or "gateway": the order of stopping
        self.popen = None

    @classmethod
    def nameko(cls, name, target, config_file, env, log_path, kind="service"):
        nameko = Path(sys.executable).with_name("nameko")
        return cls(name, [str(nameko), "run", "--config", str(config_file), target], env, log_path, kind)

    def start(self):
        log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the stack only; it stops children in order
        )
        log.close()

    def exited(self):
        return self.popen is not None and self.popen.poll() is not None

    def terminate(self):
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline):
        if self.popen is None:
            return
        try:
            self.popen.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def tail(self, lines=15):
        try:
            return "".join(Path(self.log_path).read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""


class Stack:
    def __init__(self, settings):
        self.settings = settings
        self.processes = []
        self._lock_file = None
        self._owns_lock = False
        self._stopping = False

    # -- set-up ----------------------------------------------------------------------------

    def acquire_lock(self):
        self.settings.var_dir.mkdir(parents=True, exist_ok=True)
        path = self.settings.var_dir / "stack.lock"
        self._lock_file = open(path, "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.seek(0)
            holder = self._lock_file.read().strip() or "another process"
            raise StackError(
                f"a stack is already running on {self.settings.var_dir} (pid {holder}); "
                "stop it first (Ctrl-C in its terminal, or kill that pid)"
            )
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()
        self._owns_lock = True

    def prepare(self):
        from common.rpc import broker_reachable

        if not broker_reachable(self.settings.amqp_uri, timeout=5):
            raise StackError(
                f"RabbitMQ does not answer at {self.settings.amqp_uri.rsplit('@', 1)[-1]}: "
                "start it (rabbitmq-server -detached) or set AMQP_URI"
            )
        for component in SERVICES + ("gateway",):
            create_database_if_missing(self.settings.database_url(component))
            migrate(component, self.settings.database_url(component))
        topology.declare(self.settings.amqp_uri, [service_class(s) for s in SERVICES])

    def child_env(self, extra):
        env = dict(os.environ)
        env.update(
            AMQP_URI=self.settings.amqp_uri,
            PYTHONWARNINGS=CHILD_WARNINGS,
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        )
        # The stand-ins accept their published development credentials: the dev stack may
        # leave the providers' secrets unset (deploy/config/README.md, DEV_CREDENTIALS).
        env.setdefault("DEV_CREDENTIALS", "true")
        env.update(extra)
        return env

    def plan(self):
        s = self.settings
        log_dir = s.var_dir / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        python = sys.executable
        standins_env = self.child_env({})
        processes = [
            Process("sms", [python, "-m", "deploy.standins.sms", "--port", str(s.standin_port(1))],
                    standins_env, log_dir / "sms.log", kind="standin"),
            Process("voice", [python, "-m", "deploy.standins.voice", "--port", str(s.standin_port(2))],
                    standins_env, log_dir / "voice.log", kind="standin"),
            Process("mail", [python, "-m", "deploy.standins.mail", "--smtp-port", str(s.standin_port(3)),
                             "--http-port", str(s.standin_port(4))],
                    standins_env, log_dir / "mail.log", kind="standin"),
            Process("bmc", [python, "-m", "deploy.standins.bmc", "--port", str(s.standin_port(5)),
                            "--systems", str(self.bmc_systems_file()), "--work-dir", str(s.var_dir / "bmc")]
                    + (["--power-delay", s.bmc_power_delay] if s.bmc_power_delay else []),
                    standins_env, log_dir / "bmc.log", kind="standin"),
            Process("images", [python, "-m", "deploy.standins.images", "--port", str(s.standin_port(6)),
                               "--directory", str(s.var_dir / "images")],
                    standins_env, log_dir / "images.log", kind="standin"),
            Process("payments", [python, "-m", "deploy.standins.payments", "--port", str(s.standin_port(7)),
                                 "--webhook-base", f"{s.gateway_url}/api/v1/billing/webhooks"],
                    standins_env, log_dir / "payments.log", kind="standin"),
        ]
        for index, location in enumerate(S3_LOCATIONS):
            processes.append(Process(
                f"s3-{location.lower()}", [python, "-m", "deploy.standins.s3",
                                           "--port", str(s.standin_port(S3_PORT_OFFSET + index))],
                standins_env, log_dir / f"s3-{location.lower()}.log", kind="standin"))
        for index, service in enumerate(SERVICES, start=1):
            cls = service_class(service)
            for replica in range(s.replicas):
                name = replica_name(service, replica)
                env = {"DATABASE_URL": s.database_url(service), "CLOCK_ADJUSTABLE": "true",
                       "METRICS_PORT": str(s.metrics_port(index)) if replica == 0 else "off"}
                env.update(self.service_env(service))
                processes.append(Process.nameko(
                    name, f"{cls.__module__}:{cls.__name__}", CONFIG_DIR / f"{service}.yaml",
                    self.child_env(env), log_dir / f"{name}.log",
                ))
        for replica, port in enumerate(s.gateway_ports):
            name = replica_name("gateway", replica)
            processes.append(Process.nameko(
                name, "gateway.service:GatewayService", CONFIG_DIR / "gateway.yaml",
                self.child_env({
                    "GATEWAY_ADDRESS": f"{s.gateway_host}:{port}",
                    "METRICS_PORT": str(s.metrics_port(0)) if replica == 0 else "off",
                    "DATABASE_URL": s.database_url("gateway"),
                    "SESSION_COOKIE_SECURE": "false",
                    "HSTS_SECONDS": "0",
                    "PANEL_URL": s.gateway_url,
                }),
                log_dir / f"{name}.log", kind="gateway",
            ))
        if s.replicas > 1:
            processes.append(Process("balancer", [
                python, "-m", "deploy.standins.balancer", "--listen", f"{s.gateway_host}:{s.gateway_port}",
                *[f"{s.gateway_host}:{port}" for port in s.gateway_ports]],
                standins_env, log_dir / "balancer.log", kind="standin"))
        return processes

    def bmc_systems_file(self):
        path = self.settings.var_dir / "bmc-systems.json"
        demo.write_bmc_systems(path, REPO_ROOT / "deploy" / "catalog" / "offers.yaml")
        return path

    def service_env(self, service):
        """Settings that point a service at the local stand-ins."""
        s = self.settings
        if service == "auth":
            return {
                "AUTH_SECRET_KEY": s.secret_key(),
                "SMS_PRIMARY_URL": f"{s.standin_url(1)}/smsa",
                "SMS_SECONDARY_URL": f"{s.standin_url(1)}/smsb",
                "VOICE_URL": s.standin_url(2),
                "SMTP_PORT": str(s.standin_port(3)),
                "PANEL_URL": s.gateway_url,
            }
        if service == "inventory":
            return {"OS_IMAGE_BASE_URL": s.standin_url(6)}
        if service == "billing":
            return {"PAYMENTS_BASE_URL": s.standin_url(7), "PANEL_URL": s.gateway_url}
        if service == "orders":
            # A stock order's business day passes in about ten seconds in the demo.
            return {"BMC_ENDPOINT": s.standin_url(5), "STOCK_DELIVERY_SPEEDUP": "8640",
                    "ORDER_SCHEDULER_SECONDS": "2"}
        if service == "storage":
            return {"S3_ENDPOINTS": self.s3_endpoints(),
                    "STORAGE_SECRETS_KEY_FILE": str(s.var_dir / "storage-secrets.key")}
        if service == "support":
            return {"SUPPORT_BLOB_DIR": str(s.var_dir / "support-attachments")}
        if service == "notify":
            # Webhook receivers on this machine (http://127.0.0.1:…) are allowed here only.
            return {"WEBHOOK_SECRETS_KEY_FILE": str(s.var_dir / "webhook-secrets.key"),
                    "WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_ALLOW_HTTP": "true"}
        return {}

    def s3_endpoints(self):
        """``NL=http://…,US=http://…``: the S3 (and IAM) endpoint of each location."""
        return ",".join(f"{location}={self.settings.standin_url(S3_PORT_OFFSET + index)}"
                        for index, location in enumerate(S3_LOCATIONS))

    def describe(self):
        s = self.settings
        metrics = {"gateway": f"http://127.0.0.1:{s.metrics_port(0)}/metrics"}
        for index, service in enumerate(SERVICES, start=1):
            metrics[service] = f"http://127.0.0.1:{s.metrics_port(index)}/metrics"
        return {
            "gateway": s.gateway_url,
            "sms_inbox": s.standin_url(1),
            "voice_inbox": s.standin_url(2),
            "mail_inbox": s.standin_url(4),
            "bmc": s.standin_url(5),
            "os_images": s.standin_url(6),
            "payments_sandbox": s.standin_url(7),
            "s3": dict(item.split("=", 1) for item in self.s3_endpoints().split(",")),
            "amqp": s.amqp_uri.rsplit("@", 1)[-1],
            "metrics": metrics,
            "databases": {name: s.database_url(name) for name in SERVICES + ("gateway",)},
            "processes": {p.name: p.popen.pid for p in self.processes},
            "gateways": [f"http://{s.gateway_host}:{port}" for port in s.gateway_ports],
            "replicas": s.replicas,
            "logs": str(s.var_dir / "log"),
            "pid": os.getpid(),
            "users": demo.USERS,
        }

    # -- running ---------------------------------------------------------------------------

    def start(self):
        self.acquire_lock()
        print(f"[stack] migrating databases and declaring queues on {self.settings.amqp_uri.rsplit('@', 1)[-1]}", flush=True)
        self.prepare()
        self.processes = self.plan()
        for process in self.processes:
            process.start()
        print(f"[stack] started {', '.join(p.name for p in self.processes)}; waiting for {self.settings.gateway_url}/readyz", flush=True)
        self.wait_ready()
        self.seed()
        description = self.write_description()
        self.print_summary(description, self.stack_file)
        return description

    @property
    def stack_file(self):
        return self.settings.var_dir / "stack.json"

    def write_description(self):
        """Write ``var/stack.json`` whole or not at all (a temporary file renamed over it):
        tools and tests that read it while a restarted child is recorded never see it
        half-written."""
        description = self.describe()
        partial = self.stack_file.with_suffix(".json.tmp")
        partial.write_text(json.dumps(description, indent=2) + "\n")
        os.replace(partial, self.stack_file)
        return description

    def wait_ready(self):
        deadline = time.monotonic() + self.settings.ready_timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self._stopping:
                raise StackError("stopped before the stack was ready")
            self.check_children()
            try:
                with urllib.request.urlopen(f"{self.settings.gateway_url}/readyz", timeout=3) as answer:
                    if answer.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last = error.read().decode(errors="replace")
            except OSError as error:
                last = str(error)
            time.sleep(0.3)
        raise StackError(f"the stack was not ready within {self.settings.ready_timeout:g}s: {last}")

    def seed(self):
        """Demo data through the services' own RPCs (idempotent)."""
        env = self.child_env({"DEMO_BMC_ENDPOINT": self.settings.standin_url(5),
                              "DEMO_PAYMENTS_URL": self.settings.standin_url(7)})
        result = subprocess.run([sys.executable, "-m", "deploy.demo"], cwd=REPO_ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise StackError(f"seeding demo data failed:\n{result.stdout}{result.stderr}")
        print(result.stdout.strip(), flush=True)

    def check_children(self):
        for process in self.processes:
            if process.exited():
                raise StackError(
                    f"{process.name} exited with code {process.popen.returncode}; "
                    f"last lines of {process.log_path}:\n{process.tail()}"
                )

    def print_summary(self, description, stack_file):
        print("[stack] ready", flush=True)
        panel = description["gateway"] + "/"
        if not (REPO_ROOT / "web" / "dist" / "index.html").exists():
            panel += "  (not built: run `make setup`)"
        print(f"  panel     {panel}")
        print(f"  gateway   {description['gateway']}/api/v1  (try {description['gateway']}/readyz)")
        for name, url in description["metrics"].items():
            print(f"  metrics   {name:<10} {url}")
        for name in ("sms_inbox", "voice_inbox", "mail_inbox"):
            print(f"  {name:<9} {description[name]}/messages")
        for user in description["users"]:
            two_factor = "two-factor on" if user["two_factor"] else "no two-factor"
            print(f"  customer  {user['username']} / {user['password']}  ({two_factor})")
        print(f"  logs      {description['logs']}/<name>.log")
        print(f"  described in {stack_file}; Ctrl-C stops everything", flush=True)

    def supervise(self, max_restarts=5, window=60.0):
        """Block until a signal arrives; restart a child that dies (kill one to restart it
        after a code change), unless it keeps dying: ``max_restarts`` in ``window`` s."""
        restarts = {}
        while not self._stopping:
            for process in self.processes:
                if not process.exited() or self._stopping:
                    continue
                now = time.monotonic()
                recent = [t for t in restarts.get(process.name, []) if now - t < window]
                if len(recent) >= max_restarts:
                    raise StackError(
                        f"{process.name} keeps exiting (code {process.popen.returncode}); "
                        f"last lines of {process.log_path}:\n{process.tail()}"
                    )
                print(f"[stack] {process.name} exited with code {process.popen.returncode}; restarting", flush=True)
                restarts[process.name] = recent + [now]
                process.start()
                self.write_description()
            time.sleep(0.5)

    @property
    def owns_lock(self):
        return self._owns_lock

    def stop(self, grace=15):
        self._stopping = True
        # The gateway first (no new requests), then every service at once, then stand-ins.
        for kind in ("gateway", "service", "standin"):
            group = [p for p in self.processes if p.kind == kind]
            deadline = time.monotonic() + grace
            for process in group:
                process.terminate()
            for process in group:
                process.wait_or_kill(deadline)
        if self.stack_file.exists():
            self.stack_file.unlink()

    def request_stop(self, *_):
        self._stopping = True


def main():
    stack = Stack(Settings())
    signal.signal(signal.SIGTERM, stack.request_stop)
    signal.signal(signal.SIGINT, stack.request_stop)
    code = 0
    try:
        stack.start()
        stack.supervise()
    except StackError as error:
        print(f"[stack] {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if stack.owns_lock:
            print("[stack] stopping", flush=True)
            stack.stop()
            print("[stack] stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
