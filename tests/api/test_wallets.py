"""HD wallets over real HTTP with a real SoftHSM token: create, derive, sign, find, govern, delete.

The mnemonic never leaves the daemon here (export is its own feature), so each account is checked
by what it signs: an Ethereum account's signature recovers its address, a Solana account's
verifies under the public key its base58 address encodes. Derivation itself is checked against
the published BIP-32/BIP-39/SLIP-10 vectors in tests/vectors.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from coincurve import PublicKey
from nacl.signing import VerifyKey
from test_input_hardening import Org, assert_refused, open_org

from solana_build import labelled, sol_transfer_message, transaction
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.client import ApiKeyStamper
from strongroom.client.calls import ETHEREUM_ACCOUNT, SOLANA_ACCOUNT, wallet_account
from strongroom.crypto import base58, p256
from strongroom.crypto.keccak import keccak256
from strongroom.softhsm import SoftHsmToken
from strongroom.store.records import ApiKey, User

pytestmark = pytest.mark.softhsm

CREATE_WALLET = "ACTIVITY_TYPE_CREATE_WALLET"


@pytest.fixture
async def org(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Org]:
    async with open_org(softhsm_token, tmp_path) as made:
        yield made


SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"


async def create_wallet(org: Org, name: str, accounts: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    status, data = await org.submit("create_wallet", CREATE_WALLET, {"walletName": name, "accounts": accounts, **extra})
    assert status == 200, data
    assert data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", data
    result: dict[str, Any] = data["activity"]["result"]["createWalletResult"]
    return result


async def sign(org: Org, sign_with: str, payload: str, hash_function: str = "HASH_FUNCTION_KECCAK256") -> Any:
    return await org.submit(
        "sign_raw_payload",
        SIGN,
        {
            "signWith": sign_with,
            "payload": payload,
            "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
            "hashFunction": hash_function,
        },
    )


def recovered_address(payload: str, sig: dict[str, str]) -> str:
    digest = keccak256(payload.encode())
    pub = PublicKey.from_signature_and_message(bytes.fromhex(sig["r"] + sig["s"] + sig["v"]), digest, hasher=None)
    return address_from_public_key(pub.format(compressed=False))


async def test_a_wallet_signs_with_its_ethereum_and_solana_accounts(org: Org) -> None:
    made = await create_wallet(org, "treasury", [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT], mnemonicLength=24)
    eth, sol = made["addresses"]
    assert eth.startswith("0x") and eth != eth.lower()  # EIP-55 checksummed
    assert len(base58.b58decode(sol)) == 32

    status, data = await sign(org, eth, "pay the rent")
    assert status == 200, data
    sig = data["activity"]["result"]["signRawPayloadResult"]
    assert recovered_address("pay the rent", sig) == eth
    assert int(sig["s"], 16) <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0  # low s

    status, data = await sign(org, eth.lower(), "lowercase works too")  # hex addresses match in any case
    assert status == 200, data

    status, data = await sign(org, sol, "solana message", "HASH_FUNCTION_NOT_APPLICABLE")
    assert status == 200, data
    sig = data["activity"]["result"]["signRawPayloadResult"]
    VerifyKey(base58.b58decode(sol)).verify(b"solana message", bytes.fromhex(sig["r"] + sig["s"]))

    # Two wallets never share an address: each has its own seed.
    other = await create_wallet(org, "other", [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT])
    assert set(other["addresses"]).isdisjoint(made["addresses"])


async def test_accounts_are_derived_found_and_listed(org: Org) -> None:
    made = await create_wallet(org, "derived", [ETHEREUM_ACCOUNT])
    wallet_id = made["walletId"]
    second = wallet_account("CURVE_SECP256K1", "m/44'/60'/0'/0/1", "ADDRESS_FORMAT_ETHEREUM")
    status, data = await org.submit(
        "create_wallet_accounts",
        "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS",
        {"walletId": wallet_id, "accounts": [second]},
    )
    assert status == 200, data
    [addr1] = data["activity"]["result"]["createWalletAccountsResult"]["addresses"]
    assert addr1 != made["addresses"][0]

    # The same account again is refused; `persist: false` previews an address without storing it.
    status, data = await org.submit(
        "create_wallet_accounts", "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS", {"walletId": wallet_id, "accounts": [second]}
    )
    assert_refused(status, data)
    preview = wallet_account("CURVE_SECP256K1", "m/44'/60'/0'/0/2", "ADDRESS_FORMAT_ETHEREUM")
    status, data = await org.submit(
        "create_wallet_accounts",
        "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS",
        {"walletId": wallet_id, "accounts": [preview], "persist": False},
    )
    assert status == 200, data
    [addr2] = data["activity"]["result"]["createWalletAccountsResult"]["addresses"]
    status, data = await sign(org, addr2, "not an account")
    assert_refused(status, data, http=404, grpc=5)

    status, data = await org.query("list_wallet_accounts", walletId=wallet_id, includeWalletDetails=True)
    assert status == 200, data
    accounts = data["accounts"]
    assert [a["address"] for a in accounts] == [made["addresses"][0], addr1]
    assert [a["path"] for a in accounts] == ["m/44'/60'/0'/0/0", "m/44'/60'/0'/0/1"]
    assert all(a["walletDetails"]["walletName"] == "derived" for a in accounts)
    assert all(len(a["publicKey"]) == 66 for a in accounts)  # compressed secp256k1
    status, data = await org.query("list_wallet_accounts", walletId=wallet_id, paginationOptions={"limit": "1"})
    assert [a["address"] for a in data["accounts"]] == [made["addresses"][0]]
    status, data = await org.query(
        "list_wallet_accounts",
        walletId=wallet_id,
        paginationOptions={"limit": "1", "after": accounts[0]["walletAccountId"]},
    )
    assert [a["address"] for a in data["accounts"]] == [addr1]

    status, data = await org.query("get_wallet_account", walletId=wallet_id, address=addr1.lower())
    assert status == 200 and data["account"]["path"] == "m/44'/60'/0'/0/1", data
    status, data = await org.query("get_wallet_account", walletId=wallet_id, path="m/44'/60'/0'/0/0")
    assert status == 200 and data["account"]["address"] == made["addresses"][0], data
    status, data = await org.query("get_wallet_account", walletId=wallet_id, path="m/44'/60'/0'/0/9")
    assert_refused(status, data, http=404, grpc=5)

    status, data = await org.query("get_wallet", walletId=wallet_id)
    assert status == 200, data
    assert data["wallet"]["walletName"] == "derived"
    assert data["wallet"]["exported"] is False and data["wallet"]["imported"] is False
    status, data = await org.query("list_wallets")
    assert wallet_id in {w["walletId"] for w in data["wallets"]}
    status, data = await org.query("get_organization")
    assert wallet_id in {w["walletId"] for w in data["organizationData"]["wallets"]}


@pytest.mark.parametrize(
    ("params", "grpc"),
    [
        ({"walletName": "w", "accounts": [ETHEREUM_ACCOUNT], "mnemonicLength": 13}, 3),
        ({"walletName": "w", "accounts": [ETHEREUM_ACCOUNT], "mnemonicLength": "12"}, 3),
        ({"walletName": "w", "accounts": [{**SOLANA_ACCOUNT, "path": "m/44'/501'/0'/0"}]}, 3),  # SLIP-10: hardened
        ({"walletName": "w", "accounts": [{**ETHEREUM_ACCOUNT, "path": "m/44'/60'/0'/0/2147483648"}]}, 3),
        ({"walletName": "w", "accounts": [{**ETHEREUM_ACCOUNT, "path": "44'/60'"}]}, 3),
        ({"walletName": "w", "accounts": [{**ETHEREUM_ACCOUNT, "pathFormat": "PATH_FORMAT_SLIP44"}]}, 3),
        ({"walletName": "w", "accounts": [{**ETHEREUM_ACCOUNT, "addressFormat": "ADDRESS_FORMAT_SOLANA"}]}, 3),
        ({"walletName": "w", "accounts": [{**ETHEREUM_ACCOUNT, "curve": "CURVE_P256"}]}, 3),
        ({"walletName": "w", "accounts": [ETHEREUM_ACCOUNT, ETHEREUM_ACCOUNT]}, 3),
        ({"walletName": "", "accounts": []}, 3),
        ({"accounts": [ETHEREUM_ACCOUNT]}, 3),
    ],
)
async def test_bad_wallet_requests_are_refused_and_change_nothing(org: Org, params: dict[str, Any], grpc: int) -> None:
    await create_wallet(org, "warm-up", [ETHEREUM_ACCOUNT])
    before = await org.snapshot()
    status, data = await org.submit("create_wallet", CREATE_WALLET, params)
    assert_refused(status, data, grpc=grpc)
    assert await org.snapshot() == before
    status, data = await org.query("list_wallets")
    assert [w["walletName"] for w in data["wallets"]] == ["warm-up"]


async def test_a_wallet_name_is_unique_and_can_change(org: Org) -> None:
    made = await create_wallet(org, "ops", [])
    status, data = await org.submit("create_wallet", CREATE_WALLET, {"walletName": "ops", "accounts": []})
    assert_refused(status, data)
    status, data = await org.submit(
        "update_wallet", "ACTIVITY_TYPE_UPDATE_WALLET", {"walletId": made["walletId"], "walletName": "ops-2"}
    )
    assert status == 200, data
    assert data["activity"]["result"]["updateWalletResult"] == {"walletId": made["walletId"]}
    status, data = await org.query("get_wallet", walletId=made["walletId"])
    assert data["wallet"]["walletName"] == "ops-2"


def add_api_user(org: Org, name: str) -> tuple[ApiKeyStamper, str]:
    priv, pub = p256.generate_private_key()
    now = time.time_ns() // 1_000_000
    user = User(
        str(uuid.uuid4()), org.id, name, f"{name}-{uuid.uuid4().hex[:6]}@example.com", "ACCESS_TYPE_API", (), now, now
    )
    key = ApiKey(str(uuid.uuid4()), user.id, org.id, f"{name} key", pub, "API_KEY_CURVE_P256", None, now, now)
    repo = org.service.repo
    repo.write_sync([*repo.users.insert_user(user), *repo.users.insert_api_key(key)])
    return ApiKeyStamper(pub, priv), user.id


async def test_policies_see_the_wallet_and_the_account(org: Org) -> None:
    allowed = await create_wallet(org, "hot", [ETHEREUM_ACCOUNT])
    other = await create_wallet(org, "cold", [ETHEREUM_ACCOUNT])
    trader, _ = add_api_user(org, "trader")
    status, data = await org.submit(
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "sign with the hot wallet only",
            "effect": "EFFECT_ALLOW",
            "condition": f"activity.action == 'SIGN' && wallet.id == '{allowed['walletId']}'",
            "notes": "",
        },
    )
    assert status == 200, data
    status, data = await org.submit(
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "never this account",
            "effect": "EFFECT_DENY",
            "condition": f"wallet_account.address == '{allowed['addresses'][0]}' && activity.params.payload == 'no'",
            "notes": "",
        },
    )
    assert status == 200, data

    root = org.stamper
    org.stamper = trader
    try:
        status, data = await sign(org, allowed["addresses"][0], "yes")
        assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", data
        status, data = await sign(org, allowed["addresses"][0], "no")  # the DENY on the account wins
        assert_refused(status, data, http=403, grpc=7)
        status, data = await sign(org, other["addresses"][0], "yes")  # another wallet: implicit deny
        assert_refused(status, data, http=403, grpc=7)
        status, data = await org.submit(  # creating wallets is not granted
            "create_wallet", CREATE_WALLET, {"walletName": "mine", "accounts": []}
        )
        assert_refused(status, data, http=403, grpc=7)
    finally:
        org.stamper = root


async def test_deleted_wallets_and_keys_never_sign_again(org: Org) -> None:
    made = await create_wallet(org, "doomed", [ETHEREUM_ACCOUNT])
    address = made["addresses"][0]
    status, data = await org.submit(
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {"privateKeys": [{"privateKeyName": "doomed-key", "curve": "CURVE_SECP256K1", "addressFormats": []}]},
    )
    assert status == 200, data
    key_id = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    signed_before = {}
    for who in (address, key_id):
        body = json.dumps(
            org.envelope(
                SIGN,
                {
                    "signWith": who,
                    "payload": "before",
                    "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                    "hashFunction": "HASH_FUNCTION_KECCAK256",
                },
            )
        ).encode()
        status, data = await org.submit_raw("sign_raw_payload", body)
        assert status == 200, data
        signed_before[who] = (body, data["activity"])

    # Deleting what was never exported needs the explicit flag, and refusing it changes nothing.
    before = await org.snapshot()
    status, data = await org.submit("delete_wallets", "ACTIVITY_TYPE_DELETE_WALLETS", {"walletIds": [made["walletId"]]})
    assert_refused(status, data)
    status, data = await org.submit(
        "delete_private_keys", "ACTIVITY_TYPE_DELETE_PRIVATE_KEYS", {"privateKeyIds": [key_id]}
    )
    assert_refused(status, data)
    assert await org.snapshot() == before

    objects = org.token_objects()
    status, data = await org.submit(
        "delete_wallets", "ACTIVITY_TYPE_DELETE_WALLETS", {"walletIds": [made["walletId"]], "deleteWithoutExport": True}
    )
    assert status == 200, data
    assert data["activity"]["result"]["deleteWalletsResult"] == {"walletIds": [made["walletId"]]}
    status, data = await org.submit(
        "delete_private_keys",
        "ACTIVITY_TYPE_DELETE_PRIVATE_KEYS",
        {"privateKeyIds": [key_id], "deleteWithoutExport": True},
    )
    assert status == 200, data
    assert data["activity"]["result"]["deletePrivateKeysResult"] == {"privateKeyIds": [key_id]}
    assert org.token_objects() == objects - 2  # the token key pair is destroyed, not orphaned

    for who in (address, key_id):
        operations = org.service.keys.operations
        status, data = await sign(org, who, "after")
        assert_refused(status, data, http=404, grpc=5)
        # A replay of a request made before the deletion is answered from the record: the same
        # activity, the same signature, and no token operation at all.
        body, activity = signed_before[who]
        status, data = await org.submit_raw("sign_raw_payload", body)
        assert status == 200 and data["activity"]["id"] == activity["id"], data
        assert data["activity"]["result"] == activity["result"]
        assert org.service.keys.operations == operations
    status, data = await org.query("get_wallet", walletId=made["walletId"])
    assert_refused(status, data, http=404, grpc=5)
    status, data = await org.query("list_wallet_accounts")
    assert address not in {a["address"] for a in data["accounts"]}


async def test_a_request_parked_for_consensus_cannot_sign_after_its_wallet_is_deleted(org: Org) -> None:
    made = await create_wallet(org, "parked", [ETHEREUM_ACCOUNT])
    trader, trader_id = add_api_user(org, "trader")
    approver, approver_id = add_api_user(org, "approver")
    status, data = await org.submit(
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "signing needs the approver",
            "effect": "EFFECT_ALLOW",
            "condition": "activity.action == 'SIGN'",
            "consensus": f"approvers.any(user, user.id == '{approver_id}')",
            "notes": "",
        },
    )
    assert status == 200, data
    root = org.stamper
    org.stamper = trader
    status, data = await sign(org, made["addresses"][0], "parked")
    org.stamper = root
    assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED", data
    fingerprint = data["activity"]["fingerprint"]

    status, data = await org.submit(
        "delete_wallets",
        "ACTIVITY_TYPE_DELETE_WALLETS",
        {"walletIds": [made["walletId"]], "deleteWithoutExport": True},
    )
    assert status == 200, data
    operations = org.service.keys.operations
    org.stamper = approver
    status, data = await org.submit("approve_activity", "ACTIVITY_TYPE_APPROVE_ACTIVITY", {"fingerprint": fingerprint})
    org.stamper = root
    assert org.service.keys.operations == operations  # the token was not touched
    assert status != 200 or data["activity"]["status"] != "ACTIVITY_STATUS_COMPLETED", data
    assert "signRawPayloadResult" not in json.dumps(data)


async def test_a_solana_wallet_account_signs_a_solana_transaction_under_its_wallet_policies(org: Org) -> None:
    made = await create_wallet(org, "sol", [SOLANA_ACCOUNT])
    (address,) = made["addresses"]
    payer = base58.b58decode(address)
    message = sol_transfer_message(payer, labelled(0x22), 5_000).encode()
    unsigned = transaction(message, 1)
    status, data = await org.submit(
        "sign_transaction",
        "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
        {"signWith": address, "type": "TRANSACTION_TYPE_SOLANA", "unsignedTransaction": unsigned.hex()},
    )
    assert status == 200, data
    signed = bytes.fromhex(data["activity"]["result"]["signTransactionResult"]["signedTransaction"])
    assert signed[65:] == message
    VerifyKey(payer).verify(message, signed[1:65])

    trader, _ = add_api_user(org, "sol-trader")
    status, data = await org.submit(
        "create_policy",
        "ACTIVITY_TYPE_CREATE_POLICY_V3",
        {
            "policyName": "small transfers from the sol wallet",
            "effect": "EFFECT_ALLOW",
            "condition": f"wallet.id == '{made['walletId']}' && solana.tx.transfers.all(t, t.amount <= 10000)",
            "notes": "",
        },
    )
    assert status == 200, data
    root = org.stamper
    org.stamper = trader
    try:
        for lamports, expected in ((10_000, 200), (10_001, 403)):
            body = transaction(sol_transfer_message(payer, labelled(0x22), lamports).encode(), 1).hex()
            status, data = await org.submit(
                "sign_transaction",
                "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
                {"signWith": address, "type": "TRANSACTION_TYPE_SOLANA", "unsignedTransaction": body},
            )
            assert status == expected, (lamports, data)
    finally:
        org.stamper = root


async def test_create_sub_organization_v7_as_turnkeys_python_sdk_sends_it(org: Org) -> None:
    _priv, pub = p256.generate_private_key()
    params = {
        "subOrganizationName": f"v7-{uuid.uuid4().hex[:6]}",
        "rootUsers": [
            {
                "userName": "root",
                "apiKeys": [{"apiKeyName": "k", "publicKey": pub, "curveType": "API_KEY_CURVE_P256"}],
                "authenticators": [],
                "oauthProviders": [],
            }
        ],
        "rootQuorumThreshold": 1,
        "wallet": {"walletName": "main", "accounts": [ETHEREUM_ACCOUNT]},
    }
    status, data = await org.submit("create_sub_organization", "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V7", params)
    assert status == 200, data
    activity = data["activity"]
    assert activity["type"] == "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V7"
    assert set(activity["intent"]) == {"createSubOrganizationIntentV7"}
    made = activity["result"]["createSubOrganizationResultV7"]
    assert len(made["wallet"]["addresses"]) == 1 and len(made["rootUserIds"]) == 1
    status, data = await org.query("get_activity", activityId=activity["id"])
    assert data["activity"]["type"] == "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V7"
    # Older versions than those the catalog names are refused at that path.
    status, data = await org.submit("create_sub_organization", "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V6", params)
    assert_refused(status, data)
