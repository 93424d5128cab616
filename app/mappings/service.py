"""Mapping data: our key → the remote system's key, per kind and connection.

Mappings are data, not code: the config seeds them, operators change them through the API,
and adding a missing one releases the deliveries that were parked waiting for it.

CSV files go to spreadsheets and back, so a cell that a spreadsheet would run as a formula
(starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is exported with a
leading ``'`` (shown as text, never run), and an import takes exactly that ``'`` off again:
export → import gives the same keys. A big import is stored in batches, each committed on its
own, so no transaction is held for longer than one batch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from app.config import GatewayConfig
from app.db import transaction
from app.dbutil import insert_ignore, rowcount, upsert
from app.errors import Unprocessable
from app.models import Mapping, utcnow
from kernel.types import MappingNeed


async def seed_from_config(session: AsyncSession, config: GatewayConfig) -> int:
    """Insert the config's mappings that the database does not have yet (API edits win)."""
    rows = [
        {
            "kind": kind,
            "connection_id": conn,
            "our_key": ours,
            "their_key": theirs,
            "origin": "config",
            "updated_at": utcnow(),
        }
        for kind, per_conn in config.mappings.items()
        for conn, entries in per_conn.items()
        for ours, theirs in entries.items()
    ]
    if not rows:
        return 0
    result = await insert_ignore(session, Mapping, rows, key=["kind", "connection_id", "our_key"])
    return rowcount(result)


async def resolve(
    session: AsyncSession, connection_id: str, needs: Iterable[MappingNeed]
) -> tuple[dict[str, dict[str, str]], list[MappingNeed]]:
    """Look up every need; return (kind → our → their, the needs that have no mapping)."""
    needs = list(dict.fromkeys(needs))
    if not needs:
        return {}, []
    kinds = {n.kind for n in needs}
    keys = {n.key for n in needs}
    rows = await session.execute(
        sa.select(col(Mapping.kind), col(Mapping.our_key), col(Mapping.their_key)).where(
            col(Mapping.connection_id) == connection_id,
            col(Mapping.kind).in_(kinds),
            col(Mapping.our_key).in_(keys),
        )
    )
    found: dict[str, dict[str, str]] = {}
    for kind, ours, theirs in rows:
        found.setdefault(kind, {})[ours] = theirs
    missing = [n for n in needs if n.key not in found.get(n.kind, {})]
    return found, missing


# Rows per INSERT: 6 bind parameters each stays far below SQLite's and asyncpg's 32 767.
UPSERT_CHUNK = 1000


async def upsert_entries(
    session: AsyncSession, kind: str, connection_id: str, entries: dict[str, str]
) -> int:
    """Insert or overwrite entries (in chunks, so any size fits one statement's limits)."""
    if not entries:
        return 0
    now = utcnow()
    items = list(entries.items())
    for start in range(0, len(items), UPSERT_CHUNK):
        await upsert(
            session,
            Mapping,
            [
                {
                    "kind": kind,
                    "connection_id": connection_id,
                    "our_key": ours,
                    "their_key": theirs,
                    "origin": "api",
                    "updated_at": now,
                }
                for ours, theirs in items[start : start + UPSERT_CHUNK]
            ],
            key=["kind", "connection_id", "our_key"],
            update=["their_key", "origin", "updated_at"],
        )
    return len(items)


async def list_entries(
    session: AsyncSession, kind: str, connection_id: str, *, after: str | None, limit: int
) -> list[Mapping]:
    query = sa.select(Mapping).where(
        col(Mapping.kind) == kind, col(Mapping.connection_id) == connection_id
    )
    if after is not None:
        query = query.where(col(Mapping.our_key) > after)
    result = await session.execute(query.order_by(col(Mapping.our_key)).limit(limit))
    return list(result.scalars())


