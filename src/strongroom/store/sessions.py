"""Dashboard sessions and passkey-login challenges (migration 7), in the shared store.

Kept in the database, not in one process's memory, so replicas on one PostgreSQL share them (a
challenge issued by one completes on another; a session opened on one is valid on all, and a
logout on one ends it everywhere) and a restart logs nobody out.

Both are bearer secrets, so only their SHA-256 (`digest`) is stored: reading the table opens no
session and completes no login. Expired rows are purged whenever a new row of their table is
written.

A challenge is consumed exactly once: `take_challenge` deletes its row with a conditional DELETE
that must remove it (`EXPECT_ROW`); when two requests race (two replicas, or one), one deletes
it and the other finds nothing. The fairness limits on pending challenges are checked in the
same statement as the insert (`add_challenge`), so concurrent requests of one process cannot
overshoot them; replicas writing at the very same instant may each admit one more.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from strongroom.errors import Conflict
from strongroom.store.group_commit import Op
from strongroom.store.records import Database
from strongroom.store.writer import EXPECT_ROW

_CHALLENGE_COLUMNS: Final = "challenge_hash, user_id, email, client, issued, expires_at"
_SESSION_COLUMNS: Final = "user_id, organization_id, authenticator_id, created_at, expires_at"


def digest(secret: str) -> str:
    """What the store keeps of a bearer secret (a session id, a login challenge): its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChallengeLimits:
    """Live (unexpired) challenges allowed at once: for one email, from one client address, in all."""

    per_email: int
    per_client: int
    total: int


@dataclass(frozen=True, slots=True)
class Challenge:
    key: str  # digest of the challenge
    user_id: str | None  # None: issued for an email with no web user (a decoy)
    email: str
    client: str
    issued: int  # orders one email's challenges (microseconds-ish; see the service)
    expires_at: int  # ms since the epoch


@dataclass(frozen=True, slots=True)
class Session:
    user_id: str
    organization_id: str
    authenticator_id: str
    created_at: int  # ms since the epoch
    expires_at: int


class SessionRepository:
    """Reads and writes of `dashboard_sessions` and `login_challenges`."""

    def __init__(self, db: Database) -> None:
        self.db: Final = db

    # -- login challenges -------------------------------------------------------------------------
    def challenges_of_email(self, email: str, now_ms: int) -> list[tuple[str, str]]:
        """(key, client) of an email's live challenges, oldest first."""
        rows = self.db.all(
            "SELECT challenge_hash, client FROM login_challenges WHERE email = ? AND expires_at > ?"
            " ORDER BY issued, challenge_hash",
            (email, now_ms),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def challenges_of_client(self, client: str, now_ms: int) -> int:
        row = self.db.one("SELECT count(*) FROM login_challenges WHERE client = ? AND expires_at > ?", (client, now_ms))
        return int(row[0]) if row is not None else 0

    def pending_challenges(self, now_ms: int) -> int:
        row = self.db.one("SELECT count(*) FROM login_challenges WHERE expires_at > ?", (now_ms,))
        return int(row[0]) if row is not None else 0

    async def add_challenge(self, challenge: Challenge, limits: ChallengeLimits, now_ms: int, *, replace: str) -> bool:
        """Insert `challenge` (after dropping `replace`, if not empty, and expired ones) if the
        limits still hold when it is written; False (nothing written) if they no longer do."""
        c = challenge
        ops: list[Op] = [("DELETE FROM login_challenges WHERE expires_at <= ?", (now_ms,))]
        if replace:
            ops.append(("DELETE FROM login_challenges WHERE challenge_hash = ?", (replace,)))
        ops.append(
            (
                f"INSERT INTO login_challenges ({_CHALLENGE_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?"
                " WHERE (SELECT count(*) FROM login_challenges WHERE email = ? AND expires_at > ?) < ?"
                " AND (SELECT count(*) FROM login_challenges WHERE client = ? AND expires_at > ?) < ?"
                " AND (SELECT count(*) FROM login_challenges WHERE expires_at > ?) < ?" + EXPECT_ROW,
                (
                    *(c.key, c.user_id, c.email, c.client, c.issued, c.expires_at),
                    *(c.email, now_ms, limits.per_email),
                    *(c.client, now_ms, limits.per_client),
                    *(now_ms, limits.total),
                ),
            )
        )
        try:
            await self.db.write(ops)
        except Conflict:
            return False
        return True

    async def take_challenge(self, key: str) -> Challenge | None:
        """The challenge with this digest, removed for good; None if there is none or another
        request took it first. Expired challenges are returned too (the caller checks)."""
        row = self.db.one(f"SELECT {_CHALLENGE_COLUMNS} FROM login_challenges WHERE challenge_hash = ?", (key,))
        if row is None:
            return None
        try:
            await self.db.write([("DELETE FROM login_challenges WHERE challenge_hash = ?" + EXPECT_ROW, (key,))])
        except Conflict:
            return None  # consumed meanwhile, perhaps by another replica: exactly one wins
        user_id = None if row[1] is None else str(row[1])
        return Challenge(str(row[0]), user_id, str(row[2]), str(row[3]), int(row[4]), int(row[5]))

    # -- sessions -----------------------------------------------------------------------------------
    async def open_session(self, key: str, session: Session) -> None:
        s = session
        await self.db.write(
            [
                ("DELETE FROM dashboard_sessions WHERE expires_at <= ?", (s.created_at,)),
                (
                    f"INSERT INTO dashboard_sessions (session_hash, {_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (key, s.user_id, s.organization_id, s.authenticator_id, s.created_at, s.expires_at),
                ),
            ]
        )

    def session(self, key: str, now_ms: int) -> Session | None:
        """The live session with this digest, or None (unknown, ended or expired)."""
        row = self.db.one(
            f"SELECT {_SESSION_COLUMNS} FROM dashboard_sessions WHERE session_hash = ? AND expires_at > ?",
            (key, now_ms),
        )
        if row is None:
            return None
        return Session(str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]))

    async def close_session(self, key: str) -> bool:
        """End the session with this digest; False if there was none (nothing is written then)."""
        if self.db.one("SELECT 1 FROM dashboard_sessions WHERE session_hash = ?", (key,)) is None:
            return False
        try:
            await self.db.write([("DELETE FROM dashboard_sessions WHERE session_hash = ?" + EXPECT_ROW, (key,))])
        except Conflict:
            return False  # ended meanwhile (another replica)
        return True


__all__ = ["Challenge", "ChallengeLimits", "Session", "SessionRepository", "digest"]
