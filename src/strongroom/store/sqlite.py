"""SQLite store: the embedded default.

Durability: WAL with `synchronous=FULL`, so a committed activity survives power loss. Commits
are grouped: every write goes to one writer thread, which runs all the writes queued at that
moment in one transaction (each in its own savepoint, so one failing write does not undo the
others) and fsyncs once. Concurrent requests therefore share an fsync instead of queueing
behind one another, and the event loop never waits on the disk.

Reads are point lookups on indexed columns through a separate connection on the event-loop
thread; in WAL mode they never wait for the writer.

Several worker processes (`workers` > 1, `daemon/workers.py`) may open the same file
(`shared=True`). Each has its own group-commit writer; their transactions are serialised by
SQLite's write lock (`BEGIN IMMEDIATE`), taken behind an `flock` on `<db>-writer.lock` so that a
waiting writer is woken the moment the other commits instead of polling in SQLite's busy
handler (sleeps of 1, 2, 5, 10 ... ms). Each batch is still one transaction and one fsync. The
audit chain is read again at every transaction (`EAGER_CHAIN`), so it stays linear. The
repository keeps a lookup only while its organization's `org_state` is unchanged (another process
may have written: `Core.cached`), and `exclusive(name)`
becomes an `flock` on one of 256 files under `<db>-locks/`, which the kernel releases if the
holder dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

from strongroom.errors import Conflict
from strongroom.store import audit, schema
from strongroom.store.group_commit import Job, Param
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

    def __init__(self, path: Path, lock_path: Path | None = None) -> None:
        conn = _connect(path)
        conn.execute("PRAGMA synchronous = FULL")
        super().__init__("sqlite-writer", audit.Chain(conn))
        self._conn = conn
        # Several processes write: an flock taken before SQLite's write lock hands it over at once.
        self._lock_fd = None if lock_path is None else os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        self._locked = False

    def _connection(self) -> sqlite3.Connection:
        return self._conn

    def _commit(self, batch: list[Job]) -> None:
        try:
            super()._commit(batch)
        finally:
            self._unlock()  # whatever happened, the other processes' writers are not kept waiting

    def _unlock(self) -> None:
        if self._locked and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            self._locked = False

    def _begin_transaction(self, conn: audit.Executor) -> None:
        if self._lock_fd is not None and not self._locked:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # the writer thread: blocking is what it is for
            self._locked = True
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._unlock()
            raise

    def _commit_transaction(self, conn: audit.Executor) -> None:
        conn.execute("COMMIT")
        self._unlock()

    def _rollback_transaction(self, conn: audit.Executor) -> None:
        try:
            if self._conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self._unlock()

    def _unique_violation(self, err: BaseException) -> Conflict | None:
        if isinstance(err, sqlite3.IntegrityError) and "UNIQUE" in str(err):
            return Conflict(f"already exists ({str(err).removeprefix('UNIQUE constraint failed: ')})")
        return None

    def _close(self) -> None:
        self._conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)


LOCK_FILES: Final = 256
"""`exclusive(name)` with several processes: names share one of this many lock files (by hash)."""

EXCLUSIVE_POLL_S: Final = 0.005


class SqliteDatabase(WriterDatabase):
    """Connections and the group-commit writer for one SQLite file.

    `shared`: other processes (the daemon's other workers) write to the same file, so cached
    reads would go stale and `exclusive` must hold across processes.
    """

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path: Final = path
        self.shared: Final = shared
        path.parent.mkdir(parents=True, exist_ok=True)
        setup = _connect(path)
        try:
            self.schema_version: Final = migrate(setup)
        finally:
            setup.close()
        self._locks_dir: Final = path.with_name(path.name + "-locks")
        if shared:
            self._locks_dir.mkdir(mode=0o700, exist_ok=True)
        self._read = _connect(path)
        self._writer = _Writer(path, path.with_name(path.name + "-writer.lock") if shared else None)
        self._writer.start()

    # -- reads (event-loop thread) ----------------------------------------------------------
    def one(self, sql: str, params: Sequence[Param] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._read.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Param] = ()) -> list[sqlite3.Row]:
        return list(self._read.execute(sql, params).fetchall())

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Held by one process at a time. One process: its own locks already serialise (nothing
        to do). Several: an flock on the name's lock file (a file description of its own, so two
        tasks of one process exclude each other too), released by the kernel if the holder dies."""
        if not self.shared:
            yield
            return
        bucket = hashlib.sha256(name.encode()).digest()[0] % LOCK_FILES
        fd = os.open(self._locks_dir / f"{bucket:02x}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(EXCLUSIVE_POLL_S)  # held elsewhere: votes are human-paced
            yield
        finally:
            os.close(fd)  # releases the lock

    def close(self) -> None:
        if self._writer.closed:
            return
        self._writer.stop()
        self._read.close()
