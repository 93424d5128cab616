"""Standard Webhooks signing: the spec's vector, tampering, rotation, secrets, tolerance."""

from __future__ import annotations

import base64

import pytest

from connectors.custom import signing
from kernel.errors import SignatureError

# The example in the Standard Webhooks specification.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TS = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET = signing.generate_secret()
BODY = b'{"type":"order.created","data":{}}'
NOW = 1_800_000_000


def signed(body: bytes = BODY, *, msg_id: str = "msg_1", ts: int = NOW) -> dict[str, str]:
    return signing.sign_headers(SECRET, msg_id, body, timestamp=ts)


def test_matches_the_spec_example() -> None:
    assert signing.signature(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY) == SPEC_SIGNATURE
    headers = {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": str(SPEC_TS),
        "webhook-signature": SPEC_SIGNATURE,
    }
    assert signing.verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TS) == SPEC_ID


def test_sign_then_verify_returns_the_id() -> None:
    assert signing.verify(SECRET, signed(), BODY, now=NOW) == "msg_1"


def test_headers_are_found_whatever_their_case() -> None:
    headers = {k.title(): v for k, v in signed().items()}
    assert signing.verify(SECRET, headers, BODY, now=NOW) == "msg_1"


@pytest.mark.parametrize(
    ("field", "value"),
    [("webhook-id", "msg_2"), ("webhook-timestamp", str(NOW + 1))],
)
def test_tampered_header_fails(field: str, value: str) -> None:
    headers = {**signed(), field: value}
    with pytest.raises(SignatureError, match="does not match"):
        signing.verify(SECRET, headers, BODY, now=NOW)


def test_tampered_body_fails() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        signing.verify(SECRET, signed(), BODY + b" ", now=NOW)


def test_wrong_secret_fails() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        signing.verify(signing.generate_secret(), signed(), BODY, now=NOW)


def test_one_matching_signature_among_several_passes() -> None:
    good = signed()["webhook-signature"]
    stale = signing.signature(signing.generate_secret(), "msg_1", NOW, BODY)
    headers = {**signed(), "webhook-signature": f"v1a,ignored {stale} {good}"}
    assert signing.verify(SECRET, headers, BODY, now=NOW) == "msg_1"


def test_only_non_v1_entries_fail_with_a_clear_message() -> None:
    headers = {**signed(), "webhook-signature": "v2,abc v1a,def"}
    with pytest.raises(SignatureError, match="no 'v1,<base64>' entry"):
        signing.verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_named(missing: str) -> None:
    headers = {k: v for k, v in signed().items() if k != missing}
    with pytest.raises(SignatureError, match=f"missing header\\(s\\): {missing}"):
        signing.verify(SECRET, headers, BODY, now=NOW)


def test_timestamp_must_be_unix_seconds() -> None:
    headers = {**signed(), "webhook-timestamp": "2026-11-01T12:00:00Z"}
    with pytest.raises(SignatureError, match="unix seconds"):
        signing.verify(SECRET, headers, BODY, now=NOW)


def test_tolerance_edges_on_both_sides() -> None:
    headers = signed(ts=NOW)
    # exactly at the tolerance passes, either way
    signing.verify(SECRET, headers, BODY, now=NOW + 300)
    signing.verify(SECRET, headers, BODY, now=NOW - 300)
    with pytest.raises(SignatureError, match="301 s old"):
        signing.verify(SECRET, headers, BODY, now=NOW + 301)
    with pytest.raises(SignatureError, match="301 s in the future"):
        signing.verify(SECRET, headers, BODY, now=NOW - 301)


def test_custom_tolerance() -> None:
    with pytest.raises(SignatureError, match="over the 10 s tolerance"):
        signing.verify(SECRET, signed(), BODY, now=NOW + 11, tolerance_seconds=10)
    signing.verify(SECRET, signed(), BODY, now=NOW + 11, tolerance_seconds=60)


def test_whsec_prefix_is_optional_and_the_key_is_decoded() -> None:
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    assert signing.secret_key(SECRET) == key
    assert signing.secret_key(SECRET.removeprefix("whsec_")) == key
    # a key given as bytes signs the same as its whsec_ form
    assert signing.signature(key, "m", 1, b"x") == signing.signature(SECRET, "m", 1, b"x")
    # the secret's text is NOT the key: signing with the raw UTF-8 would not verify
    wrong = signing.signature(SECRET.encode(), "msg_1", NOW, BODY)
    headers = {**signed(), "webhook-signature": wrong}
    with pytest.raises(SignatureError):
        signing.verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("bad", ["whsec_not base64!", "whsec_", "plain-text-secret"])
def test_bad_secret_is_a_value_error_that_says_what_to_do(bad: str) -> None:
    with pytest.raises(ValueError, match=r"whsec_|empty") as info:
        signing.secret_key(bad)
    assert "plain-text-secret" not in str(info.value)  # never echo a secret


def test_generated_secrets_differ_and_decode() -> None:
    a, b = signing.generate_secret(), signing.generate_secret()
    assert a != b and a.startswith("whsec_")
    assert len(signing.secret_key(a)) == 32


# --- hostile headers: a bad signature (401), never a crash (500) ------------------------------


@pytest.mark.parametrize(
    "timestamp",
    ["\u00b2", "1\u00b2", "\u0661\u0662\u0663", "9" * 5000, "-5", "1e9", " ", "1800000000.5"],
)
def test_timestamps_that_are_not_ascii_unix_seconds_are_refused(timestamp: str) -> None:
    # "²".isdigit() and "١٢٣".isdigit() are True, and int("9" * 5000) raises ValueError
    headers = {**signed(), "webhook-timestamp": timestamp}
    with pytest.raises(SignatureError, match="must be unix seconds"):
        signing.verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("entry", ["v1,\u00e9" * 3, "v1,sïgnature", "v1,\ud800"])
def test_non_ascii_signatures_do_not_match(entry: str) -> None:
    # hmac.compare_digest raises TypeError for a str with non-ASCII characters
    headers = {**signed(), "webhook-signature": entry}
    with pytest.raises(SignatureError, match="does not match"):
        signing.verify(SECRET, headers, BODY, now=NOW)


def test_a_non_ascii_message_id_is_a_mismatch_not_a_crash() -> None:
    headers = {**signed(), "webhook-id": "msg_\ud800"}
    with pytest.raises(SignatureError, match="does not match"):
        signing.verify(SECRET, headers, BODY, now=NOW)
