"""Interop: Turnkey's Python SDK (`turnkey-http` 0.2.2 with `turnkey-api-key-stamper` 0.1.1 and
`turnkey-sdk-types` 0.2.1, from PyPI, pinned as dev dependencies) against a real daemon.

The SDK is used as its README shows: `TurnkeyClient(base_url, ApiKeyStamper(ApiKeyStamperConfig(
public, private)), organization_id)` and its pydantic request bodies. Its responses are parsed by
the SDK's own pydantic models (`v1Activity` with every required field), so a daemon response
missing a field Turnkey always sends fails here. It creates a wallet with Turnkey's default
Ethereum and Solana accounts, adds accounts, reads them back (by page too) and signs with each
account by address; every signature is checked with independent code (coincurve recovers the
Ethereum address, PyNaCl verifies the Ed25519 signature under the key the Solana address
encodes). Another wallet is renamed, loses an account and is deleted, and then never signs.

The SDK's `create_sub_organization` sends `ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V7` (result
`createSubOrganizationResultV7`): the daemon serves it at `create_sub_organization` beside V8.
"""

from __future__ import annotations

import importlib.metadata
import uuid
from pathlib import Path
from typing import Any

import coincurve
import nacl.signing
import pytest
import turnkey_sdk_types as tk
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from turnkey_api_key_stamper import ApiKeyStamper, ApiKeyStamperConfig
from turnkey_http import TurnkeyClient

from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.crypto.base58 import b58decode
from strongroom.crypto.keccak import keccak256

pytestmark = pytest.mark.interop

PINNED = {"turnkey-http": "0.2.2", "turnkey-api-key-stamper": "0.1.1", "turnkey-sdk-types": "0.2.1"}
SECP256K1_HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
COMPLETED = "ACTIVITY_STATUS_COMPLETED"


def _account(curve: str, path: str, address_format: str) -> tk.v1WalletAccountParams:
    return tk.v1WalletAccountParams(
        curve=curve, pathFormat="PATH_FORMAT_BIP32", path=path, addressFormat=address_format
    )


# Turnkey's default accounts (what `@turnkey/sdk-server`'s DEFAULT_*_ACCOUNTS and ...AtIndex(1) make)
ETH_0 = _account("CURVE_SECP256K1", "m/44'/60'/0'/0/0", "ADDRESS_FORMAT_ETHEREUM")
SOL_0 = _account("CURVE_ED25519", "m/44'/501'/0'/0'", "ADDRESS_FORMAT_SOLANA")
ETH_1 = _account("CURVE_SECP256K1", "m/44'/60'/1'/0/0", "ADDRESS_FORMAT_ETHEREUM")
SOL_1 = _account("CURVE_ED25519", "m/44'/501'/1'/0'", "ADDRESS_FORMAT_SOLANA")


def _client(base_url: str, public: str, private: str, organization_id: str) -> TurnkeyClient:
    stamper = ApiKeyStamper(ApiKeyStamperConfig(api_public_key=public, api_private_key=private))
    return TurnkeyClient(base_url=base_url, stamper=stamper, organization_id=organization_id)


@pytest.fixture(scope="module")
def sdk(daemon: Any) -> TurnkeyClient:
    """The SDK's client on the daemon's organization, with the root user's API key (whoami checked)."""
    public = Path(f"{daemon.key_prefix}.public").read_text().strip()
    private = Path(f"{daemon.key_prefix}.private").read_text().strip()
    client = _client(daemon.url, public, private, daemon.organization_id)
    me = client.get_whoami()
    assert me.organizationId == daemon.organization_id
    assert me.userId == daemon.user_id
    return client


@pytest.fixture(scope="module")
def wallet(sdk: TurnkeyClient) -> tk.CreateWalletResponse:
    """A wallet with the default Ethereum and Solana accounts, made through the SDK."""
    made: tk.CreateWalletResponse = sdk.create_wallet(
        tk.CreateWalletBody(walletName=f"python sdk {uuid.uuid4()}", accounts=[ETH_0, SOL_0], mnemonicLength=24)
    )
    return made


def _value(enum_or_str: Any) -> str:
    return str(getattr(enum_or_str, "value", enum_or_str))


