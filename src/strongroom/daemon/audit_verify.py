"""Offline verification of a data directory's audit log (`strongroom audit verify`).

Opens the database read-only, recomputes the hash chain from the first entry, checks every
signed checkpoint against the public key stored with it, and cross-checks every activity row
against its audit entry. Needs neither the daemon nor the token.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from strongroom.crypto import ed25519, encoding, p256
from strongroom.errors import InvalidSignature
from strongroom.store import audit


def check_checkpoint(scheme: str, public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        if scheme == "ecdsa-p256-sha256":
            if len(signature) != 64:
                return False
            der = encoding.rs_to_der(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
            p256.verify_sha256_der(public_key, message, der)
            return True
        if scheme == "ed25519":
            ed25519.verify(public_key, message, signature)
            return True
        return scheme == "none"
    except (InvalidSignature, ValueError):
        return False


def verify_database(path: Path) -> audit.Report:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        report = audit.verify(conn, check_checkpoint)
        unsigned = conn.execute("SELECT count(*) FROM audit_checkpoints WHERE scheme = 'none'").fetchone()[0]
        if unsigned:
            report.warnings.append(
                f"{unsigned} checkpoint(s) are unsigned: the token offers neither ECDSA nor EdDSA for an audit key"
            )
        return report
    finally:
        conn.close()
