"""Methods shared by the sync and async clients.

Each method builds its (path, body) and hands it to `_call`; in `Client` that returns the
decoded answer, in `AsyncClient` an awaitable of it. So `client.whoami()` and
`await async_client.whoami()` are the same code.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

from strongroom.client import calls
from strongroom.client.errors import ClientError
from strongroom.client.stamp import ApiKeyStamper


class Methods:
    base_url: str
    organization_id: str
    stamper: ApiKeyStamper
    _unix: str | None

    def _target(self, base_url: str, stamper: ApiKeyStamper, organization_id: str) -> urllib.parse.SplitResult:
        """Who to talk to, as whom: a daemon URL (http://, https:// or unix:///path) and the key."""
        self.base_url = base_url.rstrip("/")
        self.stamper = stamper
        self.organization_id = organization_id
        parsed = urllib.parse.urlsplit(self.base_url)
        if parsed.scheme not in ("unix", "http", "https"):
            raise ClientError(0, None, f"unsupported daemon URL `{base_url}`: use http://, https:// or unix://")
        self._unix = parsed.path if parsed.scheme == "unix" else None
        return parsed

    def _where(self) -> str:
        """The daemon's address, for messages."""
        return f"unix://{self._unix}" if self._unix else self.base_url

    def _call(self, path: str, body: dict[str, Any]) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    # -- generic --------------------------------------------------------------------------------
    def request(self, path: str, body: dict[str, Any]) -> Any:
        """Stamp and send any call (like `tkcli request`)."""
        return self._call(path, body)

    def query(self, name: str, **params: Any) -> Any:
        return self._call(*calls.query(self.organization_id, name, params))

    def submit(self, name: str, activity_type: str, parameters: dict[str, Any]) -> Any:
        return self._call(*calls.submit(self.organization_id, name, activity_type, parameters))

    # -- queries ----------------------------------------------------------------------------------
    def whoami(self) -> Any:
        return self.query("whoami")

    def get_private_key(self, private_key_id: str) -> Any:
        return self.query("get_private_key", privateKeyId=private_key_id)

    def list_private_keys(self) -> Any:
        return self.query("list_private_keys")

    def get_activity(self, activity_id: str) -> Any:
        return self.query("get_activity", activityId=activity_id)

    def get_activity_view(self, activity_id: str) -> Any:
        """`{view}`: the activity decoded for people (Strongroom extension, docs/api.md)."""
        return self.query("get_activity_view", activityId=activity_id)

    def list_activities(self, limit: int = 10, **filters: Any) -> Any:
        return self.query("list_activities", paginationOptions={"limit": str(limit)}, **filters)

    def list_policies(self) -> Any:
        return self.query("list_policies")

    def list_users(self) -> Any:
        return self.query("list_users")

    def get_user(self, user_id: str) -> Any:
        return self.query("get_user", userId=user_id)

    def get_organization(self) -> Any:
        return self.query("get_organization")

    def get_usage(self) -> Any:
        return self.query("get_usage")

    def list_wallets(self) -> Any:
        return self.query("list_wallets")

    def get_wallet(self, wallet_id: str) -> Any:
        return self.query("get_wallet", walletId=wallet_id)

    def list_wallet_accounts(self, wallet_id: str | None = None, limit: int = 100) -> Any:
        params: dict[str, Any] = {"paginationOptions": {"limit": str(limit)}}
        if wallet_id is not None:
            params["walletId"] = wallet_id
        return self.query("list_wallet_accounts", **params)

    def explain(self, activity_type: str, parameters: dict[str, Any]) -> Any:
        return self.query("explain_activity", type=activity_type, parameters=parameters)

    # -- activities -----------------------------------------------------------------------------
    def create_private_key(self, name: str, curve: str, address_formats: list[str]) -> Any:
        return self.submit(
            "create_private_keys",
            "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
            calls.create_private_keys([(name, curve, address_formats)]),
        )

    def delete_private_keys(self, private_key_ids: list[str], *, without_export: bool = False) -> Any:
        params: dict[str, Any] = {"privateKeyIds": private_key_ids}
        if without_export:
            params["deleteWithoutExport"] = True
        return self.submit("delete_private_keys", "ACTIVITY_TYPE_DELETE_PRIVATE_KEYS", params)

    def create_wallet(self, name: str, accounts: list[dict[str, Any]], mnemonic_length: int | None = None) -> Any:
        """`accounts`: items built with `calls.wallet_account(...)` (e.g. `calls.ETHEREUM_ACCOUNT`)."""
        params: dict[str, Any] = {"walletName": name, "accounts": accounts}
        if mnemonic_length is not None:
            params["mnemonicLength"] = mnemonic_length
        return self.submit("create_wallet", "ACTIVITY_TYPE_CREATE_WALLET", params)

    def create_wallet_accounts(self, wallet_id: str, accounts: list[dict[str, Any]]) -> Any:
        return self.submit(
            "create_wallet_accounts",
            "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS",
            {"walletId": wallet_id, "accounts": accounts},
        )

    def update_wallet(self, wallet_id: str, name: str) -> Any:
        return self.submit("update_wallet", "ACTIVITY_TYPE_UPDATE_WALLET", {"walletId": wallet_id, "walletName": name})

    def delete_wallets(self, wallet_ids: list[str], *, without_export: bool = False) -> Any:
        params: dict[str, Any] = {"walletIds": wallet_ids}
        if without_export:
            params["deleteWithoutExport"] = True
        return self.submit("delete_wallets", "ACTIVITY_TYPE_DELETE_WALLETS", params)

    def sign_raw_payload(self, sign_with: str, payload: str, encoding: str, hash_function: str) -> Any:
        return self.submit(
            "sign_raw_payload",
            "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
            calls.sign_raw(sign_with, payload, encoding, hash_function),
        )

    def sign_transaction(
        self, sign_with: str, unsigned_transaction: str, tx_type: str = "TRANSACTION_TYPE_ETHEREUM"
    ) -> Any:
        return self.submit(
            "sign_transaction",
            "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
            calls.sign_tx(sign_with, unsigned_transaction, tx_type),
        )

    def create_policy(self, name: str, effect: str, condition: str = "", consensus: str = "", notes: str = "") -> Any:
        return self.submit(
            "create_policy",
            "ACTIVITY_TYPE_CREATE_POLICY_V3",
            calls.policy(name, effect, condition, consensus, notes),
        )

    def delete_policy(self, policy_id: str) -> Any:
        return self.submit("delete_policy", "ACTIVITY_TYPE_DELETE_POLICY", {"policyId": policy_id})

    def approve_activity(self, fingerprint: str) -> Any:
        return self.submit("approve_activity", "ACTIVITY_TYPE_APPROVE_ACTIVITY", {"fingerprint": fingerprint})

    def reject_activity(self, fingerprint: str) -> Any:
        return self.submit("reject_activity", "ACTIVITY_TYPE_REJECT_ACTIVITY", {"fingerprint": fingerprint})

    def create_users(self, users: list[dict[str, Any]]) -> Any:
        """`users`: items built with `calls.user(...)` (Turnkey's CREATE_USERS_V4 shape)."""
        return self.submit("create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", {"users": users})

    def update_user(self, user_id: str, **fields: Any) -> Any:
        """`fields`: userName, userEmail, userPhoneNumber, accessType (ACCESS_TYPE_*), userTagIds."""
        return self.submit("update_user", "ACTIVITY_TYPE_UPDATE_USER", {"userId": user_id, **fields})

    def delete_users(self, user_ids: list[str]) -> Any:
        return self.submit("delete_users", "ACTIVITY_TYPE_DELETE_USERS", {"userIds": user_ids})

    def create_api_keys(self, user_id: str, api_keys: list[dict[str, Any]]) -> Any:
        """`api_keys`: items built with `calls.api_key(...)` (public keys only)."""
        return self.submit(
            "create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", {"userId": user_id, "apiKeys": api_keys}
        )

    def delete_api_keys(self, user_id: str, api_key_ids: list[str]) -> Any:
        return self.submit(
            "delete_api_keys", "ACTIVITY_TYPE_DELETE_API_KEYS", {"userId": user_id, "apiKeyIds": api_key_ids}
        )

    def delete_authenticators(self, user_id: str, authenticator_ids: list[str]) -> Any:
        return self.submit(
            "delete_authenticators",
            "ACTIVITY_TYPE_DELETE_AUTHENTICATORS",
            {"userId": user_id, "authenticatorIds": authenticator_ids},
        )

    def update_root_quorum(self, threshold: int, user_ids: list[str]) -> Any:
        return self.submit(
            "update_root_quorum", "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM", {"threshold": threshold, "userIds": user_ids}
        )
