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
from typing import Any, Final

from strongroom.errors import Conflict, StrongroomError
from strongroom.store import audit, schema
from strongroom.store import notary as notarisation
from strongroom.store.group_commit import GroupCommitWriter, Job, Op, Param

EXPECT_ROW: Final = " -- strongroom: expect a row"
"""Suffix of a conditional UPDATE that must change a row: if it changes none (another writer,
perhaps another replica, got there first), the job is undone and answered with `Conflict`."""


class StaleWrite(Exception):
    """A conditional write (`EXPECT_ROW`) matched no row."""


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


class _Writer(GroupCommitWriter):
    def __init__(self, path: Path) -> None:
        super().__init__("sqlite-writer")
        self.notary: notarisation.WriterNotary | None = None
        self._conn = _connect(path)
        self._conn.execute("PRAGMA synchronous = FULL")
        self.chain = audit.Chain(self._conn)

    def _execute(self, sql: str, params: Sequence[Param]) -> None:
        if sql == audit.AUDIT_OP:
            body = params[0]
            assert isinstance(body, bytes)
            self.chain.append(self._conn, body)
        else:
            cur = self._conn.execute(sql, params)
            if cur.rowcount == 0 and sql.endswith(EXPECT_ROW):
                raise StaleWrite(sql)

    def _query(self, sql: str, params: Sequence[Param]) -> list[sqlite3.Row]:
        return self._conn.execute(sql, params).fetchall()

    def _apply(self, job: Job) -> None:
        notarisation.apply(job.ops, self._query, self._execute, self.notary)

    def _commit(self, batch: list[Job]) -> None:
        if not self._commit_fast(batch):
            self._commit_isolated(batch)

    def _close(self) -> None:
        self._conn.close()

    def translate(self, err: BaseException) -> BaseException:
        return _translate(err)

    def _commit_fast(self, batch: list[Job]) -> bool:
        """The whole batch in one transaction; False (and nothing written) if any write fails."""
        conn = self._conn
        head = self.chain.state()
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.chain.reload(conn)
            for job in batch:
                self._apply(job)
            conn.execute("COMMIT")
        except (sqlite3.Error, StaleWrite, StrongroomError):
            self.chain.restore(head)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            return False
        self.failure = None
        return True

    def _commit_isolated(self, batch: list[Job]) -> None:
        """Each job in its own savepoint, so one failing job does not undo the others."""
        conn = self._conn
        head = self.chain.state()
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.chain.reload(conn)
            for i, job in enumerate(batch):
                conn.execute(f"SAVEPOINT j{i}")
                job_head = self.chain.state()
                try:
                    self._apply(job)
                    conn.execute(f"RELEASE j{i}")
                except (sqlite3.Error, StaleWrite, StrongroomError) as err:
                    self.chain.restore(job_head)
                    conn.execute(f"ROLLBACK TO j{i}")
                    conn.execute(f"RELEASE j{i}")
                    job.error = err
            conn.execute("COMMIT")
            self.failure = None
        except (sqlite3.Error, audit.ChainRewritten) as err:
            self.chain.restore(head)
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.failure = f"the store cannot be written: {err}"
            for job in batch:
                job.error = job.error or err


def _translate(err: BaseException) -> BaseException:
    if isinstance(err, StaleWrite):
        return Conflict("the activity was changed concurrently; read it again")
    if isinstance(err, sqlite3.IntegrityError) and "UNIQUE" in str(err):
        return Conflict(f"already exists ({str(err).removeprefix('UNIQUE constraint failed: ')})")
    return err


class SqliteDatabase:
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

    # -- writes (group commit) --------------------------------------------------------------
    async def write(self, ops: Sequence[Op]) -> None:
        """Run `ops` atomically; returns once they are durable on disk."""
        await self._writer.write(ops)

    def write_sync(self, ops: Sequence[Op]) -> None:
        """Blocking variant for command-line tools (no event loop)."""
        self._writer.write_sync(ops)

    def set_notary(self, mac: notarisation.Mac | None) -> None:
        """From now on, the writer notarises the organizations that writes mark (see store/notary.py)."""
        self._writer.notary = None if mac is None else notarisation.WriterNotary(mac)

    @property
    def failure(self) -> str | None:
        """Why the store cannot be written right now (None when it can)."""
        return self._writer.failure

    async def probe(self) -> bool:
        """An empty transaction through the writer: clears `failure` when writes work again."""
        return await self._writer.probe()

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Held by one process at a time: SQLite has one daemon, whose own locks already serialise."""
        yield

    def audit_head(self) -> tuple[int, str]:
        row = self.one("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        return (0, audit.GENESIS) if row is None else (int(row["seq"]), str(row["hash"]))

    def stats(self) -> dict[str, Any]:
        return {"batches": self._writer.batches, "jobs": self._writer.jobs}

    def close(self) -> None:
        if self._writer.closed:
            return
        self._writer.stop()
        self._read.close()
