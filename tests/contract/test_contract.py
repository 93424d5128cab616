"""The conformance suite: every registered connector type through the same cases.

A connector is done when it passes. Each case is its own test, parametrized by connector type
(and flow, stream or webhook), so a failure names both. A capability the connector does not
declare (webhooks, polling, an outbound flow) skips its cases with the reason; a capability it
declares without a harness sample for it fails. What each connector type needs (config,
webhooks, remote, faults) comes from its harness in ``harnesses/``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from app.config import ConfigError, parse_config
from connectors.registry import connector_types
from kernel.canonical.events import CanonicalEvent
from kernel.contract import FLOWS, Connector, Handshake, ReadLater, WebhookRequest
from kernel.errors import (
    PayloadError,
    PermanentError,
    RateLimitedError,
    SignatureError,
    TransientError,
)
from kernel.types import DeliveryResult, ParsedWebhook, PollPage
from tests.contract import harnesses  # noqa: F401  (registers every harness)
from tests.contract.conftest import Serve
from tests.contract.harness import (
    HARNESSES,
    RETRY_AFTER_SECONDS,
    TYPED_ERRORS,
    Delivery,
    Fault,
    FixtureWebhook,
    Harness,
    OutboundSample,
    Remote,
    StreamSample,
    config_yaml,
)
from tests.support.connectors import connect

TYPES = sorted(connector_types())
NONE = "-"  # the parameter of a capability a connector does not have


def _harness(type_name: str) -> Harness:
    harness = HARNESSES.get(type_name)
    if harness is None:
        pytest.fail(
            f"connector type {type_name!r} has no conformance harness: add "
            f"tests/contract/harnesses/{type_name}.py (a connector is done when it passes)"
        )
    return harness


def _cls(type_name: str) -> type[Connector]:
    return connector_types()[type_name]


def takes_webhooks(cls: type[Connector]) -> bool:
    """Whether the connector overrides the contract's inbound seam (else it refuses all)."""
    return any(
        getattr(cls, name) is not getattr(Connector, name)
        for name in ("receive", "verify_signature", "parse_webhook")
    )


# --- parameters (built at collection from the declarations and the harnesses) ---------------


def _params(pairs: Callable[[str, Harness | None], list[str]]) -> list[Any]:
    out = []
    for type_name in TYPES:
        try:
            names = pairs(type_name, HARNESSES.get(type_name))
        except Exception as exc:  # a broken harness fails its own cases, not the collection
            names = [f"harness error {type(exc).__name__}: {exc}"]
        for name in names or [NONE]:
            out.append(pytest.param(type_name, name, id=f"{type_name}-{name}"))
    return out


WEBHOOK_PARAMS = _params(lambda t, h: [w.name for w in h.webhooks()] if h else [])
FLOW_PARAMS = _params(lambda t, h: sorted(_cls(t).outbound_flows))
STREAM_PARAMS = _params(lambda t, h: sorted(_cls(t).poll_streams))
# transport faults every remote can show; each must become a typed error (or a success)
TRANSPORT_FAULTS = (
    "connect_error",
    "read_timeout",
    "proxy_502_html",
    "html_200",
    "empty_200",
    "unexpected_json_200_on_write",
    "html_200_on_write",
)
OUTBOUND_FAULTS = ("rate_limit", "server_error", "auth", *TRANSPORT_FAULTS)
POLL_FAULTS = ("rate_limit", "server_error", "auth", *TRANSPORT_FAULTS[:5])


# --- helpers -------------------------------------------------------------------------------


async def outcome(call: Awaitable[Any]) -> Exception | None:
    try:
        await call
    except Exception as exc:  # the point: see what escapes
        return exc
    return None


def typed(exc: Exception | None, expected: type[Exception] | tuple[type[Exception], ...]) -> Any:
    """``exc`` is a typed error of the expected kind (else the failure says what escaped)."""
    assert exc is not None, f"expected {expected}, but the call succeeded"
    assert isinstance(exc, TYPED_ERRORS), (
        f"an untyped {type(exc).__module__}.{type(exc).__name__} escaped: {exc!r}"
    )
    assert isinstance(exc, expected), f"expected {expected}, got {type(exc).__name__}: {exc}"
    return exc


