"""RPC round trips: a raw AMQP floor, nameko RPC, our RPC client, and HTTP through the gateway.

    python -m bench.rpc [--seconds 5] [--warmup 1] [--concurrency 1,10,50]

On a RabbitMQ vhost of its own (created and deleted through the management API) it starts,
each as an OS process of its own:

- an echo server (``python -m bench.rpc --echo-server``): plain kombu, no nameko, no
  eventlet; replies to every message of its queue through RabbitMQ direct reply-to;
- the real ``auth`` service (``nameko run``, SQLite database in a temporary folder), whose
  ``@rpc`` entrypoints are served by ``common.rpc_server.PanelRpcConsumer`` (transient,
  unconfirmed replies sent together with the request's ack);
- the same service as ``authnameko`` (``bench.nameko_auth``) with
  ``RPC_TRANSIENT_REPLIES: false``: nameko's own consumer and default replies, for the
  plain-nameko baseline;
- the gateway with two extra routes, ``GET /bench/rpc`` (one RPC to ``auth`` through our
  client) and ``GET /bench/rpc-nameko`` (one RPC to ``authnameko`` through nameko's
  ``RpcProxy``) (``bench.gateway_probe:BenchGateway``).

and measures, at each concurrency, for a fixed time after a warm-up:

    raw-amqp         kombu request/reply via amq.rabbitmq.reply-to to the echo server
    nameko-rpc       ClusterRpcProxy -> authnameko.health (one SQLite read in the service)
    panel-rpc        common.rpc_client.RpcClient (one for all greenthreads) -> auth.health
    panel-rpc-lean   the same client -> ``authlean.health`` on a lean responder (``python -m
                     bench.rpc --lean-service``: plain kombu, no nameko, no eventlet, answers
                     nameko's wire protocol): the gap from it to panel-rpc is what the
                     service's framework costs (nameko's worker, eventlet, the SQLite read)
    http-raw         GET on a raw HTTP forwarder (``python -m bench.rpc --raw-gateway``:
                     eventlet's WSGI server, no nameko, a pool of kombu clients) -> the echo
                     server: the floor of the whole HTTP -> gateway -> service -> reply path
    http-healthz     GET /healthz on the gateway (no RPC: the gateway's HTTP floor)
    http-lean        GET on a lean gateway (``python -m bench.rpc --lean-gateway``: eventlet's
                     WSGI server and our ``RpcClient``, no nameko, no werkzeug) -> auth.health:
                     the lowest any gateway on our RPC path and service could go; the gap
                     from it to http-rpc is what the gateway's framework costs (werkzeug,
                     nameko's worker lifecycle, our route handling)
    http-rpc-nameko  GET /bench/rpc-nameko: gateway -> nameko RpcProxy -> authnameko.health
    http-rpc         GET /bench/rpc: gateway -> our client -> auth.health

The clients are eventlet greenthreads of this process (monkey-patched below), one
connection each (except ``panel-rpc``: one client, one connection, shared by all). Every child is stopped and the vhost deleted at the end, also on Ctrl-C.
"""

import sys

