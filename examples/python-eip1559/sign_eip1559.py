"""Create an Ethereum key in Strongroom, sign an EIP-1559 transaction, verify it with eth-account."""

from __future__ import annotations

import os
import sys
import uuid

from eth_account import Account
from eth_account.typed_transactions import TypedTransaction

from strongroom.chains.ethereum import rlp
from strongroom.client import ApiKeyStamper, Client
from strongroom.crypto.keccak import keccak256


def main() -> int:
    client = Client(
        os.environ.get("STRONGROOM_URL", "http://127.0.0.1:8080"),
        ApiKeyStamper.from_files(os.environ["STRONGROOM_API_KEY"]),
        os.environ["STRONGROOM_ORGANIZATION_ID"],
    )
    created = client.create_private_key(
        f"example-{uuid.uuid4().hex[:8]}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"]
    )
    address = created["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["addresses"][0]["address"]

    tx = {
        "type": 2,
        "chainId": 11155111,  # Sepolia
        "nonce": 0,
        "to": "0x000000000000000000000000000000000000dEaD",
        "value": 10**15,
        "gas": 21000,
        "maxFeePerGas": 30 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "data": b"",
        "accessList": [],
    }
    u = rlp.encode_uint
    fields = [u(tx["chainId"]), u(tx["nonce"]), u(tx["maxPriorityFeePerGas"]), u(tx["maxFeePerGas"]), u(tx["gas"])]
    unsigned = b"\x02" + rlp.encode([*fields, bytes.fromhex(tx["to"][2:]), u(tx["value"]), b"", []])
    # eth-account, independently: the digest it would sign for this transaction is the one we send.
    if TypedTransaction.from_dict(tx).hash() != keccak256(unsigned):
        print("FAIL: eth-account computes a different signing hash", file=sys.stderr)
        return 1
    out = client.sign_transaction(address, unsigned.hex())
    signed = "0x" + out["activity"]["result"]["signTransactionResult"]["signedTransaction"]

    sender = Account.recover_transaction(signed)
    if sender != address:
        print(f"FAIL: the transaction recovers to {sender}, not {address}", file=sys.stderr)
        return 1
    print(f"address {address}")
    print(f"signed  {signed}")
    print("OK: eth-account recovers the key's address from the signed transaction")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
