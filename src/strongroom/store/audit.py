"""The tamper-evident audit log: a hash chain written in the same transaction as what it records.

Each entry's hash is SHA-256 over the previous entry's hash, its own sequence number and its
canonical JSON fields, so editing, deleting, inserting or reordering any entry breaks every
link after it. The writer thread is the only place entries are appended (it is the store's
single serial point), so sequence numbers have no gaps. Periodically the daemon signs the chain
head with a key that lives in the token (`audit_checkpoints`): rewriting the whole tail after an
edit then still fails, because the attacker cannot sign a new head.

`verify` reads a database and checks every checkpoint against a key pinned outside it (the
`public_key` column is never trusted: whoever can rewrite the log can rewrite that column), and
names the first broken link. Entries after the last checkpoint are reported as not covered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from strongroom.errors import Grpc, StrongroomError

AUDIT_OP: Final = "-- strongroom audit append"
GENESIS: Final = "0" * 64


def canonical(fields: Mapping[str, Any]) -> bytes:
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)


def entry_hash(prev_hash: str, seq: int, body: bytes) -> str:
    h = hashlib.sha256()
    h.update(b"strongroom-audit-v1\n")
    h.update(prev_hash.encode())
    h.update(b"\n")
    h.update(str(seq).encode())
    h.update(b"\n")
    h.update(body)
    return h.hexdigest()


def digest(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def append_op(fields: Mapping[str, Any]) -> tuple[str, tuple[bytes]]:
    """A write operation that appends one entry (the writer assigns seq and links the chain)."""
    return (AUDIT_OP, (canonical(fields),))


class ChainRewritten(StrongroomError):
    """The stored chain is not an extension of the one the writer knows (it was rewritten)."""

    grpc = Grpc.UNAVAILABLE


def catch_up(query: Callable[[str, tuple[Any, ...]], Any], known: tuple[int, str]) -> tuple[int, str]:
    """The stored head, if it extends the chain this writer knows (`known`); else `ChainRewritten`.

    Others may append (another replica, an operator's command), but only along the chain: every
    new entry must link to the head known before it and hash correctly. A head that went back, or
    moved to another chain, means the log was rewritten behind the writer's back: it refuses to
    write (and so to sign) rather than extend and later checkpoint a rewritten log.
    """
    rows = query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", ())
    head = (int(rows[0][0]), str(rows[0][1])) if rows else (0, GENESIS)
    known_seq, known_hash = known
    if head == known:
        return head
    if head[0] < known_seq:
        raise ChainRewritten(f"the audit log lost entries {head[0] + 1}..{known_seq} behind the writer's back")
    if known_seq:
        at = query("SELECT hash FROM audit_log WHERE seq = ?", (known_seq,))
        if not at or str(at[0][0]) != known_hash:
            raise ChainRewritten(f"audit entry {known_seq} was rewritten behind the writer's back")
    prev, expected = known_hash, known_seq + 1
    for n, body, prev_hash, h in query(
        "SELECT seq, body, prev_hash, hash FROM audit_log WHERE seq > ? ORDER BY seq", (known_seq,)
    ):
        if int(n) != expected or prev_hash != prev or entry_hash(prev, int(n), str(body).encode()) != h:
            raise ChainRewritten(f"audit entry {n}, appended by another writer, does not extend the chain")
        prev, expected = str(h), expected + 1
    return head


class Executor(Protocol):
    """A connection that runs SQL with `?` placeholders (sqlite3's; PostgreSQL's through an adapter)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def stored_head(conn: Executor) -> tuple[int, str]:
    row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row is not None else (0, GENESIS)


class Chain:
    """The chain head as one writer knows it, for both backends.

    `known` is the head as of this writer's last commit. Before it appends in a transaction, the
    writer syncs: it takes `lock` (PostgreSQL: an advisory lock, so the chain stays linear across
    replicas; SQLite: none, its write transaction is already exclusive), then catches up with what
    other writers appended (`catch_up`: only along the chain, else `ChainRewritten`). A writer
    that knows no head yet (`Chain()`) takes the stored one as it is (start-up verified it);
    `Chain(conn)` knows the stored head from the start.
    """

    def __init__(self, conn: Executor | None = None, *, lock: Callable[[Executor], None] | None = None) -> None:
        self._lock = lock
        self.known: tuple[int, str] | None = None if conn is None else stored_head(conn)
        self.seq, self.hash = self.known if self.known is not None else (0, GENESIS)
        self.synced = conn is not None

    def begin(self) -> None:
        """A new transaction: the head is read again (under the lock) before the next append."""
        self.synced = False

    def sync(self, conn: Executor) -> None:
        if self._lock is not None:
            self._lock(conn)
        if self.known is None:
            self.seq, self.hash = stored_head(conn)
        else:
            self.seq, self.hash = catch_up(lambda sql, params: conn.execute(sql, params).fetchall(), self.known)
        self.synced = True

    def append(self, conn: Executor, body: bytes) -> None:
        if not self.synced:
            self.sync(conn)
        seq = self.seq + 1
        h = entry_hash(self.hash, seq, body)
        conn.execute(
            "INSERT INTO audit_log (seq, body, prev_hash, hash) VALUES (?, ?, ?, ?)",
            (seq, body.decode(), self.hash, h),
        )
        self.seq, self.hash = seq, h

    def committed(self) -> None:
        """The transaction committed: its head is now the one this writer knows."""
        if self.synced:
            self.known = (self.seq, self.hash)

    def state(self) -> tuple[int, str, bool]:
        return self.seq, self.hash, self.synced

    def restore(self, state: tuple[int, str, bool]) -> None:
        self.seq, self.hash, self.synced = state


@dataclass(slots=True)
class Report:
    entries: int = 0
    checkpoints: int = 0
    activities_checked: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    head: tuple[int, str] = (0, GENESIS)
    """The last entry walked (seq, hash)."""
    last_checkpoint: tuple[int, str, int | None] | None = None
    """(seq, hash, signed time or None for a v1 checkpoint) of the last checkpoint verified."""
    unsigned_tail: tuple[int, int] | None = None
    """Entries (first, last) after the last verified checkpoint: no signature covers them."""
    first_broken: int | None = None
    """The first entry that cannot be trusted, when there is a problem."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, at: int, problem: str) -> Report:
        self.first_broken = at
        self.problems.append(problem)
        return self


CheckpointVerifier = Callable[[str, bytes, bytes], bool]
"""(scheme, message, signature) -> signed by the pinned audit key? Never the key stored in the row."""


def verify(
    conn: Any,
    check_signature: CheckpointVerifier,
    *,
    since: tuple[int, str] | None = None,
    expect: tuple[int, str] | None = None,
    activities: bool = True,
    allow_unsigned: bool = False,
) -> Report:
    """Walk the chain (from entry 1, or on from `since`, an entry already verified); the first
    problem names the first broken link. `conn` is a sqlite3 or psycopg connection (the SQL has
    no parameters, so both accept it). Checkpoints must be signed by the key `check_signature`
    pins; the `public_key` column is never read. `expect` is an entry (seq, hash) known from
    outside the database (the data directory's last verified checkpoint)."""
    report = Report()
    prev, expected = GENESIS, 1
    if since is not None and since[0] > 0:
        seq0, hash0 = int(since[0]), since[1]
        row = conn.execute(f"SELECT seq, body, prev_hash, hash FROM audit_log WHERE seq = {seq0}").fetchone()
        if row is None or row[3] != hash0 or entry_hash(row[2], seq0, row[1].encode()) != hash0:
            return report.fail(
                seq0,
                f"entry {seq0}, covered by a checkpoint verified earlier, was deleted or changed: "
                "the log was rewritten or truncated up to it",
            )
        prev, expected = hash0, seq0 + 1
        report.head = (seq0, hash0)
    first = expected
    hashes: dict[int, str] = {}
    bodies: dict[str, dict[str, Any]] = {}
    for seq, body, prev_hash, h in conn.execute(
        f"SELECT seq, body, prev_hash, hash FROM audit_log WHERE seq >= {first} ORDER BY seq"
    ):
        report.entries += 1
        if seq != expected:
            return report.fail(
                expected,
                f"entry {expected} is missing (next entry is {seq}): entries were deleted"
                if seq > expected
                else f"entry {seq} appears twice or out of order",
            )
        if prev_hash != prev:
            return report.fail(
                seq, f"entry {seq} does not link to entry {seq - 1}: entries were reordered, inserted or replaced"
            )
        if entry_hash(prev_hash, seq, body.encode()) != h:
            return report.fail(seq, f"entry {seq} was edited: its content does not match its hash")
        hashes[seq] = h
        if activities:
            fields = orjson.loads(body)
            if fields.get("activity_id") and fields.get("kind") == "activity":
                bodies[fields["activity_id"]] = fields
        prev, expected = h, expected + 1
        report.head = (seq, h)

    covered = first - 1
    for seq, h, at_ms, scheme, raw_signature in conn.execute(
        f"SELECT seq, hash, at_ms, scheme, signature FROM audit_checkpoints WHERE seq >= {first} ORDER BY seq"
    ):
        report.checkpoints += 1
        trusted = f" (entries up to {covered} are covered by a valid checkpoint)" if covered else ""
        if hashes.get(seq) != h:
            return report.fail(
                min(seq, covered + 1),
                (
                    f"checkpoint at entry {seq} signed a different chain head: the log was rewritten up to entry {seq}"
                    if seq in hashes
                    else f"checkpoint at entry {seq} names an entry that no longer exists: the log was truncated"
                )
                + trusted,
            )
        signature = bytes(raw_signature or b"")
        signed_at: int | None = None
        if scheme == "none":
            if not allow_unsigned:
                return report.fail(
                    covered + 1,
                    f"checkpoint at entry {seq} is unsigned (scheme `none`){trusted}; "
                    "accept unsigned checkpoints explicitly (--allow-unsigned) only for a token without ECDSA or EdDSA",
                )
        elif check_signature(scheme, checkpoint_message(seq, h, int(at_ms)), signature):
            signed_at = int(at_ms)
        elif not check_signature(scheme, checkpoint_message(seq, h), signature):
            return report.fail(
                covered + 1,
                f"checkpoint at entry {seq} is not signed by the pinned audit key: the log was rewritten and "
                f"re-signed with another key, or the pinned key is not this token's{trusted}",
            )
        covered = seq
        report.last_checkpoint = (seq, h, signed_at)
    if expect is not None and expect[0] > 0 and hashes.get(expect[0]) != expect[1]:
        return report.fail(
            expect[0],
            f"entry {expect[0]} no longer has the hash its checkpoint had when this data directory last verified "
            "it: the log was rewritten or truncated",
        )
    if report.head[0] > covered:
        report.unsigned_tail = (covered + 1, report.head[0])
        report.warnings.append(
            f"entries {covered + 1}..{report.head[0]} are not covered by a signed checkpoint: "
            "they could be truncated or rewritten unnoticed"
        )

    if not activities:
        return report
    # Each recorded activity must still say what its audit entry says.
    for activity_id, status, request, result in conn.execute("SELECT id, status, request, result FROM activities"):
        report.activities_checked += 1
        entry = bodies.get(activity_id)
        if entry is None:
            report.problems.append(f"activity {activity_id} has no audit entry")
            return report
        if entry.get("status") != status or entry.get("request_digest") != digest(bytes(request)):
            report.problems.append(f"activity {activity_id} was changed after it was recorded")
            return report
        if entry.get("result_digest") != digest(result):
            report.problems.append(f"activity {activity_id}: its result was changed after it was recorded")
            return report
    return report


CHECKPOINT_V1: Final = "strongroom-audit-checkpoint-v1"
CHECKPOINT_V2: Final = "strongroom-audit-checkpoint-v2"


def checkpoint_message(seq: int, head: str, at_ms: int | None = None) -> bytes:
    """What the token signs. v2 (with `at_ms`) also notarises the daemon's trusted time, so a
    restarted daemon knows time cannot be earlier than that; v1 checkpoints still verify."""
    if at_ms is None:
        return f"{CHECKPOINT_V1}\n{seq}\n{head}".encode()
    return f"{CHECKPOINT_V2}\n{seq}\n{head}\n{at_ms}".encode()
