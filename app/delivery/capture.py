"""Record the HTTP exchanges a connector makes during one attempt, with secrets redacted.

The shared httpx client carries event hooks that append to a context-local list while an
attempt is running; connectors stay unaware of it. What is redacted (shown as ``***``):

- headers, in requests and responses: the destination connector's ``sensitive_headers``,
  ``Authorization``, ``Proxy-Authorization``, cookies, and any header whose name contains
  token, secret, key, signature, password or hmac (``Idempotency-Key`` excepted: it is no
  secret, and it is what shows a retry was the same write);
- fields of JSON and form-encoded bodies, in requests and responses, at any depth: the
  connector's ``sensitive_fields`` and the names secrets go by (``client_secret``,
  ``refresh_token``, ``access_token``, ``password``, ``token``, ``api_key``, any
  ``*_secret``, ``*_token``, ``*password*``; ``camelCase`` and ``kebab-case`` spellings too);
- the same fields in URL query strings (plus any parameter whose name contains token,
  secret, signature, password or key), and a password in the URL's user info.

A body is redacted before it is cut to ``MAX_BODY_CHARS``; one too large to parse has the
secret-looking ``"name": "value"`` and ``name=value`` pairs of its shown part redacted.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import orjson

from app.delivery.network import asyncio_transport

MAX_BODY_CHARS = 4000
MAX_PARSED_BYTES = 1 << 20  # bodies up to 1 MiB are parsed and redacted field by field
MASK = "***"

GENERIC_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-auth-token"}
)
_HEADER_WORDS = ("token", "secret", "key", "signature", "password", "hmac")
_NOT_SECRET_HEADERS = frozenset({"idempotency-key", "x-idempotency-key"})
GENERIC_FIELDS = frozenset(
    {
        "client_secret",
        "client_assertion",
        "refresh_token",
        "access_token",
        "id_token",
        "password",
        "passwd",
        "token",
        "secret",
        "api_key",
        "apikey",
        "private_key",
        "secret_key",
        "access_key",
        "session_token",
    }
)
_SECRET_FIELD = re.compile(r"(?:^|_)(?:secret|token)$|password|passwd")
_QUERY_WORDS = ("token", "secret", "signature", "password", "key")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# the shown part of a body too large to parse: "name": "value" and name=value pairs
# (a value cut off at the end of the shown part counts too)
_JSON_PAIR = re.compile(r'"([^"\\]{1,100})"(\s*:\s*)"(?:[^"\\]|\\.)*(?:"|\\?$)')
_FORM_PAIR = re.compile(r"(?:^|(?<=[&?]))([^=&\s]{1,100})=([^&\s]*)")


def _normalized(name: str) -> str:
    """``clientSecret``, ``client-secret`` and ``Client_Secret`` → ``client_secret``."""
    return _CAMEL.sub("_", name).lower().replace("-", "_")


@dataclass(frozen=True)
class Redaction:
    """What one destination's exchanges hide: the generic secrets plus its declarations."""

    headers: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()

    @classmethod
    def of(cls, headers: Iterable[str] = (), fields: Iterable[str] = ()) -> Redaction:
        return cls(frozenset(h.lower() for h in headers), frozenset(_normalized(f) for f in fields))

    def header(self, name: str) -> bool:
        lowered = name.lower()
        if lowered in self.headers or lowered in GENERIC_HEADERS:
            return True
        if lowered in _NOT_SECRET_HEADERS:
            return False
        return any(word in lowered for word in _HEADER_WORDS)

    def field(self, name: str) -> bool:
        return _secret_field(self.fields, name)

    def query_field(self, name: str) -> bool:
        lowered = name.lower()
        return self.field(name) or any(word in lowered for word in _QUERY_WORDS)


@functools.lru_cache(maxsize=4096)
def _secret_field(declared: frozenset[str], name: str) -> bool:
    # cached: every key of every captured body is asked, and the same few hundred recur
    key = _normalized(name)
    return key in declared or key in GENERIC_FIELDS or bool(_SECRET_FIELD.search(key))


@dataclass
class _Capture:
    exchanges: list[dict[str, Any]]
    redaction: Redaction = field(default_factory=Redaction)


_current: contextvars.ContextVar[_Capture | None] = contextvars.ContextVar(
    "http_exchanges", default=None
)


@contextmanager
def capture_exchanges(
    *, sensitive_headers: Iterable[str] = (), sensitive_fields: Iterable[str] = ()
) -> Iterator[list[dict[str, Any]]]:
    """Collect the exchanges made inside the block, redacting the generic secrets and the
    destination connector's declared ``sensitive_headers`` and ``sensitive_fields``."""
    capture = _Capture([], Redaction.of(sensitive_headers, sensitive_fields))
    token = _current.set(capture)
    try:
        yield capture.exchanges
    finally:
        _current.reset(token)


# --- redaction ---------------------------------------------------------------------------


def redact_headers(headers: httpx.Headers, redaction: Redaction) -> dict[str, str]:
    return {k: (MASK if redaction.header(k) else v) for k, v in headers.items()}


def redact_url(url: httpx.URL, redaction: Redaction) -> str:
    if url.password:
        url = url.copy_with(username=url.username, password=MASK)
    if not url.query:
        return str(url)
    pairs = parse_qsl(url.query.decode("ascii", "replace"), keep_blank_values=True)
    if not any(redaction.query_field(name) for name, _ in pairs):
        return str(url)
    query = urlencode(
        [(name, MASK if redaction.query_field(name) else value) for name, value in pairs],
        safe="*",
    )
    return str(url.copy_with(query=query.encode("ascii")))


