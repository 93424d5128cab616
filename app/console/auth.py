"""Console sign-in: an API key typed once, then a signed session cookie.

The cookie holds the key's role and fingerprint (``app.audit.actor``), never the key, plus
the session's CSRF token; it is signed with a secret derived from the configured keys, so
changing ``GATEWAY_API_KEYS`` signs everyone out, and a session whose key was removed is
refused at its next request. HttpOnly, SameSite=Strict, path ``/console``, Secure when the
console is served over https. Every POST carries the token (a form field, or the
``X-CSRF-Token`` header from the console's script) and is refused without it; the sign-in
form has one too, from an anonymous session made when the form is shown.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.api.limits import known_key
from app.audit.actor import Actor, key_fingerprint
from app.errors import Forbidden
from app.settings import Role

COOKIE = "gw_console"
FLASH_COOKIE = "gw_console_flash"
COOKIE_PATH = "/console"
SESSION_SECONDS = 12 * 3600
FLASH_SECONDS = 120
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
# roles that see personal data, as in the API (app.api.deps.PII_ROLES)
_PII_ROLES = frozenset({"operator", "pii-reader"})


class SignInRequired(Exception):
    """No valid session: pages answer with a redirect to the sign-in form."""


@dataclass(frozen=True)
class ConsoleUser:
    role: Role
    fingerprint: str
    csrf: str

    @property
    def may_act(self) -> bool:
        return self.role == "operator"

    @property
    def sees_pii(self) -> bool:
        return self.role in _PII_ROLES

    @property
    def actor(self) -> Actor:
        """Who acts, for the audit trail: the same name an API call with the key gets."""
        return Actor(f"key:{self.fingerprint}", self.role)


def _serializer(keys: dict[str, Role], salt: str) -> URLSafeTimedSerializer:
    # the keys are the console's only secret; whoever knows them may sign in anyway
    material = "\n".join(sorted(f"{k}:{r}" for k, r in keys.items())).encode()
    secret = hmac.new(b"erp-gateway console session", material, hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(secret, salt=salt)


def _keys(request: Request) -> dict[str, Role]:
    keys: dict[str, Role] = request.app.state.api_keys
    return keys


def _load(request: Request, cookie: str, salt: str, max_age: int) -> dict[str, Any] | None:
    raw = request.cookies.get(cookie)
    if not raw:
        return None
    try:
        data = _serializer(_keys(request), salt).loads(raw, max_age=max_age)
    except BadSignature:  # forged, expired, or signed before the keys changed
        return None
    return data if isinstance(data, dict) else None


def _set(request: Request, response: Response, cookie: str, value: str, max_age: int) -> None:
    response.set_cookie(
        cookie,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def session_data(request: Request) -> dict[str, Any]:
    """The signed session (possibly anonymous: only a CSRF token), or an empty dict."""
    return _load(request, COOKIE, "session", SESSION_SECONDS) or {}


def write_session(request: Request, response: Response, data: dict[str, Any]) -> None:
    value = _serializer(_keys(request), "session").dumps(data)
    _set(request, response, COOKIE, value, SESSION_SECONDS)


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH)


def anonymous_csrf(request: Request, response: Response) -> str:
    """The sign-in form's CSRF token: the session's, or a new anonymous session's."""
    token = session_data(request).get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        write_session(request, response, {"csrf": token})
    return token


def check_key(request: Request, key: str) -> Role | None:
    """The role of ``key`` if it is configured (constant-time comparison, like the API)."""
    keys = _keys(request)
    if not key or not known_key(keys, key):
        return None
    return next(r for k, r in keys.items() if hmac.compare_digest(k.encode(), key.encode()))


def sign_in(request: Request, response: Response, key: str, role: Role) -> None:
    """A new session (a new CSRF token too: nothing from before the sign-in carries over)."""
    data = {"role": role, "fp": key_fingerprint(key), "csrf": secrets.token_urlsafe(32)}
    write_session(request, response, data)


async def current_user(request: Request) -> ConsoleUser:
    """The signed-in user; SignInRequired if there is none or its key is no longer configured."""
    data = session_data(request)
    role, fingerprint, csrf = data.get("role"), data.get("fp"), data.get("csrf")
    if not (isinstance(role, str) and isinstance(fingerprint, str) and isinstance(csrf, str)):
        raise SignInRequired
    live = {(key_fingerprint(k), r) for k, r in _keys(request).items()}
    if (fingerprint, role) not in live:
        raise SignInRequired
    user = ConsoleUser(role, fingerprint, csrf)  # type: ignore[arg-type]
    request.state.console_user = user
    return user


def csrf_ok(request: Request, expected: str, sent: str | None) -> bool:
    token = sent or request.headers.get(CSRF_HEADER) or ""
    return bool(expected) and hmac.compare_digest(expected.encode(), token.encode())


async def _form_token(request: Request) -> str | None:
    if request.headers.get(CSRF_HEADER):
        return None  # the script's requests send the header (their body may be a CSV)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def acting_user(
    request: Request, user: Annotated[ConsoleUser, Depends(current_user)]
) -> ConsoleUser:
    """A POST by a signed-in user with the session's CSRF token; 403 otherwise, and 403 for
    a role that may only read (the page shows it no buttons)."""
    if not csrf_ok(request, user.csrf, await _form_token(request)):
        raise Forbidden(
            "the form's security token is missing or stale",
            hint="reload the page and try again",
        )
    if not user.may_act:
        raise Forbidden(
            f"a {user.role} key can only look; this needs an operator key",
            hint="sign in with an operator key",
        )
    return user


Viewer = Annotated[ConsoleUser, Depends(current_user)]
Operator = Annotated[ConsoleUser, Depends(acting_user)]


# --- flash: the outcome of an action, shown once on the page it leads to --------------------


def set_flash(request: Request, response: Response, kind: str, message: str) -> None:
    value = _serializer(_keys(request), "flash").dumps({"kind": kind, "message": message})
    _set(request, response, FLASH_COOKIE, value, FLASH_SECONDS)


def read_flash(request: Request) -> dict[str, str] | None:
    data = _load(request, FLASH_COOKIE, "flash", FLASH_SECONDS)
    if data and isinstance(data.get("message"), str) and isinstance(data.get("kind"), str):
        return {"kind": data["kind"], "message": data["message"]}
    return None


def clear_flash(request: Request, response: Response) -> None:
    if request.cookies.get(FLASH_COOKIE):
        response.delete_cookie(FLASH_COOKIE, path=COOKIE_PATH)