def check_events(events: list[CanonicalEvent], schemas: dict[str, Any], where: str) -> None:
    """Each event validates against the published JSON Schema of its type, and survives the
    JSON round trip the core's storage makes."""
    for event in events:
        assert isinstance(event, CanonicalEvent), f"{where}: {event!r} is not a CanonicalEvent"
        assert event.type in schemas, f"{where}: {event.type} has no published schema"
        errors = [
            f"{e.instance_path or '/'}: {e.message}"
            for e in schemas[event.type].iter_errors(event.payload_json())
        ]
        assert not errors, f"{where}: {event.type} is not valid against its schema: {errors}"
        again = CanonicalEvent.model_validate_json(event.model_dump_json())
        assert again.payload_json() == event.payload_json(), f"{where}: JSON round trip differs"


async def receive_events(
    connector: Connector, webhook: FixtureWebhook, serve: Serve, harness: Harness
) -> list[CanonicalEvent]:
    answer = await connector.receive(WebhookRequest(webhook.headers, webhook.body))
    if isinstance(answer, ParsedWebhook):
        assert answer.dedupe_key, f"{webhook.name}: no dedupe key"
        assert answer.topic, f"{webhook.name}: no topic"
        return list(answer.events)
    if isinstance(answer, ReadLater):  # a thin webhook: the records come from the source
        assert answer.refs and answer.dedupe_key, f"{webhook.name}: ReadLater names nothing"
        remote = await serve(harness)
        reader = remote.connector()
        return [e for ref in answer.refs for e in await reader.read(ref)]
    return []  # a handshake stores nothing


