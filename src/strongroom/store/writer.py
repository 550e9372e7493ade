"""The transaction logic both stores share: how a batch of jobs is committed, with the audit chain.

A batch is first committed whole in one transaction (`_commit_fast`). If any job fails, nothing
of it is kept and the batch is committed again with each job in its own savepoint
(`_commit_isolated`), so one failing job does not undo the others. Each job runs through the
notary (`notary.apply`: check the organization's state, write, re-notarise); audit entries are
appended to the chain (`audit.Chain`), which extends only a chain this writer knows.

A backend says only what differs: how it connects, begins, commits and rolls back, its error
classes, whether the chain is synced at every transaction (`EAGER_CHAIN`) or only when a batch
appends (PostgreSQL, whose chain lock is taken before any row lock), and how a unique-key
violation reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Final

from strongroom.errors import Conflict, StrongroomError
from strongroom.store import audit
from strongroom.store import notary as notarisation
from strongroom.store.group_commit import GroupCommitWriter, Job, Op, Param

EXPECT_ROW: Final = " -- strongroom: expect a row"
"""Suffix of a conditional UPDATE that must change a row: if it changes none (another writer,
perhaps another replica, got there first), the job is undone and answered with `Conflict`."""

CHAIN_OPS: Final = (audit.AUDIT_OP, notarisation.NOTARISE_OP, notarisation.ADOPT_OP)
"""Ops that append to the audit chain (a notarisation appends a `state` entry)."""


class StaleWrite(Exception):
    """A conditional write (`EXPECT_ROW`) matched no row."""


class StoreWriter(GroupCommitWriter):
    """Group commit with savepoint isolation, the notary and the audit chain, for any backend."""

    EAGER_CHAIN: ClassVar[bool]
    """Sync the chain at the start of every transaction (SQLite), or only for batches that
    append to it (PostgreSQL: the advisory lock is then held only when needed)."""
    DB_ERROR: ClassVar[type[Exception]]
    """Any error of the driver: a job that raises it fails; outside a job, the store is unwritable."""
    JOB_ERROR: ClassVar[type[Exception]]
    """A driver error that a job's savepoint can undo."""

    def __init__(self, name: str, chain: audit.Chain) -> None:
        super().__init__(name)
        self.notary: notarisation.WriterNotary | None = None
        self.chain = chain

    # -- what a backend provides ---------------------------------------------------------------
    def _connection(self) -> audit.Executor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _begin_transaction(self, conn: audit.Executor) -> None:
        """Start the transaction (a driver that starts one implicitly does nothing)."""

    def _commit_transaction(self, conn: audit.Executor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _rollback_transaction(self, conn: audit.Executor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _connection_lost(self, conn: audit.Executor, err: BaseException) -> bool:
        """True when `err` broke the connection (no savepoint can undo it: the batch fails)."""
        return False

    def _unique_violation(self, err: BaseException) -> Conflict | None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- the shared logic --------------------------------------------------------------------------
    def translate(self, err: BaseException) -> BaseException:
        if isinstance(err, StaleWrite):
            return Conflict("the activity was changed concurrently; read it again")
        return self._unique_violation(err) or err

    def _commit(self, batch: list[Job]) -> None:
        try:
            conn = self._connection()
        except self.DB_ERROR as err:
            self.failure = f"the store cannot be written: {err}"
            for job in batch:
                job.error = err
            return
        if not self._commit_fast(conn, batch):
            self._commit_isolated(conn, batch)

    def _apply(self, conn: audit.Executor, job: Job) -> None:
        def execute(sql: str, params: Sequence[Param]) -> None:
            if sql == audit.AUDIT_OP:
                body = params[0]
                assert isinstance(body, bytes)
                self.chain.append(conn, body)
            else:
                cur = conn.execute(sql, params)
                if cur.rowcount == 0 and sql.endswith(EXPECT_ROW):
                    raise StaleWrite(sql)

        def query(sql: str, params: Sequence[Param]) -> Any:
            return conn.execute(sql, params).fetchall()

        notarisation.apply(job.ops, query, execute, self.notary)

    def _begin(self, conn: audit.Executor, batch: list[Job]) -> None:
        self._begin_transaction(conn)
        self.chain.begin()
        # The chain lock, if needed, is taken before any row lock (no lock-order deadlocks). It
        # also serialises notarisations across replicas: each reads and writes `org_state` while
        # holding it.
        if self.EAGER_CHAIN or any(sql in CHAIN_OPS for job in batch for sql, _ in job.ops):
            self.chain.sync(conn)

    def _committed(self) -> None:
        self.failure = None
        self.chain.committed()

    def _commit_fast(self, conn: audit.Executor, batch: list[Job]) -> bool:
        """The whole batch in one transaction; False (and nothing written) if any write fails."""
        head = self.chain.state()
        try:
            self._begin(conn, batch)
            for job in batch:
                self._apply(conn, job)
            self._commit_transaction(conn)
        except (self.DB_ERROR, StaleWrite, StrongroomError):
            self.chain.restore(head)
            self._rollback_transaction(conn)
            return False
        self._committed()
        return True

    def _commit_isolated(self, conn: audit.Executor, batch: list[Job]) -> None:
        """Each job in its own savepoint, so one failing job does not undo the others."""
        head = self.chain.state()
        try:
            self._begin(conn, batch)
            for i, job in enumerate(batch):
                conn.execute(f"SAVEPOINT j{i}")
                job_head = self.chain.state()
                try:
                    self._apply(conn, job)
                    conn.execute(f"RELEASE SAVEPOINT j{i}")
                except (self.JOB_ERROR, StaleWrite, StrongroomError) as err:
                    if self._connection_lost(conn, err):
                        raise
                    self.chain.restore(job_head)
                    conn.execute(f"ROLLBACK TO SAVEPOINT j{i}")
                    conn.execute(f"RELEASE SAVEPOINT j{i}")
                    job.error = err
            self._commit_transaction(conn)
            self._committed()
        except (self.DB_ERROR, audit.ChainRewritten) as err:
            self.chain.restore(head)
            self._rollback_transaction(conn)
            self.failure = f"the store cannot be written: {err}"
            for job in batch:
                job.error = job.error or err


class WriterDatabase:
    """What both databases do through their writer: writes, the notary, failure, the chain head."""

    _writer: StoreWriter

    def one(self, sql: str, params: Sequence[Param] = ()) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    async def write(self, ops: Sequence[Op]) -> None:
        """Run `ops` atomically; returns once they are durable."""
        await self._writer.write(ops)

    def write_sync(self, ops: Sequence[Op]) -> None:
        """Blocking variant for command-line tools (no event loop)."""
        self._writer.write_sync(ops)

    async def write_alone(self, ops: Sequence[Op]) -> None:
        """`ops` in a transaction that holds no other job's locks. With one writer (SQLite) that is
        any write; PostgreSQL, where other replicas write too, runs them outside the group commit."""
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

    def audit_head(self) -> tuple[int, str]:
        row = self.one("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        return (0, audit.GENESIS) if row is None else (int(row["seq"]), str(row["hash"]))

    def stats(self) -> dict[str, Any]:
        return {"batches": self._writer.batches, "jobs": self._writer.jobs}
