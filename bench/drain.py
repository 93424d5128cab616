"""One worker against two, draining backlogs ingested the same way, in alternating rounds.

A backlog is what the API accepted in a closed-loop burst with no worker running; then the
workers start together and the clock runs from their start until nothing is open. Rounds go
1, 2, 1, 2 workers: the sink and the tables grow as the run goes on, and alternating lets
that drift hit both alike (comparing a first backlog drained by one worker with a later one
drained by two measured the sink's growth, not the workers).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.database import delivery_spread, last_delivery_id, wait_drained
from bench.gateway import start_worker
from bench.orders import write_pool
from bench.servers import Servers
from bench.wrk import run_wrk

POOL = 20_000  # more than a burst accepts here: no webhook repeats


@dataclass
class Drain:
    workers: int
    orders: int
    seconds: float  # the workers' start until every order is delivered
    spread: float  # the first delivery to the last (the gateway's delivered_at): no start-up

    @property
    def rate(self) -> float:
        return self.orders / max(self.seconds, 1e-9)

    @property
    def steady_rate(self) -> float:
        return self.orders / max(self.spread, 1e-9)


def ratio(drains: list[Drain], *, steady: bool = True) -> float | None:
    """Two workers' rate over one's, each two-worker round against the one-worker rounds
    beside it; the median of those. ``steady``: first to last delivery, the rate a long
    backlog drains at (a worker's start, ~2 s, is a fixed cost that weighs on a burst of a
    few thousand orders, more so with two starting at once on two cores)."""

    def rate(drain: Drain) -> float:
        return drain.steady_rate if steady else drain.rate

    ratios = []
    for i, drain in enumerate(drains):
        if drain.workers != 2:
            continue
        beside = [rate(d) for d in drains[max(i - 1, 0) : i + 2] if d.workers == 1]
        if beside:
            ratios.append(rate(drain) / statistics.mean(beside))
    return statistics.median(ratios) if ratios else None


def drain_once(
    servers: Servers,
    env: dict[str, str],
    dsn: str,
    url: str,
    pool: Path,
    *,
    workers: int,
    seconds: float,
    connections: int,
    timeout: float = 900,
) -> Drain:
    after_id = last_delivery_id(dsn)
    burst = run_wrk(url, pool, seconds=seconds, connections=connections)
    accepted = burst.count(202)
    started = time.monotonic()
    procs = [start_worker(servers, env, name=f"drain worker {n}") for n in range(workers)]
    state = wait_drained(dsn, after_id, accepted, timeout)
    took = time.monotonic() - started
    for proc in procs:
        servers.stop(proc)
    drain = Drain(workers, state.delivered, took, delivery_spread(dsn, after_id))
    print(
        f"drain, {workers} worker(s): {drain.orders} orders in {drain.seconds:.1f} s "
        f"({drain.rate:.0f}/s; {drain.steady_rate:.0f}/s first to last delivery)",
        flush=True,
    )
    return drain


def compare_drains(
    servers: Servers,
    env: dict[str, str],
    dsn: str,
    url: str,
    pools: Path,
    *,
    seconds: float,
    connections: int,
    rounds: int = 2,
) -> list[Drain]:
    """``rounds`` pairs of drains (one worker, then two), each on a fresh backlog."""
    drains = []
    for r in range(1, rounds + 1):
        for workers in (1, 2):
            pool = write_pool(pools / f"drain-{r}-{workers}.tsv", f"drain-{r}-{workers}", POOL)
            drains.append(
                drain_once(
                    servers,
                    env,
                    dsn,
                    url,
                    pool,
                    workers=workers,
                    seconds=seconds,
                    connections=connections,
                )
            )
    return drains
