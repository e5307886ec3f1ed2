"""The whole local stack for a benchmark, booted like ``tests/e2e`` boots it.

``BenchStack`` runs ``python -m deploy.devstack`` (the code behind ``make run``) on

- a RabbitMQ vhost of its own (``bench.broker.Vhost``: ``panel-bench-<hex>``), created and
  deleted through the management API;
- a temporary ``PANEL_VAR_DIR`` (databases, logs, ``stack.json``), removed at the end
  unless ``keep`` (or something failed: then it is kept and its path printed);
- free ports for the gateway, the metrics servers and the stand-ins;

waits for ``var/stack.json``, and stops the stack with SIGTERM at the end (SIGKILL after a
grace period, then SIGTERM to any child the stack left behind), also on an error, Ctrl-C
or SIGTERM. Used as a context manager::

    with BenchStack(extra_env={"BMC_POWER_DELAY": "0"}) as stack:
        stack.info["gateway"], stack.info["databases"]["inventory"], stack.pid_of("gateway")

Callers that want nameko's standalone RPC proxy (``stack.rpc()``) must have called
``eventlet.monkey_patch()`` first, as ``deploy/demo.py`` does.

Also here: small helpers the three stack benchmarks share (logging in over HTTP, memory
and CPU readings of the stack's processes, percentiles).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import BenchError, say
from bench.broker import Vhost
from bench.measure import percentile
from common import rpc_errors  # noqa: F401 - errors of the standalone RPC proxies arrive typed
from deploy.devstack import free_stack_ports

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOT_TIMEOUT = 120.0
STOP_GRACE = 60.0


def die_with_parent():
    """In the stack's process, before exec: SIGTERM when the benchmark dies, however it dies
    (even SIGKILL), so the stack then stops its children in order (Linux prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass
    os.setsid()  # a session of its own: Ctrl-C reaches the benchmark only, which stops the stack


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BenchStack:
    """``python -m deploy.devstack`` on a private vhost, temp var dir and free ports."""

    def __init__(self, extra_env=None, boot_timeout=BOOT_TIMEOUT, keep=False, label="bench"):
        self.extra_env = dict(extra_env or {})
        self.boot_timeout = boot_timeout
        self.keep = keep
        self.vhost = Vhost()
        self.var_dir = Path(tempfile.mkdtemp(prefix=f"panel-{label}-"))
        self.process = None
        self.info = None
        self.env = None
        self.failed = False
        self._output = None
        self._child_pids = {}

    # -- starting --------------------------------------------------------------------------

    def start(self):
        self.vhost.create()
        env = dict(os.environ)
        env.update(
            PANEL_VAR_DIR=str(self.var_dir), AMQP_URI=self.vhost.amqp_uri,
            **free_stack_ports(),
            STACK_READY_TIMEOUT=str(self.boot_timeout),
            PYTHONWARNINGS="ignore::DeprecationWarning",
        )
        env.update(self.extra_env)
        self.env = env
        self._output = open(self.var_dir / "stack.out", "wb")
        began = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deploy.devstack"], cwd=REPO_ROOT, env=env,
            stdout=self._output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        stack_file = self.var_dir / "stack.json"
        deadline = began + self.boot_timeout + 30
        while True:
            if self.process.poll() is not None:
                self.failed = True
                raise BenchError(f"the stack exited early (code {self.process.returncode}):\n{self.output_tail()}")
            if stack_file.exists():
                try:
                    self.info = json.loads(stack_file.read_text())
                    break
                except ValueError:
                    pass  # being written
            if time.monotonic() > deadline:
                self.failed = True
                raise BenchError(f"no {stack_file} within {deadline - began:.0f}s:\n{self.output_tail()}")
            time.sleep(0.2)
        self._child_pids = dict(self.info.get("processes", {}))
        self.boot_seconds = time.monotonic() - began
        return self

    def output_tail(self, lines=30):
        try:
            text = (self.var_dir / "stack.out").read_text(errors="replace")
        except OSError:
            return ""
        return "".join(text.splitlines(True)[-lines:])

    def refresh(self):
        """Re-read stack.json (a child restarted by the stack has a new pid)."""
        try:
            self.info = json.loads((self.var_dir / "stack.json").read_text())
            self._child_pids.update(self.info.get("processes", {}))
        except (OSError, ValueError):
            pass
        return self.info

    def pid_of(self, name):
        return self.info["processes"][name]

    def check(self):
        """Raise when the stack or one of its children has exited."""
        if self.process.poll() is not None:
            raise BenchError(f"the stack exited (code {self.process.returncode}):\n{self.output_tail()}")
        for name, pid in self.info["processes"].items():
            if not pid_alive(pid):
                raise BenchError(f"{name} (pid {pid}) is not running; see {self.var_dir / 'log' / (name + '.log')}")

    # -- helpers ---------------------------------------------------------------------------

    @property
    def api(self):
        return f"{self.info['gateway']}/api/v1"

    @property
    def amqp_uri(self):
        return self.vhost.amqp_uri

    def user(self, index):
        return self.info["users"][index]

    def rpc(self, timeout=60, context_data=None):
        """nameko's standalone ``ClusterRpcProxy`` on the stack's vhost (a context manager;
        needs ``eventlet.monkey_patch()``)."""
        from nameko.standalone.rpc import ClusterRpcProxy

        return ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=timeout, context_data=context_data)

    # -- stopping --------------------------------------------------------------------------

    def stop(self):
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    say("[bench] the stack did not stop in time; killing it")
                    self.process.kill()
                    self.process.wait()
            # Children of a stack that died hard (they run in sessions of their own).
            leftovers = [pid for pid in self._child_pids.values() if pid_alive(pid) and self._is_ours(pid)]
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 15
            for pid in leftovers:
                while pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if pid_alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        finally:
            if self._output is not None:
                self._output.close()
            self.vhost.delete()
            if self.keep or self.failed:
                say(f"[bench] stack folder kept: {self.var_dir} (logs in log/, output in stack.out)")
            else:
                shutil.rmtree(self.var_dir, ignore_errors=True)

    def _is_ours(self, pid):
        """A pid from our stack.json still names a process started for our var dir (and not
        a recycled pid of something else)."""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        return f"PANEL_VAR_DIR={self.var_dir}".encode() in environ

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.failed = True
            self.stop()
            raise

    def __exit__(self, kind, value, traceback):
        if kind is not None and not issubclass(kind, KeyboardInterrupt):
            self.failed = True
        self.stop()
        return False


