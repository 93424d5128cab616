"""The simulator's stand-in for the user-event script: signed posts of every record change.

What it posts is what ``connectors/netsuite/user_event_script.js`` posts: the record reshaped
by ``script_shape.script_record`` (the shape of the script's golden payloads in
``tests/fixtures/netsuite_script``), an ``eventId`` of ``<type>-<id>-<event>-<ms>``, the
moment as ``toISOString()`` writes it, the same headers, JSON as ``JSON.stringify`` writes it.
A stock-moving transaction passes ``stock``: its items' current rows, as the script reads them
after the save. Best effort, in the background, like the script (a failed post is logged
there, counted here); ``drain()`` lets a test wait for what was sent without sleeping.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.netsuite import inbound
from simulators.netsuite.script_shape import script_record


@dataclass
class WebhookStats:
    sent: int = 0
    failed: int = 0
    last_error: str | None = None

    def snapshot(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "last_error": self.last_error}


@dataclass
class WebhookEmitter:
    url: str | None = None
    secret: str | None = None
    http: httpx.AsyncClient | None = None  # tests hand in one with an in-process transport
    timeout_seconds: float = 5.0
    stats: WebhookStats = field(default_factory=WebhookStats)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _backlog: list[bytes] = field(default_factory=list)
    _last_stamp: datetime | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.secret)

    def body(
        self,
        record_type: str,
        event_type: str,
        internal_id: str,
        modified: datetime,
        record: Any,
        stock: Sequence[Mapping[str, Any]] | None = None,
    ) -> bytes:
        stamp = self._stamp(modified)
        ms = int(stamp.timestamp() * 1000)
        shaped = script_record(record_type, {**record, "id": internal_id}, stock)
        body = {
            "eventId": f"{record_type}-{internal_id}-{event_type}-{ms}",
            "eventType": event_type,
            "recordType": record_type,
            "id": internal_id,
            # new Date().toISOString(): the moment to the millisecond, so two changes in
            # one second keep their order (and their eventIds differ)
            "lastModifiedDate": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z",
            "record": shaped,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    def _stamp(self, modified: datetime) -> datetime:
        """Now (or the change's own time if later), to the millisecond, strictly increasing."""
        now = max(datetime.now(UTC), modified.astimezone(UTC))
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    def emit(
        self,
        record_type: str,
        event_type: str,
        internal_id: str,
        modified: datetime,
        record: Any,
        stock: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """Queue one post; sent now in the background if an event loop runs, else on drain.
        ``stock``: for a transaction that moved stock, its items' rows after the move
        (``{itemId, location, quantityOnHand, quantityCommitted, quantityOnOrder}``)."""
        if not self.enabled:
            return
        body = self.body(record_type, event_type, internal_id, modified, record, stock)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._backlog.append(body)
            return
        task = loop.create_task(self._post(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Send what waits and wait for every post in flight."""
        backlog, self._backlog = self._backlog, []
        for body in backlog:
            await self._post(body)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _post(self, body: bytes) -> None:
        assert self.url and self.secret
        headers = inbound.signed_headers(body, self.secret)
        try:
            if self.http is not None:
                response = await self.http.post(self.url, content=body, headers=headers)
            else:
                async with httpx.AsyncClient(timeout=self.timeout_seconds) as client:
                    response = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            return
        if response.is_success:
            self.stats.sent += 1
        else:
            self._failed(f"HTTP {response.status_code}: {response.text[:200]}")

    def _failed(self, why: str) -> None:
        self.stats.failed += 1
        self.stats.last_error = why


__all__ = ["WebhookEmitter", "WebhookStats"]
