"""The account's currencies are read once per process, however many deliveries start at once
(each would otherwise spend a slot of the account's concurrency limit on the same answer)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from connectors.netsuite.client import NetSuiteClient
from connectors.netsuite.lookups import Currencies
from kernel.errors import TransientError

ANSWER = {"items": [{"links": [], "id": "1", "symbol": "USD"}, {"id": "4", "symbol": "EUR"}]}


class SlowAccount:
    """``suiteql`` as a NetSuite busy enough that every delivery of a batch asks before the
    first answer is in (each answer waits for ``answer``); ``failures`` answer 503 first."""

    def __init__(self, failures: int = 0) -> None:
        self.queries: list[str] = []
        self.failures = failures
        self.answer = asyncio.Event()

    async def suiteql(self, q: str, limit: int, offset: int) -> dict[str, Any]:
        self.queries.append(q)
        await self.answer.wait()
        if self.failures:
            self.failures -= 1
            raise TransientError("NetSuite failed POST SuiteQL query (HTTP 503)")
        return ANSWER


async def all_waiting(tasks: list[asyncio.Task[Any]]) -> None:
    """Let every task run until it waits (on the answer or on the one asking for it)."""
    for _ in range(len(tasks) + 2):
        await asyncio.sleep(0)  # one turn of the loop, no wall time
    assert not any(t.done() for t in tasks)


async def test_deliveries_starting_together_send_one_currency_query() -> None:
    account = SlowAccount()
    currencies = Currencies(cast(NetSuiteClient, account))
    asking = [asyncio.create_task(currencies.id_of("eur", "USD")) for _ in range(16)]
    await all_waiting(asking)
    account.answer.set()
    assert await asyncio.gather(*asking) == ["4"] * 16
    assert account.queries == ["SELECT id, symbol FROM currency"]
    assert await currencies.id_of("USD", "USD") == "1" and len(account.queries) == 1


async def test_a_failed_read_is_not_kept_and_the_next_delivery_asks_again() -> None:
    account = SlowAccount(failures=1)
    currencies = Currencies(cast(NetSuiteClient, account))
    asking = [asyncio.create_task(currencies.id_of("EUR", "USD")) for _ in range(2)]
    await all_waiting(asking)
    account.answer.set()
    first, second = await asyncio.gather(*asking, return_exceptions=True)
    # the one that sent the query gets NetSuite's error (retried like any 503); the one that
    # waited for it asks again and gets the answer
    assert isinstance(first, TransientError) and second == "4"
    assert len(account.queries) == 2
    with pytest.raises(Exception, match="no currency XYZ"):
        await currencies.id_of("XYZ", "USD")
    assert len(account.queries) == 2
