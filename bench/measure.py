"""Small helpers shared by the benchmarks: percentiles, CPU accounting, tables."""

import os
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), int(round(fraction * len(sorted_values) + 0.5))))
    return sorted_values[rank - 1]


def latency_ms(latencies_seconds):
    """(p50, p99) in milliseconds of a list of durations in seconds."""
    ordered = sorted(latencies_seconds)
    p50, p99 = percentile(ordered, 0.50), percentile(ordered, 0.99)
    return (None if p50 is None else p50 * 1000, None if p99 is None else p99 * 1000)


def process_cpu_seconds(pid):
    """User + system CPU seconds used so far by process ``pid`` (None when it is gone)."""
    if pid == os.getpid():
        times = os.times()
        return times.user + times.system
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pids_named(command):
    """Pids of the processes whose command name is ``command`` (e.g. ``postgres``), to
    account for the CPU of servers this program did not start."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() == command:
                        found.append(int(entry))
            except OSError:
                pass
    return found


def oldest_pid_named(command):
    """The longest-running process named ``command`` (e.g. RabbitMQ's ``beam.smp``; the
    oldest, so that a short-lived ``rabbitmqctl`` VM is not taken for the broker)."""
    found = []
    for pid in pids_named(command):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                found.append((int(handle.read().rsplit(")", 1)[1].split()[19]), pid))
        except (OSError, ValueError, IndexError):
            pass
    return min(found)[1] if found else None


def machine_cpu():
    """(busy, total) jiffies of the whole machine, all cores. Busy includes time stolen by
    the hypervisor: for this machine's guests, it is time they did not get either."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    # user nice system idle iowait irq softirq steal (guest time is already in user).
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class CpuWindow:
    """CPU used by some processes and by the whole machine between ``start`` and ``stop``,
    as a percentage of one core (so a 2-core machine goes up to 200 %)."""

    def __init__(self, pids):
        self.pids = list(pids)

    def start(self):
        self._wall = time.monotonic()
        self._procs = {pid: process_cpu_seconds(pid) for pid in self.pids}
        self._machine = machine_cpu()

    def stop(self):
        wall = max(time.monotonic() - self._wall, 1e-9)
        used = {}
        for pid, before in self._procs.items():
            after = process_cpu_seconds(pid)
            used[pid] = None if before is None or after is None else 100.0 * (after - before) / wall
        busy, total = machine_cpu()
        d_busy, d_total = busy - self._machine[0], total - self._machine[1]
        machine = 100.0 * os.cpu_count() * d_busy / d_total if d_total else None
        return used, machine


def fmt(value, spec=".2f", missing="-"):
    return missing if value is None else format(value, spec)


def table(headers, rows, right=None):
    """A plain text table; columns listed in ``right`` (indexes) are right-aligned."""
    right = set(range(1, len(headers))) if right is None else set(right)
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(row)
        ).rstrip()

    out = [line(cells[0]), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells[1:])
    return "\n".join(out)


def timed_window(clients, call, warmup, seconds, cpu, record_error=str, error_pause=0.01):
    """One greenthread per client calls ``call(client)`` in a loop for ``warmup`` seconds
    (discarded) then ``seconds`` (measured); only calls that *end* inside the measured window
    count. ``cpu`` (a ``CpuWindow``) is read over exactly that window. A failed call is kept
    as ``record_error(exception)`` and followed by ``error_pause`` seconds (never spin on a
    broken path). Returns ``(latencies, results, errors, used, machine)``: seconds of each
    successful call, what each returned, the recorded errors, and the CPU readings."""
    import eventlet

    latencies, results, errors = [], [], []
    start = time.perf_counter() + 0.05
    window_start = start + warmup
    window_end = window_start + seconds

    def worker(client):
        while time.perf_counter() < start:
            eventlet.sleep(0.001)
        while True:
            began = time.perf_counter()
            if began >= window_end:
                return
            try:
                result, failed = call(client), None
            except Exception as error:  # any failure of one call is counted, not raised
                result, failed = None, record_error(error)
            ended = time.perf_counter()
            if window_start <= ended <= window_end:
                if failed is None:
                    latencies.append(ended - began)
                    results.append(result)
                else:
                    errors.append(failed)
            if failed is not None:
                eventlet.sleep(error_pause)

    pool = [eventlet.spawn(worker, client) for client in clients]
    eventlet.sleep(max(window_start - time.perf_counter(), 0))
    cpu.start()
    eventlet.sleep(max(window_end - time.perf_counter(), 0))
    used, machine = cpu.stop()
    for thread in pool:
        thread.wait()
    return latencies, results, errors, used, machine
