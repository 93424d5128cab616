"""HTTP headers as connectors read them: found whatever their case, checked before use.

Webhook headers end up in bounded columns, dedupe keys and logs, so the ones a parser
reads must be printable ASCII of a sane length; anything else is a 400 that names the
header, never a crash further down.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from kernel.canonical.common import shown
from kernel.errors import PayloadError

Headers = Mapping[str, str] | httpx.Headers


def header(headers: Headers, name: str) -> str | None:
    """The header ``name`` whatever its case (HTTP/2 lowercases, people capitalise).

    ``httpx.Headers`` already looks up case-insensitively; a plain mapping is searched.
    """
    if isinstance(headers, httpx.Headers):
        return headers.get(name)
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None


def check_value(name: str, value: str, *, limit: int) -> str:
    """``value`` if it is printable ASCII of at most ``limit`` characters, else PayloadError(400).

    ``name`` is the header as the message shows it (e.g. ``X-Shopify-Topic``).
    """
    if len(value) > limit:
        raise PayloadError(
            f"{name} header is {len(value)} characters long, over the {limit} allowed",
            status_code=400,
        )
    if not (value.isascii() and value.isprintable()):
        raise PayloadError(
            f"{name} header must be printable ASCII, not {shown(value, 60)}", status_code=400
        )
    return value


def checked_header(headers: Headers, name: str, *, limit: int) -> str | None:
    """The header ``name`` (any case), checked by ``check_value``; None when absent."""
    value = header(headers, name)
    return None if value is None else check_value(name, value, limit=limit)
