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
from strongroom.store import audit
from strongroom.store import notary as notarisation
from strongroom.store.group_commit import GroupCommitWriter, Job, Op, Param

EXPECT_ROW: Final = " -- strongroom: expect a row"
"""Suffix of a conditional UPDATE that must change a row: if it changes none (another writer,
perhaps another replica, got there first), the job is undone and answered with `Conflict`."""


class StaleWrite(Exception):
    """A conditional write (`EXPECT_ROW`) matched no row."""


MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: organizations, users, credentials, private keys, activities
    """
    CREATE TABLE organizations (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        parent_id TEXT REFERENCES organizations(id),
        root_quorum_threshold INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        email TEXT UNIQUE,
        access_type TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE root_quorum (
        organization_id TEXT NOT NULL REFERENCES organizations(id),
        user_id TEXT NOT NULL REFERENCES users(id),
        PRIMARY KEY (organization_id, user_id)
    );
    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        organization_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        public_key TEXT NOT NULL,
        curve TEXT NOT NULL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (organization_id, public_key)
    );
    CREATE INDEX api_keys_public_key ON api_keys(public_key);
    CREATE TABLE private_keys (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        curve TEXT NOT NULL,
        public_key BLOB NOT NULL,
        backend TEXT NOT NULL,
        wrapped BLOB,
        addresses TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (organization_id, name)
    );
    CREATE TABLE key_addresses (
        organization_id TEXT NOT NULL,
        address TEXT NOT NULL,
        private_key_id TEXT NOT NULL REFERENCES private_keys(id),
        PRIMARY KEY (organization_id, address, private_key_id)
    );
    CREATE TABLE activities (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        organization_id TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        user_id TEXT,
        intent TEXT NOT NULL,
        result TEXT NOT NULL,
        failure TEXT,
        votes TEXT NOT NULL,
        request BLOB NOT NULL,
        stamp TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX activities_org_seq ON activities(organization_id, seq);
    """,
    # 2: the idempotency window is reloaded at start-up by creation time
    """
    CREATE INDEX activities_created_at ON activities(created_at);
    """,
    # 3: tamper-evident audit log, signed checkpoints, usage metering and quotas
    """
    CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        body TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE audit_checkpoints (
        seq INTEGER PRIMARY KEY,
        hash TEXT NOT NULL,
        at_ms INTEGER NOT NULL,
        scheme TEXT NOT NULL,
        public_key BLOB,
        signature BLOB
    );
    CREATE TABLE usage (
        organization_id TEXT NOT NULL,
        month TEXT NOT NULL,
        signatures INTEGER NOT NULL,
        PRIMARY KEY (organization_id, month)
    );
    ALTER TABLE organizations ADD COLUMN monthly_signature_quota INTEGER;
    """,
    # 4: policies, tags, and how policies evaluated for each activity
    """
    CREATE TABLE policies (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        effect TEXT NOT NULL,
        condition TEXT NOT NULL DEFAULT '',
        consensus TEXT NOT NULL DEFAULT '',
        time TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (organization_id, name)
    );
    CREATE TABLE tags (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (organization_id, type, name)
    );
    ALTER TABLE activities ADD COLUMN policy_evaluations TEXT NOT NULL DEFAULT '[]';
    """,
    # 5: passkeys (WebAuthn authenticators), phone numbers, lookups by user and by parent org
    """
    CREATE TABLE authenticators (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id),
        organization_id TEXT NOT NULL REFERENCES organizations(id),
        name TEXT NOT NULL,
        credential_id TEXT NOT NULL,
        cose_key BLOB NOT NULL,
        public_key TEXT NOT NULL,
        aaguid TEXT NOT NULL,
        attestation_type TEXT NOT NULL,
        transports TEXT NOT NULL DEFAULT '[]',
        sign_count INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        UNIQUE (organization_id, credential_id)
    );
    CREATE INDEX authenticators_user ON authenticators(user_id);
    CREATE INDEX authenticators_credential ON authenticators(credential_id);
    CREATE INDEX api_keys_user ON api_keys(user_id);
    CREATE INDEX users_organization ON users(organization_id);
    CREATE INDEX organizations_parent ON organizations(parent_id);
    ALTER TABLE users ADD COLUMN phone_number TEXT;
    """,
    # 6: each organization's notarised state (store/notary.py)
    """
    CREATE TABLE org_state (
        organization_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        digests TEXT NOT NULL,
        mac BLOB NOT NULL
    );
    """,
    # 7: dashboard sessions and passkey-login challenges (store/sessions.py), shared by replicas
    """
    CREATE TABLE dashboard_sessions (
        session_hash TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        organization_id TEXT NOT NULL,
        authenticator_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX dashboard_sessions_expires ON dashboard_sessions(expires_at);
    CREATE TABLE login_challenges (
        challenge_hash TEXT PRIMARY KEY,
        user_id TEXT,
        email TEXT NOT NULL,
        client TEXT NOT NULL,
        issued INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX login_challenges_email ON login_challenges(email, expires_at);
    CREATE INDEX login_challenges_client ON login_challenges(client, expires_at);
    CREATE INDEX login_challenges_expires ON login_challenges(expires_at);
    """,
    # 8: signatures reserved by requests in flight (store/usage.py); each row expires on its own
    """
    CREATE TABLE usage_reservations (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL,
        month TEXT NOT NULL,
        signatures INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX usage_reservations_organization ON usage_reservations(organization_id, month);
    """,
)


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations; returns the schema version."""
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, script in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
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

    async def write_alone(self, ops: Sequence[Op]) -> None:
        """`write`: with one writer there is no other transaction whose locks `ops` could meet."""
        await self._writer.write(ops)

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
