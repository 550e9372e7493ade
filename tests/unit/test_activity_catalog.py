"""The catalog of activity types: its entries, as the wire knows them, and its rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from strongroom.service import CATALOG, Catalog
from strongroom.service.activities.base import activity

# (type, path, intent key, result key, policy resource, policy action): what Turnkey clients send
# and read. A change here changes the wire format; the table is written out on purpose.
WIRE = [
    (
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        "create_private_keys",
        "createPrivateKeysIntentV2",
        "createPrivateKeysResultV2",
        "PRIVATE_KEY",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
        "sign_raw_payload",
        "signRawPayloadIntentV2",
        "signRawPayloadResult",
        "PRIVATE_KEY",
        "SIGN",
    ),
    (
        "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS",
        "sign_raw_payloads",
        "signRawPayloadsIntent",
        "signRawPayloadsResult",
        "PRIVATE_KEY",
        "SIGN",
    ),
    (
        "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
        "sign_transaction",
        "signTransactionIntentV2",
        "signTransactionResult",
        "PRIVATE_KEY",
        "SIGN",
    ),
    (
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        "create_policy",
        "createPolicyIntentV3",
        "createPolicyResult",
        "POLICY",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_CREATE_POLICIES",
        "create_policies",
        "createPoliciesIntent",
        "createPoliciesResult",
        "POLICY",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_UPDATE_POLICY_V2",
        "update_policy",
        "updatePolicyIntentV2",
        "updatePolicyResultV2",
        "POLICY",
        "UPDATE",
    ),
    ("ACTIVITY_TYPE_DELETE_POLICY", "delete_policy", "deletePolicyIntent", "deletePolicyResult", "POLICY", "DELETE"),
    (
        "ACTIVITY_TYPE_DELETE_POLICIES",
        "delete_policies",
        "deletePoliciesIntent",
        "deletePoliciesResult",
        "POLICY",
        "DELETE",
    ),
    (
        "ACTIVITY_TYPE_CREATE_USER_TAG",
        "create_user_tag",
        "createUserTagIntent",
        "createUserTagResult",
        "USER",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_UPDATE_USER_TAG",
        "update_user_tag",
        "updateUserTagIntent",
        "updateUserTagResult",
        "USER",
        "UPDATE",
    ),
    (
        "ACTIVITY_TYPE_DELETE_USER_TAGS",
        "delete_user_tags",
        "deleteUserTagsIntent",
        "deleteUserTagsResult",
        "USER",
        "DELETE",
    ),
    (
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEY_TAG",
        "create_private_key_tag",
        "createPrivateKeyTagIntent",
        "createPrivateKeyTagResult",
        "PRIVATE_KEY",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_UPDATE_PRIVATE_KEY_TAG",
        "update_private_key_tag",
        "updatePrivateKeyTagIntent",
        "updatePrivateKeyTagResult",
        "PRIVATE_KEY",
        "UPDATE",
    ),
    (
        "ACTIVITY_TYPE_DELETE_PRIVATE_KEY_TAGS",
        "delete_private_key_tags",
        "deletePrivateKeyTagsIntent",
        "deletePrivateKeyTagsResult",
        "PRIVATE_KEY",
        "DELETE",
    ),
    (
        "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM",
        "update_root_quorum",
        "updateRootQuorumIntent",
        "updateRootQuorumResult",
        "ORGANIZATION",
        "UPDATE",
    ),
    ("ACTIVITY_TYPE_CREATE_USERS_V4", "create_users", "createUsersIntentV4", "createUsersResult", "USER", "CREATE"),
    ("ACTIVITY_TYPE_DELETE_USERS", "delete_users", "deleteUsersIntent", "deleteUsersResult", "USER", "DELETE"),
    ("ACTIVITY_TYPE_UPDATE_USER", "update_user", "updateUserIntent", "updateUserResult", "USER", "UPDATE"),
    (
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        "create_api_keys",
        "createApiKeysIntentV2",
        "createApiKeysResult",
        "CREDENTIAL",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_DELETE_API_KEYS",
        "delete_api_keys",
        "deleteApiKeysIntent",
        "deleteApiKeysResult",
        "CREDENTIAL",
        "DELETE",
    ),
    (
        "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
        "create_authenticators",
        "createAuthenticatorsIntentV2",
        "createAuthenticatorsResult",
        "CREDENTIAL",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_DELETE_AUTHENTICATORS",
        "delete_authenticators",
        "deleteAuthenticatorsIntent",
        "deleteAuthenticatorsResult",
        "CREDENTIAL",
        "DELETE",
    ),
    (
        "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        "create_sub_organization",
        "createSubOrganizationIntentV8",
        "createSubOrganizationResultV8",
        "ORGANIZATION",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_APPROVE_ACTIVITY",
        "approve_activity",
        "approveActivityIntent",
        "approveActivityResult",
        "ACTIVITY",
        "APPROVE",
    ),
    (
        "ACTIVITY_TYPE_REJECT_ACTIVITY",
        "reject_activity",
        "rejectActivityIntent",
        "rejectActivityResult",
        "ACTIVITY",
        "REJECT",
    ),
    # HD wallets and key lifecycle (Turnkey's names; checked against @turnkey/http's swagger).
    (
        "ACTIVITY_TYPE_CREATE_WALLET",
        "create_wallet",
        "createWalletIntent",
        "createWalletResult",
        "WALLET",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS",
        "create_wallet_accounts",
        "createWalletAccountsIntent",
        "createWalletAccountsResult",
        "WALLET",
        "CREATE",
    ),
    ("ACTIVITY_TYPE_UPDATE_WALLET", "update_wallet", "updateWalletIntent", "updateWalletResult", "WALLET", "UPDATE"),
    (
        "ACTIVITY_TYPE_DELETE_WALLETS",
        "delete_wallets",
        "deleteWalletsIntent",
        "deleteWalletsResult",
        "WALLET",
        "DELETE",
    ),
    (
        "ACTIVITY_TYPE_DELETE_WALLET_ACCOUNTS",
        "delete_wallet_accounts",
        "deleteWalletAccountsIntent",
        "deleteWalletAccountsResult",
        "WALLET",
        "DELETE",
    ),
    (
        "ACTIVITY_TYPE_DELETE_PRIVATE_KEYS",
        "delete_private_keys",
        "deletePrivateKeysIntent",
        "deletePrivateKeysResult",
        "PRIVATE_KEY",
        "DELETE",
    ),
    (
        "ACTIVITY_TYPE_EXPORT_PRIVATE_KEY",
        "export_private_key",
        "exportPrivateKeyIntent",
        "exportPrivateKeyResult",
        "PRIVATE_KEY",
        "EXPORT",
    ),
    (
        "ACTIVITY_TYPE_EXPORT_WALLET",
        "export_wallet",
        "exportWalletIntent",
        "exportWalletResult",
        "WALLET",
        "EXPORT",
    ),
    (
        "ACTIVITY_TYPE_EXPORT_WALLET_ACCOUNT",
        "export_wallet_account",
        "exportWalletAccountIntent",
        "exportWalletAccountResult",
        "WALLET",
        "EXPORT",
    ),
    (
        "ACTIVITY_TYPE_INIT_IMPORT_PRIVATE_KEY",
        "init_import_private_key",
        "initImportPrivateKeyIntent",
        "initImportPrivateKeyResult",
        "PRIVATE_KEY",
        "IMPORT",
    ),
    (
        "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
        "import_private_key",
        "importPrivateKeyIntent",
        "importPrivateKeyResult",
        "PRIVATE_KEY",
        "IMPORT",
    ),
    (
        "ACTIVITY_TYPE_INIT_IMPORT_WALLET",
        "init_import_wallet",
        "initImportWalletIntent",
        "initImportWalletResult",
        "WALLET",
        "IMPORT",
    ),
    (
        "ACTIVITY_TYPE_IMPORT_WALLET",
        "import_wallet",
        "importWalletIntent",
        "importWalletResult",
        "WALLET",
        "IMPORT",
    ),
    (
        "ACTIVITY_TYPE_CREATE_SMART_CONTRACT_INTERFACE",
        "create_smart_contract_interface",
        "createSmartContractInterfaceIntent",
        "createSmartContractInterfaceResult",
        "SMART_CONTRACT_INTERFACE",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_DELETE_SMART_CONTRACT_INTERFACE",
        "delete_smart_contract_interface",
        "deleteSmartContractInterfaceIntent",
        "deleteSmartContractInterfaceResult",
        "SMART_CONTRACT_INTERFACE",
        "DELETE",
    ),
    # Webhook endpoints (checked against @turnkey/http's swagger).
    (
        "ACTIVITY_TYPE_CREATE_WEBHOOK_ENDPOINT",
        "create_webhook_endpoint",
        "createWebhookEndpointIntent",
        "createWebhookEndpointResult",
        "WEBHOOK_ENDPOINT",
        "CREATE",
    ),
    (
        "ACTIVITY_TYPE_UPDATE_WEBHOOK_ENDPOINT",
        "update_webhook_endpoint",
        "updateWebhookEndpointIntent",
        "updateWebhookEndpointResult",
        "WEBHOOK_ENDPOINT",
        "UPDATE",
    ),
    (
        "ACTIVITY_TYPE_DELETE_WEBHOOK_ENDPOINT",
        "delete_webhook_endpoint",
        "deleteWebhookEndpointIntent",
        "deleteWebhookEndpointResult",
        "WEBHOOK_ENDPOINT",
        "DELETE",
    ),
]
ROOT_ONLY = {
    "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM": "always",
    "ACTIVITY_TYPE_UPDATE_USER": "root target",
    "ACTIVITY_TYPE_CREATE_API_KEYS_V2": "root target",
    "ACTIVITY_TYPE_DELETE_API_KEYS": "root target",
    "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2": "root target",
    "ACTIVITY_TYPE_DELETE_AUTHENTICATORS": "root target",
}


def test_the_catalog_serves_these_types_under_these_names() -> None:
    served = [(e.type, e.path, e.intent, e.result, e.resource, e.action) for e in CATALOG]
    assert sorted(served) == sorted(WIRE)
    assert len(CATALOG) == len(WIRE)


def test_root_only_types() -> None:
    assert {e.type: e.root_only for e in CATALOG if e.root_only != "never"} == ROOT_ONLY


def test_votes_have_no_reader_and_every_other_type_has_one() -> None:
    votes = {e.type for e in CATALOG if e.is_vote}
    assert votes == {"ACTIVITY_TYPE_APPROVE_ACTIVITY", "ACTIVITY_TYPE_REJECT_ACTIVITY"}
    assert all(e.prepare is not None for e in CATALOG if e.type not in votes)


def test_every_entry_documents_its_parameters_as_a_json_object() -> None:
    for entry in CATALOG:
        assert entry.parameters["type"] == "object", entry.path
        assert set(entry.parameters["required"]) <= set(entry.parameters["properties"]), entry.path


def test_lookups_by_path_and_by_type_find_the_same_entry() -> None:
    for entry in CATALOG:
        assert CATALOG.by_path[entry.path] is CATALOG.by_type[entry.type] is entry
    assert CATALOG.submit_types()["sign_raw_payload"] == "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"


def test_a_type_or_a_path_twice_is_refused() -> None:
    first = CATALOG.by_path["create_users"]
    with pytest.raises(ValueError, match="activity path `create_users` is in the catalog twice"):
        Catalog([first, replace(first, type="ACTIVITY_TYPE_CREATE_USERS_V5")])
    with pytest.raises(ValueError, match="activity type `ACTIVITY_TYPE_CREATE_USERS_V4` is in the catalog twice"):
        Catalog([first, replace(first, path="create_users_again")])


def test_entries_are_named_as_turnkey_names_them() -> None:
    entry = activity(
        "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8", None, "ORGANIZATION", "CREATE", {}, result_version=True
    )
    assert (entry.path, entry.intent, entry.result) == (
        "create_sub_organization",
        "createSubOrganizationIntentV8",
        "createSubOrganizationResultV8",
    )
    entry = activity("ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", None, "PRIVATE_KEY", "SIGN", {})
    assert (entry.path, entry.intent, entry.result) == (
        "sign_raw_payload",
        "signRawPayloadIntentV2",
        "signRawPayloadResult",
    )
    with pytest.raises(ValueError, match="not named as Turnkey names activity types"):
        activity("CREATE_USERS", None, "USER", "CREATE", {})