def offline(harness: Harness) -> Connector:
    """A connector for inbound-only cases: any call out is a test bug."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"inbound parsing made a call out: {request.method} {request.url}")

    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    return connect(_cls(harness.type_name), harness.connection(), http)


def webhooks_or_skip(type_name: str) -> tuple[Harness, list[FixtureWebhook]]:
    harness = _harness(type_name)
    if not takes_webhooks(_cls(type_name)):
        pytest.skip(f"{type_name} takes no webhooks (it declares no inbound seam)")
    hooks = harness.webhooks()
    assert hooks, f"{type_name} takes webhooks but its harness has no fixture webhook"
    return harness, hooks


def sample_or_skip(type_name: str, flow: str) -> tuple[Harness, OutboundSample]:
    harness = _harness(type_name)
    if flow == NONE:
        pytest.skip(f"{type_name} declares no outbound flow")
    found = [s for s in harness.outbound() if s.flow == flow]
    assert found, f"{type_name} declares outbound flow {flow!r}; its harness has no sample"
    return harness, found[0]


def stream_or_skip(type_name: str, stream: str) -> tuple[Harness, StreamSample]:
    harness = _harness(type_name)
    if stream == NONE:
        pytest.skip(f"{type_name} declares no poll stream")
    found = [s for s in harness.streams() if s.stream == stream]
    assert found, f"{type_name} declares poll stream {stream!r}; its harness has no sample"
    return harness, found[0]


async def prepared(
    serve: Serve, harness: Harness, sample: OutboundSample
) -> tuple[Remote, Delivery]:
    remote = await serve(harness)
    delivery = await sample.prepare(remote)
    assert await delivery.count() == 0, "the remote already holds the sample before delivery"
    return remote, delivery


# --- coverage: no connector skips the suite ---------------------------------------------------


def test_every_connector_type_has_a_harness() -> None:
    missing = sorted(set(TYPES) - set(HARNESSES))
    assert not missing, (
        f"connector types without a conformance harness: {', '.join(missing)}; add "
        "tests/contract/harnesses/<type>.py"
    )
    stale = sorted(set(HARNESSES) - set(TYPES))
    assert not stale, f"harnesses for connector types nobody registers: {', '.join(stale)}"


@pytest.mark.parametrize("type_name", TYPES)
def test_the_harness_covers_every_declared_capability(type_name: str) -> None:
    harness, cls = _harness(type_name), _cls(type_name)
    assert sorted(s.flow for s in harness.outbound()) == sorted(cls.outbound_flows)
    assert sorted(s.stream for s in harness.streams()) == sorted(cls.poll_streams)
    assert bool(harness.webhooks()) == takes_webhooks(cls), (
        "fixture webhooks exactly when the connector takes webhooks"
    )


# --- declarations and config ------------------------------------------------------------------


@pytest.mark.parametrize("type_name", TYPES)
def test_side_is_declared(type_name: str) -> None:
    _harness(type_name)
    cls = _cls(type_name)
    assert getattr(cls, "side", None) in ("store", "erp"), f"{type_name} declares no side"
    assert set(cls.inbound_flows | cls.outbound_flows) <= set(FLOWS)
    assert cls.poll_streams or cls.inbound_flows or cls.outbound_flows, "it does nothing"


@pytest.mark.parametrize("type_name", TYPES)
def test_the_valid_config_passes_check_config(type_name: str) -> None:
    harness = _harness(type_name)
    conn = harness.connection()
    config = parse_config(config_yaml(conn), "contract.yaml")
    assert [c.type for c in config.connections] == [type_name]


def _line_of(text: str, key: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith(key))


@pytest.mark.parametrize("type_name", TYPES)
def test_an_unknown_option_is_rejected(type_name: str) -> None:
    harness, cls = _harness(type_name), _cls(type_name)
    valid = harness.options()
    cls.Options.model_validate(valid)
    with pytest.raises(ValidationError, match="colour"):
        cls.Options.model_validate({**valid, "colour": 1})

    text = config_yaml(harness.connection(), extra_option=("colour", 1))
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "contract.yaml")
    line = _line_of(text, "colour:")
    problems = [p for p in caught.value.problems if "colour" in p]
    assert problems, caught.value.problems
    assert problems[0].startswith(f"line {line}: "), problems
    assert "options.colour" in problems[0] and "unknown" in problems[0], problems


@pytest.mark.parametrize("type_name", TYPES)
def test_an_unknown_credential_is_rejected(type_name: str) -> None:
    harness, cls = _harness(type_name), _cls(type_name)
    with pytest.raises(ValidationError, match="api_colour"):
        cls.Credentials.model_validate({**harness.credentials(), "api_colour": "x"})
    conn = harness.connection(credentials={**harness.credentials(), "api_colour": "x"})
    text = config_yaml(conn)
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "contract.yaml")
    line = _line_of(text, "api_colour:")
    assert any(p.startswith(f"line {line}: ") and "api_colour" in p for p in caught.value.problems)


# --- inbound ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("type_name", "name"), WEBHOOK_PARAMS)
async def test_a_fixture_webhook_verifies_and_parses_into_valid_events(
    type_name: str, name: str, serve: Serve, published_schemas: dict[str, Any]
) -> None:
    harness, hooks = webhooks_or_skip(type_name)
    found = [w for w in hooks if w.name == name]
    assert len(found) == 1, f"{name}: not one fixture webhook of that name"
    webhook = found[0]
    events = await receive_events(offline(harness), webhook, serve, harness)
    if webhook.expect_events:
        assert events, f"{name} became no event"
    else:
        assert not events, f"{name} is stored only, yet became {[e.type for e in events]}"
    check_events(events, published_schemas, name)
    inbound = _cls(type_name).inbound_flows
    assert {e.flow for e in events} <= inbound, f"events of undeclared flows: {events}"


@pytest.mark.parametrize("type_name", TYPES)
async def test_a_topic_read_from_the_headers_is_the_parsed_topic(type_name: str) -> None:
    # the core answers a re-sent body by the topic resent_topic names, without parsing it
    harness, hooks = webhooks_or_skip(type_name)
    connector = offline(harness)
    named = [(w, connector.resent_topic(w.headers)) for w in hooks]
    if all(topic is None for _, topic in named):
        pytest.skip(f"{type_name} names no topic before the parse (resent_topic is None)")
    for webhook, topic in named:
        answer = await connector.receive(WebhookRequest(webhook.headers, webhook.body))
        if topic is not None and not isinstance(answer, Handshake):
            assert topic == answer.topic, f"{webhook.name}: {topic!r} is not {answer.topic!r}"


@pytest.mark.parametrize("type_name", TYPES)
async def test_a_tampered_body_is_rejected(type_name: str) -> None:
    harness, hooks = webhooks_or_skip(type_name)
    connector = offline(harness)
    for webhook in hooks:
        tampered = webhook.body.replace(b"}", b' , "x": 1}', 1)
        assert tampered != webhook.body
        exc = await outcome(connector.receive(WebhookRequest(webhook.headers, tampered)))
        typed(exc, SignatureError)


@pytest.mark.parametrize("type_name", TYPES)
async def test_a_wrong_secret_is_rejected(type_name: str) -> None:
    harness, hooks = webhooks_or_skip(type_name)
    connector = offline(harness)
    for webhook in hooks:
        headers = harness.resign(webhook, webhook.body, secret=harness.wrong_secret())
        exc = await outcome(connector.receive(WebhookRequest(headers, webhook.body)))
        typed(exc, SignatureError)
        missing = {k: v for k, v in headers.items() if "sig" not in k.lower()}
        missing = {k: v for k, v in missing.items() if "hmac" not in k.lower()}
        exc = await outcome(connector.receive(WebhookRequest(missing, webhook.body)))
        typed(exc, SignatureError)


@pytest.mark.parametrize("type_name", TYPES)
async def test_a_previous_webhook_secret_verifies_while_it_is_configured(type_name: str) -> None:
    """Rotating the signing secret without downtime: the new one is webhook_secret, the old
    one previous_webhook_secret; webhooks signed with either pass until the old one is
    removed, then only the new one does."""
    harness, hooks = webhooks_or_skip(type_name)
    cls = _cls(type_name)
    assert "previous_webhook_secret" in cls.Credentials.model_fields, (
        f"{type_name} verifies webhooks but takes no previous_webhook_secret to rotate with"
    )
    old, new = harness.credentials()["webhook_secret"], harness.wrong_secret()
    http = offline(harness).http
    rotating = connect(
        cls,
        harness.connection(
            credentials={
                **harness.credentials(),
                "webhook_secret": new,
                "previous_webhook_secret": old,
            }
        ),
        http,
    )
    rotated = connect(
        cls, harness.connection(credentials={**harness.credentials(), "webhook_secret": new}), http
    )
    for webhook in hooks:  # signed with the old secret, as the sender still does
        assert (
            await outcome(rotating.receive(WebhookRequest(webhook.headers, webhook.body))) is None
        )
        resigned = harness.resign(webhook, webhook.body, secret=new)
        assert await outcome(rotating.receive(WebhookRequest(resigned, webhook.body))) is None
        exc = await outcome(rotated.receive(WebhookRequest(webhook.headers, webhook.body)))
        typed(exc, SignatureError)
        assert await outcome(rotated.receive(WebhookRequest(resigned, webhook.body))) is None


@pytest.mark.parametrize("type_name", TYPES)
async def test_a_stale_timestamp_is_rejected(type_name: str) -> None:
    harness, hooks = webhooks_or_skip(type_name)
    if harness.no_timestamp_reason:
        pytest.skip(harness.no_timestamp_reason)
    connector = offline(harness)
    for webhook in hooks:
        stale = harness.stale(webhook)
        exc = await outcome(connector.receive(WebhookRequest(stale.headers, stale.body)))
        typed(exc, SignatureError)


HOSTILE_BODIES: tuple[bytes, ...] = (
    b"",
    b"not json",
    b"[]",
    b"null",
    b'"a string"',
    b"{}",
    b'{"id": 1e999999}',
    b'{"id": NaN}',
    b"\xff\xfe\x00garbage",
    b"[" * 10_000 + b"]" * 10_000,
    b'{"a": ' * 5_000 + b"1" + b"}" * 5_000,
)


@pytest.mark.parametrize("type_name", TYPES)
async def test_hostile_webhooks_raise_only_typed_errors(
    type_name: str, published_schemas: dict[str, Any]
) -> None:
    harness, hooks = webhooks_or_skip(type_name)
    connector = offline(harness)
    for webhook in hooks:
        for body in HOSTILE_BODIES:
            headers = harness.resign(webhook, body)
            exc = await outcome(connector.receive(WebhookRequest(headers, body)))
            if exc is not None:
                typed(exc, (SignatureError, PayloadError))


# --- outbound ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("type_name", "flow"), FLOW_PARAMS)
async def test_create(type_name: str, flow: str, serve: Serve) -> None:
    harness, sample = sample_or_skip(type_name, flow)
    remote, delivery = await prepared(serve, harness, sample)
    assert delivery.event.flow == flow
    result = await remote.connector().deliver(delivery.event, delivery.ctx)
    assert isinstance(result, DeliveryResult)
    assert await delivery.count() == 1, "the remote does not hold exactly one record"
    again = await remote.connector().deliver(delivery.event, delivery.ctx)  # a replay
    assert isinstance(again, DeliveryResult)
    assert await delivery.count() == 1, "delivering the same event again made a second record"


@pytest.mark.parametrize(("type_name", "flow"), FLOW_PARAMS)
async def test_commit_then_timeout_is_retried_without_a_duplicate(
    type_name: str, flow: str, serve: Serve
) -> None:
    harness, sample = sample_or_skip(type_name, flow)
    remote, delivery = await prepared(serve, harness, sample)
    await harness.inject(remote, Fault.COMMIT_THEN_TIMEOUT, delivery)
    exc = await outcome(remote.connector().deliver(delivery.event, delivery.ctx))
    typed(exc, TransientError)
    assert await delivery.count() == 1, "the fault did not commit the write first"
    # the retry, possibly from another worker: a new connector instance
    result = await remote.connector().deliver(delivery.event, delivery.ctx)
    assert isinstance(result, DeliveryResult)
    assert await delivery.count() == 1, "the retry made a duplicate"


@pytest.mark.parametrize(("type_name", "flow"), FLOW_PARAMS)
async def test_a_rate_limit_waits_retry_after_without_using_an_attempt(
    type_name: str, flow: str, serve: Serve
) -> None:
    harness, sample = sample_or_skip(type_name, flow)
    remote, delivery = await prepared(serve, harness, sample)
    connector = remote.connector()
    await harness.inject(remote, Fault.RATE_LIMIT, delivery)
    exc = typed(await outcome(connector.deliver(delivery.event, delivery.ctx)), RateLimitedError)
    assert exc.retry_after > 0
    assert exc.retry_after == pytest.approx(RETRY_AFTER_SECONDS, abs=0.5), "not Retry-After"
    await connector.deliver(delivery.event, delivery.ctx)  # after the wait
    assert await delivery.count() == 1


@pytest.mark.parametrize(("type_name", "flow"), FLOW_PARAMS)
async def test_a_server_error_is_transient(type_name: str, flow: str, serve: Serve) -> None:
    harness, sample = sample_or_skip(type_name, flow)
    remote, delivery = await prepared(serve, harness, sample)
    connector = remote.connector()
    await harness.inject(remote, Fault.SERVER_ERROR, delivery)
    exc = await outcome(connector.deliver(delivery.event, delivery.ctx))
    typed(exc, TransientError)
    assert not isinstance(exc, RateLimitedError)
    await connector.deliver(delivery.event, delivery.ctx)  # the retry
    assert await delivery.count() == 1


@pytest.mark.parametrize(("type_name", "flow"), FLOW_PARAMS)
async def test_a_validation_error_is_permanent_with_the_remote_message(
    type_name: str, flow: str, serve: Serve
) -> None:
    harness, sample = sample_or_skip(type_name, flow)
    remote, delivery = await prepared(serve, harness, sample)
    rejection = await harness.reject(remote, sample, delivery)
    exc = await outcome(remote.connector().deliver(rejection.event, rejection.ctx))
    typed(exc, PermanentError)
    assert rejection.message in str(exc), f"the remote's message is lost: {exc}"
    assert remote.faults.armed() == 0, "the injected answer was never asked for"
    assert await delivery.count() == 0


@pytest.mark.parametrize(("type_name", "flow"), FLOW_PARAMS)
async def test_an_auth_failure_is_permanent_and_clear(
    type_name: str, flow: str, serve: Serve
) -> None:
    harness, sample = sample_or_skip(type_name, flow)
    remote, delivery = await prepared(serve, harness, sample)
    wrong = harness.wrong_credentials()
    connector = remote.connector(credentials=wrong)
    exc = typed(await outcome(connector.deliver(delivery.event, delivery.ctx)), PermanentError)
    message = str(exc)
    assert re.search(harness.auth_hint, message, re.I), f"does not say what to check: {message}"
    shown = message + repr(exc.detail)
    assert not [s for s in secret_values(type_name, wrong, harness.credentials()) if s in shown], (
        "a secret is shown"
    )
    assert await delivery.count() == 0


def secret_values(type_name: str, *credentials: dict[str, str]) -> list[str]:
    """The values of the credentials the connector declares as secrets."""
    out = []
    for given in credentials:
        model = _cls(type_name).Credentials.model_validate(given)
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                out.append(value.get_secret_value())
    return out


def _arm_transport_fault(
    remote: Remote, fault: str, writes: Callable[[httpx.Request], bool]
) -> None:
    faults = remote.faults
    if fault == "connect_error":
        faults.raise_error(httpx.ConnectError)
    elif fault == "read_timeout":
        faults.raise_error(httpx.ReadTimeout)
    elif fault == "proxy_502_html":
        faults.answer(502, text="<html><body><h1>502 Bad Gateway</h1></body></html>")
    elif fault == "html_200":
        faults.answer(200, text="<html><body>Please log in</body></html>")
    elif fault == "empty_200":
        faults.answer(200, text="")
    elif fault == "unexpected_json_200_on_write":
        faults.answer(200, match=writes, json_body={"unexpected": True})
    elif fault == "html_200_on_write":
        faults.answer(200, match=writes, text="<html><body>Maintenance</body></html>")
    else:
        raise AssertionError(fault)


@pytest.mark.parametrize("fault", OUTBOUND_FAULTS)
@pytest.mark.parametrize(("type_name", "flow"), FLOW_PARAMS)
async def test_outbound_faults_raise_only_typed_errors(
    type_name: str, flow: str, fault: str, serve: Serve
) -> None:
    harness, sample = sample_or_skip(type_name, flow)
    remote, delivery = await prepared(serve, harness, sample)
    credentials = harness.wrong_credentials() if fault == "auth" else None
    if fault in ("rate_limit", "server_error"):
        await harness.inject(remote, Fault(fault), delivery)
    elif fault != "auth":
        _arm_transport_fault(remote, fault, delivery.writes)
    exc = await outcome(
        remote.connector(credentials=credentials).deliver(delivery.event, delivery.ctx)
    )
    if exc is not None:
        typed(exc, TYPED_ERRORS)
    assert remote.faults.armed() == 0, "the fault was never met"


# --- polling ----------------------------------------------------------------------------------


@dataclass
class Run:
    """What polling a stream to its end read."""

    events: list[CanonicalEvent]
    last_page: list[CanonicalEvent]  # the last page that held events
    cursor: str | None


async def drain(connector: Connector, stream: str, cursor: str | None, limit: int) -> Run:
    run = Run([], [], cursor)
    for _ in range(10_000):
        page = await connector.poll(stream, run.cursor, limit)
        assert isinstance(page, PollPage)
        run.events += page.events
        run.last_page = list(page.events) or run.last_page
        run.cursor = page.cursor
        if not page.has_more:
            return run
    raise AssertionError(f"{stream} never ends")


def _fingerprint(event: CanonicalEvent, volatile: frozenset[str]) -> tuple[str, str, str]:
    payload = {k: v for k, v in event.payload_json().items() if k not in volatile}
    return (event.type, event.entity_key, repr(sorted(payload.items())))


def check_repeats(
    harness: Harness, events: list[CanonicalEvent], window: list[CanonicalEvent], where: str
) -> None:
    """Events that are not the change: none when the connector resumes exactly; otherwise
    each an exact repeat (the core drops it) of one in the previous run's last page, its
    overlap, and never from further back: a cursor that started over would repeat it all."""
    if not events:
        return
    assert harness.poll_repeats, (
        f"{where}: {len(events)} event(s) read again although the connector promises an exact "
        f"resume: {[(e.type, e.entity_key) for e in events[:5]]}"
    )
    known = {_fingerprint(e, harness.volatile_fields) for e in window}
    outside = [e for e in events if _fingerprint(e, harness.volatile_fields) not in known]
    assert not outside, (
        f"{where}: events read again that are not exact repeats of the last page before the "
        f"cursor: {[(e.type, e.entity_key) for e in outside[:5]]}"
    )


@pytest.mark.parametrize(("type_name", "stream"), STREAM_PARAMS)
async def test_polling_resumes_from_its_cursor_across_a_restart(
    type_name: str, stream: str, serve: Serve, published_schemas: dict[str, Any]
) -> None:
    harness, sample = stream_or_skip(type_name, stream)
    remote = await serve(harness)
    limit = harness.poll_page_size
    first = await drain(remote.connector(), stream, None, limit)
    if first.cursor is None:  # nothing to read yet: a change first, so the cursor is a position
        await sample.change(remote)
        first = await drain(remote.connector(), stream, None, limit)
    assert first.cursor is not None, f"{stream}: a change was made but the cursor did not move"
    check_events(first.events, published_schemas, stream)

    is_new = await sample.change(remote)
    restarted = remote.connector()  # a new process with the stored cursor
    resumed = await drain(restarted, stream, first.cursor, limit)
    check_events(resumed.events, published_schemas, stream)
    assert [e for e in resumed.events if is_new(e)], f"{stream}: the change did not come"
    others = [e for e in resumed.events if not is_new(e)]
    check_repeats(harness, others, first.last_page, stream)

    # and from where the restarted one stopped, nothing new comes again
    again = await drain(remote.connector(), stream, resumed.cursor, limit)
    check_repeats(harness, again.events, resumed.last_page, f"{stream} (after the resumed run)")


@pytest.mark.parametrize("fault", POLL_FAULTS)
@pytest.mark.parametrize(("type_name", "stream"), STREAM_PARAMS)
async def test_poll_faults_raise_only_typed_errors(
    type_name: str, stream: str, fault: str, serve: Serve
) -> None:
    harness, _ = stream_or_skip(type_name, stream)
    remote = await serve(harness)
    credentials = harness.wrong_credentials() if fault == "auth" else None
    if fault in ("rate_limit", "server_error"):
        await harness.inject(remote, Fault(fault), None)
    elif fault != "auth":
        _arm_transport_fault(remote, fault, lambda r: False)
    connector = remote.connector(credentials=credentials)
    exc = await outcome(connector.poll(stream, None, harness.poll_page_size))
    if fault == "auth":
        typed(exc, PermanentError)
    elif fault == "rate_limit":
        typed(exc, RateLimitedError)
    elif fault == "server_error":
        typed(exc, TransientError)
    elif exc is not None:
        typed(exc, TYPED_ERRORS)
    assert remote.faults.armed() == 0, "the fault was never met"
