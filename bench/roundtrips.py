"""Database round trips per webhook and per delivery, counted on the wire (bench/wire.py) in
a pass of its own: an API and a worker whose Postgres and Redis connections go through
counting proxies, one port per process and server. What the processes do when idle (polls,
heartbeats) is measured first and taken out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.database import count_rows, last_delivery_id, wait_drained
from bench.gateway import gateway_env, start_api, start_worker
from bench.orders import write_pool
from bench.servers import Servers
from bench.wire import Counts, Proxies, Proxy
from bench.wrk import run_wrk

PROXY_PORTS = {"api": (8620, 8622), "worker": (8621, 8623)}  # process → (Postgres, Redis)
IDLE_SECONDS = 20.0  # four of the sweeper's 5 s ticks, so its work is in the idle rate


@dataclass
class Trips:
    """Per webhook, per delivery or per second."""

    postgres: float  # round trips (a Sync or a simple Query, each one ReadyForQuery)
    statements: float
    redis: float  # round trips
    commands: float

    @classmethod
    def of(cls, pg: Counts, rd: Counts, per: float) -> Trips:
        per = max(per, 1e-9)
        return cls(
            pg.round_trips / per, pg.statements / per, rd.round_trips / per, rd.statements / per
        )

    def minus(self, other: Trips, times: float) -> Trips:
        return Trips(
            max(0.0, self.postgres - other.postgres * times),
            max(0.0, self.statements - other.statements * times),
            max(0.0, self.redis - other.redis * times),
            max(0.0, self.commands - other.commands * times),
        )


@dataclass
class RoundTrips:
    per_webhook: Trips
    per_hot_webhook: Trips
    per_delivery: Trips
    idle_api: Trips  # per second
    idle_worker: Trips
    webhooks: int
    hot_webhooks: int
    deliveries: int
    unreadable: bool  # a connection went encrypted: the counts miss its messages


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))


class _Counter:
    def __init__(self, proxies: Proxies) -> None:
        self.proxies = proxies
        self.last = proxies.snapshot()
        self.last_at = time.monotonic()

    def take(self, process: str) -> tuple[Counts, Counts, float]:
        """Counts of ``process`` since the previous take of it, and the seconds between."""
        now, at = self.proxies.snapshot(), time.monotonic()
        pg = now[f"{process} postgres"].minus(self.last[f"{process} postgres"])
        rd = now[f"{process} redis"].minus(self.last[f"{process} redis"])
        return pg, rd, at - self.last_at

    def mark(self) -> None:
        self.last, self.last_at = self.proxies.snapshot(), time.monotonic()


def count_round_trips(
    servers: Servers,
    *,
    dsn: str,
    redis_url: str,
    sink_url: str,
    api_port: int,
    pools: Path,
    rate: float = 50,
    count: int = 1000,  # a sweeper tick more or less in the window: ±0.01 per order
) -> RoundTrips:
    pg_port = urlsplit(dsn).port or 5432
    redis_port = urlsplit(redis_url).port or 6379
    proxies = {}
    for process, (pg_proxy, redis_proxy) in PROXY_PORTS.items():
        proxies[f"{process} postgres"] = Proxy(pg_proxy, pg_port, "postgres")
        proxies[f"{process} redis"] = Proxy(redis_proxy, redis_port, "redis")
    url = f"http://127.0.0.1:{api_port}/webhooks/shop"
    with Proxies(proxies) as wire:
        envs = {
            process: gateway_env(
                _with_port(dsn, pg_proxy), _with_port(redis_url, redis_proxy), sink_url
            )
            for process, (pg_proxy, redis_proxy) in PROXY_PORTS.items()
        }
        api = start_api(servers, api_port, envs["api"], name="api-counted")
        worker = start_worker(servers, envs["worker"], name="worker-counted")
        try:
            # warm: connections opened, statements prepared, caches filled
            after_id = last_delivery_id(dsn)
            warm = run_wrk(
                url,
                write_pool(pools / "rt-warm.tsv", "rt-warm", 100),
                seconds=2,
                connections=8,
                rate=30,
            )
            wait_drained(dsn, after_id, warm.count(202), timeout=120)

            counter = _Counter(wire)
            time.sleep(IDLE_SECONDS)
            api_pg, api_rd, idle_seconds = counter.take("api")
            worker_pg, worker_rd, _ = counter.take("worker")
            idle_api = Trips.of(api_pg, api_rd, idle_seconds)
            idle_worker = Trips.of(worker_pg, worker_rd, idle_seconds)

            # webhooks and deliveries counted in the database: what was stored, whatever
            # the generator saw
            pool = write_pool(pools / "rt-orders.tsv", "rt-orders", count)
            after_id, inbound = last_delivery_id(dsn), count_rows(dsn, "inbound_events")
            counter.mark()
            distinct = run_wrk(url, pool, seconds=count / rate, connections=8, rate=rate)
            drained = wait_drained(dsn, after_id, distinct.count(202), timeout=120)
            api_pg, api_rd, seconds = counter.take("api")
            worker_pg, worker_rd, _ = counter.take("worker")
            webhooks = max(count_rows(dsn, "inbound_events") - inbound, 1)
            per_webhook = Trips.of(api_pg, api_rd, webhooks).minus(idle_api, seconds / webhooks)
            per_delivery = Trips.of(worker_pg, worker_rd, drained.delivered).minus(
                idle_worker, seconds / max(drained.delivered, 1)
            )

            # the same body under new webhook ids: each one answered 200 as a duplicate
            hot_pool = write_pool(pools / "rt-hot.tsv", "rt-hot", count, hot=True)
            counter.mark()
            hot = run_wrk(url, hot_pool, seconds=count / rate, connections=8, rate=rate)
            api_pg, api_rd, seconds = counter.take("api")
            hot_webhooks = max(hot.ok, 1)
            per_hot = Trips.of(api_pg, api_rd, hot_webhooks).minus(idle_api, seconds / hot_webhooks)
            unreadable = any(c.unreadable for c in wire.snapshot().values())
        finally:
            servers.stop(worker)
            servers.stop(api)
    return RoundTrips(
        per_webhook,
        per_hot,
        per_delivery,
        idle_api,
        idle_worker,
        webhooks,
        hot_webhooks,
        drained.delivered,
        unreadable,
    )