ECHO_FLAG = "--echo-server"
RAW_GATEWAY_FLAG = "--raw-gateway"
LEAN_GATEWAY_FLAG = "--lean-gateway"
LEAN_SERVICE_FLAG = "--lean-service"
LEAN_SERVICE = "authlean"
if ECHO_FLAG not in sys.argv and LEAN_SERVICE_FLAG not in sys.argv:
    # The bench client runs like the services do: cooperative greenthreads. The echo
    # server stays a plain blocking process: it is the floor.
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.measure import (  # noqa: E402
    CpuWindow,
    fmt,
    latency_ms,
    oldest_pid_named,
    table,
    timed_window,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "deploy" / "config"
AMQP_HOST = os.environ.get("BENCH_AMQP_HOST", "127.0.0.1:5672")
RABBIT_API = os.environ.get("BENCH_RABBIT_API", "http://127.0.0.1:15672/api")
RABBIT_AUTH = ("guest", "guest")

ECHO_QUEUE = "bench-echo"
ECHO_PREFETCH = 100
REPLY_TO = "amq.rabbitmq.reply-to"
# The same bytes nameko sends for a call without arguments.
REQUEST_BODY = json.dumps({"args": [], "kwargs": {}}).encode()
CALL_TIMEOUT = 10.0
READY_TIMEOUT = 90.0
CHILD_WARNINGS = "ignore::DeprecationWarning"
NOISY_OTHER_CPU_PCT = 25

PATHS = ("raw-amqp", "nameko-rpc", "panel-rpc-lean", "panel-rpc", "http-raw", "http-healthz", "http-lean",
         "http-rpc-nameko", "http-rpc")


class BenchError(RuntimeError):
    pass


# -- the echo server (a child process) -------------------------------------------------------


def serve_replies(amqp_uri, queue, prefetch, answer, exchange=None):
    """Consume ``queue`` (a kombu ``Queue``) with plain blocking kombu until SIGTERM or
    Ctrl-C: publish ``answer(message)`` — (body, content type, content encoding) — to each
    message's ``reply_to`` on ``exchange`` (None: the default exchange) with its
    ``correlation_id``, then ack it."""
    from kombu import Connection, Consumer, Producer

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.basic_qos(0, prefetch, False)
        producer = Producer(channel, exchange=exchange, auto_declare=False)

        def on_message(message):
            body, content_type, content_encoding = answer(message)
            producer.publish(
                body,
                routing_key=message.properties["reply_to"],
                correlation_id=message.properties.get("correlation_id"),
                content_type=content_type,
                content_encoding=content_encoding,
                retry=False,
            )
            message.ack()

        Consumer(channel, queues=[queue], on_message=on_message, no_ack=False).consume()
        try:
            while True:
                connection.drain_events()
        except (KeyboardInterrupt, SystemExit):
            pass  # Ctrl-C or SIGTERM: stop serving
    return 0


def run_echo_server(amqp_uri, queue, prefetch):
    """Reply to every message of ``queue`` with its own body, to its ``reply_to``."""
    from kombu import Queue

    return serve_replies(amqp_uri, Queue(queue, durable=False), prefetch,
                         lambda message: (message.body, message.content_type, message.content_encoding))


def run_lean_service(amqp_uri, service, prefetch):
    """Answer ``<service>.<method>`` as a nameko service would (its queue, binding and reply
    format: ``{"result": …, "error": null}`` to ``reply_to`` on the RPC exchange, transient),
    with plain blocking kombu: no nameko, no eventlet, no database."""
    from kombu import Exchange, Queue

    exchange = Exchange("nameko-rpc", type="topic", durable=True, auto_delete=False, delivery_mode=1)
    queue = Queue(f"rpc-{service}", exchange, routing_key=f"{service}.*", durable=True, auto_delete=False)
    body = json.dumps({"result": {"service": service, "status": "ok"}, "error": None})
    return serve_replies(amqp_uri, queue, prefetch, lambda message: (body, "application/json", "utf-8"),
                         exchange=exchange)


# -- the raw HTTP forwarder (a child process) --------------------------------------------------


def run_raw_gateway(amqp_uri, port, queue):
    """HTTP in, one raw AMQP request/reply to the echo server, its answer out: eventlet's
    WSGI server (the one nameko's ``@http`` runs on) without nameko, each request on a
    kombu client taken from a pool (one connection per concurrent request, as the floor
    client does). The floor of the HTTP -> gateway -> service -> reply path."""
    from eventlet.queue import LightQueue

    idle = LightQueue()

    def app(environ, start_response):
        try:
            client = idle.get_nowait()
        except Exception:
            client = RawClient(amqp_uri, queue)
        try:
            body = client.call()
        finally:
            idle.put(client)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    serve_wsgi(port, app)
    return 0


def serve_wsgi(port, app):
    """Serve ``app`` on 127.0.0.1:``port`` with eventlet's WSGI server (no access log) until
    SIGTERM or Ctrl-C."""
    from eventlet import wsgi

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(0)))
    listener = eventlet.listen(("127.0.0.1", port))
    try:
        wsgi.server(listener, app, log_output=False)
    except (KeyboardInterrupt, SystemExit):
        pass  # Ctrl-C or SIGTERM: stop serving


