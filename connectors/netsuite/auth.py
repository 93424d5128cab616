"""NetSuite token-based authentication (TBA): OAuth 1.0a signatures with HMAC-SHA256.

Pure functions so the connector (signing) and the simulator (verifying) share one
implementation of the base string, and a test can pin it against a vector computed by hand.

Rules (RFC 5849 with NetSuite's choices):
- percent-encoding is RFC 5849 §3.6: everything but ``A-Z a-z 0-9 - . _ ~`` becomes ``%XX``
  (upper-case hex of the UTF-8 bytes);
- base string = ``METHOD & enc(scheme://host[:non-default port]/path) & enc(params)`` where
  params are the ``oauth_*`` parameters (without ``oauth_signature``) plus the query-string
  parameters, each encoded, sorted by name then value, joined ``name=value`` with ``&``;
- key = ``enc(consumer_secret) & enc(token_secret)``; signature method ``HMAC-SHA256``
  (HMAC-SHA1 ended in 2023.1);
- ``realm`` is the account id (sandbox ``1234567-sb1`` → ``1234567_SB1``); it travels in the
  header but is not signed;
- the nonce has at least 6 characters; the timestamp is whole seconds since the epoch.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

SIGNATURE_METHOD = "HMAC-SHA256"
OAUTH_VERSION = "1.0"
MIN_NONCE_LENGTH = 6
CREDENTIAL_KEYS = ("account_id", "consumer_key", "consumer_secret", "token_id", "token_secret")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADER_PARAM = re.compile(r'\s*([A-Za-z0-9_\-.~%]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


@dataclass(frozen=True)
class TbaCredentials:
    """The five TBA values of one integration + token; secrets stay out of ``repr``."""

    account_id: str
    consumer_key: str
    consumer_secret: str = field(repr=False)
    token_id: str
    token_secret: str = field(repr=False)

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, str], *, where: str = "credentials"
    ) -> TbaCredentials:
        """Build from a dict with the config's key names; a missing key is named, not guessed."""
        missing = [k for k in CREDENTIAL_KEYS if not values.get(k)]
        if missing:
            raise KeyError(f"{where} lack NetSuite TBA value(s): {', '.join(missing)}")
        return cls(**{k: values[k] for k in CREDENTIAL_KEYS})

    @property
    def realm(self) -> str:
        return realm_for(self.account_id)


class AuthError(Exception):
    """An Authorization header that does not verify; the message says why (for logs only)."""


@dataclass(frozen=True)
class VerifiedRequest:
    """What a valid header proved: who signed, for which account, with which nonce."""

    realm: str
    consumer_key: str
    token_id: str
    nonce: str
    timestamp: int


# the simulator passes (consumer_key, token_id) and gets the two secrets, or None if unknown
SecretLookup = Callable[[str, str], tuple[str, str] | None]


def realm_for(account_id: str) -> str:
    """The OAuth realm NetSuite expects: upper case, sandbox ``-sb1`` written ``_SB1``."""
    return account_id.strip().upper().replace("-", "_")


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6: only unreserved characters stay as they are."""
    return quote(value.encode("utf-8"), safe="-._~")


def normalized_url(url: str) -> str:
    """RFC 5849 §3.4.1.2 base string URI: lower-case scheme/host, no default port, no query."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"


def query_params(url: str) -> list[tuple[str, str]]:
    """The decoded query-string parameters, which take part in the signature."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def normalized_params(params: Iterable[tuple[str, str]]) -> str:
    """RFC 5849 §3.4.1.3.2: encode each name and value, sort, join."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in encoded)


def base_string(method: str, url: str, oauth_params: Mapping[str, str]) -> str:
    """The signature base string; ``oauth_params`` must not contain realm or the signature."""
    params = [*oauth_params.items(), *query_params(url)]
    return "&".join(
        (
            method.upper(),
            percent_encode(normalized_url(url)),
            percent_encode(normalized_params(params)),
        )
    )


