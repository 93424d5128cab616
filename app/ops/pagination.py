"""Keyset pagination shared by every operator list.

Cursors are opaque to clients (base64 of a small JSON object) so the key behind them can
change without breaking anyone; keyset instead of OFFSET keeps deep pages cheap and never
skips or repeats a row when new rows arrive while someone pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from app.api.params import INT64_MAX
from app.errors import BadRequest

T = TypeVar("T")
K = TypeVar("K", int, str)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# a cursor holds one key: an id, or a mapping key (at most 256 characters, JSON-escaped)
MAX_CURSOR_CHARS = 4096
MAX_KEY_CHARS = 256

LimitQuery = Annotated[
    int,
    Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}"),
]
CursorQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_CHARS,
        description="next_cursor from the previous page; omit for the first page",
    ),
]


class Page(BaseModel, Generic[T]):
    """The shape of every list: a page of items and the cursor of the next page."""

    items: list[T]
    next_cursor: str | None = Field(
        description="pass as ?cursor= to get the next page; null on the last page"
    )


def encode_cursor(key: int | str) -> str:
    raw = json.dumps({"k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _in_bounds(value: Any, kind: type[K]) -> bool:
    # bool is an int subclass; a cursor never holds one
    if not isinstance(value, kind) or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 1 <= value <= INT64_MAX  # a row id: what the database can hold
    return isinstance(value, str) and len(value) <= MAX_KEY_CHARS and "\x00" not in value


def decode_cursor(cursor: str | None, kind: type[K]) -> K | None:
    """The key a cursor stands for; 400 if it was not made by ``encode_cursor`` for ``kind``.

    Anything else (not base64, not JSON, nested deeper than Python parses, a number beyond
    64 bits, a key longer than the column) is the same 400, never an error further down.
    """
    if cursor is None or cursor == "":
        return None
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        value: Any = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))["k"]
    except (binascii.Error, ValueError, KeyError, TypeError, IndexError, RecursionError):
        value = None
    if not _in_bounds(value, kind):
        raise BadRequest(
            "the cursor is not valid for this list",
            hint="pass next_cursor from the previous page unchanged",
        )
    return value


def page_of(
    rows: Sequence[T], limit: int, key: Callable[[T], int | str]
) -> tuple[list[T], str | None]:
    """Trim a ``limit + 1`` fetch to ``limit`` rows and make the cursor of the next page."""
    items = list(rows[:limit])
    if len(rows) > limit and items:
        return items, encode_cursor(key(items[-1]))
    return items, None