def run_lean_gateway(amqp_uri, port):
    """HTTP in, one RPC to ``auth.health`` through our ``RpcClient`` (with the call-context
    headers the gateway sends), its JSON out: eventlet's WSGI server and nothing else. No
    routing, no nameko worker, no werkzeug — a reference, not a gateway."""
    from common.rpc_client import RpcClient, context_headers

    client = RpcClient(amqp_uri, name="bench-lean-gateway").start()

    def app(environ, start_response):
        request_id = uuid.uuid4().hex
        try:
            result = client.call("auth", "health", headers=context_headers(
                {"request_id": request_id, "correlation_id": request_id}), timeout=5.0)
            status, body = "200 OK", json.dumps(result).encode()
        except Exception as error:  # reported to the bench client as a failed call
            status, body = "503 Service Unavailable", json.dumps({"error": str(error)}).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                ("X-Request-ID", request_id)])
        return [body]

    try:
        serve_wsgi(port, app)
    finally:
        client.stop()
    return 0


# -- clients (one per greenthread) -----------------------------------------------------------


class RawClient:
    """Request/reply with kombu over one connection, replies by direct reply-to."""

    def __init__(self, amqp_uri, queue=ECHO_QUEUE):
        from kombu import Connection, Consumer, Producer, Queue

        self.queue = queue
        self.connection = Connection(amqp_uri)
        self.connection.connect()
        # The floor measures kombu and py-amqp as they ship: when this process has imported
        # ``common`` (the panel-rpc client), its read-ahead must not speed the floor up.
        if "common.amqp_readahead" in sys.modules:
            sys.modules["common.amqp_readahead"].use_library_read(self.connection.connection.transport)
        channel = self.connection.channel()
        self.replies = {}
        # Direct reply-to: consume the pseudo-queue (no-ack) before publishing on the channel.
        self.consumer = Consumer(
            channel, queues=[Queue(REPLY_TO, no_declare=True)], no_ack=True,
            on_message=self._on_reply,
        )
        self.consumer.consume()
        self.producer = Producer(channel, auto_declare=False)

    def _on_reply(self, message):
        self.replies[message.properties.get("correlation_id")] = message.body

    def call(self, timeout=CALL_TIMEOUT):
        correlation_id = uuid.uuid4().hex
        self.producer.publish(
            REQUEST_BODY, routing_key=self.queue, reply_to=REPLY_TO, correlation_id=correlation_id,
            content_type="application/json", content_encoding="utf-8", retry=False,
        )
        deadline = time.monotonic() + timeout
        while correlation_id not in self.replies:
            self.connection.drain_events(timeout=max(deadline - time.monotonic(), 0.001))
        return self.replies.pop(correlation_id)

    def close(self):
        try:
            self.connection.release()
        except Exception:
            pass


class NamekoClient:
    """nameko's standalone ``ClusterRpcProxy`` (single-threaded: one per greenthread)."""

    def __init__(self, amqp_uri, timeout=CALL_TIMEOUT, service="authnameko"):
        from nameko.standalone.rpc import ClusterRpcProxy

        self.service = service
        self.runner = ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout)
        self.proxy = self.runner.start()

    def call(self):
        answer = getattr(self.proxy, self.service).health()
        if answer.get("status") != "ok":
            raise BenchError(f"auth.health answered {answer!r}")
        return answer

    def close(self):
        try:
            self.runner.stop()
        except Exception:
            pass


