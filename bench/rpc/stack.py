"""The processes one ``bench.rpc`` run starts on its vhost, and how it waits for them: the
child programs of ``bench.rpc.servers`` (each ``python -m bench.rpc <flag>``), the real
``auth`` service and its plain-nameko twin ``authnameko`` (each on a SQLite database of its
own, migrated first) and the gateway with the bench routes (``bench.gateway_probe``).

Every child runs in a session of its own with its deployed config, metrics off and its log
in the run's folder; ``Stack.children`` lists them in stopping order for ``stop_children``.
``Stack.client_factory`` says, for each path, how to make its client and which children
serve it.
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench import BenchError
from bench.rpc import (
    ECHO_FLAG,
    ECHO_PREFETCH,
    ECHO_QUEUE,
    LEAN_GATEWAY_FLAG,
    LEAN_SERVICE,
    LEAN_SERVICE_FLAG,
    RAW_GATEWAY_FLAG,
)
from bench.rpc.clients import HttpClient, NamekoClient, PanelClient, RawClient

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "deploy" / "config"
PYTHON = sys.executable
NAMEKO = str(Path(PYTHON).with_name("nameko"))
PANEL = str(Path(PYTHON).with_name("panel"))
READY_TIMEOUT = 90.0
CHILD_WARNINGS = "ignore::DeprecationWarning"


class Child:
    """One child process, its output appended to ``log_path``."""

    def __init__(self, name, argv, env, log_path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.popen = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the bench only; it stops the children
            )
        return self

    @property
    def pid(self):
        return self.popen.pid

    def exited(self):
        return self.popen is not None and self.popen.poll() is not None

    def check(self):
        if self.exited():
            raise BenchError(
                f"{self.name} exited with code {self.popen.returncode}; last lines of "
                f"{self.log_path}:\n{self.tail()}"
            )

    def tail(self, lines=20):
        try:
            text = Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""
        return "".join(text.splitlines(True)[-lines:])

    def terminate(self):
        if self.popen is not None and self.popen.poll() is None:
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait_or_kill(self, deadline):
        if self.popen is None:
            return
        try:
            self.popen.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def stop_children(children, grace=15.0):
    """SIGTERM in order (gateway first, then services, then the echo server), then KILL
    whatever is still running at the deadline."""
    for child in children:
        child.terminate()
        child.wait_or_kill(time.monotonic() + grace)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(extra):
    env = dict(os.environ)
    env.update(
        PYTHONWARNINGS=CHILD_WARNINGS,
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
        METRICS_PORT="off",  # no metrics server: nothing to collide with, nothing to scrape
        DEV_CREDENTIALS="true",  # auth's SMS/voice credentials: the stand-ins' (none is called)
    )
    env.update(extra)
    return env


def wait_until(probe, what, children, timeout=READY_TIMEOUT, interval=0.1):
    """Poll ``probe()`` until it returns something truthy (exceptions count as "not yet");
    fail at once when a child has exited, or after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while True:
        for child in children:
            child.check()
        try:
            value = probe()
            if value:
                return value
        except Exception as error:  # not ready yet
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() > deadline:
            raise BenchError(f"{what} was not ready within {timeout:g}s ({last})")
        time.sleep(interval)