def signature(base: str, consumer_secret: str, token_secret: str) -> str:
    """Base64 HMAC-SHA256 of the base string with key ``enc(cs)&enc(ts)``."""
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode("utf-8"), base.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def new_nonce() -> str:
    """A fresh 32-character nonce (NetSuite wants at least 6 and rejects reuse)."""
    return secrets.token_hex(16)


def sign_request(
    method: str,
    url: str,
    creds: TbaCredentials,
    *,
    nonce: str | None = None,
    timestamp: int | None = None,
) -> str:
    """The ``Authorization`` header value for one request (query string included in the URL)."""
    nonce = nonce if nonce is not None else new_nonce()
    if len(nonce) < MIN_NONCE_LENGTH:
        raise ValueError(f"NetSuite needs a nonce of at least {MIN_NONCE_LENGTH} characters")
    oauth = {
        "oauth_consumer_key": creds.consumer_key,
        "oauth_nonce": nonce,
        "oauth_signature_method": SIGNATURE_METHOD,
        "oauth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "oauth_token": creds.token_id,
        "oauth_version": OAUTH_VERSION,
    }
    oauth["oauth_signature"] = signature(
        base_string(method, url, oauth), creds.consumer_secret, creds.token_secret
    )
    fields = [("realm", creds.realm), *oauth.items()]
    return "OAuth " + ", ".join(f'{k}="{percent_encode(v)}"' for k, v in fields)


def parse_authorization(header: str) -> dict[str, str]:
    """The decoded parameters of an ``OAuth k="v", …`` header; AuthError if malformed."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        raise AuthError("the Authorization header is not OAuth")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        match = _HEADER_PARAM.match(rest, pos)
        if match is None:
            raise AuthError("the OAuth header is malformed")
        name, value = unquote(match.group(1)), unquote(match.group(2))
        if name in params:
            raise AuthError(f"the OAuth header repeats {name}")
        params[name] = value
        pos = match.end()
    return params


def _require(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise AuthError(f"the OAuth header lacks {name}")
    return value


def verify_authorization(
    method: str,
    url: str,
    header: str,
    lookup_secrets: SecretLookup,
    *,
    now: float | None = None,
    max_skew_seconds: float | None = 300.0,
) -> VerifiedRequest:
    """Check a TBA header against the request; return who signed it or raise AuthError."""
    params = parse_authorization(header)
    if _require(params, "oauth_signature_method") != SIGNATURE_METHOD:
        raise AuthError(f"signature method must be {SIGNATURE_METHOD}")
    if params.get("oauth_version", OAUTH_VERSION) != OAUTH_VERSION:
        raise AuthError("oauth_version must be 1.0")
    nonce = _require(params, "oauth_nonce")
    if len(nonce) < MIN_NONCE_LENGTH:
        raise AuthError(f"the nonce is shorter than {MIN_NONCE_LENGTH} characters")
    raw_ts = _require(params, "oauth_timestamp")
    if not raw_ts.isdigit():
        raise AuthError("the timestamp is not whole seconds")
    timestamp = int(raw_ts)
    current = time.time() if now is None else now
    if max_skew_seconds is not None and abs(current - timestamp) > max_skew_seconds:
        raise AuthError("the timestamp is too far from the server clock")
    consumer_key = _require(params, "oauth_consumer_key")
    token_id = _require(params, "oauth_token")
    secrets_pair = lookup_secrets(consumer_key, token_id)
    if secrets_pair is None:
        raise AuthError("unknown consumer key or token")
    signed = {k: v for k, v in params.items() if k.startswith("oauth_") and k != "oauth_signature"}
    expected = signature(base_string(method, url, signed), *secrets_pair)
    if not hmac.compare_digest(expected, _require(params, "oauth_signature")):
        raise AuthError("the signature does not match")
    return VerifiedRequest(
        realm=params.get("realm", ""),
        consumer_key=consumer_key,
        token_id=token_id,
        nonce=nonce,
        timestamp=timestamp,
    )
