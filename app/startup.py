"""Pre-flight checks the commands run before they start serving: one clear line, not a
traceback, when the database cannot be reached or its schema is behind the code.

``serve`` and ``worker`` refuse a database that is not at the latest schema (``erp-gateway
migrate`` fixes it), unless ``GATEWAY_AUTO_MIGRATE=1``: then they migrate it first and log
that they did.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CONNECT_TIMEOUT_SECONDS = 15.0
ASYNC_DRIVERS = ("postgresql+asyncpg://", "sqlite+aiosqlite://")


class StartupError(Exception):
    """Something an operator has to fix before the command can start; ``str`` is one line."""

    exit_code = 2


def display_url(url: str) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("://", 1)[0] + "://…"


def alembic_root() -> Path:
    """Where alembic.ini lives: the source tree, or the working dir of an installed image."""
    for candidate in (ROOT, Path.cwd()):
        if (candidate / "alembic.ini").exists():
            return candidate
    raise StartupError("alembic.ini not found: run from the erp-gateway directory")


def alembic_config(database_url: str | None = None) -> Config:
    from alembic.config import Config

    root = alembic_root()
    cfg = Config(str(root / "alembic.ini"))
    cfg.set_main_option("script_location", str(root / "alembic"))
    cfg.attributes["configure_logger"] = False
    if database_url:
        cfg.attributes["database_url"] = database_url
    return cfg


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The revision the code needs (the newest migration script)."""
    head = _scripts().get_current_head()
    if head is None:
        raise StartupError("no migration scripts found in alembic/versions")
    return head


def _reason(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = " ".join(str(cause).split())
    return text or type(cause).__name__


async def _read_revision(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Connection

    from app.db import make_engine
    from app.settings import Settings

    def revision(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    engine = make_engine(Settings(database_url=database_url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(revision)
    finally:
        await engine.dispose()


def current_revision(database_url: str, timeout: float = CONNECT_TIMEOUT_SECONDS) -> str | None:
    """The database's schema revision (None: empty); StartupError if it cannot be reached."""
    where = display_url(database_url)
    try:
        return asyncio.run(asyncio.wait_for(_read_revision(database_url), timeout))
    except TimeoutError:
        raise StartupError(
            f"cannot reach the database at {where}: no answer within {timeout:g} s"
        ) from None
    except Exception as exc:  # driver, network, permission, bad URL: all one line
        hint = ""
        if not database_url.startswith(ASYNC_DRIVERS):
            hint = f" (the URL must start with {' or '.join(ASYNC_DRIVERS)})"
        raise StartupError(f"cannot reach the database at {where}: {_reason(exc)}{hint}") from None


@dataclass(frozen=True)
class Migration:
    database: str  # display URL
    before: str | None  # None: the database was empty
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        if not self.changed:
            return f"{self.database} is already at the latest schema ({self.after})"
        return f"migrated {self.database} from {self.before or 'empty'} to {self.after}"


def _check_known(database_url: str, revision: str | None) -> None:
    if revision is None:
        return
    from alembic.util.exc import CommandError

    try:
        known = _scripts().get_revision(revision) is not None
    except CommandError:
        known = False
    if not known:
        raise StartupError(
            f"the database at {display_url(database_url)} is at revision {revision}, which "
            "this version of erp-gateway does not know (was it migrated by a newer one?)"
        )


def migrate(database_url: str) -> Migration:
    """Upgrade the database to the latest schema; says from where to where."""
    from alembic import command

    head = head_revision()
    before = current_revision(database_url)
    _check_known(database_url, before)
    if before != head:
        command.upgrade(alembic_config(database_url), "head")
    return Migration(display_url(database_url), before, head)


def ensure_schema(settings: Settings) -> Migration | None:
    """Refuse to start on a database that is not at the code's schema, or (auto_migrate)
    bring it there. Returns the migration made, if any."""
    head = head_revision()
    current = current_revision(settings.database_url)
    if current == head:
        return None
    _check_known(settings.database_url, current)
    if not settings.auto_migrate:
        state = f"at revision {current}" if current else "empty"
        raise StartupError(
            f"the database at {display_url(settings.database_url)} is not migrated ({state}, "
            f"code needs {head}): run `erp-gateway migrate` (or set GATEWAY_AUTO_MIGRATE=1)"
        )
    return migrate(settings.database_url)
