"""Metered signatures per organization and month, each organization's quota, and the signatures
reserved by requests in flight: one quota for all replicas.

A request that will make signatures for an organization with a monthly quota first reserves them:
a row in `usage_reservations`, written only if `used + reserved + n <= quota` holds at that
moment for every process on the database. The check is atomic across replicas: the reservation's
transaction first takes the row lock of the month's `usage` row (an upsert, which creates the row
if needed), and everything that changes the count takes that lock too (another reservation; the
activity's commit, which adds the usage and deletes the reservation in one transaction). On
SQLite the one writer serialises the same statements.

A reservation is deleted when its activity commits (`release_ops`, inside the commit that adds
the usage) or fails (`release`); if its process dies in between, it expires on its own (`expires_at`) and the
next reservation of that organization deletes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Final

from strongroom.errors import Conflict
from strongroom.store.core import Aggregate, mark
from strongroom.store.group_commit import Op
from strongroom.store.records import Database
from strongroom.store.writer import EXPECT_ROW


class Usage(Aggregate):
    """Metered signatures per organization and month, and each organization's quota."""

    def signatures_used(self, org_id: str, month: str) -> int:
        row = self.db.one("SELECT signatures FROM usage WHERE organization_id = ? AND month = ?", (org_id, month))
        return 0 if row is None else int(row["signatures"])

    def signature_quota(self, org_id: str) -> int | None:
        row = self.db.one("SELECT * FROM organizations WHERE id = ?", (org_id,))
        if row is None:
            return None
        quota = self.core.checked("organizations", row)["monthly_signature_quota"]
        return None if quota is None else int(quota)

    @staticmethod
    def add_usage(org_id: str, month: str, signatures: int) -> list[Op]:
        return [
            (
                "INSERT INTO usage (organization_id, month, signatures) VALUES (?, ?, ?)"
                " ON CONFLICT (organization_id, month)"
                " DO UPDATE SET signatures = usage.signatures + excluded.signatures",
                (org_id, month, signatures),
            )
        ]

    @staticmethod
    def set_signature_quota(org_id: str, quota: int | None) -> list[Op]:
        return mark(org_id, [("UPDATE organizations SET monthly_signature_quota = ? WHERE id = ?", (quota, org_id))])


RESERVATION_TTL_MS: Final = 60_000
"""How long a reservation outlives a process that died holding it. Far longer than signing and
committing take; an attempt that outlasted it would still be charged (usage is always counted)."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """Signatures reserved for one organization and month; `id` is None when no quota applies
    (nothing is written before the work, and the commit only adds the usage)."""

    organization_id: str
    month: str
    signatures: int
    id: str | None = None


class Reservations:
    """The reservations of one store (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def reserve(self, org_id: str, month: str, signatures: int, quota: int, now_ms: int) -> Reservation | None:
        """Reserve `signatures` if `used + reserved + signatures <= quota` for every replica; None
        (and nothing written) if that would exceed the quota."""
        r = Reservation(org_id, month, signatures, str(uuid.uuid4()))
        ops: list[Op] = [
            # The month's usage row, locked (PostgreSQL: an upsert locks the row it finds).
            (
                "INSERT INTO usage (organization_id, month, signatures) VALUES (?, ?, 0)"
                " ON CONFLICT (organization_id, month) DO UPDATE SET signatures = usage.signatures",
                (org_id, month),
            ),
            ("DELETE FROM usage_reservations WHERE organization_id = ? AND expires_at <= ?", (org_id, now_ms)),
            (
                "INSERT INTO usage_reservations (id, organization_id, month, signatures, expires_at)"
                " SELECT ?, ?, ?, ?, ? WHERE (SELECT signatures FROM usage WHERE organization_id = ? AND month = ?)"
                " + (SELECT coalesce(sum(signatures), 0) FROM usage_reservations"
                " WHERE organization_id = ? AND month = ?) + ? <= ?" + EXPECT_ROW,
                (
                    *(r.id, org_id, month, signatures, now_ms + RESERVATION_TTL_MS),
                    *(org_id, month, org_id, month, signatures, quota),
                ),
            ),
        ]
        try:
            await self._db.write_alone(ops)
        except Conflict:  # the conditional insert matched no row: over the quota
            return None
        return r

    @staticmethod
    def release_ops(r: Reservation) -> list[Op]:
        """The reservation goes: in the activity's commit (after the usage is added: the usage row
        is locked first, as a reservation does), or alone when the work was not committed."""
        return [] if r.id is None else [("DELETE FROM usage_reservations WHERE id = ?", (r.id,))]

    async def release(self, r: Reservation) -> None:
        ops = self.release_ops(r)
        if ops:
            await self._db.write_alone(ops)

    def reserved(self, org_id: str, month: str, now_ms: int) -> int:
        """Signatures reserved by requests in flight (on any replica) and not expired."""
        row = self._db.one(
            "SELECT coalesce(sum(signatures), 0) FROM usage_reservations"
            " WHERE organization_id = ? AND month = ? AND expires_at > ?",
            (org_id, month, now_ms),
        )
        return 0 if row is None else int(row[0])


__all__ = ["RESERVATION_TTL_MS", "Reservation", "Reservations", "Usage"]
