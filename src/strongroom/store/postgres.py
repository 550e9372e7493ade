"""PostgreSQL store: one database shared by several stateless daemon replicas.

The same interface as `SqliteDatabase`, so the `Repository` runs unchanged: reads are
synchronous point lookups on the event-loop thread (psycopg 3's blocking API on a Unix socket
or loopback costs ~0.1-0.3 ms each); writes go to one writer thread per process that commits
everything queued at that moment in one transaction (group commit, each job in its own
savepoint). SQL keeps SQLite's `?` placeholders and is translated here.

What changes with several writers:
- the audit chain: every transaction that appends to it first takes a transaction-scoped
  advisory lock (`pg_advisory_xact_lock`), then reads the head (seq, hash) from the database,
  never from memory, so the chain stays linear however many replicas append;
- `exclusive(name)`: a session-level advisory lock held across an await (a vote's decision and
  execution), released when the block ends or, if the replica dies, when its connection drops;
- reads are never cached by the repository (`shared`): another replica may have written.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from strongroom.errors import ConfigError, Conflict
from strongroom.store import audit, schema
from strongroom.store.group_commit import Op, Param
from strongroom.store.writer import CHAIN_OPS, EXPECT_ROW, StaleWrite, StoreWriter, WriterDatabase

NEEDS_EXTRA: Final = (
    "PostgreSQL (`database_url`) needs psycopg, the `postgres` extra: pip install 'strongroom[postgres]'"
    " (or scripts/bootstrap VENV postgres)"
)

try:
    import psycopg
    import psycopg.errors
except ImportError:  # the [postgres] extra is not installed: say which, once, in one line
    raise ConfigError(NEEDS_EXTRA) from None


def connect(url: str) -> psycopg.Connection[Any]:
    """A plain autocommit connection (`strongroom audit verify --database-url`)."""
    return psycopg.connect(url, autocommit=True)


MIGRATIONS: Final = schema.migrations("postgres")
"""The statements of each schema version (`store/schema.py` describes the schema once)."""

# Advisory-lock keys (64-bit): one for migrations, one for the audit chain head.
_MIGRATION_LOCK: Final = 0x5354524F4E470001
_AUDIT_LOCK: Final = 0x5354524F4E470002


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for `name`."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """SQLite's `?` placeholders to psycopg's `%s` (a literal `%` is doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


class Row:
    """A result row readable by column name or by position, like `sqlite3.Row`."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], Row]:
    index = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


def _connect(url: str, *, autocommit: bool) -> psycopg.Connection[Row]:
    return psycopg.connect(url, autocommit=autocommit, row_factory=_row_factory)


def migrate(conn: psycopg.Connection[Row]) -> int:
    """Apply pending migrations under an advisory lock (replicas may start together)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(schema.VERSION_TABLE)
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0] or 0) if row is not None else 0
        for version, statements in schema.pending(MIGRATIONS, current):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
            current = version
    return current


class _Translated:
    """A psycopg connection that takes SQLite's `?` placeholders, as the store's SQL is written."""

    __slots__ = ("conn",)

    def __init__(self, conn: psycopg.Connection[Row]) -> None:
        self.conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> psycopg.Cursor[Row]:
        return self.conn.execute(translate(sql), parameters)


def _lock_chain(conn: audit.Executor) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(?)", (_AUDIT_LOCK,))


class _Writer(StoreWriter):
    EAGER_CHAIN = False  # the chain lock is taken only by batches that append
    DB_ERROR = psycopg.Error
    JOB_ERROR = psycopg.errors.DatabaseError

    def __init__(self, url: str) -> None:
        super().__init__("postgres-writer", audit.Chain(lock=_lock_chain))
        self._url = url
        self._conn: psycopg.Connection[Row] | None = _connect(url, autocommit=False)

    def _connection(self) -> _Translated:
        if self._conn is None or self._conn.broken or self._conn.closed:
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None
            self._conn = _connect(self._url, autocommit=False)
        return _Translated(self._conn)

    def _commit_transaction(self, conn: audit.Executor) -> None:
        assert isinstance(conn, _Translated)
        conn.conn.commit()

    def _rollback_transaction(self, conn: audit.Executor) -> None:
        assert isinstance(conn, _Translated)
        with contextlib.suppress(psycopg.Error):
            conn.conn.rollback()

    def _connection_lost(self, conn: audit.Executor, err: BaseException) -> bool:
        assert isinstance(conn, _Translated)
        return isinstance(err, psycopg.errors.OperationalError) and conn.conn.broken

    def _unique_violation(self, err: BaseException) -> Conflict | None:
        if isinstance(err, psycopg.errors.UniqueViolation):
            return Conflict(f"already exists ({err.diag.constraint_name or 'unique constraint'})")
        return None

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()


