"""The database token store (app/tokens.py) on whichever database the run uses: tokens
round-trip, an upsert replaces, encrypted at rest with GATEWAY_TOKEN_KEY, an unreadable
token counts as absent with a warning, the lock serialises refreshes. On Postgres, with real
processes: two processes refreshing a rotating refresh token at once make one token request
and persist the rotated token; a process killed while it holds the lock releases it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, MutableMapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from app.config import parse_config
from app.db import make_engine, make_sessionmaker
from app.models import OAuthToken, utcnow
from app.runtime import build_runtime
from app.tokens import DatabaseTokenStore
from connectors._kit.oauth2 import OAuth2Settings, OAuth2Tokens
from kernel.contract import TokenStore
from kernel.errors import PermanentError, TransientError
from tests.conftest import gateway_config_yaml, make_settings
from tests.support.processes import Proc, poll, process_group, wait_log

KEY = "erp:oauth2"
TOKEN = {
    "access_token": "at-secret-7f3a",
    "token_type": "bearer",
    "expires_in": 3600,
    "expires_at": 1_800_003_600.5,
    "refresh_token": "rt-secret-91c2",
    "scope": "orders.write",
}
# cross-process locking needs Postgres
needs_postgres = pytest.mark.usefixtures("postgres_url")


@pytest.fixture
async def sessions(clean_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(make_settings(clean_db))
    yield make_sessionmaker(engine)
    await engine.dispose()


async def raw_rows(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions() as session:
        result = await session.execute(sa.text("SELECT key, token FROM oauth_tokens"))
        return [(str(key), str(token)) for key, token in result]


async def write_raw(sessions: async_sessionmaker[AsyncSession], key: str, token: str) -> None:
    async with sessions() as session:
        await session.execute(
            sa.insert(OAuthToken).values(key=key, token=token, updated_at=utcnow())
        )
        await session.commit()


def warnings_of(logs: Sequence[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["log_level"] == "warning"]


# --- load and save --------------------------------------------------------------------


async def test_a_saved_token_loads_back_as_it_was(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store: TokenStore = DatabaseTokenStore(sessions, Fernet(Fernet.generate_key()))
    assert await store.load(KEY) is None
    await store.save(KEY, TOKEN)
    assert await store.load(KEY) == TOKEN
    assert await store.load("other:oauth2") is None


async def test_saving_again_replaces_the_token(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = DatabaseTokenStore(sessions, None)
    await store.save(KEY, TOKEN)
    rotated = {**TOKEN, "access_token": "at-2", "refresh_token": "rt-2"}
    await store.save(KEY, rotated)
    await store.save("shop:oauth2", {"access_token": "at-shop"})
    assert await store.load(KEY) == rotated
    assert sorted(key for key, _ in await raw_rows(sessions)) == [KEY, "shop:oauth2"]


async def test_a_key_longer_than_the_column_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(ValueError, match="longer than 200"):
        await DatabaseTokenStore(sessions, None).save("x" * 201, TOKEN)


# --- at rest ----------------------------------------------------------------------------


async def test_tokens_are_encrypted_at_rest_with_the_token_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = Fernet.generate_key()
    with capture_logs() as logs:
        await DatabaseTokenStore(sessions, Fernet(key)).save(KEY, TOKEN)
    ((_, stored),) = await raw_rows(sessions)
    for secret in ("at-secret-7f3a", "rt-secret-91c2", "access_token", "orders.write"):
        assert secret not in stored
    assert json.loads(Fernet(key).decrypt(stored.encode())) == TOKEN
    assert warnings_of(logs) == []


async def test_without_a_key_tokens_are_plain_json_and_one_warning_says_so(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = DatabaseTokenStore(sessions, None)
    with capture_logs() as logs:
        await store.save(KEY, TOKEN)
        await store.save(KEY, TOKEN)
        await store.save("shop:oauth2", TOKEN)
    (warning,) = warnings_of(logs)
    assert "unencrypted" in warning["event"] and "GATEWAY_TOKEN_KEY" in warning["event"]
    ((_, stored), _) = sorted(await raw_rows(sessions))
    assert json.loads(stored) == TOKEN
    # a key set later still reads the plain rows (each is encrypted when saved next)
    assert await DatabaseTokenStore(sessions, Fernet(Fernet.generate_key())).load(KEY) == TOKEN


@pytest.mark.parametrize(
    ("reader_key", "why"),
    [
        (Fernet.generate_key(), "cannot be decrypted with GATEWAY_TOKEN_KEY"),
        (None, "GATEWAY_TOKEN_KEY is not set"),
    ],
    ids=["key changed", "key removed"],
)
async def test_a_token_this_key_cannot_decrypt_is_absent_with_a_warning(
    sessions: async_sessionmaker[AsyncSession], reader_key: bytes | None, why: str
) -> None:
    await DatabaseTokenStore(sessions, Fernet(Fernet.generate_key())).save(KEY, TOKEN)
    reader = DatabaseTokenStore(sessions, Fernet(reader_key) if reader_key else None)
    with capture_logs() as logs:
        assert await reader.load(KEY) is None
    (warning,) = warnings_of(logs)
    assert why in warning["event"] and "treated as absent" in warning["event"]
    assert warning["key"] == KEY
    # the connection's next token replaces it, readable again
    await reader.save(KEY, {"access_token": "at-new"})
    assert await reader.load(KEY) == {"access_token": "at-new"}


@pytest.mark.parametrize("stored", ["{not json", "[1, 2]", "gAAAAAB-not-a-fernet-token"])
async def test_a_damaged_row_is_absent_with_a_warning(
    sessions: async_sessionmaker[AsyncSession], stored: str
) -> None:
    await write_raw(sessions, KEY, stored)
    with capture_logs() as logs:
        assert await DatabaseTokenStore(sessions, Fernet(Fernet.generate_key())).load(KEY) is None
    assert len(warnings_of(logs)) == 1


async def test_a_changed_key_falls_back_to_the_configured_refresh_token(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """What the warning promises: the connector refreshes with its config's token."""
    await DatabaseTokenStore(sessions, Fernet(Fernet.generate_key())).save(
        KEY, {**TOKEN, "expires_at": 0, "refresh_token": "rt-stored"}
    )
    forms: list[dict[str, str]] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        forms.append(dict(parse_qsl(request.content.decode())))
        return httpx.Response(200, json={"access_token": "at-new", "expires_in": 3600})

    store = DatabaseTokenStore(sessions, Fernet(Fernet.generate_key()))
    settings = OAuth2Settings(
        token_url="https://auth.example.test/token",
        client_id="gateway",
        client_secret="s3cret",
        grant="refresh_token",
        refresh_token="rt-config",
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        oauth = OAuth2Tokens(http, settings, store=store, key=KEY)
        with capture_logs():
            assert await oauth.access_token() == "at-new"
    assert [form["refresh_token"] for form in forms] == ["rt-config"]


# --- with the OAuth client and the runtime ---------------------------------------------


async def test_oauth_tokens_keep_the_rotated_refresh_token_in_the_database(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    valid = {"rt-0"}
    forms: list[dict[str, str]] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        form = dict(parse_qsl(request.content.decode()))
        forms.append(form)
        if form["refresh_token"] not in valid:
            return httpx.Response(400, json={"error": "invalid_grant"})
        valid.discard(form["refresh_token"])
        valid.add(rotated := f"rt-{len(forms)}")
        return httpx.Response(
            200,
            json={"access_token": f"at-{len(forms)}", "expires_in": 3600, "refresh_token": rotated},
        )

    cipher = Fernet(Fernet.generate_key())
    settings = OAuth2Settings(
        token_url="https://auth.example.test/token",
        client_id="gateway",
        grant="refresh_token",
        refresh_token="rt-0",
    )
    now = time.time()
    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        first = OAuth2Tokens(http, settings, store=DatabaseTokenStore(sessions, cipher), key=KEY)
        assert await first.access_token() == "at-1"
        # a restarted process, an hour and a half later: the database's rotated token
        restarted = OAuth2Tokens(
            http,
            settings,
            store=DatabaseTokenStore(sessions, cipher),
            key=KEY,
            clock=lambda: now + 5400,
        )
        assert await restarted.access_token() == "at-2"
        # the spent configured token would have been refused
        fresh = OAuth2Tokens(
            http, settings, store=DatabaseTokenStore(sessions, None), key="other:oauth2"
        )
        with pytest.raises(PermanentError, match="re-authorize"), capture_logs():
            await fresh.access_token()
    assert [form["refresh_token"] for form in forms] == ["rt-0", "rt-1", "rt-0"]


async def test_the_runtime_hands_its_token_store_to_the_connectors(clean_db: str) -> None:
    key = Fernet.generate_key().decode()
    settings = make_settings(clean_db, token_key=key)
    rt = build_runtime(settings, parse_config(gateway_config_yaml(), "test-config"))
    try:
        assert rt.connectors and all(c.config.tokens is rt.tokens for c in rt.connectors.values())
        await rt.tokens.save(KEY, TOKEN)
        ((_, stored),) = await raw_rows(rt.sessions)
        assert json.loads(Fernet(key).decrypt(stored.encode())) == TOKEN
    finally:
        await rt.close()


# --- the lock ---------------------------------------------------------------------------


async def test_the_lock_lets_one_holder_in_per_key(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """One process, two stores (as two runtimes would have): the second waits for the
    first; another key does not wait."""
    first, second = DatabaseTokenStore(sessions, None), DatabaseTokenStore(sessions, None)
    order: list[str] = []

    async def hold(store: DatabaseTokenStore, key: str, name: str) -> None:
        async with store.lock(key):
            order.append(f"{name} in")
            await asyncio.sleep(0.2)
            order.append(f"{name} out")

    async with asyncio.timeout(5):
        holding = asyncio.create_task(hold(first, KEY, "first"))
        await asyncio.sleep(0.05)
        async with second.lock("shop:oauth2"):  # another key: no wait
            assert order == ["first in"]
        await asyncio.gather(holding, hold(second, KEY, "second"))
    assert order == ["first in", "first out", "second in", "second out"]


@needs_postgres
async def test_waiting_too_long_for_the_lock_is_a_transient_error(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    holder = DatabaseTokenStore(sessions, None)
    waiter = DatabaseTokenStore(sessions, None, lock_wait_seconds=0.3)
    async with holder.lock(KEY):
        started = time.monotonic()
        with pytest.raises(TransientError, match="another process has been refreshing"):
            async with asyncio.timeout(3), waiter.lock(KEY):
                pytest.fail("entered a lock another holder has")
        assert time.monotonic() - started < 2
    async with asyncio.timeout(2), waiter.lock(KEY):  # free again once the holder is done
        pass


@needs_postgres
async def test_a_holder_that_hangs_is_cut_off_and_the_lock_freed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hung = DatabaseTokenStore(sessions, None, lock_hold_seconds=0.3)
    other = DatabaseTokenStore(sessions, None)
    with capture_logs() as logs:
        async with hung.lock(KEY):
            started = time.monotonic()
            async with asyncio.timeout(3), other.lock(KEY):
                assert time.monotonic() - started >= 0.25
    (warning,) = warnings_of(logs)  # the hung holder's release: a warning, not an error
    assert "connection was lost" in warning["event"]


# --- real processes on Postgres ---------------------------------------------------------


class RotatingTokenServer:
    """A token endpoint on loopback: refresh tokens rt-0 (configured), then rt-1, rt-2…,
    each valid once (a reused one is 400 invalid_grant); answers after ``delay``."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.forms: list[dict[str, str]] = []
        self.valid = {"rt-0"}
        self.issued = 0
        self._mutex = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = server.answer(dict(parse_qsl(body.decode())))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/oauth2/token"

    def answer(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._mutex:
            self.forms.append(form)
        time.sleep(self.delay)
        with self._mutex:
            if form.get("grant_type") != "refresh_token" or form.get("refresh_token") not in (
                self.valid
            ):
                return 400, {"error": "invalid_grant", "error_description": "spent or unknown"}
            self.valid.discard(form["refresh_token"])
            self.issued += 1
            rotated = f"rt-{self.issued}"
            self.valid.add(rotated)
            return 200, {
                "access_token": f"at-{self.issued}",
                "token_type": "bearer",
                "expires_in": 3600,
                "refresh_token": rotated,
            }


@pytest.fixture
def token_server() -> Iterator[RotatingTokenServer]:
    server = RotatingTokenServer(delay=0.5)
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def result_of(proc: Proc) -> dict[str, Any] | None:
    for line in proc.log_path.read_text(errors="replace").splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line.removeprefix("RESULT ")))
    if proc.popen.poll() is not None:
        raise AssertionError(f"{proc.name} exited without a result:\n{proc.log_tail()}")
    return None


@asynccontextmanager
async def database_store(database_url: str, cipher: Fernet) -> AsyncIterator[DatabaseTokenStore]:
    """A store of its own engine, as another process would have."""
    engine = make_engine(make_settings(database_url))
    try:
        yield DatabaseTokenStore(make_sessionmaker(engine), cipher)
    finally:
        await engine.dispose()


@needs_postgres
def test_two_processes_refresh_a_rotating_token_once(
    database_url: str, token_server: RotatingTokenServer, tmp_path: Path
) -> None:
    key = f"erp-{uuid.uuid4().hex[:8]}:oauth2"
    cipher_key = Fernet.generate_key().decode()
    go = tmp_path / "go"
    env = {
        "TOKEN_DB": database_url,
        "TOKEN_KEY": key,
        "TOKEN_CIPHER": cipher_key,
        "TOKEN_URL": token_server.url,
        "TOKEN_GO": str(go),
    }
    with process_group(tmp_path) as group:
        procs = [
            group.python(name, ["-m", "tests.support.token_process", "refresh"], env)
            for name in ("first", "second")
        ]
        for proc in procs:
            wait_log(proc, "ready", timeout=20)
        go.touch()  # both ask for a token now
        results = [
            poll(partial(result_of, proc), timeout=10, message=f"{proc.name}'s token")
            for proc in procs
        ]
    # one token request; the other process waited for the lock and took the saved token
    assert results == [{"access_token": "at-1"}, {"access_token": "at-1"}]
    assert [form["refresh_token"] for form in token_server.forms] == ["rt-0"]

    async def a_third_process_later() -> tuple[str, dict[str, Any] | None]:
        settings = OAuth2Settings(
            token_url=token_server.url,
            client_id="gateway",
            client_secret="s3cret",
            grant="refresh_token",
            refresh_token="rt-0",  # the config's, spent long ago
        )
        later = time.time() + 7200  # the stored access token has expired
        async with (
            database_store(database_url, Fernet(cipher_key)) as store,
            httpx.AsyncClient(trust_env=False) as http,
        ):
            oauth = OAuth2Tokens(http, settings, store=store, key=key, clock=lambda: later)
            token = await oauth.access_token()
            return token, await store.load(key)

    token_server.delay = 0.0
    token, saved = asyncio.run(a_third_process_later())
    assert token == "at-2"
    assert [form["refresh_token"] for form in token_server.forms] == ["rt-0", "rt-1"]
    assert saved is not None and saved["refresh_token"] == "rt-2"


@needs_postgres
def test_a_process_killed_while_holding_the_lock_releases_it(
    database_url: str, tmp_path: Path
) -> None:
    key = f"erp-{uuid.uuid4().hex[:8]}:oauth2"
    cipher_key = Fernet.generate_key().decode()
    env = {"TOKEN_DB": database_url, "TOKEN_KEY": key, "TOKEN_CIPHER": cipher_key}
    with process_group(tmp_path) as group:
        holder = group.python("holder", ["-m", "tests.support.token_process", "hold"], env)
        wait_log(holder, "locked", timeout=20)

        async def take_the_lock_after_the_kill() -> float:
            entered = asyncio.Event()
            async with database_store(database_url, Fernet(cipher_key)) as store:

                async def take() -> None:
                    async with store.lock(key):
                        entered.set()

                waiting = asyncio.create_task(take())
                await asyncio.sleep(0.5)
                assert not entered.is_set(), "the lock of a live holder was taken"
                holder.kill9()
                killed = time.monotonic()
                await asyncio.wait_for(waiting, timeout=5)
                return time.monotonic() - killed

        waited = asyncio.run(take_the_lock_after_the_kill())
    assert waited < 5
