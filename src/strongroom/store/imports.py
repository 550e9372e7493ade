"""One-time import target keys (INIT_IMPORT_* issues them, IMPORT_* uses one once).

Not notarised: a target decides nothing about who may do what. Its private scalar is sealed under
the token's KEK with the target's id as associated data, so a row edited or moved in the database
does not open; a swapped public key only makes the client's bundle undecryptable.
"""

from __future__ import annotations

from strongroom.store.core import Aggregate, columns, delete, from_row, insert
from strongroom.store.group_commit import Op
from strongroom.store.records import ImportTarget, Row


class Imports(Aggregate):
    @staticmethod
    def _target(row: Row) -> ImportTarget:
        return from_row(
            ImportTarget, row, public_key=bytes(row["public_key"]), sealed_private=bytes(row["sealed_private"])
        )

    def latest(self, org_id: str, user_id: str, kind: str, now_ms: int) -> ImportTarget | None:
        """The newest unexpired target issued to this user for this kind of import."""
        row = self.db.one(
            "SELECT * FROM import_targets WHERE organization_id = ? AND user_id = ? AND kind = ? AND expires_at > ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (org_id, user_id, kind, now_ms),
        )
        return None if row is None else self._target(row)

    @staticmethod
    def insert_target(target: ImportTarget) -> list[Op]:
        return [insert("import_targets", columns(target))]

    @staticmethod
    def consume(target: ImportTarget) -> list[Op]:
        """Used once: the target goes in the same commit as what was imported with it."""
        return [delete("import_targets", {"id": target.id, "organization_id": target.organization_id})]

    @staticmethod
    def purge_expired(now_ms: int) -> list[Op]:
        return [("DELETE FROM import_targets WHERE expires_at <= ?", (now_ms,))]
