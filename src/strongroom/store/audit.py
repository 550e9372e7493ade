"""The tamper-evident audit log: a hash chain written in the same transaction as what it records.

Each entry's hash is SHA-256 over the previous entry's hash, its own sequence number and its
canonical JSON fields, so editing, deleting, inserting or reordering any entry breaks every
link after it. The writer thread is the only place entries are appended (it is the store's
single serial point), so sequence numbers have no gaps. Periodically the daemon signs the chain
head with a key that lives in the token (`audit_checkpoints`): rewriting the whole tail after an
edit then still fails, because the attacker cannot sign a new head.

`verify` reads a database (nothing else) and names the first broken link.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

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


class Chain:
    """The chain head as the writer thread knows it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.seq: int = 0
        self.hash: str = GENESIS
        self.reload(conn)

    def reload(self, conn: sqlite3.Connection) -> None:
        """Read the head again, inside the writer's transaction: an operator's command (`org
        create`, `usage set-quota`) may have appended entries from another process."""
        row = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        self.seq = row[0] if row else 0
        self.hash = row[1] if row else GENESIS

    def append(self, conn: sqlite3.Connection, body: bytes) -> None:
        seq = self.seq + 1
        h = entry_hash(self.hash, seq, body)
        conn.execute(
            "INSERT INTO audit_log (seq, body, prev_hash, hash) VALUES (?, ?, ?, ?)",
            (seq, body.decode(), self.hash, h),
        )
        self.seq, self.hash = seq, h

    def state(self) -> tuple[int, str]:
        return self.seq, self.hash

    def restore(self, state: tuple[int, str]) -> None:
        self.seq, self.hash = state


@dataclass(slots=True)
class Report:
    entries: int = 0
    checkpoints: int = 0
    activities_checked: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


CheckpointVerifier = Callable[[str, bytes, bytes, bytes], bool]
"""(scheme, public_key, message, signature) -> valid?"""


def verify(conn: sqlite3.Connection, check_signature: CheckpointVerifier | None = None) -> Report:
    """Walk the whole chain; the first problem names the first broken link."""
    report = Report()
    prev, expected = GENESIS, 1
    hashes: dict[int, str] = {}
    bodies: dict[str, dict[str, Any]] = {}
    for seq, body, prev_hash, h in conn.execute("SELECT seq, body, prev_hash, hash FROM audit_log ORDER BY seq"):
        report.entries += 1
        if seq != expected:
            report.problems.append(
                f"entry {expected} is missing (next entry is {seq}): entries were deleted"
                if seq > expected
                else f"entry {seq} appears twice or out of order"
            )
            return report
        if prev_hash != prev:
            report.problems.append(
                f"entry {seq} does not link to entry {seq - 1}: entries were reordered, inserted or replaced"
            )
            return report
        if entry_hash(prev_hash, seq, body.encode()) != h:
            report.problems.append(f"entry {seq} was edited: its content does not match its hash")
            return report
        hashes[seq] = h
        fields = orjson.loads(body)
        if fields.get("activity_id") and fields.get("kind") == "activity":
            bodies[fields["activity_id"]] = fields
        prev, expected = h, expected + 1

    for seq, h, scheme, public_key, signature in conn.execute(
        "SELECT seq, hash, scheme, public_key, signature FROM audit_checkpoints ORDER BY seq"
    ):
        report.checkpoints += 1
        if hashes.get(seq) != h:
            report.problems.append(
                f"checkpoint at entry {seq} signed a different chain head: the log was rewritten up to entry {seq}"
                if seq in hashes
                else f"checkpoint at entry {seq} names an entry that no longer exists: the log was truncated"
            )
            return report
        if check_signature is None:
            continue
        if not check_signature(scheme, bytes(public_key or b""), checkpoint_message(seq, h), bytes(signature or b"")):
            report.problems.append(f"checkpoint at entry {seq}: the token signature does not verify")
            return report
    if report.entries and report.checkpoints == 0:
        report.warnings.append("no signed checkpoint yet: a rewrite of the whole log would not be detected")

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


def checkpoint_message(seq: int, head: str) -> bytes:
    return f"strongroom-audit-checkpoint-v1\n{seq}\n{head}".encode()
