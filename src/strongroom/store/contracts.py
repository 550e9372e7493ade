"""Smart contract interfaces (Ethereum ABIs, Solana IDLs) per organization, notarised like policies."""

from __future__ import annotations

from strongroom.store.core import Aggregate, columns, delete, from_row, in_org, insert, mark
from strongroom.store.group_commit import Op
from strongroom.store.private_keys import address_key
from strongroom.store.records import ContractInterface, Row


class Contracts(Aggregate):
    @staticmethod
    def _interface(row: Row) -> ContractInterface:
        return from_row(ContractInterface, row)

    def interface(self, org_id: str, interface_id: str) -> ContractInterface | None:
        return self._one(
            "smart_contract_interfaces",
            self._interface,
            "SELECT * FROM smart_contract_interfaces WHERE id = ? AND organization_id = ?",
            (interface_id, org_id),
        )

    def interfaces(self, org_id: str) -> list[ContractInterface]:
        rows = self.db.all(
            "SELECT * FROM smart_contract_interfaces WHERE organization_id = ? ORDER BY created_at, id", (org_id,)
        )
        return [self._interface(r) for r in self.core.checked_all("smart_contract_interfaces", org_id, rows)]

    def for_address(self, org_id: str, address: str, kind: str) -> ContractInterface | None:
        """The newest interface of this type uploaded for the address (any case for hex addresses)."""
        key = address_key(address)
        return self.core.cached(("sci", org_id, key, kind), lambda: self._load_for_address(org_id, key, kind))

    def _load_for_address(self, org_id: str, key: str, kind: str) -> ContractInterface | None:
        return self._one(
            "smart_contract_interfaces",
            self._interface,
            "SELECT * FROM smart_contract_interfaces WHERE organization_id = ? AND address_key = ? AND type = ?"
            " ORDER BY created_at DESC, id DESC LIMIT 1",
            (org_id, key, kind),
        )

    def count(self, org_id: str) -> int:
        row = self.db.one("SELECT COUNT(*) FROM smart_contract_interfaces WHERE organization_id = ?", (org_id,))
        return int(row[0])

    @staticmethod
    def insert_interface(item: ContractInterface) -> list[Op]:
        values = columns(item, address_key=address_key(item.address))
        return mark(item.organization_id, [insert("smart_contract_interfaces", values)])

    @staticmethod
    def delete_interface(org_id: str, interface_id: str) -> list[Op]:
        return mark(org_id, [delete("smart_contract_interfaces", in_org(org_id, interface_id))])
