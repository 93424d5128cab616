"""HTTP status → typed error, and the one helper that makes a call: ``send``.

The rules every connector shares (a connector adds what only its system means):

- 429, and 503 with ``Retry-After`` → RateLimitedError: wait that long (``retry_after``),
  not an attempt;
- 408, 425, 5xx, connection failures and timeouts → TransientError: retried with backoff;
- 401/403 → PermanentError saying to check the credentials (plus the connector's hint);
- other 4xx → PermanentError quoting the remote's own message, trimmed;
- a 3xx (redirects are not followed) → PermanentError: the URL is wrong (``base_url``).

Messages name the call (``describe``, e.g. ``"NetSuite (PUT salesOrder eid:shop-1)"``) and
never contain request headers, so no credential ends up in an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors._kit import retry_after as _retry_after
from kernel.errors import ConnectorError, PermanentError, RateLimitedError, TransientError

MAX_MESSAGE = 500
TRANSIENT_STATUSES = frozenset({408, 425})  # request timeout, too early: try again
_MESSAGE_KEYS = ("message", "detail", "error_description", "title", "error", "errors")
_CONTAINER_KEYS = frozenset({"error", "errors"})  # may hold the messages, nested


@dataclass(frozen=True)
class StatusPolicy:
    """How one connector reads statuses; the defaults are the shared rules above."""

    # statuses that are not errors for this call (e.g. 409 "already have it")
    accept: Collection[int] = ()
    # appended to "check the credentials" on 401/403: which credential, which scopes
    credentials_hint: str = ""
    # Retry-After when absent or unreadable, and the longest wait honoured
    default_retry_after: float = _retry_after.DEFAULT_SECONDS
    max_retry_after: float = _retry_after.CAP_SECONDS
    # False: a 503 is transient even with Retry-After (a system whose 503 means "down")
    rate_limit_503: bool = True


DEFAULT_POLICY = StatusPolicy()


def trimmed(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message_of(value: Any) -> str:
    """The human part of an error body: a string, ``{field: [messages]}``, or a list."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in _MESSAGE_KEYS:
            nested = value.get(key)
            # a message is text; {"title": ["can't be blank"]} is the field "title"
            if isinstance(nested, str) and nested:
                return nested
            if key in _CONTAINER_KEYS and isinstance(nested, Mapping | list) and nested:
                return _message_of(nested)
        parts = []
        for field, messages in value.items():  # Rails style: {"price": ["is not a number"]}
            items = messages if isinstance(messages, list) else [messages]
            parts.append(f"{field} {'; '.join(str(m) for m in items)}")
        return ", ".join(parts)
    if isinstance(value, list):
        return "; ".join(_message_of(v) for v in value)
    return "" if value is None else str(value)


def _body_message(body: Any) -> str:
    if isinstance(body, Mapping):
        error, description = body.get("error"), body.get("error_description")
        if isinstance(error, str) and isinstance(description, str) and description:
            return f"{error}: {description}"
    return _message_of(body) if isinstance(body, Mapping | list) else ""


def remote_message(response: httpx.Response, *, limit: int = MAX_MESSAGE) -> str:
    """What the remote said about the failure, trimmed: the JSON body's message (``error``
    and ``error_description`` together for OAuth), else its text, else the reason phrase."""
    try:
        text = _body_message(response.json())
    except (ValueError, RecursionError):  # not JSON (or absurdly nested)
        text = ""
    if not text.strip():
        text = response.text
    return trimmed(text, limit) if text.strip() else response.reason_phrase


def error_for_status(
    response: httpx.Response, *, describe: str, policy: StatusPolicy = DEFAULT_POLICY
) -> ConnectorError | None:
    """The typed error for ``response`` (read), or None when its status is no error."""
    status = response.status_code
    if 200 <= status < 300 or status in policy.accept:
        return None
    detail = {"status": status, "body": trimmed(response.text)}
    has_retry_after = "retry-after" in response.headers
    if status == 429 or (status == 503 and has_retry_after and policy.rate_limit_503):
        wait = _retry_after.retry_after(
            response, default=policy.default_retry_after, cap=policy.max_retry_after
        )
        return RateLimitedError(
            f"{describe}: rate limit reached (HTTP {status}), retry in {wait:g} s",
            retry_after=wait,
            detail=detail,
        )
    if status < 400:
        where = response.headers.get("location")
        return PermanentError(
            f"{describe} answered HTTP {status}"
            + (f" (a redirect to {trimmed(where, 200)})" if where else "")
            + "; redirects are not followed: check the URL (base_url)",
            detail=detail,
        )
    text = remote_message(response)
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(f"{describe} failed with HTTP {status}: {text}", detail=detail)
    if status in (401, 403):
        hint = f": {policy.credentials_hint}" if policy.credentials_hint else ""
        return PermanentError(
            f"{describe} refused the request (HTTP {status}: {text}); check the credentials{hint}",
            detail=detail,
        )
    return PermanentError(
        f"{describe} rejected the request with HTTP {status}: {text}", detail=detail
    )


async def send(
    http: httpx.AsyncClient,
    request: httpx.Request,
    *,
    timeout: float | None,
    describe: str,
    policy: StatusPolicy = DEFAULT_POLICY,
    check_status: bool = True,
    timeout_note: str = "",
) -> httpx.Response:
    """Send ``request`` and return the read response, or raise the typed error.

    ``timeout`` bounds the whole call (connecting, sending, reading the body; None: only
    the per-phase timeouts the request carries). ``timeout_note`` says what a timeout
    means for the remote's data (e.g. that a retried write cannot duplicate). With
    ``check_status=False`` any status is returned, for connectors that read their system's
    error bodies themselves.
    """
    try:
        async with asyncio.timeout(timeout):
            response = await http.send(request)
    except (TimeoutError, httpx.TimeoutException):
        raise TransientError(f"{describe} timed out, no answer in time{timeout_note}") from None
    except httpx.RequestError as exc:
        raise TransientError(
            f"cannot reach {describe}: {type(exc).__name__}: {trimmed(str(exc), 200)}"
        ) from None
    if check_status:
        error = error_for_status(response, describe=describe, policy=policy)
        if error is not None:
            raise error
    return response


def pick(answer: Any, *path: str | int, describe: str) -> Any:
    """``answer[path…]`` of a parsed success answer, or a PermanentError saying the remote
    answered without it (never a bare KeyError: only typed errors leave a connector). Not
    retried: the write may have been applied, and its answer is not what the API documents."""
    node = answer
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            where = ".".join(str(p) for p in path)
            raise PermanentError(
                f"{describe} answered without {where}; the answer is not what the API "
                "documents: check the record there, then replay"
            ) from None
    return node
