"""Deny ERC-20 transfers above a cap, by ABI: upload the token's ABI, write the policy on the call's
arguments, and watch a capped transfer sign while a bigger one is refused.

The root user sets things up (its own requests are not bound by policies); a second user, `trader`,
with an API key made here, is the one the policy governs.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

from eth_abi.abi import encode

from strongroom.chains.ethereum import rlp
from strongroom.client import ApiError, ApiKeyStamper, Client, calls
from strongroom.crypto import p256

USDC = "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"  # USDC on Sepolia
ERC20_TRANSFER = [
    {
        "type": "function",
        "name": "transfer",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    }
]
CAP = 100 * 10**6  # 100 USDC (6 decimals)


def erc20_transfer(value: int) -> str:
    calldata = bytes.fromhex("a9059cbb") + encode(["address", "uint256"], ["0x" + "35" * 20, value])
    u = rlp.encode_uint
    fields = [u(11155111), u(0), u(10**9), u(30 * 10**9), u(90_000), bytes.fromhex(USDC[2:]), u(0), calldata, []]
    return (b"\x02" + rlp.encode(fields)).hex()


def main() -> int:
    url = os.environ.get("STRONGROOM_URL", "http://127.0.0.1:8080")
    org = os.environ["STRONGROOM_ORGANIZATION_ID"]
    root = Client(url, ApiKeyStamper.from_files(os.environ["STRONGROOM_API_KEY"]), org)
    tag = uuid.uuid4().hex[:8]

    wallet = root.create_wallet(f"treasury-{tag}", [calls.ETHEREUM_ACCOUNT])
    address = wallet["activity"]["result"]["createWalletResult"]["addresses"][0]
    root.submit(
        "create_smart_contract_interface",
        "ACTIVITY_TYPE_CREATE_SMART_CONTRACT_INTERFACE",
        {
            "smartContractAddress": USDC,
            "smartContractInterface": json.dumps(ERC20_TRANSFER),
            "type": "SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM",
            "label": "USDC (Sepolia)",
        },
    )
    private, public = p256.generate_private_key()
    made = root.create_users(
        [calls.user(f"trader-{tag}", None, [calls.api_key("trader", public, "API_KEY_CURVE_P256")])]
    )
    trader_id = made["activity"]["result"]["createUsersResult"]["userIds"][0]
    root.create_policy(
        f"trader: USDC transfers up to 100 ({tag})",
        "EFFECT_ALLOW",
        f"eth.tx.to == '{USDC.lower()}' && eth.tx.function_name == 'transfer'"
        f" && eth.tx.contract_call_args['value'] <= {CAP}",
        consensus=f"approvers.any(user, user.id == '{trader_id}')",
    )
    trader = Client(url, ApiKeyStamper(public, private), org)

    out = trader.sign_transaction(address, erc20_transfer(CAP))
    print(f"transfer of 100 USDC: {out['activity']['status']}")
    if out["activity"]["status"] != "ACTIVITY_STATUS_COMPLETED":
        print("FAIL: the capped transfer was not signed", file=sys.stderr)
        return 1
    try:
        trader.sign_transaction(address, erc20_transfer(CAP + 1))
    except ApiError as err:
        print(f"transfer of 100.000001 USDC: refused ({err.status}: {err.message})")
    else:
        print("FAIL: the transfer above the cap was signed", file=sys.stderr)
        return 1
    print("OK: the policy reads the transfer's amount through the uploaded ABI")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
