"""A bounded load generator: closed-loop (max throughput) and open-loop (fixed rate)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RequestFactory = Callable[[int], tuple[str, bytes, dict[str, str]]]  # i → (url, body, headers)


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    status_counts: dict[int, int] = field(default_factory=dict)
    accepted_at: dict[int, float] = field(default_factory=dict)  # i → wall time of the 2xx

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def _send(
    client: httpx.AsyncClient, make: RequestFactory, i: int, result: LoadResult
) -> None:
    url, body, headers = make(i)
    result.sent += 1
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError:
        result.errors += 1
        return
    result.status_counts[response.status_code] = (
        result.status_counts.get(response.status_code, 0) + 1
    )
    if response.is_success:
        result.ok += 1
        result.accepted_at[i] = time.time()
    else:
        result.errors += 1


async def closed_loop(make: RequestFactory, *, concurrency: int, total: int) -> LoadResult:
    """``concurrency`` workers send ``total`` requests back to back: the throughput ceiling."""
    result = LoadResult()
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def worker() -> None:
            for i in counter:
                await _send(client, make, i, result)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - started
    return result


async def open_loop(make: RequestFactory, *, rate: float, total: int) -> LoadResult:
    """Send at a fixed ``rate`` per second whatever the response times (no coordinated omission)."""
    result = LoadResult()
    # A bounded pool: opening hundreds of connections would cost the shared CPU more than
    # the gateway's own work. Latency is measured on the server side, so waiting for a
    # connection here does not hide slow responses.
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        started = time.perf_counter()
        tasks = []
        for i in range(total):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_send(client, make, i, result)))
        await asyncio.gather(*tasks)
        result.seconds = time.perf_counter() - started
    return result


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]