async def delete_entries(
    session: AsyncSession, kind: str, connection_id: str, keys: list[str] | None
) -> int:
    stmt = sa.delete(Mapping).where(
        col(Mapping.kind) == kind, col(Mapping.connection_id) == connection_id
    )
    if keys is not None:
        stmt = stmt.where(col(Mapping.our_key).in_(keys))
    result = await session.execute(stmt)
    return rowcount(result)


# --- CSV import / export ------------------------------------------------------------------

CSV_HEADER = ("our_key", "their_key")
CSV_KEY_MAX = 256  # the columns' length
MAX_CSV_ROWS = 100_000  # entries per imported file
IMPORT_BATCH = 1000  # entries per statement and commit of an import
EXPORT_CHUNK = 5000
DELETE_CHUNK = 1000
MAX_CSV_PROBLEMS = 10  # reported per refused file; enough to fix a batch at once

# What spreadsheets (Excel, LibreOffice, Google Sheets) read as the start of a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TEXT_PREFIX = "'"


def _runs_as_formula(value: str) -> bool:
    # also behind apostrophes: "'=x" is exported as "''=x", so the import gives "'=x" back
    return value.lstrip(TEXT_PREFIX).startswith(FORMULA_START)


def guard_cell(value: str) -> str:
    """A cell a spreadsheet would run as a formula, made text with a leading ``'``."""
    return TEXT_PREFIX + value if _runs_as_formula(value) else value


def unguard_cell(value: str) -> str:
    """What ``guard_cell`` added, taken off: exactly one leading ``'`` before a formula start."""
    if value.startswith(TEXT_PREFIX) and _runs_as_formula(value[1:]):
        return value[1:]
    return value


def _csv_text(rows: Iterable[tuple[str, str]]) -> str:
    buffer = io.StringIO()
    # quotes keys with commas, quotes or newlines; formulas leave as text
    csv.writer(buffer).writerows((guard_cell(ours), guard_cell(theirs)) for ours, theirs in rows)
    return buffer.getvalue()


async def export_csv(
    sessions: async_sessionmaker[AsyncSession], kind: str, connection_id: str
) -> AsyncIterator[str]:
    """Every entry as CSV, ordered by our key, read in keyset chunks so memory stays flat."""
    yield _csv_text([CSV_HEADER])
    after: str | None = None
    async with sessions() as session:
        while True:
            query = sa.select(col(Mapping.our_key), col(Mapping.their_key)).where(
                col(Mapping.kind) == kind, col(Mapping.connection_id) == connection_id
            )
            if after is not None:
                query = query.where(col(Mapping.our_key) > after)
            rows = (
                await session.execute(query.order_by(col(Mapping.our_key)).limit(EXPORT_CHUNK))
            ).all()
            if not rows:
                return
            yield _csv_text((ours, theirs) for ours, theirs in rows)
            if len(rows) < EXPORT_CHUNK:
                return
            after = rows[-1][0]


def _refuse(problems: list[str]) -> Unprocessable:
    shown = "; ".join(problems[:MAX_CSV_PROBLEMS])
    more = len(problems) - MAX_CSV_PROBLEMS
    suffix = f"; and {more} more" if more > 0 else ""
    return Unprocessable(
        f"the CSV was refused, nothing was stored: {shown}{suffix}",
        hint="the first line must be the header our_key,their_key; then one entry per line "
        "(UTF-8, quote fields that contain commas)",
    )


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")  # a spreadsheet's byte order mark is fine
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _refuse([f"line {line}: not UTF-8 (byte {exc.start})"]) from None


def _header_columns(row: list[str], line: int) -> tuple[int, int]:
    names = [name.strip().lower() for name in row]
    missing = [name for name in CSV_HEADER if name not in names]
    if missing:
        raise _refuse(
            [f"line {line}: the header has no {' or '.join(missing)} column (got: {','.join(row)})"]
        )
    return names.index("our_key"), names.index("their_key")


def _too_many_rows() -> Unprocessable:
    return Unprocessable(
        f"the CSV has more than {MAX_CSV_ROWS} entries, nothing was stored",
        hint=f"split it into files of at most {MAX_CSV_ROWS} entries and import them one "
        "after the other (without replace=true)",
    )


