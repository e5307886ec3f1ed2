"""Liveness and readiness probes for one service process (Kubernetes exec probes, compose
healthchecks, systemd ``ExecStartPost``, a shell).

    python -m deploy.probe live SERVICE      the process's metrics endpoint answers
    python -m deploy.probe ready SERVICE     ...and the service answers its ``health`` RPC
        [--timeout S]   seconds per check (default 5)
        [--wait S]      retry until it passes or S seconds passed (start-up: systemd
                        ExecStartPost, compose depends_on); default one attempt

SERVICE is a service or ``gateway``; its config file (``deploy/config/SERVICE.yaml`` with
the environment's overrides, exactly as the service reads it) gives ``AMQP_URI``,
``METRICS_PORT`` and ``METRICS_HOST``. Exit status 0 when healthy, 1 otherwise, with one
line saying what was checked or what failed.

``live`` says this process's eventlet hub still serves requests (restart it if not);
``ready`` adds that the broker is reachable and the service consumes its RPC queue. With
several replicas the RPC is answered by whichever replica takes it first, so ``ready``
proves the service as a whole, and ``live`` is the per-replica check.
"""

import argparse
import sys
import time
import urllib.error
import urllib.request

from common import rpc_errors  # noqa: F401 - errors of the standalone RPC proxies arrive typed
from common import config as panel_config

DEFAULT_TIMEOUT_SECONDS = 5.0
RETRY_INTERVAL_SECONDS = 1.0
COMPONENTS = panel_config.SERVICES + ("gateway",)


class ProbeFailed(Exception):
    """The check did not pass; the message says which and why."""


def metrics_url(settings):
    """The URL of the process's metrics endpoint, or None when metrics are off."""
    port = str(settings.get("METRICS_PORT", "off")).strip().lower()
    if port in ("", "off", "none", "false"):
        return None
    host = str(settings.get("METRICS_HOST") or "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{host}:{int(port)}/metrics"


def check_metrics(settings, timeout):
    url = metrics_url(settings)
    if url is None:
        raise ProbeFailed("METRICS_PORT is off: nothing to probe for liveness")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = answer.read()
    except (urllib.error.URLError, OSError) as error:
        raise ProbeFailed(f"metrics endpoint {url} does not answer: {error}") from None
    if b"panel_entrypoint_calls_total" not in body:
        raise ProbeFailed(f"{url} answered without the panel metrics: not a panel process")
    return url


def check_health_rpc(service, settings, timeout):
    # Imported here: ``live`` must stay cheap (no AMQP client loaded).
    from nameko.standalone.rpc import ClusterRpcProxy

    amqp_uri = settings["AMQP_URI"]
    broker = amqp_uri.rsplit("@", 1)[-1]
    try:
        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout) as cluster:
            answer = getattr(cluster, service).health()
    except Exception as error:  # any failure (broker down, no consumer, time-out) is "not ready"
        raise ProbeFailed(f"{service}.health over {broker} failed: {type(error).__name__}: {error}") from None
    if not isinstance(answer, dict) or answer.get("status") != "ok":
        raise ProbeFailed(f"{service}.health answered {answer!r}")
    return answer


def probe(kind, service, timeout=DEFAULT_TIMEOUT_SECONDS, settings=None):
    """Run one probe; returns a line describing what passed, raises ``ProbeFailed``."""
    settings = panel_config.load(service) if settings is None else settings
    started = time.monotonic()
    url = check_metrics(settings, timeout)
    if kind == "live":
        return f"{service} live: {url} answered in {time.monotonic() - started:.2f}s"
    answer = check_health_rpc(service, settings, timeout)
    return f"{service} ready: {url} and health RPC answered in {time.monotonic() - started:.2f}s ({answer})"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m deploy.probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("live", "ready"))
    parser.add_argument("service", choices=COMPONENTS)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS,
                        help="seconds per check (default %(default)s)")
    parser.add_argument("--wait", type=float, default=0,
                        help="retry until it passes or this many seconds passed (default: one attempt)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    while True:
        try:
            print(probe(args.kind, args.service, args.timeout))
            return 0
        except ProbeFailed as failure:
            if time.monotonic() + RETRY_INTERVAL_SECONDS > deadline:
                print(f"{args.service} not {args.kind}: {failure}", file=sys.stderr)
                return 1
        time.sleep(RETRY_INTERVAL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())