def _redact_tree(root: Any, redaction: Redaction) -> bool:
    """Mask sensitive fields in a parsed JSON document in place, iteratively (any depth)."""
    changed = False
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if redaction.field(key) and value is not None:
                    node[key] = MASK
                    changed = True
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return changed


def _dumps(root: Any) -> str:
    """JSON text of a parsed document, numbers exactly as they were written (iterative)."""
    out: list[str] = []
    # work items: a value to write, or a literal piece of text (str wrapped in a tuple)
    todo: list[Any] = [root]
    while todo:
        item = todo.pop()
        if isinstance(item, tuple):
            out.append(item[0])
        elif isinstance(item, dict):
            pieces: list[Any] = [("{",)]
            for index, (key, value) in enumerate(item.items()):
                pieces.append(((", " if index else "") + _text(key) + ": ",))
                pieces.append(value)
            pieces.append(("}",))
            todo.extend(reversed(pieces))
        elif isinstance(item, list):
            pieces = [("[",)]
            for index, value in enumerate(item):
                if index:
                    pieces.append((", ",))
                pieces.append(value)
            pieces.append(("]",))
            todo.extend(reversed(pieces))
        elif isinstance(item, Decimal):
            out.append(str(item))
        elif isinstance(item, str):
            out.append(_text(item))
        else:
            out.append(json.dumps(item))
    return "".join(out)


def _text(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _redact_json(text: str, redaction: Redaction) -> str | None:
    """The JSON ``text`` with sensitive fields masked; None when it is not JSON."""
    # Most bodies hold no secret: orjson looks first (several times faster than the json
    # module with Decimal numbers), and only a body with something to mask is parsed again
    # with its numbers kept exactly as written, to be written back.
    # (What orjson refuses, e.g. integers beyond 64 bits, the json module decides.)
    try:
        quick = orjson.loads(text)
    except orjson.JSONDecodeError:
        quick = None
    if isinstance(quick, dict | list) and not _redact_tree(quick, redaction):
        return text
    try:
        root = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(root, dict | list):
        return text
    return _dumps(root) if _redact_tree(root, redaction) else text


def _redact_form(text: str, redaction: Redaction) -> str:
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(redaction.field(name) for name, _ in pairs):
        return text
    return urlencode(
        [(name, MASK if redaction.field(name) else value) for name, value in pairs], safe="*"
    )


def _redact_shown_part(text: str, redaction: Redaction) -> str:
    """Pairs that look like secrets in text that could not be parsed as a whole."""

    def json_pair(match: re.Match[str]) -> str:
        name, colon = match.group(1), match.group(2)
        return f'"{name}"{colon}"{MASK}"' if redaction.field(name) else match.group(0)

    def form_pair(match: re.Match[str]) -> str:
        name = match.group(1)
        return f"{name}={MASK}" if redaction.field(name) else match.group(0)

    return _FORM_PAIR.sub(form_pair, _JSON_PAIR.sub(json_pair, text))


def redact_body(content: bytes, content_type: str | None, redaction: Redaction) -> str:
    """The body as stored: secrets masked, then cut to ``MAX_BODY_CHARS``."""
    text = content.decode("utf-8", errors="replace")
    kind = (content_type or "").split(";")[0].strip().lower()
    redacted: str | None = None
    if len(content) <= MAX_PARSED_BYTES and text.strip():
        if kind == "application/x-www-form-urlencoded":
            redacted = _redact_form(text, redaction)
        elif "json" in kind or text.lstrip()[:1] in ("{", "["):
            redacted = _redact_json(text, redaction)
    if redacted is None:  # only the part that is shown, so nothing beyond it slips in
        shown = _redact_shown_part(text[:MAX_BODY_CHARS], redaction)
        return shown + ("…(truncated)" if len(text) > MAX_BODY_CHARS else "")
    if len(redacted) <= MAX_BODY_CHARS:
        return redacted
    return redacted[:MAX_BODY_CHARS] + "…(truncated)"


# --- the hooks -----------------------------------------------------------------------------


async def _on_request(request: httpx.Request) -> None:
    capture = _current.get()
    if capture is None:
        return
    redaction = capture.redaction
    body = request.content if isinstance(request.stream, httpx.ByteStream) else b""
    capture.exchanges.append(
        {
            "request": {
                "method": request.method,
                "url": redact_url(request.url, redaction),
                "headers": redact_headers(request.headers, redaction),
                "body": redact_body(body, request.headers.get("content-type"), redaction),
            }
        }
    )


async def _on_response(response: httpx.Response) -> None:
    capture = _current.get()
    if capture is None or not capture.exchanges:
        return
    redaction = capture.redaction
    await response.aread()
    capture.exchanges[-1]["response"] = {
        "status": response.status_code,
        "headers": redact_headers(response.headers, redaction),
        "body": redact_body(response.content, response.headers.get("content-type"), redaction),
    }


def make_http_client(timeout_seconds: float = 30.0, **kwargs: Any) -> httpx.AsyncClient:
    """The one shared httpx client of a process (on asyncio's own transports:
    ``app.delivery.network``), unless a ``transport`` is given."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    if "transport" not in kwargs:
        kwargs["transport"] = asyncio_transport(limits=limits)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
        limits=limits,
        event_hooks={"request": [_on_request], "response": [_on_response]},
        **kwargs,
    )