def _sign_ethereum(sdk: TurnkeyClient, address: str, message: str) -> tk.SignRawPayloadResponse:
    signed: tk.SignRawPayloadResponse = sdk.sign_raw_payload(
        tk.SignRawPayloadBody(
            signWith=address,
            payload=message,
            encoding="PAYLOAD_ENCODING_TEXT_UTF8",
            hashFunction="HASH_FUNCTION_KECCAK256",
        )
    )
    return signed


def _recovered_address(message: str, r: str, s: str, v: str) -> str:
    assert v in {"00", "01"}
    assert 0 < int(s, 16) <= SECP256K1_HALF_N  # low s
    public = coincurve.PublicKey.from_signature_and_message(
        bytes.fromhex(r + s + v), keccak256(message.encode()), hasher=None
    )
    return address_from_public_key(public.format(compressed=False))


def _sign_solana(sdk: TurnkeyClient, address: str, message: bytes) -> tk.SignRawPayloadResponse:
    signed: tk.SignRawPayloadResponse = sdk.sign_raw_payload(
        tk.SignRawPayloadBody(
            signWith=address,
            payload=message.hex(),
            encoding="PAYLOAD_ENCODING_HEXADECIMAL",
            hashFunction="HASH_FUNCTION_NOT_APPLICABLE",
        )
    )
    return signed


def _verify_solana(address: str, message: bytes, r: str, s: str) -> None:
    nacl.signing.VerifyKey(b58decode(address)).verify(message, bytes.fromhex(r + s))


def _account_matches_its_address(account: tk.v1WalletAccount) -> None:
    assert account.publicKey is not None
    public = bytes.fromhex(account.publicKey)
    if _value(account.addressFormat) == "ADDRESS_FORMAT_ETHEREUM":
        uncompressed = coincurve.PublicKey(public).format(compressed=False)
        assert address_from_public_key(uncompressed) == account.address
    else:
        assert public == b58decode(account.address)


def _spec(account: tk.v1WalletAccount) -> tuple[str, str, str, str]:
    return (_value(account.curve), _value(account.pathFormat), account.path, _value(account.addressFormat))


def _spec_of(params: tk.v1WalletAccountParams) -> tuple[str, str, str, str]:
    return (_value(params.curve), _value(params.pathFormat), params.path, _value(params.addressFormat))


# -- tests ---------------------------------------------------------------------------------------


def test_pinned_sdk_versions_are_installed() -> None:
    """What pyproject.toml pins is what runs here (a packaging check: it needs no daemon)."""
    assert {name: importlib.metadata.version(name) for name in PINNED} == PINNED


def test_create_wallet(wallet: tk.CreateWalletResponse) -> None:
    assert _value(wallet.activity.status) == COMPLETED
    assert _value(wallet.activity.type) == "ACTIVITY_TYPE_CREATE_WALLET"
    assert wallet.activity.result is not None
    assert wallet.activity.result.createWalletResult is not None
    assert wallet.activity.result.createWalletResult.walletId == wallet.walletId
    eth, sol = wallet.addresses
    assert eth.startswith("0x")
    assert eth != eth.lower()  # EIP-55 checksummed
    assert len(b58decode(sol)) == 32


def test_sign_with_the_wallet_accounts(sdk: TurnkeyClient, wallet: tk.CreateWalletResponse) -> None:
    eth, sol = wallet.addresses
    message = f"signed through turnkey-http {uuid.uuid4()}"
    signed = _sign_ethereum(sdk, eth, message)
    assert _value(signed.activity.status) == COMPLETED
    assert _value(signed.activity.type) == "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
    assert _recovered_address(message, signed.r, signed.s, signed.v) == eth
    # hex addresses match in any case
    lower = _sign_ethereum(sdk, eth.lower(), message)
    assert _recovered_address(message, lower.r, lower.s, lower.v) == eth

    solana_message = b"solana message through turnkey-http"
    signed = _sign_solana(sdk, sol, solana_message)
    assert _value(signed.activity.status) == COMPLETED
    _verify_solana(sol, solana_message, signed.r, signed.s)


