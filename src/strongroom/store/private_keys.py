"""Private keys (sealed by the token) and the addresses they are looked up by."""

from __future__ import annotations

import json

from strongroom.store.core import Aggregate, columns, delete, from_row, in_org, insert, mark, update
from strongroom.store.group_commit import Op
from strongroom.store.records import PrivateKey, Row


def address_key(address: str) -> str:
    """Lookup form of an address: hex addresses are case-insensitive, base58 is not."""
    return address.lower() if address[:2].lower() == "0x" else address


class PrivateKeys(Aggregate):
    """Private keys (sealed by the token) and the addresses they are looked up by."""

    @staticmethod
    def _private_key(row: Row) -> PrivateKey:
        return from_row(
            PrivateKey,
            row,
            public_key=bytes(row["public_key"]),
            wrapped=None if row["wrapped"] is None else bytes(row["wrapped"]),
            addresses=tuple((a["format"], a["address"]) for a in json.loads(row["addresses"])),
            tags=tuple(json.loads(row["tags"])),
            exported=bool(row["exported"]),
            imported=bool(row["imported"]),
        )

    def private_key(self, org_id: str, key_id: str) -> PrivateKey | None:
        return self.core.cached(("pk", org_id, key_id), lambda: self._load_private_key(org_id, key_id))

    def _load_private_key(self, org_id: str, key_id: str) -> PrivateKey | None:
        return self._one(
            "private_keys",
            self._private_key,
            "SELECT * FROM private_keys WHERE id = ? AND organization_id = ?",
            (key_id, org_id),
        )

    def private_key_by_address(self, org_id: str, address: str) -> PrivateKey | None:
        key = address_key(address)
        return self.core.cached(("pk_addr", org_id, key), lambda: self._load_private_key_by_address(org_id, key))

    def _load_private_key_by_address(self, org_id: str, address: str) -> PrivateKey | None:
        rows = self.db.all(
            "SELECT a.* FROM key_addresses a JOIN private_keys p ON p.id = a.private_key_id"
            " WHERE a.organization_id = ? AND a.address = ? ORDER BY p.created_at, p.id",
            (org_id, address),
        )
        for row in rows:
            key = self._load_private_key(org_id, str(self.core.checked("key_addresses", row)["private_key_id"]))
            if key is not None:
                return key
        return None

    def private_keys(self, org_id: str) -> list[PrivateKey]:
        rows = self.db.all("SELECT * FROM private_keys WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        return [self._private_key(r) for r in self.core.checked_all("private_keys", org_id, rows)]

    def private_key_name_taken(self, org_id: str, name: str) -> bool:
        return (
            self.db.one("SELECT 1 FROM private_keys WHERE organization_id = ? AND name = ?", (org_id, name)) is not None
        )

    @staticmethod
    def insert_private_key(key: PrivateKey) -> list[Op]:
        addresses = json.dumps([{"format": f, "address": a} for f, a in key.addresses])
        ops = [insert("private_keys", columns(key, addresses=addresses, tags=json.dumps(list(key.tags))))]
        seen = set()
        for _fmt, address in key.addresses:
            k = address_key(address)
            if k in seen:
                continue
            seen.add(k)
            ops.append(
                insert(
                    "key_addresses", {"organization_id": key.organization_id, "address": k, "private_key_id": key.id}
                )
            )
        return mark(key.organization_id, ops)

    @staticmethod
    def delete_private_key(org_id: str, key_id: str) -> list[Op]:
        """The key's row (with its sealed secret, for a software key) and its address lookups."""
        return mark(
            org_id,
            [
                delete("key_addresses", {"private_key_id": key_id, "organization_id": org_id}),
                delete("private_keys", in_org(org_id, key_id)),
            ],
        )

    @staticmethod
    def mark_exported(org_id: str, key_id: str, now_ms: int) -> list[Op]:
        return mark(org_id, [update("private_keys", {"exported": True, "updated_at": now_ms}, in_org(org_id, key_id))])