class PostgresDatabase(WriterDatabase):
    """Connections and the group-commit writer for one PostgreSQL database (libpq URL)."""

    shared: Final = True  # other replicas write too: the repository does not cache reads

    def __init__(self, url: str) -> None:
        self.url: Final = url
        setup = _connect(url, autocommit=True)
        try:
            self.schema_version: Final = migrate(setup)
        finally:
            setup.close()
        self._read = _connect(url, autocommit=True)
        self._writer = _Writer(url)
        self._writer.start()
        self._lock_conns: list[psycopg.AsyncConnection[Any]] = []

    # -- reads (event-loop thread) ----------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[Param]) -> psycopg.Cursor[Row]:
        if self._read.broken or self._read.closed:
            self._read = _connect(self.url, autocommit=True)
        return self._read.execute(translate(sql), params)

    def one(self, sql: str, params: Sequence[Param] = ()) -> Row | None:
        return self._execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        return self._execute(sql, params).fetchall()

    # -- cross-replica mutual exclusion -----------------------------------------------------
    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Held by one process of all replicas at a time (a session advisory lock).

        If this process dies while holding it, PostgreSQL ends the session and releases it.
        """
        conn = await self._spare()
        key = lock_key(name)
        try:
            await conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except BaseException:
            await conn.close()
            raise
        try:
            yield
        finally:
            try:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            except BaseException:
                await conn.close()  # the session's end releases the lock
                raise
            await self._put_back(conn)

    # -- connections of their own (not the writer's) -----------------------------------------------
    async def _spare(self) -> psycopg.AsyncConnection[Any]:
        conn = self._lock_conns.pop() if self._lock_conns else None
        if conn is None or conn.closed or conn.broken:
            conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        return conn

    async def _put_back(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if len(self._lock_conns) < 8:
            self._lock_conns.append(conn)
        else:
            await conn.close()

    async def write_alone(self, ops: Sequence[Op]) -> None:
        """Run `ops` in a short transaction of their own, outside the group commit.

        The row locks they take are then the only locks that transaction holds, so it cannot join a
        lock-order cycle with the writers' batches (of this replica or another). Plain statements
        only: no audit append, no notarisation. A conditional statement (`EXPECT_ROW`) that matches
        no row undoes them all and raises `Conflict`.
        """
        conn = await self._spare()
        try:
            async with conn.transaction():
                for sql, params in ops:
                    if sql in CHAIN_OPS:
                        raise ValueError("write_alone runs plain statements only")
                    cur = await conn.execute(translate(sql), params)
                    if cur.rowcount == 0 and sql.endswith(EXPECT_ROW):
                        raise StaleWrite(sql)
        except (StaleWrite, psycopg.errors.UniqueViolation) as err:
            await self._put_back(conn)  # rolled back; the connection is fine
            raise self._writer.translate(err) from None
        except BaseException:
            await conn.close()
            raise
        await self._put_back(conn)

    def close(self) -> None:
        if self._writer.closed:
            return
        self._writer.stop()
        self._read.close()
        for conn in self._lock_conns:
            conn.pgconn.finish()  # async connections belong to a loop that may already be gone
        self._lock_conns.clear()


# -- moving an embedded store to PostgreSQL ------------------------------------------------------
_COPY_ORDER: Final = schema.table_names()
_SERIAL: Final = dict(schema.serial_columns())  # table -> its SERIAL column


def copy_from_sqlite(path: Path, url: str) -> dict[str, int]:
    """Copy every row of an embedded SQLite store into an empty PostgreSQL database.

    This is how a deployment moves from one daemon to several replicas: `strongroom init`
    (organization, root user, API key) on SQLite, then this, then `database_url`.
    """
    PostgresDatabase(url).close()  # creates the schema
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    counts: dict[str, int] = {}
    try:
        with _connect(url, autocommit=False) as dst, dst.transaction():
            for table in _COPY_ORDER:
                cur = src.execute(f"SELECT * FROM {table}")
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
                counts[table] = len(rows)
                if not rows:
                    continue
                override = " OVERRIDING SYSTEM VALUE" if table in _SERIAL else ""
                sql = f"INSERT INTO {table} ({', '.join(names)}){override} VALUES ({', '.join(['%s'] * len(names))})"
                with dst.cursor() as c:
                    c.executemany(sql, rows)
            for table, column in _SERIAL.items():
                dst.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                    f" coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
                )
    finally:
        src.close()
    return counts


if __name__ == "__main__":  # pragma: no cover - `python -m strongroom.store.postgres SQLITE URL`
    if len(sys.argv) != 3:
        sys.exit("usage: python -m strongroom.store.postgres STRONGROOM_SQLITE3 POSTGRESQL_URL")
    print(copy_from_sqlite(Path(sys.argv[1]), sys.argv[2]))
