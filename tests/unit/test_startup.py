"""Start-up pre-flight: a database that is not migrated or cannot be reached is one clear
line and exit 2, never a traceback; ``migrate`` says what it did."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from alembic import command
from app.settings import Settings
from app.startup import (
    StartupError,
    alembic_config,
    current_revision,
    display_url,
    ensure_schema,
    head_revision,
)
from tests.support.processes import ROOT, free_port, process_group, wait_http

HEAD = head_revision()  # read from the migration scripts: a new one moves it


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "GATEWAY_LOG_FORMAT": "json", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_serve_on_an_empty_database_says_run_migrate_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    result = cli("serve", "--port", str(free_port()), env={"GATEWAY_DATABASE_URL": sqlite_url(db)})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert f"the database at {sqlite_url(db)} is not migrated (empty, code needs {HEAD})" in line
    assert line.endswith("run `erp-gateway migrate` (or set GATEWAY_AUTO_MIGRATE=1)")


def test_worker_refuses_a_database_that_is_behind(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "old.db")
    command.upgrade(alembic_config(url), "0002")
    env = {"GATEWAY_DATABASE_URL": url, "GATEWAY_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = cli("worker", env=env)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert f"is not migrated (at revision 0002, code needs {HEAD})" in line


def test_an_unreachable_database_is_one_line_without_the_password() -> None:
    url = f"postgresql+asyncpg://gateway:pa55word@127.0.0.1:{free_port()}/gateway"
    result = cli("serve", env={"GATEWAY_DATABASE_URL": url})
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert "cannot reach the database at postgresql+asyncpg://gateway:***@127.0.0.1" in line
    assert "pa55word" not in result.stderr


def test_migrate_says_from_where_to_where(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    db.touch()
    env = {"GATEWAY_DATABASE_URL": sqlite_url(db)}
    first = cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"migrated {sqlite_url(db)} from empty to {HEAD}\n"
    again = cli("migrate", env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == f"{sqlite_url(db)} is already at the latest schema ({HEAD})\n"


def test_serve_with_auto_migrate_migrates_then_serves(tmp_path: Path) -> None:
    db = tmp_path / "auto.db"
    db.touch()
    port = free_port()
    env = {
        "GATEWAY_DATABASE_URL": sqlite_url(db),
        "GATEWAY_AUTO_MIGRATE": "1",
        "GATEWAY_LOG_FORMAT": "json",
        "PYTHONUNBUFFERED": "1",
    }
    with process_group(tmp_path) as group:
        gateway = group.python("gateway", ["-m", "app.cli", "serve", "--port", str(port)], env)
        wait_http(f"http://127.0.0.1:{port}/healthz", gateway)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        log = gateway.log_path.read_text()
    assert f"migrated {sqlite_url(db)} from empty to {HEAD}" in log
    assert current_revision(sqlite_url(db)) == HEAD


def test_ensure_schema_leaves_a_current_database_alone(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "current.db")
    command.upgrade(alembic_config(url), "head")
    assert ensure_schema(Settings(database_url=url)) is None


def test_a_revision_the_code_does_not_know_is_refused_even_with_auto_migrate(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "newer.db"
    command.upgrade(alembic_config(sqlite_url(path)), "head")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StartupError, match=r"revision 9999, which this version .* does not know"):
        ensure_schema(Settings(database_url=sqlite_url(path), auto_migrate=True))


def test_display_url_hides_the_password() -> None:
    assert display_url("postgresql+asyncpg://u:secret@db/x") == "postgresql+asyncpg://u:***@db/x"
    assert display_url("sqlite+aiosqlite:///./var/gateway.db") == (
        "sqlite+aiosqlite:///./var/gateway.db"
    )


def test_serve_with_more_workers_on_sqlite_says_why_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    result = cli("serve", "--workers", "2", env={"GATEWAY_DATABASE_URL": sqlite_url(db)})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs PostgreSQL" in lines[0] and "--workers 1" in lines[0]
    assert not db.exists()  # refused before anything was touched


def test_serve_refuses_zero_workers(tmp_path: Path) -> None:
    result = cli(
        "serve", "--workers", "0", env={"GATEWAY_DATABASE_URL": sqlite_url(tmp_path / "g.db")}
    )
    assert result.returncode == 2 and "must be 1 or more" in result.stderr