class Stack:
    """The children of one run on ``vhost``; their logs and databases go to ``workdir``."""

    def __init__(self, vhost, workdir):
        self.vhost = vhost
        self.workdir = Path(workdir)
        self.echo = self.auth = self.auth_nameko = self.gateway = self.raw_gateway = self.lean_gateway = None
        self.lean_service = None
        self.gateway_port = self.raw_gateway_port = self.lean_gateway_port = None
        self.gateway_database_url = None

    @property
    def children(self):
        """In stopping order."""
        return [c for c in (self.gateway, self.lean_gateway, self.raw_gateway, self.auth, self.auth_nameko,
                            self.lean_service, self.echo) if c is not None]

    # -- starting ------------------------------------------------------------------------------

    def start(self):
        """Start every child, then wait until each one answers."""
        self.echo = self._start_program("echo-server", ECHO_FLAG, "--queue", ECHO_QUEUE,
                                        "--prefetch", str(ECHO_PREFETCH), log_name="echo")
        self.raw_gateway_port = free_port()
        self.raw_gateway = self._start_program("raw-gateway", RAW_GATEWAY_FLAG, "--queue", ECHO_QUEUE,
                                               "--port", str(self.raw_gateway_port))
        self.lean_service = self._start_program("lean-service", LEAN_SERVICE_FLAG, "--prefetch", str(ECHO_PREFETCH))
        self.lean_gateway_port = free_port()
        self.lean_gateway = self._start_program("lean-gateway", LEAN_GATEWAY_FLAG,
                                                "--port", str(self.lean_gateway_port))

        # auth twice: ours (transient replies) and the plain-nameko baseline, each with a
        # database of its own; the baseline's config turns our reply path and container off.
        nameko_config = self.workdir / "auth-nameko.yaml"
        nameko_config.write_text((CONFIG_DIR / "auth.yaml").read_text()
                                 + "\nRPC_TRANSIENT_REPLIES: false\nDATABASE_CHECK_MIGRATED: false\n"
                                 + "SERVICE_CONTAINER_CLS: nameko.containers.ServiceContainer\n")
        self.auth = self._start_auth("auth", CONFIG_DIR / "auth.yaml", "services.auth.service:AuthService")
        self.auth_nameko = self._start_auth("authnameko", nameko_config, "bench.nameko_auth:NamekoAuth")

        self._migrate_gateway()
        self._start_gateway()
        self.wait_ready()

    def _start_program(self, name, flag, *args, log_name=None):
        """``python -m bench.rpc <flag>`` on the vhost: one of ``bench.rpc.servers``."""
        return Child(
            name, [PYTHON, "-m", "bench.rpc", flag, "--amqp-uri", self.vhost.amqp_uri, *args],
            child_env({}), self.workdir / f"{log_name or name}.log",
        ).start()

    def _start_auth(self, name, config, target):
        """``nameko run`` of the auth service ``target`` as ``name``, on a SQLite database of
        its own that ``panel migrate auth`` has migrated first."""
        database_url = f"sqlite:///{self.workdir / (name + '.db')}"
        migrate = subprocess.run(
            [PANEL, "migrate", "auth"], cwd=REPO_ROOT, capture_output=True, text=True,
            env=child_env({"DATABASE_URL": database_url, "AMQP_URI": self.vhost.amqp_uri}),
        )
        if migrate.returncode != 0:
            raise BenchError(f"panel migrate auth failed:\n{migrate.stdout}{migrate.stderr}")
        return Child(
            name, [NAMEKO, "run", "--config", str(config), target],
            child_env({
                "AMQP_URI": self.vhost.amqp_uri, "DATABASE_URL": database_url,
                # auth refuses to start without one; a throwaway key for this run only.
                "AUTH_SECRET_KEY": secrets.token_urlsafe(48),
            }),
            self.workdir / f"{name}.log",
        ).start()

    def _migrate_gateway(self):
        """The gateway keeps its sessions in a database of its own, migrated like devstack
        does (``panel migrate`` only knows the services)."""
        self.gateway_database_url = f"sqlite:///{self.workdir / 'gateway.db'}"
        if not (REPO_ROOT / "gateway" / "migrations").is_dir():
            return
        migrate = subprocess.run(
            [PYTHON, "-c", "import sys; from deploy.components import migrate; "
             "migrate('gateway', sys.argv[1])", self.gateway_database_url],
            cwd=REPO_ROOT, capture_output=True, text=True, env=child_env({}),
        )
        if migrate.returncode != 0:
            raise BenchError(f"migrating the gateway database failed:\n{migrate.stdout}{migrate.stderr}")

    def _start_gateway(self):
        self.gateway_port = free_port()
        self.gateway = Child(
            "gateway",
            [NAMEKO, "run", "--config", str(CONFIG_DIR / "gateway.yaml"), "bench.gateway_probe:BenchGateway"],
            child_env({
                "AMQP_URI": self.vhost.amqp_uri,
                "GATEWAY_ADDRESS": f"127.0.0.1:{self.gateway_port}",
                "DATABASE_URL": self.gateway_database_url,
            }),
            self.workdir / "gateway.log",
        ).start()

    # -- waiting -------------------------------------------------------------------------------

    def wait_ready(self):
        """Poll each child with the client of its path until it answers (never a fixed sleep)."""
        uri = self.vhost.amqp_uri

        def echo_answers():
            client = RawClient(uri)
            try:
                return client.call(timeout=0.5)
            finally:
                client.close()

        def auth_answers(service):
            if self.vhost.consumers(f"rpc-{service}") < 1:
                return False
            client = NamekoClient(uri, timeout=2, service=service)
            try:
                return client.call()
            finally:
                client.close()

        wait_until(echo_answers, "the echo server", [self.echo])
        wait_until(lambda: HttpClient(self.raw_gateway_port, "/", timeout=2).call(), "the raw HTTP forwarder",
                   [self.raw_gateway, self.echo])
        wait_until(lambda: auth_answers("auth"), "the auth service", [self.auth])
        wait_until(lambda: auth_answers(LEAN_SERVICE), "the lean service", [self.lean_service])
        wait_until(lambda: HttpClient(self.lean_gateway_port, "/", timeout=3).call(), "the lean gateway",
                   [self.lean_gateway, self.auth])
        wait_until(lambda: auth_answers("authnameko"), "the authnameko service", [self.auth_nameko])

        # The gateway port was free a moment ago; should another process take it first,
        # the gateway exits and is started again on another port.
        for attempt in range(5):
            try:
                wait_until(
                    lambda: HttpClient(self.gateway_port, "/healthz", timeout=2).call(),
                    "the gateway", [self.gateway],
                )
                break
            except BenchError:
                if not self.gateway.exited() or attempt == 4 or "in use" not in self.gateway.tail():
                    raise
                print(f"[bench] gateway port {self.gateway_port} was taken; trying another", flush=True)
                self._start_gateway()
        wait_until(
            lambda: HttpClient(self.gateway_port, "/bench/rpc", timeout=3).call(),
            "the gateway's /bench/rpc", [self.gateway, self.auth],
        )
        wait_until(
            lambda: HttpClient(self.gateway_port, "/bench/rpc-nameko", timeout=3).call(),
            "the gateway's /bench/rpc-nameko", [self.gateway, self.auth_nameko],
        )

    # -- the paths -----------------------------------------------------------------------------

    def client_factory(self, path):
        """(a function making one client of ``path``, the children serving ``path``)."""
        uri = self.vhost.amqp_uri
        factories = {
            "raw-amqp": (lambda: RawClient(uri), [self.echo]),
            "nameko-rpc": (lambda: NamekoClient(uri), [self.auth_nameko]),
            "panel-rpc-lean": (lambda: PanelClient(uri, service=LEAN_SERVICE), [self.lean_service]),
            "panel-rpc": (lambda: PanelClient(uri), [self.auth]),
            "http-raw": (lambda: HttpClient(self.raw_gateway_port, "/"), [self.raw_gateway, self.echo]),
            "http-healthz": (lambda: HttpClient(self.gateway_port, "/healthz"), [self.gateway]),
            "http-lean": (lambda: HttpClient(self.lean_gateway_port, "/"), [self.lean_gateway, self.auth]),
            "http-rpc-nameko": (lambda: HttpClient(self.gateway_port, "/bench/rpc-nameko"),
                                [self.gateway, self.auth_nameko]),
            "http-rpc": (lambda: HttpClient(self.gateway_port, "/bench/rpc"), [self.gateway, self.auth]),
        }
        if path not in factories:
            raise ValueError(path)
        return factories[path]
