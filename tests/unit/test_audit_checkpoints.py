"""Checkpoint formats: v2 signs the trusted time, v1 (older logs) still verifies; only the pinned key counts."""

from __future__ import annotations

import sqlite3

from strongroom.crypto import encoding, p256
from strongroom.store import audit
from strongroom.store.audit_verify import PinnedKey


def _log(n: int) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE audit_log (seq INTEGER PRIMARY KEY, body TEXT, prev_hash TEXT, hash TEXT)")
    conn.execute(
        "CREATE TABLE audit_checkpoints (seq INTEGER PRIMARY KEY, hash TEXT, at_ms INTEGER, scheme TEXT,"
        " public_key BLOB, signature BLOB)"
    )
    conn.execute("CREATE TABLE activities (id TEXT, status TEXT, request BLOB, result TEXT)")
    chain = audit.Chain(conn)
    for i in range(n):
        chain.append(conn, audit.canonical({"kind": "state" if i % 2 else "activity", "i": i}))
    return conn


def _sign(private_hex: str, message: bytes) -> bytes:
    r, s = encoding.der_to_rs(p256.sign_sha256_der(private_hex, message))
    return r.to_bytes(32) + s.to_bytes(32)


def _checkpoint(conn: sqlite3.Connection, private_hex: str, seq: int, at_ms: int, v2: bool) -> None:
    (head,) = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", (seq,)).fetchone()
    message = audit.checkpoint_message(seq, head, at_ms if v2 else None)
    conn.execute(
        "INSERT INTO audit_checkpoints VALUES (?, ?, ?, 'ecdsa-p256-sha256', ?, ?)",
        (seq, head, at_ms, b"ignored", _sign(private_hex, message)),
    )


def test_v1_and_v2_checkpoints_verify_under_the_pinned_key_only() -> None:
    private_hex, public_hex = p256.generate_private_key()
    pinned = PinnedKey("ecdsa-p256-sha256", bytes.fromhex(public_hex))
    conn = _log(6)
    _checkpoint(conn, private_hex, 2, 1_000, v2=False)
    _checkpoint(conn, private_hex, 4, 2_000, v2=True)
    report = audit.verify(conn, pinned.check)
    assert report.ok, report.problems
    assert report.last_checkpoint is not None and report.last_checkpoint[2] == 2_000  # v2: the time is signed
    assert report.unsigned_tail == (5, 6)
    # Incremental, from an entry verified earlier.
    (h2,) = conn.execute("SELECT hash FROM audit_log WHERE seq = 2").fetchone()
    again = audit.verify(conn, pinned.check, since=(2, h2), activities=False)
    assert (again.ok, again.entries, again.checkpoints) == (True, 4, 1)
    # The signed time cannot be moved: the v2 signature no longer verifies (and v1 never covered it).
    conn.execute("UPDATE audit_checkpoints SET at_ms = 9999999 WHERE seq = 4")
    broken = audit.verify(conn, pinned.check)
    assert broken.first_broken == 3
    assert broken.problems[0].startswith("checkpoint at entry 4 is not signed by the pinned audit key")
    # Another key (whatever the row says) is refused.
    other = PinnedKey("ecdsa-p256-sha256", bytes.fromhex(p256.generate_private_key()[1]))
    assert audit.verify(conn, other.check).first_broken == 1
