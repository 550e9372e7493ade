"""Metered signatures per organization and month, and each organization's quota."""

from __future__ import annotations

from strongroom.store.core import Aggregate, mark
from strongroom.store.group_commit import Op


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
