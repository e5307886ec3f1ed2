"""One row of ``bench.rpc``: ``concurrency`` greenthreads, each calling in a loop on a
client of its own (``bench.measure.timed_window``), and what the row measured — count,
errors, req/s, p50/p99, and the CPU of the client, the serving children, RabbitMQ and
everything else on the machine."""

import os

from bench.measure import CpuWindow, latency_ms, oldest_pid_named, timed_window


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
