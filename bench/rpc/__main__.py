"""``python -m bench.rpc``: the benchmark (see ``bench.rpc``), or, behind a hidden flag, one
of the child programs it starts (``bench.rpc.servers``)."""

import sys

from bench.rpc import ECHO_FLAG, LEAN_SERVICE_FLAG

if ECHO_FLAG not in sys.argv and LEAN_SERVICE_FLAG not in sys.argv:
    # The bench client runs like the services do: cooperative greenthreads. The echo
    # server and the lean service stay plain blocking processes: they are the floors.
    import warnings

    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    import eventlet

    eventlet.monkey_patch()

import argparse  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402

import bench.rpc  # noqa: E402
from bench import BenchError  # noqa: E402
from bench.broker import Vhost  # noqa: E402
from bench.rpc import (  # noqa: E402
    ECHO_PREFETCH,
    ECHO_QUEUE,
    LEAN_GATEWAY_FLAG,
    LEAN_SERVICE,
    PATHS,
    RAW_GATEWAY_FLAG,
)
from bench.rpc.load import measure  # noqa: E402
from bench.rpc.report import add_ratios, report  # noqa: E402
from bench.rpc.servers import run_echo_server, run_lean_gateway, run_lean_service, run_raw_gateway  # noqa: E402
from bench.rpc.stack import Stack, stop_children  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.rpc", description=bench.rpc.__doc__.split("\n\n")[0])
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
    # The child programs (bench.rpc.stack starts them):
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
    return run_benchmark(args)


def run_benchmark(args):
    """Vhost, stack, one row per concurrency and path, the report; children stopped and the
    vhost deleted whatever happens. Returns the exit code (1: a ``BenchError``, 130: Ctrl-C
    or SIGTERM)."""

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
