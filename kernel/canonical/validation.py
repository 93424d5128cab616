"""pydantic ValidationErrors as one readable line: ``field.path: message; …``.

Every connector turns the errors of its wire models and of the canonical models into the
message of a 422 with this, so all of them read alike:
``line_items[2].quantity: must be between 0 and 1000000000``. Paths are written as in the
JSON (``a.b[2].c``) under an optional prefix (``data``, ``record``); messages lose pydantic's
"Value error, " preamble; nothing of the offending input is echoed beyond a short, escaped
excerpt, so a message never carries NUL, a lone surrogate or a megabyte of text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import ValidationError

MAX_ERRORS_SHOWN = 5
_MAX_PART = 60
_PREAMBLES = ("Value error, ", "Assertion failed, ")
# a model-level message that starts with the path it is about: "lines[2].unit_price: …"
_PATH_FIRST = re.compile(r"^[A-Za-z_][\w]*(?:\[\d+\]|\.[A-Za-z_]\w*)*: ")


def _part(part: int | str) -> str:
    text = str(part)
    if len(text) > _MAX_PART or not text.isprintable() or not text.isascii():
        text = ascii(text)[: _MAX_PART - 1] + ("…" if len(ascii(text)) >= _MAX_PART else "")
    return text


def field_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """``("line_items", 2, "quantity")`` → ``line_items[2].quantity`` (after ``prefix``)."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = _part(part)
            out += f".{name}" if out else name
    return out


def _message(msg: str) -> str:
    for preamble in _PREAMBLES:
        if msg.startswith(preamble):
            msg = msg[len(preamble) :]
    return safe_text(msg)


def safe_text(text: str, limit: int = 500) -> str:
    """``text`` without NUL or lone surrogates, at most ``limit`` characters."""
    cleaned = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def describe_errors(exc: ValidationError, *, prefix: str = "") -> str:
    """One ``path: message`` per problem (the first five, then how many more)."""
    errors = exc.errors(include_url=False, include_input=False)
    shown = []
    for error in errors[:MAX_ERRORS_SHOWN]:
        loc = tuple(error.get("loc", ()))
        msg = _message(str(error.get("msg", "invalid")))
        if not loc and _PATH_FIRST.match(msg):
            # a model validator named the field itself
            joiner = "." if prefix else ""
            shown.append(f"{prefix}{joiner}{msg}")
        elif not loc and not prefix:
            shown.append(msg)  # about the whole object
        else:
            shown.append(f"{field_path(loc, prefix)}: {msg}")
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")