def test_create_wallet_accounts_and_read_them_back(sdk: TurnkeyClient, wallet: tk.CreateWalletResponse) -> None:
    added = sdk.create_wallet_accounts(tk.CreateWalletAccountsBody(walletId=wallet.walletId, accounts=[ETH_1, SOL_1]))
    assert _value(added.activity.status) == COMPLETED
    assert _value(added.activity.type) == "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS"
    eth1, sol1 = added.addresses
    assert eth1 not in wallet.addresses
    assert sol1 not in wallet.addresses

    listed = sdk.get_wallets().wallets
    (found,) = [w for w in listed if w.walletId == wallet.walletId]
    assert found.exported is False
    assert found.imported is False
    assert sdk.get_wallet(tk.GetWalletBody(walletId=wallet.walletId)).wallet == found

    accounts = sdk.get_wallet_accounts(tk.GetWalletAccountsBody(walletId=wallet.walletId)).accounts
    by_address = {a.address: a for a in accounts}
    assert set(by_address) == {*wallet.addresses, eth1, sol1}
    expected = dict(zip([*wallet.addresses, eth1, sol1], [ETH_0, SOL_0, ETH_1, SOL_1], strict=True))
    for address, params in expected.items():
        account = by_address[address]
        assert _spec(account) == _spec_of(params)
        assert account.walletId == wallet.walletId
        _account_matches_its_address(account)
    got = sdk.get_wallet_account(tk.GetWalletAccountBody(walletId=wallet.walletId, address=sol1)).account
    assert got == by_address[sol1]

    message = f"second account {uuid.uuid4()}"
    signed = _sign_ethereum(sdk, eth1, message)
    assert _recovered_address(message, signed.r, signed.s, signed.v) == eth1
    signed = _sign_solana(sdk, sol1, message.encode())
    _verify_solana(sol1, message.encode(), signed.r, signed.s)


def test_a_stamped_request_sent_later(sdk: TurnkeyClient, wallet: tk.CreateWalletResponse) -> None:
    """The SDK's stamp-now, send-later path (`stamp_sign_raw_payload` + `send_signed_request`)."""
    eth = wallet.addresses[0]
    message = f"stamped now, sent later {uuid.uuid4()}"
    stamped = sdk.stamp_sign_raw_payload(
        tk.SignRawPayloadBody(
            signWith=eth,
            payload=message,
            encoding="PAYLOAD_ENCODING_TEXT_UTF8",
            hashFunction="HASH_FUNCTION_KECCAK256",
        )
    )
    payload = sdk.send_signed_request(stamped)
    assert payload["activity"]["status"] == COMPLETED
    result = payload["activity"]["result"]["signRawPayloadResult"]
    assert _recovered_address(message, result["r"], result["s"], result["v"]) == eth


def test_unknown_sign_with_is_a_turnkey_error(sdk: TurnkeyClient) -> None:
    nobody = "0x" + "11" * 20
    with pytest.raises(tk.TurnkeyNetworkError) as caught:
        _sign_ethereum(sdk, nobody, "nobody signs this")
    assert caught.value.status_code == 404
    assert "no private key, address or wallet account" in str(caught.value)


class V7Refused(Exception):
    """The daemon refused the SDK's ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V7 (and nothing else failed)."""


def test_sub_organization_with_a_wallet(sdk: TurnkeyClient, daemon: Any) -> None:
    """The SDK's own sub-organization call, with a wallet; its root user then signs with the wallet."""
    end_user = ec.generate_private_key(ec.SECP256R1())
    point = end_user.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    public = point.hex()
    private = f"{end_user.private_numbers().private_value:064x}"
    tag = uuid.uuid4().hex[:8]
    body = tk.CreateSubOrganizationBody(
        subOrganizationName=f"python sdk {tag}",
        rootUsers=[
            tk.v1RootUserParamsV4(
                userName=f"python user {tag}",
                apiKeys=[tk.v1ApiKeyParamsV2(apiKeyName="key", publicKey=public, curveType="API_KEY_CURVE_P256")],
                authenticators=[],
                oauthProviders=[],
            )
        ],
        rootQuorumThreshold=1,
        wallet=tk.v1WalletParams(walletName="Default wallet", accounts=[ETH_0, SOL_0]),
    )
    try:
        created = sdk.create_sub_organization(body)
    except tk.TurnkeyNetworkError as err:
        if err.status_code == 400 and "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V7" in str(err):
            raise V7Refused(str(err)) from err
        raise
    assert _value(created.activity.status) == COMPLETED
    assert created.wallet is not None
    eth, sol = created.wallet.addresses
    sub = _client(daemon.url, public, private, created.subOrganizationId)
    message = f"inside the sub-organization {tag}"
    signed = _sign_ethereum(sub, eth, message)
    assert _recovered_address(message, signed.r, signed.s, signed.v) == eth
    signed = _sign_solana(sub, sol, message.encode())
    _verify_solana(sol, message.encode(), signed.r, signed.s)