def install_signal_handlers():
    """SIGTERM ends the benchmark like Ctrl-C (KeyboardInterrupt), so ``finally`` blocks
    stop the stack; Ctrl-C works even when started in the background."""

    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def ignore_signals():
    """While cleaning up: a second Ctrl-C must not leave the stack or the vhost behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


# -- waiting for the stack to settle ------------------------------------------------------------


class Settle:
    """Whether the stack has finished the work that events started: every service's outbox
    relay has published every integration event of its log (none after its
    ``relay_checkpoints`` position, in each service database of ``stack.json``) and no queue of the vhost holds a message
    (passive ``queue_declare``: exact ready counts; queue names from the management API)."""

    def __init__(self, stack):
        from common.db import create_engine

        self.stack = stack
        self.engines = {name: create_engine(url) for name, url in stack.info["databases"].items()
                        if name != "gateway"}

    def relay_lags(self):
        """Integration events each relay has yet to publish (a relay may leave its
        checkpoint behind events that publish nothing: ``OutboxRelay.idle_advance_after``)."""
        import sqlalchemy as sa

        from common.contracts import integration_types

        lags = {}
        for name, engine in self.engines.items():
            types = sorted(integration_types(name))
            with engine.connect() as conn:
                checkpoint = conn.execute(sa.text("SELECT MIN(position) FROM relay_checkpoints")).scalar()
                if checkpoint is None:  # no row: that service has no relay running yet
                    continue
                if not types:
                    continue
                query = sa.text("SELECT COUNT(*) FROM events WHERE position > :checkpoint AND type IN :types")
                query = query.bindparams(sa.bindparam("types", expanding=True))
                lags[name] = conn.execute(query, {"checkpoint": checkpoint, "types": types}).scalar_one()
        return lags

    def queue_depths(self):
        import requests
        from kombu import Connection

        try:
            names = self.stack.vhost.queue_names()
        except (requests.RequestException, ValueError) as error:
            return {f"(management API: {type(error).__name__})": 1}  # unknown: not settled yet
        depths = {}
        with Connection(self.stack.amqp_uri) as connection:
            channel = connection.channel()
            for name in names:
                try:
                    _, count, _ = channel.queue_declare(name, passive=True)
                except Exception:  # deleted meanwhile (an RPC reply queue)
                    channel = connection.channel()
                    continue
                if count:
                    depths[name] = count
        return depths

    def wait(self, timeout=600, progress=None, interval=0.5, clean_checks=3):
        """Block until ``clean_checks`` checks in a row find nothing left; returns the
        seconds waited. ``progress(lags, depths)`` hears of each check that found work."""
        began = time.monotonic()
        clean = 0
        last_report = 0.0
        while clean < clean_checks:
            self.stack.check()
            lags = {k: v for k, v in self.relay_lags().items() if v}
            depths = self.queue_depths() if not lags else {}
            if lags or depths:
                clean = 0
                if progress and time.monotonic() - last_report > 10:
                    progress(lags, depths)
                    last_report = time.monotonic()
            else:
                clean += 1
            if time.monotonic() - began > timeout:
                raise BenchError(f"the stack did not settle within {timeout}s (relays behind: {lags}, "
                                 f"queues: {depths})")
            time.sleep(interval)
        return time.monotonic() - began

    def close(self):
        for engine in self.engines.values():
            engine.dispose()


def settle(stack, timeout=600, progress=None):
    """``Settle(stack).wait(...)``: the seconds it took for the stack to be idle."""
    waiter = Settle(stack)
    try:
        return waiter.wait(timeout=timeout, progress=progress)
    finally:
        waiter.close()


def print_settle_progress(lags, depths):
    parts = [f"{name} relay {lag:,} events behind" for name, lag in lags.items()]
    parts += [f"{name} {count:,} messages" for name, count in depths.items()]
    print(f"[bench]   waiting for the stack to settle: {', '.join(parts)}", flush=True)


# -- logging in -------------------------------------------------------------------------------


def login_password(session, api, username, password, timeout=60):
    """A session token for a user without two-factor."""
    answer = session.post(f"{api}/auth/login", json={"username": username, "password": password}, timeout=timeout)
    if answer.status_code != 200 or answer.json().get("status") != "ok":
        raise BenchError(f"login of {username} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()["token"]


def sms_code(session, inbox, phone, previous_id=None, timeout=30):
    """The newest code sent to ``phone``: (code, message id). The auth service sends the
    SMS before its login answer, so right after a login the newest message to that phone
    is its code; ``previous_id`` (the message the last login used) is never taken again."""
    import re

    deadline = time.monotonic() + timeout
    while True:
        messages = session.get(f"{inbox}/messages", params={"to": phone}, timeout=10).json()
        if messages and messages[-1]["id"] != previous_id:
            match = re.search(r"\b(\d{6})\b", messages[-1]["text"])
            if match:
                return match.group(1), messages[-1]["id"]
        if time.monotonic() > deadline:
            raise BenchError(f"no new SMS to {phone} within {timeout}s")
        time.sleep(0.02)


def login_any(session, stack, username, password, phone=None, timeout=60):
    """A session token, through the SMS code when the account has two-factor on."""
    api = stack.api
    answer = session.post(f"{api}/auth/login", json={"username": username, "password": password}, timeout=timeout)
    if answer.status_code != 200:
        raise BenchError(f"login of {username} answered {answer.status_code}: {answer.text[:300]}")
    body = answer.json()
    if body.get("status") == "ok":
        return body["token"]
    code, _ = sms_code(session, stack.info["sms_inbox"], phone)
    verified = session.post(f"{api}/auth/2fa/verify", json={"challenge_id": body["challenge_id"], "code": code},
                            timeout=timeout)
    if verified.status_code != 200:
        raise BenchError(f"2FA verify of {username} answered {verified.status_code}: {verified.text[:300]}")
    return verified.json()["token"]


# -- process readings -------------------------------------------------------------------------


def proc_status(pid):
    """VmRSS, VmHWM (peak RSS) and VmSize of ``pid`` in KiB (None when it is gone)."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM", "VmSize"):
                    values[key] = int(rest.split()[0])
    except OSError:
        return None
    return values


