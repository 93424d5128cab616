"""A process of its own around the database token store, for the cross-process tests
(tests/integration/test_token_store.py): ``python -m tests.support.token_process MODE``.

``refresh``: builds OAuth2Tokens (refresh-token grant) over a DatabaseTokenStore, prints
``ready`` once connected, waits for the file TOKEN_GO to exist, asks for an access token
and prints ``RESULT {"access_token": …}`` (or ``RESULT {"error": …}``).
``hold``: takes the store's lock on TOKEN_KEY, prints ``locked`` and sleeps (until killed).

Environment: TOKEN_DB (database URL), TOKEN_KEY (the token's key in the store),
TOKEN_CIPHER (a Fernet key), and for ``refresh`` TOKEN_URL and TOKEN_GO.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import make_sessionmaker
from app.tokens import DatabaseTokenStore
from connectors._kit.oauth2 import OAuth2Settings, OAuth2Tokens

CLIENT_ID = "gateway"
CLIENT_SECRET = "s3cret"
CONFIGURED_REFRESH_TOKEN = "rt-0"


def say(line: str) -> None:
    print(line, flush=True)


def wait_for(path: Path) -> None:
    while not path.exists():
        time.sleep(0.002)


async def refresh(store: DatabaseTokenStore, key: str) -> None:
    settings = OAuth2Settings(
        token_url=os.environ["TOKEN_URL"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        grant="refresh_token",
        refresh_token=CONFIGURED_REFRESH_TOKEN,
    )
    go = Path(os.environ["TOKEN_GO"])
    async with httpx.AsyncClient(trust_env=False) as http:
        oauth = OAuth2Tokens(http, settings, store=store, key=key)
        await store.load(key)  # connected: the race starts when both are
        say("ready")
        await asyncio.to_thread(wait_for, go)
        try:
            result = {"access_token": await oauth.access_token()}
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        say("RESULT " + json.dumps(result))


async def hold(store: DatabaseTokenStore, key: str) -> None:
    async with store.lock(key):
        say("locked")
        await asyncio.sleep(3600)


async def main(mode: str) -> None:
    engine = create_async_engine(os.environ["TOKEN_DB"])
    store = DatabaseTokenStore(make_sessionmaker(engine), Fernet(os.environ["TOKEN_CIPHER"]))
    try:
        await {"refresh": refresh, "hold": hold}[mode](store, os.environ["TOKEN_KEY"])
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
