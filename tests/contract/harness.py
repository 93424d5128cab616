"""What the conformance suite needs to know about one connector type: its harness.

A harness says how to configure a connection (valid options and credentials, and
credentials the remote refuses), which webhooks the system sends (signed bodies built from
the documented payloads) and how to sign, tamper with or age one, how to serve the remote
(a simulator in process, or a real server), which canonical event goes out per declared
outbound flow and how to read back what the remote holds for it, how to inject each fault,
and for each poll stream how to make a change remotely.

One module per connector type in ``harnesses/``, registered with ``@register``; the suite
fails for a registered connector type (``connector_types()``) that has none.

Faults the simulators cannot produce are injected by ``FaultTransport``, a wrapper around the
transport the connector talks through (the simulator's ASGI transport, or the network for
Tryton): it answers one matching request itself, or passes it on and then loses the answer
(commit, then time out).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import httpx

from app.config import ConnectionConfig, DeliveryPolicy
from connectors.registry import connector_types
from kernel.canonical.events import CanonicalEvent
from kernel.contract import Connector
from kernel.errors import ConnectorError, PayloadError, SignatureError
from kernel.types import DeliveryContext
from tests.support.connectors import connect

# what a connector may raise on purpose; anything else escaping is a bug
TYPED_ERRORS: tuple[type[Exception], ...] = (ConnectorError, SignatureError, PayloadError)
# every injected 429 asks for this many seconds
RETRY_AFTER_SECONDS = 2.0


class Fault(StrEnum):
    """Faults a remote system shows; each harness knows how to make its remote show them."""

    RATE_LIMIT = "rate_limit"  # 429 with Retry-After: RETRY_AFTER_SECONDS
    SERVER_ERROR = "server_error"  # a 5xx
    COMMIT_THEN_TIMEOUT = "commit_then_timeout"  # the write is applied, the answer never comes


# --- the transport wrapper ----------------------------------------------------------------

Matcher = Callable[[httpx.Request], bool]
Action = Callable[[httpx.Request, httpx.AsyncBaseTransport], Awaitable[httpx.Response]]


def any_request(request: httpx.Request) -> bool:
    return True


@dataclass
class _Rule:
    match: Matcher
    action: Action
    remaining: int


class FaultTransport(httpx.AsyncBaseTransport):
    """Passes requests to ``inner``; an armed rule handles the next matching ones instead."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self._rules: list[_Rule] = []
        self.requests: list[httpx.Request] = []

    def arm(self, action: Action, match: Matcher = any_request, count: int = 1) -> None:
        self._rules.append(_Rule(match, action, count))

    def answer(
        self,
        status: int,
        *,
        match: Matcher = any_request,
        json_body: Any = None,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Answer the next matching request with this response (the remote never sees it)."""

        async def respond(
            request: httpx.Request, inner: httpx.AsyncBaseTransport
        ) -> httpx.Response:
            if json_body is not None:
                return httpx.Response(status, json=json_body, headers=headers, request=request)
            return httpx.Response(status, text=text or "", headers=headers, request=request)

        self.arm(respond, match, count)

    def commit_then_timeout(self, match: Matcher, count: int = 1) -> None:
        """The remote handles the next matching request; its answer is lost in a timeout."""

        async def lose(request: httpx.Request, inner: httpx.AsyncBaseTransport) -> httpx.Response:
            response = await inner.handle_async_request(request)
            await response.aread()
            await response.aclose()
            raise httpx.ReadTimeout("injected: the answer never came", request=request)

        self.arm(lose, match, count)

    def raise_error(self, error: type[httpx.TransportError], match: Matcher = any_request) -> None:
        """The next matching request fails in transport (nothing reaches the remote)."""

        async def fail(request: httpx.Request, inner: httpx.AsyncBaseTransport) -> httpx.Response:
            raise error(f"injected {error.__name__}", request=request)

        self.arm(fail, match)

    def armed(self) -> int:
        """Rules not used up yet (a fault that never fired means the case tested nothing)."""
        return sum(1 for rule in self._rules if rule.remaining > 0)

    def clear(self) -> None:
        self._rules.clear()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for rule in self._rules:
            if rule.remaining > 0 and rule.match(request):
                rule.remaining -= 1
                return await rule.action(request, self.inner)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def body_has(method: str, path_end: str, *needles: str) -> Matcher:
    """A request by method, URL path ending and text in its body."""

    def match(request: httpx.Request) -> bool:
        if request.method != method or not request.url.path.endswith(path_end):
            return False
        content = request.content.decode("utf-8", "replace")
        return all(n in content for n in needles)

    return match


# --- what a harness describes ---------------------------------------------------------------


@dataclass(frozen=True)
class FixtureWebhook:
    """One webhook as the system sends it: signed body and headers."""

    name: str  # e.g. the topic
    body: bytes
    headers: dict[str, str]
    expect_events: bool = True  # False: a topic that is stored and acknowledged only


@dataclass
class Remote:
    """A remote system being served, and the client a connector reaches it through."""

    harness: Harness
    http: httpx.AsyncClient
    faults: FaultTransport
    system: Any  # the simulator object, or a session of the real server
    extra: dict[str, Any] = field(default_factory=dict)

    def connector(self, *, credentials: Mapping[str, str] | None = None) -> Connector:
        """A new connector instance (a restart, or another worker) on this remote."""
        conn = self.harness.connection(credentials=credentials)
        return connect(connector_types()[self.harness.type_name], conn, self.http)


@dataclass
class Delivery:
    """One prepared outbound delivery and how to see what the remote holds for it."""

    event: CanonicalEvent
    ctx: DeliveryContext
    count: Callable[[], Awaitable[int]]  # records the remote holds for this event
    writes: Matcher  # the request that writes it (for faults injected on the write)
    tag: str = ""  # the harness's own note, e.g. the remote record type


@dataclass(frozen=True)
class OutboundSample:
    """A canonical event of one declared outbound flow, prepared against a served remote."""

    flow: str
    prepare: Callable[[Remote], Awaitable[Delivery]]


@dataclass
class Rejection:
    """A delivery the remote refuses as invalid (4xx), and the remote's own words for it."""

    event: CanonicalEvent
    ctx: DeliveryContext
    message: str


@dataclass(frozen=True)
class StreamSample:
    """A poll stream, and how to make a change on it remotely.

    ``change`` makes the change and returns a predicate that recognises its events.
    """

    stream: str
    change: Callable[[Remote], Awaitable[Callable[[CanonicalEvent], bool]]]


class Harness:
    """How the suite drives one connector type; subclasses fill in what their system has."""

    type_name: ClassVar[str]
    connection_id: ClassVar[str] = "conn"
    base_url: ClassVar[str]
    # pytest fixtures serve() needs (e.g. the session's Tryton server)
    fixtures: ClassVar[tuple[str, ...]] = ()
    # the auth failure's message must say what to check (a regex, case-insensitive)
    auth_hint: ClassVar[str] = r"credential|token|secret|login|password|signature"
    # why a stale webhook cannot be made (the signature has no timestamp); None: it can
    no_timestamp_reason: ClassVar[str | None] = None
    # the connector re-reads an overlap window after a restart (repeats must be identical)
    poll_repeats: ClassVar[bool] = False
    # payload fields that say when the connector looked, not what changed (ignored when
    # comparing a repeated event with the first)
    volatile_fields: ClassVar[frozenset[str]] = frozenset()
    poll_page_size: ClassVar[int] = 2
    # cases this connector is known to fail: test name (as pytest shows it, without the
    # connector type) → the reason. Marked xfail(strict): fixing the connector makes the case
    # pass, and the suite then fails until the entry is removed.
    known_failures: ClassVar[dict[str, str]] = {}
    request_timeout_seconds: ClassVar[float] = 30.0

    # --- configuration -------------------------------------------------------------------
    def options(self) -> dict[str, Any]:
        return {}

    def credentials(self) -> dict[str, str]:
        raise NotImplementedError

    def wrong_credentials(self) -> dict[str, str]:
        """Well-formed credentials the remote refuses (an auth failure)."""
        raise NotImplementedError

    def connection(self, *, credentials: Mapping[str, str] | None = None) -> ConnectionConfig:
        return ConnectionConfig(
            id=self.connection_id,
            type=self.type_name,
            base_url=self.base_url,
            credentials=dict(self.credentials() if credentials is None else credentials),
            options=self.options(),
            delivery=DeliveryPolicy(request_timeout_seconds=self.request_timeout_seconds),
        )

    # --- inbound -------------------------------------------------------------------------
    def webhooks(self) -> list[FixtureWebhook]:
        """The system's webhooks (empty: the connector takes none)."""
        return []

    def resign(self, webhook: FixtureWebhook, body: bytes, *, secret: str | None = None) -> dict:
        """The headers of ``webhook`` for ``body`` signed with ``secret`` (default: the
        connection's)."""
        raise NotImplementedError

    def wrong_secret(self) -> str:
        raise NotImplementedError

    def stale(self, webhook: FixtureWebhook) -> FixtureWebhook:
        """``webhook`` signed correctly, but long enough ago to be a replay."""
        raise NotImplementedError

    # --- the remote ----------------------------------------------------------------------
    def serve(self, fixtures: Mapping[str, Any]) -> AbstractAsyncContextManager[Remote]:
        raise NotImplementedError

    def outbound(self) -> list[OutboundSample]:
        return []

    async def inject(self, remote: Remote, fault: Fault, delivery: Delivery | None) -> None:
        """Make the remote show ``fault`` on the next call (of ``delivery``'s write when
        given and the fault is about a write)."""
        raise NotImplementedError

    async def reject(self, remote: Remote, sample: OutboundSample, delivery: Delivery) -> Rejection:
        """A delivery of ``sample`` the remote refuses as invalid, with the remote's message."""
        raise NotImplementedError

    def streams(self) -> list[StreamSample]:
        return []


# --- registry -------------------------------------------------------------------------------

HARNESSES: dict[str, Harness] = {}


def register(cls: type[Harness]) -> type[Harness]:
    if cls.type_name in HARNESSES:
        raise RuntimeError(f"two contract harnesses for connector type {cls.type_name!r}")
    HARNESSES[cls.type_name] = cls()
    return cls


# --- helpers --------------------------------------------------------------------------------


def config_yaml(conn: ConnectionConfig, extra_option: tuple[str, Any] | None = None) -> str:
    """The connection as check-config reads it (JSON values are valid YAML)."""
    lines = [
        "connections:",
        f"  - id: {conn.id}",
        f"    type: {conn.type}",
        f"    base_url: {json.dumps(conn.base_url)}",
        "    credentials:",
    ]
    for key, value in conn.credentials.items():
        lines.append(f"      {key}: {json.dumps(value.get_secret_value())}")
    options = dict(conn.options)
    if extra_option is not None:
        options[extra_option[0]] = extra_option[1]
    lines.append("    options:" + ("" if options else " {}"))
    for key, value in options.items():
        lines.append(f"      {key}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"


async def asgi_remote(
    harness: Harness, app: Any, system: Any, **extra: Any
) -> AsyncIterator[Remote]:
    """A simulator served in process: its ASGI app behind a FaultTransport."""
    faults = FaultTransport(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=faults) as http:
        yield Remote(harness, http, faults, system, dict(extra))
