"""Organizations, their root quorum and sub-organizations."""

from __future__ import annotations

from collections.abc import Sequence

from strongroom.store.core import Aggregate, columns, delete, insert, mark, update
from strongroom.store.group_commit import Op
from strongroom.store.notary import TamperedState, read_stored
from strongroom.store.records import Organization


class Organizations(Aggregate):
    """Organizations, their root quorum and sub-organizations."""

    def organization_ids(self) -> list[str]:
        """Every organization's id (top-level and sub-organizations), unverified: what start-up and
        `migrate --notarise` walk."""
        return [str(r[0]) for r in self.db.all("SELECT id FROM organizations ORDER BY id")]

    def notarised_organization_ids(self) -> list[str]:
        """The organizations that have a notarised state (a row in `org_state`), unverified."""
        return [str(r[0]) for r in self.db.all("SELECT organization_id FROM org_state ORDER BY organization_id")]

    def first_organization_id(self) -> str | None:
        """The oldest top-level organization, found without verifying it (`strongroom init`)."""
        row = self.db.one("SELECT id FROM organizations WHERE parent_id IS NULL ORDER BY created_at, id LIMIT 1")
        return None if row is None else str(row[0])

    def organization(self, org_id: str) -> Organization | None:
        return self.core.cached(("org", org_id), lambda: self._load_organization(org_id))

    def _load_organization(self, org_id: str) -> Organization | None:
        row = self.db.one("SELECT * FROM organizations WHERE id = ?", (org_id,))
        if row is None:
            if self.core.notary is not None and read_stored(self.db.all, org_id) is not None:
                raise self.core.refuse(
                    org_id,
                    TamperedState(
                        f"organization `{org_id}` has a notarised state but its row is gone: it was deleted "
                        "outside an authorised activity"
                    ),
                )
            return None
        row = self.core.checked("organizations", row)
        roots = self.core.checked_all(
            "root_quorum",
            org_id,
            self.db.all("SELECT * FROM root_quorum WHERE organization_id = ? ORDER BY user_id", (org_id,)),
        )
        return Organization(
            row["id"],
            row["name"],
            row["parent_id"],
            row["root_quorum_threshold"],
            tuple(r["user_id"] for r in roots),
            row["created_at"],
            row["updated_at"],
        )

    def organizations(self) -> list[Organization]:
        rows = self.db.all("SELECT id FROM organizations WHERE parent_id IS NULL ORDER BY created_at, id")
        return [o for o in (self.organization(r["id"]) for r in rows) if o is not None]

    @staticmethod
    def insert_organization(org: Organization) -> list[Op]:
        row = {k: v for k, v in columns(org).items() if k != "root_user_ids"}  # those are `root_quorum` rows
        return mark(org.id, [insert("organizations", row)])

    @staticmethod
    def _root_users(org_id: str, user_ids: Sequence[str]) -> list[Op]:
        return [insert("root_quorum", {"organization_id": org_id, "user_id": u}) for u in user_ids]

    @staticmethod
    def insert_root_users(org_id: str, user_ids: Sequence[str]) -> list[Op]:
        return mark(org_id, Organizations._root_users(org_id, user_ids))

    def sub_organization_ids(self, parent_id: str) -> list[str]:
        """`parent_id`'s sub-organizations, each row checked against its own notarised state: a row
        whose `parent_id` was rewritten in the database (another tenant's organization moved under
        this one) is refused, naming it, rather than listed."""
        rows = self.db.all("SELECT * FROM organizations WHERE parent_id = ? ORDER BY created_at, id", (parent_id,))
        return [self.core.checked("organizations", r)["id"] for r in rows]

    @staticmethod
    def set_root_quorum(org_id: str, threshold: int, user_ids: Sequence[str], now_ms: int) -> list[Op]:
        return mark(
            org_id,
            [
                delete("root_quorum", {"organization_id": org_id}),
                *Organizations._root_users(org_id, user_ids),
                update("organizations", {"root_quorum_threshold": threshold, "updated_at": now_ms}, {"id": org_id}),
            ],
        )