def ms_stats(latencies_seconds, fractions=(0.50, 0.99)):
    """Nearest-rank percentiles in ms of durations in seconds, by fraction."""
    ordered = sorted(latencies_seconds)
    return {f: (None if not ordered else percentile(ordered, f) * 1000) for f in fractions}


def run_on_stack(stack, body, booting=""):
    """Boot ``stack``, run ``body(stack)``, and stop the stack whatever happens (errors,
    Ctrl-C, SIGTERM). Returns the exit code: 0, 1 for a ``BenchError``, 130 when
    interrupted; other errors are raised after the stack stopped."""
    code = 0
    try:
        print(f"[bench] booting the stack{booting} on vhost {stack.vhost.name} (folder {stack.var_dir}) ...",
              flush=True)
        stack.start()
        print(f"[bench] stack ready in {stack.boot_seconds:.1f} s; gateway {stack.info['gateway']}", flush=True)
        body(stack)
    except KeyboardInterrupt:
        code = 130
        say("\n[bench] interrupted; stopping")
    except BenchError as error:
        stack.failed = True
        code = 1
        say(f"[bench] {error}")
    except Exception:
        stack.failed = True
        raise
    finally:
        ignore_signals()
        say("[bench] stopping the stack ...")
        stack.stop()
    return code