class PanelClient:
    """``common.rpc_client.RpcClient``: one client (one connection, one reply queue) shared
    by every greenthread, as in a service process."""

    shared = {}

    def __init__(self, amqp_uri, timeout=CALL_TIMEOUT, service="auth"):
        from common.rpc_client import RpcClient

        self.timeout = timeout
        self.service = service
        if amqp_uri not in self.shared:
            client = RpcClient(amqp_uri, name="bench").start()
            deadline = time.monotonic() + READY_TIMEOUT
            while not client.link.connected and time.monotonic() < deadline:
                eventlet.sleep(0.01)
            self.shared[amqp_uri] = [client, 0]
        self.amqp_uri = amqp_uri
        self.shared[amqp_uri][1] += 1
        self.client = self.shared[amqp_uri][0]

    def call(self):
        answer = self.client.call(self.service, "health", timeout=self.timeout)
        if answer.get("status") != "ok":
            raise BenchError(f"{self.service}.health answered {answer!r}")
        return answer

    def close(self):
        entry = self.shared.get(self.amqp_uri)
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                self.shared.pop(self.amqp_uri)[0].stop()


class HttpClient:
    """One keep-alive HTTP/1.1 connection (``http.client``: the lightest client, so the
    client's own cost stays small next to the server's)."""

    def __init__(self, port, path, timeout=CALL_TIMEOUT):
        self.port = port
        self.path = path
        self.timeout = timeout
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self):
        try:
            self.connection.request("GET", self.path)
            response = self.connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            # A dropped keep-alive connection: reconnect on the next call.
            self.connection.close()
            raise
        if response.status != 200:
            raise BenchError(f"GET {self.path} answered {response.status}: {body[:200]!r}")
        return body

    def close(self):
        self.connection.close()


# -- the broker vhost ------------------------------------------------------------------------


class Vhost:
    def __init__(self):
        self.name = f"panel-bench-{uuid.uuid4().hex[:12]}"
        self.created = False

    @property
    def amqp_uri(self):
        return f"amqp://guest:guest@{AMQP_HOST}/{self.name}"

    def create(self):
        import requests

        try:
            requests.put(f"{RABBIT_API}/vhosts/{self.name}", auth=RABBIT_AUTH, timeout=10).raise_for_status()
        except requests.RequestException as error:
            raise BenchError(f"cannot create a vhost through {RABBIT_API}: {error}")
        self.created = True
        requests.put(
            f"{RABBIT_API}/permissions/{self.name}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"}, auth=RABBIT_AUTH, timeout=10,
        ).raise_for_status()

    def consumers(self, queue):
        import requests

        answer = requests.get(f"{RABBIT_API}/queues/{self.name}/{queue}", auth=RABBIT_AUTH, timeout=5)
        if answer.status_code == 404:
            return 0
        answer.raise_for_status()
        return answer.json().get("consumers") or 0

    def delete(self):
        import requests

        if self.created:
            try:
                requests.delete(f"{RABBIT_API}/vhosts/{self.name}", auth=RABBIT_AUTH, timeout=10)
                self.created = False
            except requests.RequestException as error:
                print(f"[bench] could not delete vhost {self.name}: {error}", file=sys.stderr)


# -- child processes -------------------------------------------------------------------------


class Child:
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


# -- the stack under test ----------------------------------------------------------------------


