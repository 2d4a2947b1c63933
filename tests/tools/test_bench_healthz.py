"""`scripts/bench dispensing --reads --healthz`: each read's rate is taken over GET /healthz's
on the same server and clients, and judged against issue 28's aim at 32 clients."""

from __future__ import annotations

from collections import Counter

from tools.bench.load import Observation, Run, Tally, Window
from tools.bench.report import healthz_lines


def run(target: str, backend: str, clients: int, answered: int, latency: float = 0.001) -> Run:
    tally = Tally(latencies=[latency] * answered, errors=Counter())
    observation = Observation(cores={}, sessions={})
    return Run(target, backend, 1, clients, Window(0.0, 1.0), tally, observation)


def test_each_read_is_compared_with_healthz_of_its_own_server_and_clients() -> None:
    runs = [
        run("API read", "sqlite", 32, 3000),
        run("API healthz", "sqlite", 32, 5000),
        run("API @8627506 read", "sqlite", 32, 1000),
        run("API @8627506 healthz", "sqlite", 32, 4000),
        run("API read", "sqlite", 1, 500),
        run("API healthz", "sqlite", 1, 1000),
        run("API read", "postgres", 32, 900),
    ]

    lines = healthz_lines(runs)

    assert lines[0] == "Reading one prescription against GET /healthz:"
    ratios = [line for line in lines if line.startswith("- ")]
    assert [line.split(":")[0] for line in ratios] == [
        "- API read, sqlite w1, 32 clients",
        "- API @8627506 read, sqlite w1, 32 clients",
        "- API read, sqlite w1, 1 clients",
    ]
    assert ratios[0].endswith("ratio 0.60 (aim ≥ 0.5, p99 ≤ 20 ms: met)")
    assert ratios[1].endswith("ratio 0.25 (aim ≥ 0.5, p99 ≤ 20 ms: **not met**)")
    assert ratios[2].endswith("ratio 0.50")


def test_a_read_at_half_the_rate_but_slow_misses_the_aim() -> None:
    runs = [
        run("API read", "sqlite", 32, 3000, latency=0.030),
        run("API healthz", "sqlite", 32, 3000),
    ]

    assert healthz_lines(runs)[2].endswith("ratio 1.00 (aim ≥ 0.5, p99 ≤ 20 ms: **not met**)")


def test_without_healthz_runs_there_is_nothing_to_say() -> None:
    assert healthz_lines([run("API read", "sqlite", 32, 3000)]) == []
