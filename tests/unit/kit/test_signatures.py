"""The kit's HMAC signatures: algorithms, encodings, constant-time compare, timestamps."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math

import pytest

from connectors._kit import signatures
from kernel.errors import SignatureError

SECRET = "s3cret"
BODY = b'{"id": 1}'
NOW = 1_800_000_000


@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
def test_compute_in_hex_and_base64(algorithm: signatures.Algorithm) -> None:
    digest = hmac.new(SECRET.encode(), BODY, getattr(hashlib, algorithm)).digest()
    assert signatures.compute(SECRET, BODY, algorithm=algorithm) == digest.hex()
    in_base64 = signatures.compute(SECRET.encode(), BODY, algorithm=algorithm, encoding="base64")
    assert in_base64 == base64.b64encode(digest).decode()


def test_verify_accepts_the_right_signature_with_prefix_and_whitespace() -> None:
    given = "sha256=" + signatures.compute(SECRET, BODY)
    signatures.verify_hmac(SECRET, BODY, f"  {given} ", header="X-Sig", prefix="sha256=")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (None, "missing X-Sig header"),
        ("  ", "missing X-Sig header"),
        ("deadbeef", "X-Sig does not match the body"),
        ("sïgnature", "X-Sig does not match the body"),  # non-ASCII: no TypeError
        ("\ud800", "X-Sig does not match the body"),  # a lone surrogate too
    ],
)
def test_verify_refuses_with_a_clear_message(given: str | None, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        signatures.verify_hmac(SECRET, BODY, given, header="X-Sig")


def test_verify_without_a_secret_matches_nothing() -> None:
    with pytest.raises(SignatureError, match="no webhook secret"):
        signatures.verify_hmac("", BODY, signatures.compute("", BODY), header="X-Sig")


def test_base64_signatures_verify_in_base64() -> None:
    given = signatures.compute(SECRET, BODY, encoding="base64")
    signatures.verify_hmac(SECRET, BODY, given, header="X-Sig", encoding="base64")
    with pytest.raises(SignatureError):
        signatures.verify_hmac(SECRET, BODY, given, header="X-Sig")  # hex expected


def test_matches_any_compares_every_entry() -> None:
    good = signatures.compute(SECRET, BODY)
    assert signatures.matches_any(good, ["x", "é", good])
    assert not signatures.matches_any(good, ["x", "é"])
    assert not signatures.matches_any(good, [])


def test_require_names_every_missing_header() -> None:
    assert signatures.require({"a": "1", "b": "2"}, scheme="S") == {"a": "1", "b": "2"}
    with pytest.raises(SignatureError, match=r"missing header\(s\): a, c \(S\)"):
        signatures.require({"a": None, "b": "2", "c": ""}, scheme="S")


def test_timestamp_within_the_tolerance_either_way() -> None:
    for ts in (NOW - 300, NOW, NOW + 300):
        assert (
            signatures.check_timestamp(str(ts), header="X-Ts", tolerance_seconds=300, now=NOW) == ts
        )


def test_timestamp_outside_the_tolerance_says_which_way() -> None:
    with pytest.raises(SignatureError, match="301 s old, over the 300 s tolerance"):
        signatures.check_timestamp(str(NOW - 301), header="X-Ts", tolerance_seconds=300, now=NOW)
    with pytest.raises(SignatureError, match="301 s in the future"):
        signatures.check_timestamp(str(NOW + 301), header="X-Ts", tolerance_seconds=300, now=NOW)


@pytest.mark.parametrize(
    "raw", ["\u00b2", "\u0661\u0662", "9" * 5000, "-5", "1e9", "1800000000.5", " ", ""]
)
def test_timestamps_must_be_ascii_unix_seconds(raw: str) -> None:
    with pytest.raises(SignatureError, match="X-Ts must be unix seconds"):
        signatures.check_timestamp(raw, header="X-Ts", tolerance_seconds=300, now=NOW)


@pytest.mark.parametrize("tolerance", [math.nan, math.inf, -1.0])
def test_a_tolerance_that_is_not_finite_seconds_refuses_everything(tolerance: float) -> None:
    with pytest.raises(SignatureError, match="not a finite number of seconds"):
        signatures.check_timestamp(str(NOW), header="X-Ts", tolerance_seconds=tolerance, now=NOW)