class Stack:
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

    def start(self):
        python = sys.executable
        nameko = str(Path(python).with_name("nameko"))
        panel = str(Path(python).with_name("panel"))
        uri = self.vhost.amqp_uri

        self.echo = Child(
            "echo-server",
            [python, "-m", "bench.rpc", ECHO_FLAG, "--amqp-uri", uri, "--queue", ECHO_QUEUE,
             "--prefetch", str(ECHO_PREFETCH)],
            child_env({}), self.workdir / "echo.log",
        ).start()
        self.raw_gateway_port = free_port()
        self.raw_gateway = Child(
            "raw-gateway",
            [python, "-m", "bench.rpc", RAW_GATEWAY_FLAG, "--amqp-uri", uri, "--queue", ECHO_QUEUE,
             "--port", str(self.raw_gateway_port)],
            child_env({}), self.workdir / "raw-gateway.log",
        ).start()
        self.lean_service = Child(
            "lean-service",
            [python, "-m", "bench.rpc", LEAN_SERVICE_FLAG, "--amqp-uri", uri, "--prefetch", str(ECHO_PREFETCH)],
            child_env({}), self.workdir / "lean-service.log",
        ).start()
        self.lean_gateway_port = free_port()
        self.lean_gateway = Child(
            "lean-gateway",
            [python, "-m", "bench.rpc", LEAN_GATEWAY_FLAG, "--amqp-uri", uri, "--port", str(self.lean_gateway_port)],
            child_env({}), self.workdir / "lean-gateway.log",
        ).start()

        # auth twice: ours (transient replies) and the plain-nameko baseline, each with a
        # database of its own; the baseline's config turns our reply path and container off.
        nameko_config = self.workdir / "auth-nameko.yaml"
        nameko_config.write_text((CONFIG_DIR / "auth.yaml").read_text()
                                 + "\nRPC_TRANSIENT_REPLIES: false\nDATABASE_CHECK_MIGRATED: false\n"
                                 + "SERVICE_CONTAINER_CLS: nameko.containers.ServiceContainer\n")
        for name, config, target in (
            ("auth", CONFIG_DIR / "auth.yaml", "services.auth.service:AuthService"),
            ("authnameko", nameko_config, "bench.nameko_auth:NamekoAuth"),
        ):
            database_url = f"sqlite:///{self.workdir / (name + '.db')}"
            migrate = subprocess.run(
                [panel, "migrate", "auth"], cwd=REPO_ROOT, capture_output=True, text=True,
                env=child_env({"DATABASE_URL": database_url, "AMQP_URI": uri}),
            )
            if migrate.returncode != 0:
                raise BenchError(f"panel migrate auth failed:\n{migrate.stdout}{migrate.stderr}")
            child = Child(
                name, [nameko, "run", "--config", str(config), target],
                child_env({
                    "AMQP_URI": uri, "DATABASE_URL": database_url,
                    # auth refuses to start without one; a throwaway key for this run only.
                    "AUTH_SECRET_KEY": secrets.token_urlsafe(48),
                }),
                self.workdir / f"{name}.log",
            ).start()
            if name == "auth":
                self.auth = child
            else:
                self.auth_nameko = child

        # The gateway keeps its sessions in a database of its own, migrated like devstack
        # does (``panel migrate`` only knows the services).
        self.gateway_database_url = f"sqlite:///{self.workdir / 'gateway.db'}"
        if (REPO_ROOT / "gateway" / "migrations").is_dir():
            migrate = subprocess.run(
                [python, "-c", "import sys; from deploy.components import migrate; "
                 "migrate('gateway', sys.argv[1])", self.gateway_database_url],
                cwd=REPO_ROOT, capture_output=True, text=True, env=child_env({}),
            )
            if migrate.returncode != 0:
                raise BenchError(f"migrating the gateway database failed:\n{migrate.stdout}{migrate.stderr}")

        self._start_gateway(nameko)
        self.wait_ready(nameko)

    def _start_gateway(self, nameko):
        self.gateway_port = free_port()
        self.gateway = Child(
            "gateway",
            [nameko, "run", "--config", str(CONFIG_DIR / "gateway.yaml"), "bench.gateway_probe:BenchGateway"],
            child_env({
                "AMQP_URI": self.vhost.amqp_uri,
                "GATEWAY_ADDRESS": f"127.0.0.1:{self.gateway_port}",
                "DATABASE_URL": self.gateway_database_url,
            }),
            self.workdir / "gateway.log",
        ).start()

    def wait_ready(self, nameko):
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
                self._start_gateway(nameko)
        wait_until(
            lambda: HttpClient(self.gateway_port, "/bench/rpc", timeout=3).call(),
            "the gateway's /bench/rpc", [self.gateway, self.auth],
        )
        wait_until(
            lambda: HttpClient(self.gateway_port, "/bench/rpc-nameko", timeout=3).call(),
            "the gateway's /bench/rpc-nameko", [self.gateway, self.auth_nameko],
        )

    def client_factory(self, path):
        uri = self.vhost.amqp_uri
        if path == "raw-amqp":
            return lambda: RawClient(uri), [self.echo]
        if path == "nameko-rpc":
            return lambda: NamekoClient(uri), [self.auth_nameko]
        if path == "panel-rpc-lean":
            return lambda: PanelClient(uri, service=LEAN_SERVICE), [self.lean_service]
        if path == "panel-rpc":
            return lambda: PanelClient(uri), [self.auth]
        if path == "http-raw":
            return lambda: HttpClient(self.raw_gateway_port, "/"), [self.raw_gateway, self.echo]
        if path == "http-lean":
            return lambda: HttpClient(self.lean_gateway_port, "/"), [self.lean_gateway, self.auth]
        if path == "http-healthz":
            return lambda: HttpClient(self.gateway_port, "/healthz"), [self.gateway]
        if path == "http-rpc":
            return lambda: HttpClient(self.gateway_port, "/bench/rpc"), [self.gateway, self.auth]
        if path == "http-rpc-nameko":
            return lambda: HttpClient(self.gateway_port, "/bench/rpc-nameko"), [self.gateway, self.auth_nameko]
        raise ValueError(path)


