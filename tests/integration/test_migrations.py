"""The migration chain: it builds exactly the schema the models describe, 0005 takes the
stored signature headers (replay material) out of rows written before it, and 0007 (OAuth
tokens) goes down and up again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import app.models  # noqa: F401  (the tables)
from alembic import command
from app.ops.search import EXPRESSION_INDEXES
from app.startup import alembic_config


def _comparable(name: str | None, type_: str, parent_names: object) -> bool:
    # expression indexes (an order's number, its lines' SKUs) differ per dialect, so the
    # models do not declare them; app/ops/search.py queries their exact expressions
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def test_a_migrated_database_matches_the_models(database_url: str) -> None:
    async def diff() -> list[object]:
        engine = create_async_engine(database_url)
        async with engine.connect() as conn:
            found = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"include_name": _comparable}),
                    SQLModel.metadata,
                )
            )
        await engine.dispose()
        return list(found)

    assert asyncio.run(diff()) == []


def test_0005_removes_stored_signature_headers(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0004")
    headers = {
        "x-shopify-topic": "orders/create",
        "x-shopify-hmac-sha256": "c2lnbmF0dXJl",
        "webhook-signature": "v1,abc",
    }

    async def run(sql: str, **params: object) -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            result = await conn.execute(sa.text(sql), params)
            rows = list(result) if result.returns_rows else []
        await engine.dispose()
        return rows

    asyncio.run(
        run(
            "INSERT INTO inbound_events (connection_id, topic, dedupe_key, received_at, "
            "headers, body, status) VALUES ('shop', 'orders/create', 'wh-1', "
            "'2026-11-30 10:00:00', :headers, x'7b7d', 'accepted')",
            headers=json.dumps(headers),
        )
    )
    command.upgrade(alembic_config(url), "head")
    ((stored,),) = asyncio.run(run("SELECT headers FROM inbound_events"))
    assert json.loads(str(stored)) == {"x-shopify-topic": "orders/create"}


def test_0007_oauth_tokens_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'tokens.db'}"

    async def tables() -> set[str]:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        await engine.dispose()
        return set(names)

    command.upgrade(alembic_config(url), "head")
    assert "oauth_tokens" in asyncio.run(tables())
    command.downgrade(alembic_config(url), "0006")
    assert "oauth_tokens" not in asyncio.run(tables())
    assert "inbound_reads" in asyncio.run(tables())
    command.upgrade(alembic_config(url), "head")
    assert "oauth_tokens" in asyncio.run(tables())
