"""The webhook body's depth check: the depth JSON itself gives, strings never counted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.ingest.service import MAX_JSON_DEPTH, _check_depth
from kernel.errors import PayloadError


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\/ab\n\u00e9', max_size=12)
documents = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=120,
)


def wrapped(value: Any, levels: int) -> Any:
    for _ in range(levels):
        value = [value]
    return value


@given(documents, st.integers(min_value=0, max_value=80), st.booleans())
def test_refuses_exactly_what_is_deeper_than_the_limit(doc: Any, levels: int, ascii: bool) -> None:
    value = wrapped(doc, levels)
    body = json.dumps(value, ensure_ascii=ascii).encode()
    if depth(value) > MAX_JSON_DEPTH:
        with pytest.raises(PayloadError, match="nested deeper"):
            _check_depth(body)
    else:
        _check_depth(body)


def test_brackets_in_strings_and_escaped_quotes_are_text() -> None:
    text = '\\"[' * 200  # escaped quotes never end the string
    _check_depth(json.dumps({"note": text, "tags": ["{" * 300]}).encode())


def test_an_unterminated_string_is_text_to_the_end() -> None:
    _check_depth(b'{"a": [1], "b": "' + b"[" * 300)
