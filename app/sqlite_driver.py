"""SQLite statements in one trip to the connection's thread.

aiosqlite runs each SQLite connection in a thread of its own and hands it one call at a
time; SQLAlchemy's adapter made four such calls per statement (open a cursor, execute,
fetch the rows, close it), each a wait for the event loop to come back to the caller. Under
load the loop is busy with other requests, so a write transaction of a few statements held
SQLite's one write lock across a dozen loop turns, and every other writer slept in SQLite's
busy handler meanwhile (the embedded default took ~100 webhooks/s). Here a statement is
one call: executed, its rows (up to ``FIRST_ROWS``) read and its cursor closed in the
thread; what is left of a long result is read in further calls, as aiosqlite does.

A cursor of this module looks to SQLAlchemy like aiosqlite's (the methods its adapter
awaits); it builds on aiosqlite's ``Connection``: its queue to the thread (``_execute``)
and the sqlite3 connection there (``_conn``), as aiosqlite's own cursor does.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from contextlib import suppress
from functools import partial
from typing import Any

import aiosqlite

FIRST_ROWS = 1000  # read with the statement; a longer result is read on in batches of this


def connect(database: str, **kwargs: Any) -> OneTripConnection:
    """Like ``aiosqlite.connect``: an awaitable connection (``sqlite3.connect`` arguments)."""
    connection = OneTripConnection(partial(sqlite3.connect, database, **kwargs), 64)
    connection._thread.daemon = True  # as SQLAlchemy does for aiosqlite's own connections
    return connection


class OneTripConnection(aiosqlite.Connection):
    def cursor(self) -> OneTripCursor:  # type: ignore[override]
        return OneTripCursor(self)


def _run(
    db: sqlite3.Connection, sql: str, parameters: Any, many: bool
) -> tuple[sqlite3.Cursor | None, Any, int, int | None, list[Any]]:
    """In the connection's thread: the statement, its first rows; the cursor stays open
    (returned) only when there are more."""
    cursor = db.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchmany(FIRST_ROWS) if cursor.description else []
        found = (cursor.description, cursor.rowcount, cursor.lastrowid, rows)
        if len(rows) == FIRST_ROWS:  # maybe more: the cursor stays open for them
            return (cursor, *found)
        cursor.close()
        return (None, *found)
    except BaseException:
        cursor.close()
        raise


def _read_on(cursor: sqlite3.Cursor) -> list[Any]:
    rows = cursor.fetchmany(FIRST_ROWS)
    if len(rows) < FIRST_ROWS:
        cursor.close()
    return rows


class OneTripCursor:
    """What SQLAlchemy's aiosqlite adapter awaits of a cursor."""

    arraysize = 1

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._open: sqlite3.Cursor | None = None  # a result not read to its end
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> OneTripCursor:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneTripCursor:
        return await self._execute(sql, parameters, many=False)

    async def executemany(self, sql: str, parameters: Any) -> OneTripCursor:
        return await self._execute(sql, parameters, many=True)

    async def _execute(self, sql: str, parameters: Any, *, many: bool) -> OneTripCursor:
        await self.close()
        conn = self._connection
        found = await conn._execute(_run, conn._conn, sql, parameters, many)
        self._open, self.description, self.rowcount, self.lastrowid, rows = found
        self._rows = deque(rows)
        return self

    async def _more(self) -> bool:
        """Read the next batch of a long result; False at its end."""
        if self._open is None:
            return False
        rows = await self._connection._execute(_read_on, self._open)
        if len(rows) < FIRST_ROWS:
            self._open = None  # closed in the thread
        self._rows.extend(rows)
        return bool(rows)

    async def fetchone(self) -> Any:
        if not self._rows and not await self._more():
            return None
        return self._rows.popleft()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = size or self.arraysize
        while len(self._rows) < size and await self._more():
            pass
        return [self._rows.popleft() for _ in range(min(size, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        while await self._more():
            pass
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        if self._open is not None:
            cursor, self._open = self._open, None
            # ValueError: the connection is closed, and its cursors with it
            with suppress(ValueError):
                await self._connection._execute(cursor.close)

    async def setinputsizes(self, *_: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None
