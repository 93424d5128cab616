"""A worker-like process of its own around the concurrency slots, for the cross-process tests
(tests/integration/test_concurrency_slots.py): ``python -m tests.support.slot_process MODE``.

``calls``: builds the NetSuite connector the way the runtime does (the limiter from the
settings, the connection's ``concurrency_limit`` option), prints ``ready``, waits for the
file SLOT_GO to exist, makes SLOT_CALLS record reads at once and prints ``RESULT {"ok": n,
"rate_limited": n, "failed": [...]}``.
``hold``: takes one slot of SLOT_KEY (of SLOT_LIMIT, held for SLOT_HOLD_SECONDS at most),
prints ``holding`` and sleeps (until killed).

Environment: SLOT_REDIS (a Redis URL; empty: embedded, no Redis), SLOT_LIMIT, and for
``calls`` SLOT_NS_URL (the NetSuite simulator), SLOT_NS_CREDS (its TBA credentials as
JSON), SLOT_CALLS, SLOT_GO; for ``hold`` SLOT_KEY,
SLOT_HOLD_SECONDS.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from app.limits import build_limiter
from app.settings import Settings

CALL_TIMEOUT_SECONDS = 5.0


def say(line: str) -> None:
    print(line, flush=True)


def wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.002)


def settings() -> Settings:
    # a delivery lease of 32 s: a call may wait 8 s for a slot
    return Settings(redis_url=os.environ.get("SLOT_REDIS") or None, lease_seconds=32.0)


async def calls() -> None:
    # imported here: a holder starts faster without the connectors
    import httpx

    from app.config import ConnectionConfig
    from app.connections import build_connector
    from connectors.netsuite.client import RecordRef
    from connectors.netsuite.connector import NetSuiteConnector
    from kernel.errors import RateLimitedError

    limiter = build_limiter(settings())
    connection = ConnectionConfig(
        id="erp",
        type="netsuite",
        base_url=os.environ["SLOT_NS_URL"],
        credentials=json.loads(os.environ["SLOT_NS_CREDS"]),
        options={"concurrency_limit": int(os.environ["SLOT_LIMIT"])},
    )
    outcomes: dict[str, int] = {"ok": 0, "rate_limited": 0}
    failed: list[str] = []
    async with httpx.AsyncClient(trust_env=False) as http:
        connector = build_connector(connection, http, CALL_TIMEOUT_SECONDS, limiter=limiter)
        assert isinstance(connector, NetSuiteConnector)

        async def read() -> None:
            try:
                await connector.client.get(RecordRef("inventoryItem", "1042"))
                outcomes["ok"] += 1
            except RateLimitedError:
                outcomes["rate_limited"] += 1
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {exc}")

        say("ready")
        await asyncio.to_thread(wait_for, Path(os.environ["SLOT_GO"]))
        await asyncio.gather(*(read() for _ in range(int(os.environ["SLOT_CALLS"]))))
    await limiter.close()
    say("RESULT " + json.dumps({**outcomes, "failed": failed}))


async def hold() -> None:
    limiter = build_limiter(settings())
    key, limit = os.environ["SLOT_KEY"], int(os.environ["SLOT_LIMIT"])
    async with limiter.slot(key, limit, hold_seconds=float(os.environ["SLOT_HOLD_SECONDS"])):
        say("holding")
        await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run({"calls": calls, "hold": hold}[sys.argv[1]]())