# -- measuring -------------------------------------------------------------------------------


def measure(path, make_client, servers, concurrency, warmup, seconds, bystanders=()):
    """Run ``concurrency`` greenthreads, each calling in a loop on a client of its own, for
    ``warmup`` + ``seconds``; only calls that end inside the measured window count.
    ``servers`` are the children serving this path; ``bystanders`` the other (idle)
    children, accounted for so that "other cpu%" is only programs outside this benchmark."""
    clients = [make_client() for _ in range(concurrency)]
    broker = oldest_pid_named("beam.smp")  # RabbitMQ, when it runs on this machine
    idle = [child for child in bystanders if child not in servers]
    cpu = CpuWindow(
        [os.getpid()] + [child.pid for child in servers + idle] + ([broker] if broker else [])
    )
    try:
        latencies, _, errors, used, machine = timed_window(
            clients, lambda client: client.call(), warmup, seconds, cpu,
            record_error=lambda error: f"{type(error).__name__}: {error}")
    finally:
        for client in clients:
            client.close()
    p50, p99 = latency_ms(latencies)
    server_cpu = [used[child.pid] for child in servers]
    server_cpu = None if None in server_cpu else sum(server_cpu)
    broker_cpu = used.get(broker)
    idle_cpu = [used[child.pid] for child in idle]
    known = [used[os.getpid()], server_cpu, broker_cpu] + idle_cpu
    # Whatever else ran meanwhile (other programs on the machine): a noise indicator.
    other_cpu = None if machine is None or None in known else max(machine - sum(known), 0.0)
    return {
        "path": path,
        "concurrency": concurrency,
        "count": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "throughput": len(latencies) / seconds,
        "p50_ms": p50,
        "p99_ms": p99,
        "client_cpu_pct": used[os.getpid()],
        "server_cpu_pct": server_cpu,
        "broker_cpu_pct": broker_cpu,
        "other_cpu_pct": other_cpu,
        "machine_cpu_pct": machine,
    }


def add_ratios(results):
    """Each path against the raw AMQP floor, and the HTTP paths also against the raw HTTP
    forwarder (the floor of the same path: HTTP in, one AMQP round trip, HTTP out)."""
    for floor_path, suffix, paths in (("raw-amqp", "raw", None), ("http-raw", "http_raw", "http-")):
        floors = {r["concurrency"]: r for r in results if r["path"] == floor_path}
        for result in results:
            if paths and not result["path"].startswith(paths):
                continue
            floor = floors.get(result["concurrency"])
            ok = floor and floor["p50_ms"] and floor["throughput"] and result["p50_ms"] is not None
            result[f"p50_vs_{suffix}"] = result["p50_ms"] / floor["p50_ms"] if ok else None
            result[f"throughput_vs_{suffix}"] = result["throughput"] / floor["throughput"] if ok else None


