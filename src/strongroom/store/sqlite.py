"""SQLite store: the embedded default.

Durability: WAL with `synchronous=FULL`, so a committed activity survives power loss. Commits
are grouped: every write goes to one writer thread, which runs all the writes queued at that
moment in one transaction (each in its own savepoint, so one failing write does not undo the
others) and fsyncs once. Concurrent requests therefore share an fsync instead of queueing
behind one another, and the event loop never waits on the disk.

Reads are point lookups on indexed columns through a separate connection on the event-loop
thread; in WAL mode they never wait for the writer.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

from strongroom.errors import Conflict
from strongroom.store import audit, schema
from strongroom.store.group_commit import Param
from strongroom.store.writer import StoreWriter, WriterDatabase

MIGRATIONS: Final = schema.migrations("sqlite")
"""The statements of each schema version (`store/schema.py` describes the schema once)."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; returns the schema version."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(schema.VERSION_TABLE)
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, statements in schema.pending(MIGRATIONS, current):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = version
    return int(current)


class _Writer(StoreWriter):
    EAGER_CHAIN = True  # the write transaction is exclusive: the chain is read at each one
    DB_ERROR = sqlite3.Error
    JOB_ERROR = sqlite3.Error

    def __init__(self, path: Path) -> None:
        conn = _connect(path)
        conn.execute("PRAGMA synchronous = FULL")
        super().__init__("sqlite-writer", audit.Chain(conn))
        self._conn = conn

    def _connection(self) -> sqlite3.Connection:
        return self._conn

    def _begin_transaction(self, conn: audit.Executor) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def _commit_transaction(self, conn: audit.Executor) -> None:
        conn.execute("COMMIT")

    def _rollback_transaction(self, conn: audit.Executor) -> None:
        if self._conn.in_transaction:
            conn.execute("ROLLBACK")

    def _unique_violation(self, err: BaseException) -> Conflict | None:
        if isinstance(err, sqlite3.IntegrityError) and "UNIQUE" in str(err):
            return Conflict(f"already exists ({str(err).removeprefix('UNIQUE constraint failed: ')})")
        return None

    def _close(self) -> None:
        self._conn.close()


class SqliteDatabase(WriterDatabase):
    """Connections and the group-commit writer for one SQLite file."""

    shared: Final = False  # only this process writes: cached reads stay valid until it writes

    def __init__(self, path: Path) -> None:
        self.path: Final = path
        path.parent.mkdir(parents=True, exist_ok=True)
        setup = _connect(path)
        try:
            self.schema_version: Final = migrate(setup)
        finally:
            setup.close()
        self._read = _connect(path)
        self._writer = _Writer(path)
        self._writer.start()

    # -- reads (event-loop thread) ----------------------------------------------------------
    def one(self, sql: str, params: Sequence[Param] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._read.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Param] = ()) -> list[sqlite3.Row]:
        return list(self._read.execute(sql, params).fetchall())

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Held by one process at a time: SQLite has one daemon, whose own locks already serialise."""
        yield

    def close(self) -> None:
        if self._writer.closed:
            return
        self._writer.stop()
        self._read.close()
