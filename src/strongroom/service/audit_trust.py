"""What the daemon checks at start before it signs anything (`Strongroom.__init__`).

1. The token's audit key is pinned outside the database (`audit-key.pub`): written on first use
   if `strongroom init` did not, refused if the token's key is another one.
2. The audit chain is verified from the last checkpoint this data directory verified
   (`audit-verified.json`; from entry 1 when absent), so a start stays fast on a long log.
3. Time cannot go back past the trusted time signed into the last checkpoint (beyond
   `TIME_TOLERANCE_MS`) unless an operator acknowledged it (`strongroom clock acknowledge`).

A failure does not stop the process: `AuditGuard` (the pipeline's clock) refuses every guarded
operation with HTTP 503 saying why, and `/readyz` reports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from strongroom.clock import Clock
from strongroom.errors import ConfigError, ErrorCode, Unavailable
from strongroom.hsm import KeyStore
from strongroom.logs import get_logger
from strongroom.store import audit
from strongroom.store.audit_verify import (
    CLOCK_ACK_NAME,
    PINNED_KEY_NAME,
    PinnedKey,
    read_json,
    read_pinned,
    verified_marker,
    write_pinned,
    write_verified_marker,
)

log = get_logger("strongroom.audit")

TIME_TOLERANCE_MS: Final = 5 * 60_000


class AuditGuard:
    """The trusted clock, refusing while the start-up audit or time check failed."""

    def __init__(self, inner: Clock) -> None:
        self.inner: Final = inner
        self.audit_problem: str | None = None
        self.clock_problem: str | None = None

    def now_ms(self) -> int:
        if self.audit_problem is not None:
            raise Unavailable(
                f"refused: the audit log failed verification at start: {self.audit_problem}; nothing is signed "
                "until an operator resolves it (`strongroom audit verify`)",
                code=ErrorCode.INTERNAL,
            )
        if self.clock_problem is not None:
            raise Unavailable(f"trusted clock unavailable: {self.clock_problem}", code=ErrorCode.INVALID_TIME)
        return self.inner.now_ms()

    def clock_status(self) -> str | None:
        return self.clock_problem or self.inner.status()

    def status(self) -> str | None:
        return self.audit_problem or self.clock_status()

    def reading_ms(self) -> int:
        return self.inner.reading_ms()

    def signed_time(self) -> int | None:
        """The time to sign into a checkpoint, or None when it is not trusted."""
        if self.clock_status() is not None:
            return None
        try:
            return self.inner.now_ms()
        except Unavailable:
            return None


class _Conn:
    """`audit.verify`'s view of a store (`execute(sql)`, rows, `fetchone`)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def execute(self, sql: str) -> _Rows:
        return _Rows(self.db.all(sql))


class _Rows(list[Any]):
    def fetchone(self) -> Any:
        return self[0] if self else None


def pin_audit_key(data_dir: Path, keystore: KeyStore) -> tuple[PinnedKey, PinnedKey, bool]:
    """(the token's audit key, the pinned one, pinned now?); pins the token's if none is pinned yet."""
    public = keystore.audit_public_key()
    token_key = PinnedKey("none", b"") if public is None else PinnedKey(*public)
    path = data_dir / PINNED_KEY_NAME
    written = not path.exists()
    if written:
        write_pinned(path, token_key)
    return token_key, read_pinned(path), written


def start(data_dir: Path, keystore: KeyStore, db: Any, guard: AuditGuard) -> None:
    try:
        token_key, pinned, written = pin_audit_key(data_dir, keystore)
        marker = verified_marker(data_dir)
    except ConfigError as err:
        guard.audit_problem = err.message
        log.error("audit_verification_failed", problem=err.message)
        return
    if written:
        log.warning(
            "audit_key_pinned",
            file=str(data_dir / PINNED_KEY_NAME),
            key=pinned.text(),
            note="first use: no audit key was pinned; this one is now (compare it with `strongroom audit export-key`)",
        )
    if token_key != pinned:
        guard.audit_problem = (
            f"the token's audit key ({token_key.text()}) is not the key pinned in {data_dir / PINNED_KEY_NAME}"
        )
        log.error("audit_verification_failed", problem=guard.audit_problem)
        return
    report = audit.verify(
        _Conn(db),
        pinned.check,
        since=None if marker is None else marker[:2],
        activities=False,
        allow_unsigned=pinned.scheme == "none",
    )
    if not report.ok:
        guard.audit_problem = report.problems[0]
        log.error("audit_verification_failed", problem=guard.audit_problem, first_broken_entry=report.first_broken)
        return
    last_at = None if marker is None else marker[2]
    if report.last_checkpoint is not None:
        seq, head, at_ms = report.last_checkpoint
        write_verified_marker(data_dir, seq, head, at_ms if at_ms is not None else last_at)
        last_at = max(last_at or 0, at_ms or 0) or None
    log.info(
        "audit_verified",
        from_entry=0 if marker is None else marker[0],
        entries=report.entries,
        head=report.head[0],
        unsigned_tail=list(report.unsigned_tail) if report.unsigned_tail else None,
    )
    check_time(data_dir, guard, last_at)


def check_time(data_dir: Path, guard: AuditGuard, last_at: int | None) -> None:
    now = guard.signed_time()
    if last_at is None or now is None or now >= last_at - TIME_TOLERANCE_MS:
        return
    ack = read_json(data_dir / CLOCK_ACK_NAME) or {}
    if isinstance(ack.get("checkpointAtMs"), int) and ack["checkpointAtMs"] >= last_at:
        log.warning("clock_behind_acknowledged", now_ms=now, checkpoint_at_ms=last_at)
        return
    guard.clock_problem = (
        f"the wall clock is {(last_at - now) // 1000} s earlier than the trusted time signed into the last audit "
        "checkpoint; if the clock is right, acknowledge it with `strongroom clock acknowledge` and restart"
    )
    log.error("clock_behind_last_checkpoint", now_ms=now, checkpoint_at_ms=last_at)


def checkpointed(data_dir: Path, seq: int, head: str, at_ms: int | None) -> None:
    """The daemon signed this head itself: the next start verifies from here."""
    marker = verified_marker(data_dir)
    if marker is None or marker[0] < seq:
        write_verified_marker(data_dir, seq, head, at_ms if at_ms is not None else (marker[2] if marker else None))