def report(results, args):
    print()
    print(
        f"RPC round trips — {args.seconds:g} s measured after {args.warmup:g} s warm-up per row; "
        f"clients: eventlet greenthreads in one process, one connection each (panel-rpc: one shared); "
        f"{os.cpu_count()} cores"
    )
    headers = ["path", "conc", "count", "errors", "req/s", "p50 ms", "p99 ms",
               "client cpu%", "server cpu%", "broker cpu%", "other cpu%", "machine cpu%"]
    rows = [
        [r["path"], r["concurrency"], r["count"], r["errors"], fmt(r["throughput"], ".0f"),
         fmt(r["p50_ms"], ".3f"), fmt(r["p99_ms"], ".3f"), fmt(r["client_cpu_pct"], ".0f"),
         fmt(r["server_cpu_pct"], ".0f"), fmt(r["broker_cpu_pct"], ".0f"),
         fmt(r["other_cpu_pct"], ".0f"), fmt(r["machine_cpu_pct"], ".0f")]
        for r in results
    ]
    print(table(headers, rows, right=range(1, len(headers))))
    print()
    print("Against the raw AMQP floor at the same concurrency:")
    for r in results:
        if r["p50_vs_raw"] is None:
            note = "no ratio (no successful call)" if r["count"] == 0 else "no ratio"
        else:
            note = f"p50 ×{r['p50_vs_raw']:.2f} of raw, throughput {r['throughput_vs_raw']:.2f}× raw"
        print(f"  {r['path']:<15} c={r['concurrency']:<3} {note}")
    http_rows = [r for r in results if r.get("p50_vs_http_raw") is not None]
    if http_rows:
        print()
        print("HTTP paths against the raw HTTP -> AMQP floor (http-raw) at the same concurrency:")
        for r in http_rows:
            print(f"  {r['path']:<15} c={r['concurrency']:<3} p50 ×{r['p50_vs_http_raw']:.2f} of http-raw, "
                  f"throughput {r['throughput_vs_http_raw']:.2f}× http-raw")
    by_key = {(r["path"], r["concurrency"]): r for r in results}
    comparisons = []
    for concurrency in sorted({r["concurrency"] for r in results}):
        for ours, theirs in (("http-rpc", "http-rpc-nameko"), ("panel-rpc", "nameko-rpc")):
            a, b = by_key.get((ours, concurrency)), by_key.get((theirs, concurrency))
            if a and b and a["p50_ms"] and b["p50_ms"] and b["throughput"]:
                comparisons.append(
                    f"  {ours:<9} vs {theirs:<15} c={concurrency:<3} p50 ×{a['p50_ms'] / b['p50_ms']:.2f}, "
                    f"throughput ×{a['throughput'] / b['throughput']:.2f}"
                )
    if comparisons:
        print()
        print("Our client against nameko's (same concurrency):")
        print("\n".join(comparisons))
    aims = []
    one, ten = by_key.get(("http-rpc", 1)), by_key.get(("http-rpc", 10))
    for floor, key in (("raw AMQP", "raw"), ("the raw HTTP -> AMQP path", "http_raw")):
        if one and one.get(f"p50_vs_{key}") is not None:
            ratio = one[f"p50_vs_{key}"]
            aims.append(f"  http-rpc p50 at c=1 ≤ 1.5× {floor}: ×{ratio:.2f} — " + ("met" if ratio <= 1.5 else "NOT met"))
        if ten and ten.get(f"throughput_vs_{key}") is not None:
            ratio = ten[f"throughput_vs_{key}"]
            aims.append(f"  http-rpc throughput at c=10 ≥ 0.5× {floor}: {ratio:.2f}× — "
                        + ("met" if ratio >= 0.5 else "NOT met"))
    if aims:
        print()
        print("Aims (issue 11):")
        print("\n".join(aims))
    noisy = [r for r in results if (r["other_cpu_pct"] or 0) > NOISY_OTHER_CPU_PCT]
    if noisy:
        print(f"  ! other programs used more than {NOISY_OTHER_CPU_PCT}% CPU during "
              + ", ".join(f"{r['path']} c={r['concurrency']}" for r in noisy)
              + ": those rows are disturbed; run again on a quiet machine")
    failures = [r for r in results if r["errors"]]
    for r in failures:
        print(f"  ! {r['path']} c={r['concurrency']}: {r['errors']} errors, first: {r['first_error']}")
    print()
    summary = {
        "benchmark": "rpc",
        "seconds": args.seconds,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "client": "eventlet greenthreads, one connection per greenthread",
        "cores": os.cpu_count(),
        "results": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in results],
    }
    print(json.dumps(summary))