def parse_csv(data: bytes) -> dict[str, str]:
    """A mapping CSV → our key → their key; every problem (with its line) refuses the file."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    columns: tuple[int, int] | None = None
    entries: dict[str, str] = {}
    first_seen: dict[str, int] = {}
    problems: list[str] = []
    line = 1
    rows = 0
    try:
        for row in reader:
            start, line = line, reader.line_num + 1  # a quoted field may span lines
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if columns is None:
                columns = _header_columns(row, start)
                continue
            rows += 1
            if rows > MAX_CSV_ROWS:
                raise _too_many_rows()
            values: dict[str, str] = {}
            for name, index in zip(CSV_HEADER, columns, strict=True):
                value = unguard_cell(row[index].strip()) if index < len(row) else None
                if value is None:
                    problems.append(f"line {start}: missing {name}")
                elif not value:
                    problems.append(f"line {start}: empty {name}")
                elif "\x00" in value:
                    problems.append(f"line {start}: {name} contains a NUL character")
                elif len(value) > CSV_KEY_MAX:
                    problems.append(f"line {start}: {name} longer than {CSV_KEY_MAX} characters")
                else:
                    values[name] = value
            if len(values) < 2:
                continue
            ours, theirs = values["our_key"], values["their_key"]
            if ours in entries and entries[ours] != theirs:
                problems.append(
                    f"line {start}: our_key {ours!r} again with a different their_key "
                    f"({theirs!r}; line {first_seen[ours]} has {entries[ours]!r})"
                )
                continue
            entries.setdefault(ours, theirs)
            first_seen.setdefault(ours, start)
    except csv.Error as exc:
        raise _refuse([f"line {reader.line_num}: {exc}"]) from None
    if columns is None:
        raise _refuse(["the file is empty"])
    if problems:
        raise _refuse(problems)
    return entries


# --- importing in batches -------------------------------------------------------------------


@dataclass(frozen=True)
class ImportProgress:
    stage: str  # upsert | delete
    done: int
    total: int


ProgressCallback = Callable[[ImportProgress], None]


async def import_entries(
    sessions: async_sessionmaker[AsyncSession],
    kind: str,
    connection_id: str,
    entries: dict[str, str],
    *,
    replace: bool,
    progress: ProgressCallback | None = None,
) -> tuple[int, int]:
    """Store a parsed file: upsert ``IMPORT_BATCH`` entries per transaction, then (replace)
    delete the entries not in the file, a batch per transaction. Returns (updated, deleted).

    Each batch commits on its own, so a 100 000-line file never holds a transaction (or
    SQLite's write lock) for more than one batch, and the API answers meanwhile. If it fails
    half way, what was committed stays: upserts are idempotent, importing the file again
    finishes it.
    """
    items = list(entries.items())
    for start in range(0, len(items), IMPORT_BATCH):
        async with transaction(sessions) as session:
            await upsert_entries(
                session, kind, connection_id, dict(items[start : start + IMPORT_BATCH])
            )
        if progress is not None:
            progress(ImportProgress("upsert", min(start + IMPORT_BATCH, len(items)), len(items)))
    deleted = 0
    if replace:
        async with sessions() as session:
            existing = (
                await session.execute(
                    sa.select(col(Mapping.our_key)).where(
                        col(Mapping.kind) == kind, col(Mapping.connection_id) == connection_id
                    )
                )
            ).scalars()
            gone = sorted(key for key in existing if key not in entries)
        for start in range(0, len(gone), DELETE_CHUNK):
            async with transaction(sessions) as session:
                deleted += await delete_entries(
                    session, kind, connection_id, gone[start : start + DELETE_CHUNK]
                )
            if progress is not None:
                progress(ImportProgress("delete", min(start + DELETE_CHUNK, len(gone)), len(gone)))
    return len(items), deleted
