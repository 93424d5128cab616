"""Shared fixtures.

The suite runs against the Postgres and Redis that ``GATEWAY_TEST_DATABASE_URL`` /
``GATEWAY_TEST_REDIS_URL`` name, else those on their default local ports if they answer
(``tests/support/services.py``). Without Postgres it runs on the embedded default (SQLite,
in-process delivery) and skips what needs Postgres or Redis, saying so in one line at the
end. Under CI a missing service fails instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import GatewayConfig, parse_config
from app.settings import Settings
from tests.support import services

FIXTURES = Path(__file__).parent / "fixtures"
POSTGRES = services.postgres(os.environ)
REDIS = services.redis(os.environ)
PG_URL = POSTGRES.url
REDIS_URL = REDIS.url
IN_CI = os.environ.get("CI") == "true"
TEST_DATABASE_PREFIX = "gw_test_"


def _need(*needed: services.Service) -> None:
    """Skip the test (fail it under CI) when a service it needs is missing."""
    missing = [s for s in needed if s.url is None]
    if missing:
        reason = "; ".join(s.skip_reason for s in missing)
        if IN_CI:
            pytest.fail(f"CI must provide it: {reason}")
        pytest.skip(reason)


def require_postgres() -> str:
    _need(POSTGRES)
    assert PG_URL
    return PG_URL


def require_redis() -> str:
    _need(REDIS)
    assert REDIS_URL
    return REDIS_URL


@pytest.fixture
def postgres_url() -> str:
    """The server's URL for a test that needs Postgres itself (skipped without it)."""
    return require_postgres()


def require_services() -> tuple[str, str]:
    _need(POSTGRES, REDIS)
    assert PG_URL and REDIS_URL
    return PG_URL, REDIS_URL


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line at the end: the tests skipped for want of Postgres or Redis, and why."""
    reasons = [
        str(report.longrepr[2])
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple)
    ]
    line = services.skipped_summary(reasons, [POSTGRES, REDIS])
    if line:
        terminalreporter.write_line(line, yellow=True)


def _admin_url(url: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/postgres"


async def _create_pg_database(url: str) -> str:
    name = f"{TEST_DATABASE_PREFIX}{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return f"{url.rpartition('/')[0]}/{name}"


async def _drop_pg_database(url: str) -> None:
    name = url.rpartition("/")[2]
    # only a database this suite created: a developer's own databases are never touched
    assert name.startswith(TEST_DATABASE_PREFIX), name
    engine = create_async_engine(_admin_url(url), isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for this test session."""
    from app.cli import migrate

    if PG_URL:
        url = asyncio.run(_create_pg_database(PG_URL))
    else:
        if IN_CI:
            pytest.fail(f"CI must provide it: {POSTGRES.skip_reason}")
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"
    migrate(url)
    yield url
    if PG_URL:
        asyncio.run(_drop_pg_database(url))


TABLES = (
    "maintenance_windows",
    "incident_notices",
    "incidents",
    "audit_log",
    "oauth_tokens",
    "inbound_reads",
    "erasure_requests",
    "person_refs",
    "worker_heartbeats",
    "findings",
    "stock_levels",
    "price_records",
    "sent_prices",
    "rule_overrides",
    "poll_cursors",
    "customer_matches",
    "stock_pushes",
    "order_allocations",
    "delivery_attempts",
    "deliveries",
    "canonical_events",
    "inbound_events",
    "entity_links",
    "mappings",
    "connection_states",
)


@pytest.fixture
async def clean_db(database_url: str) -> AsyncIterator[str]:
    """The session database, emptied before the test."""
    # the same busy timeout as the gateway's own engine: a loaded machine can be slow to
    # release the previous test's last write
    args = {"timeout": 30} if database_url.startswith("sqlite") else {}
    engine = create_async_engine(database_url, connect_args=args)
    async with engine.begin() as conn:
        for table in TABLES:
            await conn.execute(sa.text(f"DELETE FROM {table}"))
    await engine.dispose()
    yield database_url


@pytest.fixture
def redis_url() -> Iterator[str | None]:
    """Redis for tests that use arq; flushed so jobs of earlier tests are gone."""
    if not REDIS_URL:
        if IN_CI:
            pytest.fail(f"CI must provide it: {REDIS.skip_reason}")
        yield None
        return
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": None,
        "api_keys": "viewer-key:viewer,operator-key:operator",
        "log_format": "console",
        "lease_seconds": 5.0,
        "sweep_interval_seconds": 0.5,
        "worker_concurrency": 4,
    }
    values.update(overrides)
    return Settings(**values)


SHOP_SECRET = "shpss_test_secret"
NS_CREDS = {
    "account_id": "1234567",
    "consumer_key": "ck-test",
    "consumer_secret": "cs-test",
    "token_id": "tk-test",
    "token_secret": "ts-test",
}
NS_WEBHOOK_SECRET = "ns-webhook-test"  # the user-event script's, for routes from erp


def gateway_config_yaml(netsuite_url: str = "http://127.0.0.1:9/ns", **delivery: Any) -> str:
    policy = {
        "retry_window_seconds": 30,
        "backoff_base_seconds": 0.05,
        "backoff_max_seconds": 0.5,
        "breaker_fail_max": 3,
        "breaker_reset_seconds": 1.0,
        "request_timeout_seconds": 2.0,
    } | delivery
    policy_yaml = "\n".join(f"  {k}: {v}" for k, v in policy.items())
    creds = ", ".join(f"{k}: {v}" for k, v in NS_CREDS.items())
    return f"""
connections:
  - id: shop
    type: shopify
    base_url: https://shop.myshopify.com
    credentials: {{webhook_secret: {SHOP_SECRET}, access_token: shpat_test}}
  - id: erp
    type: netsuite
    base_url: {netsuite_url}
    credentials: {{{creds}, webhook_secret: {NS_WEBHOOK_SECRET}}}
    options: {{discount_item_id: "900"}}
routes:
  - {{flow: orders, from: shop, to: erp}}
mappings:
  sku:
    erp: {{"SKU-RED-M": "1042", "SKU-BLUE-L": "959"}}
delivery:
{policy_yaml}
"""


def make_config(netsuite_url: str = "http://127.0.0.1:9/ns", **delivery: Any) -> GatewayConfig:
    return parse_config(gateway_config_yaml(netsuite_url, **delivery), "test-config")


@asynccontextmanager
async def running_app(
    settings: Settings,
    config: GatewayConfig,
    transport_hook: Callable[[Any], Awaitable[None]] | None = None,
    connectors: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The gateway app with its lifespan running, and a client that talks to it in process
    (``connectors``: fakes injected by connection id when the runtime is built)."""
    from app.main import create_app

    app = create_app(settings, config, connectors)
    async with app.router.lifespan_context(app):
        if transport_hook is not None:
            await transport_hook(app)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gateway"
        ) as client:
            yield app, client


async def wait_for(
    predicate: Callable[[], Awaitable[Any]],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    message: str = "condition",
) -> Any:
    """Poll until ``predicate`` returns something truthy; fail with ``message`` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while loop.time() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last: {last!r})")
