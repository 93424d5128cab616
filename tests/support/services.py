"""Which Postgres and Redis the test suite uses, found once at session start.

``GATEWAY_TEST_DATABASE_URL`` / ``GATEWAY_TEST_REDIS_URL`` are used as given. Without them
the suite tries the local defaults (Postgres as user postgres, Redis db 15) with a short
connect; what does not answer is missing, and the tests that need it are skipped with one
reason naming it (``skip_reason``), which the end-of-run summary counts.

The suite only ever creates and drops its own ``gw_test_*`` databases on that server (the
``postgres`` database is only connected to for that), and empties only its Redis db.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
CONNECT_TIMEOUT_SECONDS = 2.0
REDIS_DATABASES = 16  # a default Redis server's ``databases``


@dataclass(frozen=True)
class Service:
    name: str  # PostgreSQL, Redis
    variable: str  # the variable that names it
    tried: str  # the URL given or probed
    url: str | None  # the URL to use; None: missing
    why: str = ""  # what the probe saw, when missing

    @property
    def skip_reason(self) -> str:
        return (
            f"{self.name} not reachable at {_where(self.tried)} ({self.why}); "
            f"start it or set {self.variable}"
        )


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 120 else text[:120] + "…"


async def _postgres_answers(url: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()


def _redis_answers(url: str) -> None:
    import redis

    client = redis.Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=CONNECT_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


def postgres(env: Mapping[str, str], default: str | None = None) -> Service:
    default = default or DEFAULT_DATABASE_URL
    variable = "GATEWAY_TEST_DATABASE_URL"
    if env.get(variable):
        return Service("PostgreSQL", variable, env[variable], env[variable])
    try:
        asyncio.run(_postgres_answers(default))
    except Exception as exc:
        return Service("PostgreSQL", variable, default, None, _short(exc))
    return Service("PostgreSQL", variable, default, default)


def redis(env: Mapping[str, str], default: str | None = None) -> Service:
    default = for_xdist_worker(default or DEFAULT_REDIS_URL, env.get("PYTEST_XDIST_WORKER"))
    variable = "GATEWAY_TEST_REDIS_URL"
    if env.get(variable):
        given = for_xdist_worker(env[variable], env.get("PYTEST_XDIST_WORKER"))
        return Service("Redis", variable, given, given)
    try:
        _redis_answers(default)
    except Exception as exc:
        return Service("Redis", variable, default, None, _short(exc))
    return Service("Redis", variable, default, default)


def for_xdist_worker(url: str, worker: str | None) -> str:
    """The Redis db of one pytest-xdist worker (``gw0``, ``gw1``, …): the given db for the
    first, the ones below it for the others, so no worker flushes another's jobs. Each
    worker's Postgres database is its own already (``tests/conftest.py``)."""
    if not worker or not worker.startswith("gw") or not worker[2:].isdigit():
        return url
    parts = urlsplit(url)
    given = parts.path.strip("/")
    db = (int(given) if given.isdigit() else 0) - int(worker[2:])
    return parts._replace(path=f"/{db % REDIS_DATABASES}").geturl()


def skipped_summary(reasons: Iterable[str], services: Iterable[Service]) -> str | None:
    """One line: how many tests were skipped for want of a service, and what to do."""
    missing = [s for s in services if s.url is None]
    count = sum(1 for r in reasons if any(s.skip_reason in r for s in missing))
    if not count:
        return None
    noun = "test" if count == 1 else "tests"
    return f"skipped {count} {noun}: " + "; ".join(s.skip_reason for s in missing)
