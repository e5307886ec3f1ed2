"""What ``bench.rpc`` prints after the last row: the table, every path against the raw AMQP
floor and the HTTP paths against the raw HTTP -> AMQP floor (``add_ratios`` puts those
ratios into the rows), our client against nameko's, the aims of issue 11, warnings about
rows that other programs disturbed or that had errors, and as the last line one JSON object with every number."""

import json
import os

from bench.measure import fmt, table

NOISY_OTHER_CPU_PCT = 25
COLUMNS = ["path", "conc", "count", "errors", "req/s", "p50 ms", "p99 ms",
           "client cpu%", "server cpu%", "broker cpu%", "other cpu%", "machine cpu%"]


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
    """Print everything after the rows (``add_ratios(results)`` first)."""
    print()
    print(
        f"RPC round trips — {args.seconds:g} s measured after {args.warmup:g} s warm-up per row; "
        f"clients: eventlet greenthreads in one process, one connection each (panel-rpc: one shared); "
        f"{os.cpu_count()} cores"
    )
    print(table(COLUMNS, [_row(r) for r in results], right=range(1, len(COLUMNS))))
    print()
    print("Against the raw AMQP floor at the same concurrency:")
    for line in against_raw_amqp(results):
        print(line)
    for heading, lines in (
        ("HTTP paths against the raw HTTP -> AMQP floor (http-raw) at the same concurrency:",
         against_http_raw(results)),
        ("Our client against nameko's (same concurrency):", against_nameko(results)),
        ("Aims (issue 11):", aims(results)),
    ):
        if lines:
            print()
            print(heading)
            print("\n".join(lines))
    for line in alerts(results):
        print(line)
    print()
    print(json.dumps(summary(results, args)))


def _row(r):
    return [r["path"], r["concurrency"], r["count"], r["errors"], fmt(r["throughput"], ".0f"),
            fmt(r["p50_ms"], ".3f"), fmt(r["p99_ms"], ".3f"), fmt(r["client_cpu_pct"], ".0f"),
            fmt(r["server_cpu_pct"], ".0f"), fmt(r["broker_cpu_pct"], ".0f"),
            fmt(r["other_cpu_pct"], ".0f"), fmt(r["machine_cpu_pct"], ".0f")]


def against_raw_amqp(results):
    lines = []
    for r in results:
        if r["p50_vs_raw"] is None:
            note = "no ratio (no successful call)" if r["count"] == 0 else "no ratio"
        else:
            note = f"p50 ×{r['p50_vs_raw']:.2f} of raw, throughput {r['throughput_vs_raw']:.2f}× raw"
        lines.append(f"  {r['path']:<15} c={r['concurrency']:<3} {note}")
    return lines


def against_http_raw(results):
    return [f"  {r['path']:<15} c={r['concurrency']:<3} p50 ×{r['p50_vs_http_raw']:.2f} of http-raw, "
            f"throughput {r['throughput_vs_http_raw']:.2f}× http-raw"
            for r in results if r.get("p50_vs_http_raw") is not None]


def against_nameko(results):
    """``http-rpc`` vs ``http-rpc-nameko`` and ``panel-rpc`` vs ``nameko-rpc``, per concurrency."""
    by_key = {(r["path"], r["concurrency"]): r for r in results}
    lines = []
    for concurrency in sorted({r["concurrency"] for r in results}):
        for ours, theirs in (("http-rpc", "http-rpc-nameko"), ("panel-rpc", "nameko-rpc")):
            a, b = by_key.get((ours, concurrency)), by_key.get((theirs, concurrency))
            if a and b and a["p50_ms"] and b["p50_ms"] and b["throughput"]:
                lines.append(
                    f"  {ours:<9} vs {theirs:<15} c={concurrency:<3} p50 ×{a['p50_ms'] / b['p50_ms']:.2f}, "
                    f"throughput ×{a['throughput'] / b['throughput']:.2f}"
                )
    return lines


def aims(results):
    """Issue 11's aims against both floors: http-rpc p50 at c=1 ≤ 1.5×, throughput at c=10 ≥ 0.5×."""
    by_key = {(r["path"], r["concurrency"]): r for r in results}
    one, ten = by_key.get(("http-rpc", 1)), by_key.get(("http-rpc", 10))
    lines = []
    for floor, key in (("raw AMQP", "raw"), ("the raw HTTP -> AMQP path", "http_raw")):
        if one and one.get(f"p50_vs_{key}") is not None:
            ratio = one[f"p50_vs_{key}"]
            lines.append(f"  http-rpc p50 at c=1 ≤ 1.5× {floor}: ×{ratio:.2f} — " + ("met" if ratio <= 1.5 else "NOT met"))
        if ten and ten.get(f"throughput_vs_{key}") is not None:
            ratio = ten[f"throughput_vs_{key}"]
            lines.append(f"  http-rpc throughput at c=10 ≥ 0.5× {floor}: {ratio:.2f}× — "
                         + ("met" if ratio >= 0.5 else "NOT met"))
    return lines


def alerts(results):
    """Rows disturbed by other programs, and rows with errors."""
    lines = []
    noisy = [r for r in results if (r["other_cpu_pct"] or 0) > NOISY_OTHER_CPU_PCT]
    if noisy:
        lines.append(f"  ! other programs used more than {NOISY_OTHER_CPU_PCT}% CPU during "
                     + ", ".join(f"{r['path']} c={r['concurrency']}" for r in noisy)
                     + ": those rows are disturbed; run again on a quiet machine")
    for r in results:
        if r["errors"]:
            lines.append(f"  ! {r['path']} c={r['concurrency']}: {r['errors']} errors, first: {r['first_error']}")
    return lines


def summary(results, args):
    """The last line's object: the run's settings and every row, floats to 4 places."""
    return {
        "benchmark": "rpc",
        "seconds": args.seconds,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "client": "eventlet greenthreads, one connection per greenthread",
        "cores": os.cpu_count(),
        "results": [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in results],
    }
