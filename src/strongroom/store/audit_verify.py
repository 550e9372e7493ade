"""Offline verification of an audit log (`strongroom audit verify`), and the files that anchor it.

The database cannot vouch for itself: an attacker who can write to it can rewrite the chain and
sign a new checkpoint with a key of their own, storing that key beside it. So the token's audit
public key is pinned in a file outside the database (`<data_dir>/audit-key.pub`, written by
`strongroom init`, or by the daemon at its first start), and every checkpoint must verify under
it. `audit-verified.json` remembers the last checkpoint this data directory verified (and its
signed time); `clock-ack.json` records an operator's acknowledgement of a clock set back.

Opens the database read-only (SQLite) or over a connection URL (PostgreSQL). Needs neither the
daemon nor the token.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from strongroom.crypto import ed25519, encoding, p256
from strongroom.errors import ConfigError, InvalidSignature
from strongroom.store import audit

PINNED_KEY_NAME: Final = "audit-key.pub"
VERIFIED_NAME: Final = "audit-verified.json"
CLOCK_ACK_NAME: Final = "clock-ack.json"
SCHEMES: Final = ("ecdsa-p256-sha256", "ed25519", "none")


@dataclass(frozen=True, slots=True)
class PinnedKey:
    scheme: str
    public_key: bytes

    def text(self) -> str:
        return f"{self.scheme} {self.public_key.hex()}".rstrip()

    def check(self, scheme: str, message: bytes, signature: bytes) -> bool:
        """Does `signature` verify under this key (never under one read from the database)?"""
        if scheme != self.scheme or scheme == "none":
            return False
        try:
            if scheme == "ecdsa-p256-sha256":
                if len(signature) != 64:
                    return False
                der = encoding.rs_to_der(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
                p256.verify_sha256_der(self.public_key, message, der)
                return True
            ed25519.verify(self.public_key, message, signature)
            return True
        except (InvalidSignature, ValueError):
            return False


def parse_pinned(text: str, source: str) -> PinnedKey:
    parts = text.split()
    if not parts or parts[0] not in SCHEMES or len(parts) != (1 if parts[0] == "none" else 2):
        raise ConfigError(f"{source} is not a pinned audit key (`<scheme> <public key hex>`, scheme one of {SCHEMES})")
    try:
        return PinnedKey(parts[0], bytes.fromhex(parts[1]) if len(parts) == 2 else b"")
    except ValueError as err:
        raise ConfigError(f"{source}: the public key is not hex") from err


def read_pinned(path: Path) -> PinnedKey:
    try:
        return parse_pinned(path.read_text(), str(path))
    except FileNotFoundError as err:
        raise ConfigError(
            f"no pinned audit key at {path}: pass --pinned-key FILE (`strongroom audit export-key` prints it)"
        ) from err


def _write_file(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # the daemon's workers may write at once
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(tmp, mode)
    tmp.replace(path)


def write_pinned(path: Path, key: PinnedKey) -> None:
    _write_file(path, key.text() + "\n", 0o644)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    _write_file(path, json.dumps(data, indent=2) + "\n", 0o600)


def verified_marker(data_dir: Path) -> tuple[int, str, int | None] | None:
    """The last checkpoint this data directory verified: (seq, hash, signed time ms)."""
    data = read_json(data_dir / VERIFIED_NAME)
    if data is None:
        return None
    try:
        at = data.get("atMs")
        return int(data["seq"]), str(data["hash"]), None if at is None else int(at)
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"{data_dir / VERIFIED_NAME} is malformed: {err}") from err


def write_verified_marker(data_dir: Path, seq: int, head: str, at_ms: int | None) -> None:
    write_json(data_dir / VERIFIED_NAME, {"seq": seq, "hash": head, "atMs": at_ms})


def verify_database(
    source: Path | str,
    pinned: PinnedKey,
    *,
    allow_unsigned: bool = False,
    expect: tuple[int, str] | None = None,
) -> audit.Report:
    """The whole chain of a SQLite file (a Path) or a PostgreSQL database (a URL)."""
    conn: Any
    if isinstance(source, str):
        from strongroom.store.postgres import connect  # ConfigError naming the extra without it

        conn = connect(source)
    else:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        report = audit.verify(conn, pinned.check, expect=expect, allow_unsigned=allow_unsigned)
        unsigned = conn.execute("SELECT count(*) FROM audit_checkpoints WHERE scheme = 'none'").fetchone()[0]
        if unsigned and allow_unsigned:
            report.warnings.append(
                f"{unsigned} checkpoint(s) are unsigned: the token offers neither ECDSA nor EdDSA for an audit key"
            )
        return report
    finally:
        conn.close()
