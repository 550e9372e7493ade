"""`strongroom.eth.StrongroomAccount` against a real daemon: signatures eth-account recovers, policies apply,
and web3.py broadcasts what it signs to an eth-tester chain."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_utils import keccak

from conftest import Daemon, api_user
from strongroom.chains.ethereum.tx import parse_signed_transaction
from strongroom.client import Client
from strongroom.eth import SigningRefused, StrongroomAccount, local_account, transaction_from_dict

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

BLOCKED = "0x000000000000000000000000000000000000dEaD"
TYPED: dict[str, Any] = {
    "types": {
        "EIP712Domain": [
            {"name": "name", "type": "string"},
            {"name": "version", "type": "string"},
            {"name": "chainId", "type": "uint256"},
            {"name": "verifyingContract", "type": "address"},
        ],
        "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
        "Mail": [
            {"name": "from", "type": "Person"},
            {"name": "to", "type": "Person"},
            {"name": "contents", "type": "string"},
            {"name": "amount", "type": "uint256"},
        ],
    },
    "primaryType": "Mail",
    "domain": {
        "name": "Ether Mail",
        "version": "1",
        "chainId": 1,
        "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
    },
    "message": {
        "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
        "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
        "contents": "Hello, Bob!",
        "amount": 2**200,
    },
}


def new_account(client: Client, **kwargs: Any) -> StrongroomAccount:
    out = client.create_private_key(f"eth-{uuid.uuid4().hex[:8]}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    key = out["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]
    return StrongroomAccount.for_key(client, key["privateKeyId"], **kwargs)


def test_signatures_recover_to_the_keys_address(daemon: Daemon) -> None:
    account = new_account(daemon.client())
    txs: list[dict[str, Any]] = [
        {  # EIP-1559, quantities as web3.py fills them
            "to": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB",
            "value": 10**18,
            "gas": 21000,
            "maxFeePerGas": 3 * 10**9,
            "maxPriorityFeePerGas": 10**9,
            "nonce": 7,
            "chainId": 1,
            "data": "0xdeadbeef",
            "from": account.address.lower(),
        },
        {"to": BLOCKED.lower(), "value": "0x1", "gas": "0x5208", "gasPrice": "0x3b9aca00", "nonce": 0, "chainId": 5},
        {  # EIP-2930, a contract creation
            "type": 1,
            "gas": 100000,
            "gasPrice": 10**9,
            "nonce": 1,
            "chainId": 10,
            "data": b"\x60\x00",
            "accessList": [{"address": BLOCKED, "storageKeys": ["0x" + "00" * 31 + "01"]}],
        },
        {"to": BLOCKED, "value": 0, "gas": 21000, "gasPrice": 1, "nonce": 3},  # pre-EIP-155 legacy
    ]
    for tx in txs:
        signed = account.sign_transaction(tx)
        assert Account.recover_transaction(signed.raw_transaction) == account.address
        assert signed["hash"] == signed.hash == keccak(signed.raw_transaction)
        assert signed["raw_transaction"] == signed[0] == signed.raw_transaction

    message = encode_defunct(text="hello from strongroom")
    sm = account.sign_message(message)
    assert Account.recover_message(message, signature=sm.signature) == account.address
    assert sm.message_hash == Account.sign_message(message, "0x" + "11" * 32).message_hash
    assert sm.v in (27, 28)

    st = account.sign_typed_data(full_message=TYPED)
    reference_hash = Account.sign_typed_data("0x" + "11" * 32, full_message=TYPED).message_hash
    assert st.message_hash == reference_hash
    assert Account.recover_message(encode_typed_data(full_message=TYPED), signature=st.signature) == account.address
    parts = account.sign_typed_data(
        TYPED["domain"], {k: v for k, v in TYPED["types"].items() if k != "EIP712Domain"}, TYPED["message"]
    )
    assert parts.message_hash == reference_hash

    with pytest.raises(NotImplementedError, match="bare hashes"):
        account.unsafe_sign_hash(b"\x00" * 32)


def test_the_transaction_dict_is_encoded_exactly_as_eth_account_encodes_it() -> None:
    key = "0x" + "22" * 32
    for tx in (
        {
            "to": BLOCKED,
            "value": 5,
            "gas": 21000,
            "maxFeePerGas": 9,
            "maxPriorityFeePerGas": 2,
            "nonce": 1,
            "chainId": 1,
        },
        {"to": BLOCKED, "value": 5, "gas": 21000, "gasPrice": 9, "nonce": 1, "chainId": 1},
        {"type": "0x1", "to": BLOCKED, "gas": 21000, "gasPrice": 9, "nonce": 1, "chainId": 1, "accessList": []},
    ):
        reference = Account.sign_transaction(tx, key)
        assert parse_signed_transaction(bytes(reference.raw_transaction)).tx == transaction_from_dict(tx)
    with pytest.raises(ValueError, match="unsupported transaction fields: blobs"):
        transaction_from_dict({"blobs": []})


def test_a_policy_deny_refuses_through_the_account(daemon: Daemon) -> None:
    root = daemon.client()
    alice = api_user(root, f"alice-{uuid.uuid4().hex[:6]}")
    whoami = alice.whoami()
    account = new_account(root)
    root.create_policy(
        f"alice signs {account.address}",
        "EFFECT_ALLOW",
        f"activity.resource == 'PRIVATE_KEY' && activity.action == 'SIGN' && "
        f"eth.tx.from == '{account.address.lower()}'",
        f"approvers.any(user, user.id == '{whoami['userId']}')",
    )
    root.create_policy(
        f"never to dead from {account.address}",
        "EFFECT_DENY",
        f"eth.tx.from == '{account.address.lower()}' && eth.tx.to == '{BLOCKED.lower()}'",
    )
    as_alice = StrongroomAccount(alice, account.address)
    tx = {"value": 1, "gas": 21000, "maxFeePerGas": 2, "maxPriorityFeePerGas": 1, "nonce": 0, "chainId": 1}
    ok = as_alice.sign_transaction({**tx, "to": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"})
    assert Account.recover_transaction(ok.raw_transaction) == account.address
    with pytest.raises(SigningRefused, match="policy engine denied request explicitly") as err:
        as_alice.sign_transaction({**tx, "to": BLOCKED})
    assert err.value.status == 403
    # No policy allows Alice to sign messages with the key: refused as well.
    with pytest.raises(SigningRefused, match="no policy allows this activity"):
        as_alice.sign_message(encode_defunct(text="not covered by any policy"))


@pytest.fixture
def w3() -> Iterator[Any]:
    """web3.py on an in-process eth-tester chain. py-evm raises the recursion limit when imported:
    it is put back afterwards, as tests of deep nesting elsewhere rely on the default."""
    limit = sys.getrecursionlimit()
    try:
        web3 = pytest.importorskip("web3")
        pytest.importorskip("eth_tester")
        yield web3.Web3(web3.EthereumTesterProvider())
    finally:
        sys.setrecursionlimit(limit)


def test_web3_sends_a_transaction_signed_through_the_account(daemon: Daemon, w3: Any) -> None:
    account = new_account(daemon.client())
    funder = w3.eth.accounts[0]
    fund = w3.eth.send_transaction({"from": funder, "to": account.address, "value": 10**18})
    assert w3.eth.wait_for_transaction_receipt(fund)["status"] == 1
    recipient = "0x00000000000000000000000000000000000A11cE"
    tx = {
        "from": account.address,
        "to": recipient,
        "value": 12345,
        "gas": 21000,
        "maxFeePerGas": w3.eth.get_block("latest")["baseFeePerGas"] * 2 + 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": w3.eth.get_transaction_count(account.address),
        "chainId": w3.eth.chain_id,
    }
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    assert bytes(tx_hash) == signed.hash
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    assert receipt["from"] == account.address
    assert w3.eth.get_balance(recipient) == 12345


def test_web3_signing_middleware_sends_through_the_account(daemon: Daemon, w3: Any) -> None:
    from web3.middleware import SignAndSendRawMiddlewareBuilder

    account = new_account(daemon.client())
    view = local_account(account)
    assert view.address == account.address
    with pytest.raises(NotImplementedError, match="never leaves"):
        _ = view.key
    w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(view), layer=0)
    fund = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account.address, "value": 10**18})
    assert w3.eth.wait_for_transaction_receipt(fund)["status"] == 1
    recipient = "0x00000000000000000000000000000000000B0b00"
    tx_hash = w3.eth.send_transaction({"from": account.address, "to": recipient, "value": 777})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert (receipt["status"], receipt["from"]) == (1, account.address)
    assert w3.eth.get_balance(recipient) == 777
    message = encode_defunct(text="through the view")
    assert Account.recover_message(message, signature=view.sign_message(message).signature) == account.address
