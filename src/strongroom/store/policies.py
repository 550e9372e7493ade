"""Policies (conditions and consensus, evaluated by `strongroom.policy`)."""

from __future__ import annotations

from typing import Any

from strongroom.store.core import Aggregate, Core, columns, content_key, delete, from_row, in_org, insert, mark, update
from strongroom.store.group_commit import Op
from strongroom.store.records import PolicyRecord, Row


class Policies(Aggregate):
    """Policies (conditions and consensus, evaluated by `strongroom.policy`)."""

    def __init__(self, core: Core) -> None:
        super().__init__(core)
        self._records: dict[str, tuple[tuple[Any, ...], tuple[PolicyRecord, ...]]] = {}

    @staticmethod
    def _policy(row: Row) -> PolicyRecord:
        return from_row(PolicyRecord, row)

    def policies(self, org_id: str) -> list[PolicyRecord]:
        return list(self.core.cached(("policies", org_id), lambda: self._load_policies(org_id)))

    def _load_policies(self, org_id: str) -> tuple[PolicyRecord, ...]:
        rows = self.db.all("SELECT * FROM policies WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        checked = self.core.checked_all("policies", org_id, rows)
        # Records are a pure function of the rows' content: the same rows (just checked) give the
        # very same records, so the decider's content-keyed policy set is found by identity.
        key = content_key(checked)
        last = self._records.get(org_id)
        if key is not None and last is not None and last[0] == key:
            return last[1]
        records = tuple(self._policy(r) for r in checked)
        if key is not None:
            if len(self._records) > 1_000:
                self._records.clear()
            self._records[org_id] = (key, records)
        return records

    def policy(self, org_id: str, policy_id: str) -> PolicyRecord | None:
        return next((p for p in self.policies(org_id) if p.id == policy_id), None)

    @staticmethod
    def insert_policy(p: PolicyRecord) -> list[Op]:
        return mark(p.organization_id, [insert("policies", columns(p))])

    @staticmethod
    def update_policy(p: PolicyRecord) -> list[Op]:
        changed = {k: v for k, v in columns(p).items() if k not in ("id", "organization_id", "created_at")}
        return mark(p.organization_id, [update("policies", changed, in_org(p.organization_id, p.id))])

    @staticmethod
    def delete_policy(org_id: str, policy_id: str) -> list[Op]:
        return mark(org_id, [delete("policies", in_org(org_id, policy_id))])