def test_rename_page_and_delete_a_wallet(sdk: TurnkeyClient) -> None:
    """update_wallet, list_wallet_accounts pages with wallet details, delete_wallet_accounts and
    delete_wallets through the SDK; a deleted account never signs again."""
    made = sdk.create_wallet(
        tk.CreateWalletBody(walletName=f"to delete {uuid.uuid4()}", accounts=[ETH_0, ETH_1, SOL_0])
    )
    eth0, eth1, _sol0 = made.addresses
    new_name = f"renamed {uuid.uuid4()}"
    renamed = sdk.update_wallet(tk.UpdateWalletBody(walletId=made.walletId, walletName=new_name))
    assert _value(renamed.activity.type) == "ACTIVITY_TYPE_UPDATE_WALLET"
    assert renamed.walletId == made.walletId
    assert sdk.get_wallet(tk.GetWalletBody(walletId=made.walletId)).wallet.walletName == new_name

    first = sdk.get_wallet_accounts(
        tk.GetWalletAccountsBody(
            walletId=made.walletId, includeWalletDetails=True, paginationOptions=tk.v1Pagination(limit="2")
        )
    ).accounts
    assert len(first) == 2
    assert all(a.walletDetails is not None and a.walletDetails.walletName == new_name for a in first)
    rest = sdk.get_wallet_accounts(
        tk.GetWalletAccountsBody(
            walletId=made.walletId, paginationOptions=tk.v1Pagination(limit="2", after=first[-1].walletAccountId)
        )
    ).accounts
    assert len(rest) == 1
    assert {a.address for a in first + rest} == set(made.addresses)

    by_address = {a.address: a for a in first + rest}
    deleted = sdk.delete_wallet_accounts(
        tk.DeleteWalletAccountsBody(walletAccountIds=[by_address[eth1].walletAccountId], deleteWithoutExport=True)
    )
    assert _value(deleted.activity.type) == "ACTIVITY_TYPE_DELETE_WALLET_ACCOUNTS"
    assert deleted.walletAccountIds == [by_address[eth1].walletAccountId]
    with pytest.raises(tk.TurnkeyNetworkError) as caught:
        _sign_ethereum(sdk, eth1, "a deleted account")
    assert caught.value.status_code == 404
    message = "the wallet's other accounts still sign"
    signed = _sign_ethereum(sdk, eth0, message)
    assert _recovered_address(message, signed.r, signed.s, signed.v) == eth0

    gone = sdk.delete_wallets(tk.DeleteWalletsBody(walletIds=[made.walletId], deleteWithoutExport=True))
    assert _value(gone.activity.type) == "ACTIVITY_TYPE_DELETE_WALLETS"
    assert gone.walletIds == [made.walletId]
    assert made.walletId not in {w.walletId for w in sdk.get_wallets().wallets}
    with pytest.raises(tk.TurnkeyNetworkError) as caught:
        _sign_ethereum(sdk, eth0, "a deleted wallet")
    assert caught.value.status_code == 404


def test_accounts_made_together_list_in_the_order_asked(sdk: TurnkeyClient) -> None:
    """createWalletResult.addresses follow the request's accounts; the listing should too.

    With ten accounts, a random order matches the request's once in 10! (3,628,800) runs."""
    accounts = [_account("CURVE_SECP256K1", f"m/44'/60'/{i}'/0/0", "ADDRESS_FORMAT_ETHEREUM") for i in range(10)]
    made = sdk.create_wallet(tk.CreateWalletBody(walletName=f"ordered {uuid.uuid4()}", accounts=accounts))
    listed = sdk.get_wallet_accounts(tk.GetWalletAccountsBody(walletId=made.walletId)).accounts
    assert [a.address for a in listed] == made.addresses
    assert [a.path for a in listed] == [a.path for a in accounts]
