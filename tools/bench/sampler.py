"""Observing a run: the CPU each process group uses, PostgreSQL's sessions, a machine quiet
enough to start on, and py-spy sampling one server process at full speed."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tools.bench.load import Observation, Run, Window, sleep_until
from tools.bench.progress import say

SAMPLE_EVERY = 0.2  # seconds between pg_stat_activity samples


# --- observing a run: CPU per process group, PostgreSQL sessions ----------------------------------

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    machine_busy: float  # CPU seconds, all cores, since boot
    procs: dict[int, tuple[int, str, float]]  # pid -> (ppid, comm, CPU seconds)


def _proc_stat(pid_dir: Path) -> tuple[int, str, float] | None:
    try:
        text = (pid_dir / "stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / TICK


def cpu_sample() -> CpuSample:
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[:8])
    procs = {}
    for pid_dir in Path("/proc").iterdir():
        if pid_dir.name.isdigit() and (stat := _proc_stat(pid_dir)) is not None:
            procs[int(pid_dir.name)] = stat
    busy = (user + nice + system + irq + softirq + steal) / TICK
    return CpuSample(busy, procs)


def descendants(procs: dict[int, tuple[int, str, float]], root: int) -> set[int]:
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, (ppid, _, _) in procs.items() if ppid == parent]
        found.update(children)
        frontier.extend(children)
    return found


def cores_used(
    before: CpuSample, after: CpuSample, seconds: float, servers: Sequence[int]
) -> dict[str, float]:
    """Cores busy on average during the window, per group of processes."""

    def used(pids: Iterable[int]) -> float:
        total = sum(after.procs[p][2] - before.procs[p][2] for p in pids if p in before.procs)
        return total / seconds

    groups = {
        "server": set().union(*(descendants(after.procs, pid) for pid in servers)),
        "postgres": {pid for pid, (_, comm, _) in after.procs.items() if comm == "postgres"},
        "loadgen": {os.getpid()},
    }
    usage = {name: used(pids) for name, pids in groups.items()}
    usage["machine"] = (after.machine_busy - before.machine_busy) / seconds
    usage["other"] = usage["machine"] - usage["server"] - usage["postgres"] - usage["loadgen"]
    return usage


ACTIVITY_SQL = """
SELECT count(*) FILTER (WHERE state = 'active') AS active,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS lock_wait,
       count(*) FILTER (WHERE state = 'idle in transaction') AS idle_in_tx,
       count(*) FILTER (WHERE wait_event_type = 'IO') AS io_wait
FROM pg_stat_activity WHERE application_name = $1
"""


async def sample_activity(dsn: str, app: str, window: Window) -> dict[str, float]:
    """Average count of the run's sessions per state: active, waiting on a lock (the table
    lock every append takes), idle in transaction (holding it while the client thinks)."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "ordo-bench-observer"})
    samples: list[dict[str, int]] = []
    try:
        await sleep_until(window.start)
        while time.perf_counter() < window.end:
            row = await conn.fetchrow(ACTIVITY_SQL, app)
            assert row is not None
            samples.append(dict(row.items()))
            await asyncio.sleep(SAMPLE_EVERY)
    finally:
        await conn.close()
    keys = ("active", "lock_wait", "idle_in_tx", "io_wait")
    return {k: sum(s[k] for s in samples) / max(1, len(samples)) for k in keys}


def _busy_cores(seconds: float) -> float:
    before = cpu_sample().machine_busy
    time.sleep(seconds)
    return (cpu_sample().machine_busy - before) / seconds


async def quiet_machine(patience: float, threshold: float = 0.3) -> None:
    """Wait up to `patience` seconds for the machine to be idle (others' builds and tests
    share these 2 cores); the "other" column shows what was left during each run."""
    deadline = time.monotonic() + patience
    while patience > 0:
        busy = await asyncio.to_thread(_busy_cores, 3.0)
        if busy < threshold:
            return
        if time.monotonic() > deadline:
            say(f"machine still busy ({busy:.2f} cores), going on", "yellow")
            return
        say(f"machine busy ({busy:.2f} cores used by others), waiting", "yellow")
        await asyncio.sleep(7.0)


async def observe(
    window: Window,
    servers: Sequence[int],
    activity: tuple[str, str] | None,
) -> Observation:
    sampler = asyncio.create_task(sample_activity(*activity, window)) if activity else None
    await sleep_until(window.start)
    before = await asyncio.to_thread(cpu_sample)
    await sleep_until(window.end)
    after = await asyncio.to_thread(cpu_sample)
    cores = cores_used(before, after, window.seconds, servers)
    return Observation(cores, await _sessions(sampler))


async def _sessions(sampler: asyncio.Task[dict[str, float]] | None) -> dict[str, float]:
    """The sampler's averages; a failed sampler only costs that column."""
    try:
        return await sampler if sampler else {}
    except Exception as error:  # a diagnostic column: never worth the run
        say(f"pg_stat_activity sampler failed: {error!r}", "yellow")
        return {}


SPIED: list[tuple[Run, Counter[str]]] = []  # (run, samples by stack) per sampled run


async def py_spy(server_pids: Sequence[int], window: Window) -> Counter[str]:
    """py-spy samples one worker process (a child of `ordo serve`) for the measured window."""
    await sleep_until(window.start)
    procs = cpu_sample().procs  # the busiest descendant is a worker (not a resource tracker)
    workers = set().union(*(descendants(procs, p) for p in server_pids)) - {*server_pids}
    pid = max(workers, key=lambda p: procs[p][2]) if workers else server_pids[0]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.NamedTemporaryFile(suffix=".txt") as out:
        argv = [spy, "record", "--pid", str(pid), "--duration", str(max(1, int(window.seconds)))]
        argv += ["--rate", "200", "--format", "raw", "--nonblocking", "--output", out.name]
        done = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        _, err = await done.communicate()
        if done.returncode != 0:
            say(f"py-spy failed: {err.decode()[-300:]}", "red")
            return Counter()
        sampled = Path(out.name).read_text()  # noqa: ASYNC240 (py-spy has exited: a local file)
        say(f"py-spy sampled process {pid}: {len(sampled):,} bytes")
        stacks: Counter[str] = Counter()
        for line in sampled.splitlines():
            stack, _, count = line.rpartition(" ")
            stacks[stack] += int(count)
        return stacks
