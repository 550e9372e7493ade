"""Policies (conditions and consensus, evaluated by `strongroom.policy`)."""

from __future__ import annotations

from strongroom.store.core import Aggregate, mark
from strongroom.store.group_commit import Op
from strongroom.store.records import PolicyRecord, Row


class Policies(Aggregate):
    """Policies (conditions and consensus, evaluated by `strongroom.policy`)."""

    @staticmethod
    def _policy(row: Row) -> PolicyRecord:
        return PolicyRecord(
            row["id"],
            row["organization_id"],
            row["name"],
            row["effect"],
            row["condition"],
            row["consensus"],
            row["time"],
            row["notes"],
            row["created_at"],
            row["updated_at"],
        )

    def policies(self, org_id: str) -> list[PolicyRecord]:
        return list(self.core.cached(("policies", org_id), lambda: self._load_policies(org_id)))

    def _load_policies(self, org_id: str) -> tuple[PolicyRecord, ...]:
        rows = self.db.all("SELECT * FROM policies WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        return tuple(self._policy(r) for r in self.core.checked_all("policies", org_id, rows))

    def policy(self, org_id: str, policy_id: str) -> PolicyRecord | None:
        return next((p for p in self.policies(org_id) if p.id == policy_id), None)

    @staticmethod
    def insert_policy(p: PolicyRecord) -> list[Op]:
        return mark(
            p.organization_id,
            [
                (
                    "INSERT INTO policies (id, organization_id, name, effect, condition, consensus, time, notes,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        p.id,
                        p.organization_id,
                        p.name,
                        p.effect,
                        p.condition,
                        p.consensus,
                        p.time,
                        p.notes,
                        p.created_at,
                        p.updated_at,
                    ),
                )
            ],
        )

    @staticmethod
    def update_policy(p: PolicyRecord) -> list[Op]:
        return mark(
            p.organization_id,
            [
                (
                    "UPDATE policies SET name = ?, effect = ?, condition = ?, consensus = ?, time = ?, notes = ?,"
                    " updated_at = ? WHERE id = ? AND organization_id = ?",
                    (
                        p.name,
                        p.effect,
                        p.condition,
                        p.consensus,
                        p.time,
                        p.notes,
                        p.updated_at,
                        p.id,
                        p.organization_id,
                    ),
                )
            ],
        )

    @staticmethod
    def delete_policy(org_id: str, policy_id: str) -> list[Op]:
        return mark(org_id, [("DELETE FROM policies WHERE id = ? AND organization_id = ?", (policy_id, org_id))])
