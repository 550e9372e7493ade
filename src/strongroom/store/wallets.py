"""HD wallets (their seeds sealed by the token) and the accounts derived from them."""

from __future__ import annotations

from strongroom.store.core import Aggregate, columns, delete, from_row, in_org, insert, mark, update
from strongroom.store.group_commit import Op
from strongroom.store.private_keys import address_key
from strongroom.store.records import Row, Wallet, WalletAccount


class Wallets(Aggregate):
    """Wallets and wallet accounts, every read checked against the organization's notarisation."""

    @staticmethod
    def _wallet(row: Row) -> Wallet:
        return from_row(
            Wallet,
            row,
            sealed_mnemonic=bytes(row["sealed_mnemonic"]),
            sealed_seed=bytes(row["sealed_seed"]),
            imported=bool(row["imported"]),
            exported=bool(row["exported"]),
        )

    @staticmethod
    def _account(row: Row) -> WalletAccount:
        return from_row(WalletAccount, row, public_key=bytes(row["public_key"]))

    # -- wallets ----------------------------------------------------------------------------------
    def wallet(self, org_id: str, wallet_id: str) -> Wallet | None:
        return self.core.cached(("wallet", org_id, wallet_id), lambda: self._load_wallet(org_id, wallet_id))

    def _load_wallet(self, org_id: str, wallet_id: str) -> Wallet | None:
        return self._one(
            "wallets", self._wallet, "SELECT * FROM wallets WHERE id = ? AND organization_id = ?", (wallet_id, org_id)
        )

    def wallets(self, org_id: str) -> list[Wallet]:
        rows = self.db.all("SELECT * FROM wallets WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        return [self._wallet(r) for r in self.core.checked_all("wallets", org_id, rows)]

    def wallet_count(self, org_id: str) -> int:
        row = self.db.one("SELECT COUNT(*) FROM wallets WHERE organization_id = ?", (org_id,))
        return int(row[0])

    def wallet_name_taken(self, org_id: str, name: str) -> bool:
        return self.db.one("SELECT 1 FROM wallets WHERE organization_id = ? AND name = ?", (org_id, name)) is not None

    # -- accounts ---------------------------------------------------------------------------------
    def account(self, org_id: str, account_id: str) -> WalletAccount | None:
        return self._one(
            "wallet_accounts",
            self._account,
            "SELECT * FROM wallet_accounts WHERE id = ? AND organization_id = ?",
            (account_id, org_id),
        )

    def account_by_address(self, org_id: str, address: str) -> WalletAccount | None:
        """The oldest account of the organization with this address (any wallet), or None."""
        key = address_key(address)
        return self.core.cached(("wa_addr", org_id, key), lambda: self._load_account_by_address(org_id, key))

    def _load_account_by_address(self, org_id: str, key: str) -> WalletAccount | None:
        return self._one(
            "wallet_accounts",
            self._account,
            "SELECT * FROM wallet_accounts WHERE organization_id = ? AND address_key = ?"
            " ORDER BY created_at, position, id LIMIT 1",
            (org_id, key),
        )

    def accounts(self, org_id: str, wallet_id: str | None = None) -> list[WalletAccount]:
        """The organization's accounts (of one wallet if `wallet_id`), oldest first."""
        rows = self.db.all(
            "SELECT * FROM wallet_accounts WHERE organization_id = ? ORDER BY created_at, position, id", (org_id,)
        )
        checked = self.core.checked_all("wallet_accounts", org_id, rows)
        return [self._account(r) for r in checked if wallet_id is None or r["wallet_id"] == wallet_id]

    # -- writes -----------------------------------------------------------------------------------
    @staticmethod
    def insert_wallet(wallet: Wallet) -> list[Op]:
        return mark(wallet.organization_id, [insert("wallets", columns(wallet))])

    @staticmethod
    def insert_accounts(org_id: str, accounts: list[WalletAccount]) -> list[Op]:
        return mark(
            org_id, [insert("wallet_accounts", columns(a, address_key=address_key(a.address))) for a in accounts]
        )

    @staticmethod
    def rename_wallet(org_id: str, wallet_id: str, name: str, now_ms: int) -> list[Op]:
        return mark(org_id, [update("wallets", {"name": name, "updated_at": now_ms}, in_org(org_id, wallet_id))])

    @staticmethod
    def delete_wallet(org_id: str, wallet_id: str) -> list[Op]:
        """The wallet and every account derived from it (its sealed seed goes with its row)."""
        return mark(
            org_id,
            [
                delete("wallet_accounts", {"wallet_id": wallet_id, "organization_id": org_id}),
                delete("wallets", in_org(org_id, wallet_id)),
            ],
        )

    @staticmethod
    def delete_account(org_id: str, account_id: str) -> list[Op]:
        return mark(org_id, [delete("wallet_accounts", in_org(org_id, account_id))])

    @staticmethod
    def mark_exported(org_id: str, wallet_id: str, now_ms: int) -> list[Op]:
        return mark(org_id, [update("wallets", {"exported": True, "updated_at": now_ms}, in_org(org_id, wallet_id))])