# -- main ------------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.rpc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per row (5)")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per row (1)")
    parser.add_argument(
        "--concurrency", default="1,10,50",
        type=lambda text: [int(part) for part in text.split(",") if part.strip()],
        help="comma-separated concurrency levels (1,10,50)",
    )
    parser.add_argument("--paths", default=",".join(PATHS),
                        type=lambda text: [p.strip() for p in text.split(",") if p.strip()],
                        help=f"which paths to measure ({','.join(PATHS)})")
    parser.add_argument("--keep-logs", action="store_true", help="keep the children's logs")
    # The echo server child:
    parser.add_argument(ECHO_FLAG, dest="echo_server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--amqp-uri", help=argparse.SUPPRESS)
    parser.add_argument("--queue", default=ECHO_QUEUE, help=argparse.SUPPRESS)
    parser.add_argument("--prefetch", type=int, default=ECHO_PREFETCH, help=argparse.SUPPRESS)
    parser.add_argument(RAW_GATEWAY_FLAG, dest="raw_gateway", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(LEAN_GATEWAY_FLAG, dest="lean_gateway", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(LEAN_SERVICE_FLAG, dest="lean_service", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [p for p in args.paths if p not in PATHS]
    if unknown:
        parser.error(f"unknown paths {unknown}; choose from {', '.join(PATHS)}")
    if "raw-amqp" not in args.paths:
        args.paths.insert(0, "raw-amqp")  # every ratio is against it
    if any(c < 1 for c in args.concurrency):
        parser.error("concurrency levels must be >= 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.echo_server:
        return run_echo_server(args.amqp_uri, args.queue, args.prefetch)
    if args.raw_gateway:
        return run_raw_gateway(args.amqp_uri, args.port, args.queue)
    if args.lean_gateway:
        return run_lean_gateway(args.amqp_uri, args.port)
    if args.lean_service:
        return run_lean_service(args.amqp_uri, LEAN_SERVICE, args.prefetch)

    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in the background
    workdir = tempfile.mkdtemp(prefix="panel-bench-rpc-")
    vhost = Vhost()
    stack = Stack(vhost, workdir)
    code = 0
    try:
        vhost.create()
        print(f"[bench] vhost {vhost.name}; starting echo server, auth and gateway (logs in {workdir})", flush=True)
        stack.start()
        print(f"[bench] ready: echo pid {stack.echo.pid}, auth pid {stack.auth.pid}, "
              f"authnameko pid {stack.auth_nameko.pid}, "
              f"gateway pid {stack.gateway.pid} on 127.0.0.1:{stack.gateway_port}", flush=True)
        results = []
        for concurrency in args.concurrency:
            for path in [p for p in PATHS if p in args.paths]:
                make_client, servers = stack.client_factory(path)
                print(f"[bench] {path} at concurrency {concurrency} ...", flush=True)
                results.append(measure(
                    path, make_client, servers, concurrency, args.warmup, args.seconds,
                    bystanders=stack.children,
                ))
                for child in stack.children:
                    child.check()
        add_ratios(results)
        report(results, args)
    except KeyboardInterrupt:
        print("\n[bench] interrupted; stopping", file=sys.stderr, flush=True)
        code = 130
    except BenchError as error:
        print(f"[bench] {error}", file=sys.stderr, flush=True)
        code = 1
        args.keep_logs = True
    finally:
        # A second Ctrl-C must not leave children or the vhost behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            stop_children(stack.children)
        finally:
            vhost.delete()
            if args.keep_logs:
                print(f"[bench] logs kept in {workdir}", file=sys.stderr, flush=True)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
