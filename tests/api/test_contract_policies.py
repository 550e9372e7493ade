"""Contract-aware policies over HTTP: with an ERC-20 ABI uploaded, a transfer cap by amount holds for
SIGN_TRANSACTION_V2 and for the same unsigned bytes through SIGN_RAW_PAYLOAD(S); without the ABI, or
for calldata the ABI does not describe, a policy that reads the call fails closed."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from eth_abi.abi import encode
from test_policies import Member, Org, make_key, org_fixture  # noqa: F401 - the `org` fixture

from strongroom.chains.ethereum import rlp

pytestmark = pytest.mark.softhsm

TOKEN = "0x" + "7a" * 20
OTHER_TOKEN = "0x" + "7b" * 20
RECIPIENT = "0x" + "35" * 20
ERC20 = json.dumps(
    [
        {
            "type": "function",
            "name": "transfer",
            "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
            "outputs": [{"name": "", "type": "bool"}],
        }
    ]
)
CAP = 1000


def erc20_transfer(value: int, token: str = TOKEN, data: bytes | None = None) -> bytes:
    u = rlp.encode_uint
    calldata = (
        data if data is not None else bytes.fromhex("a9059cbb") + encode(["address", "uint256"], [RECIPIENT, value])
    )
    fields = [u(1), u(0), u(10**9), u(10**10), u(90000), bytes.fromhex(token[2:]), u(0), calldata, []]
    return b"\x02" + rlp.encode(fields)


async def upload(org: Org, address: str = TOKEN, text: str = ERC20) -> tuple[int, Any]:
    status, data, _ = await org.submit(
        org.root,
        "create_smart_contract_interface",
        "ACTIVITY_TYPE_CREATE_SMART_CONTRACT_INTERFACE",
        {
            "smartContractAddress": address,
            "smartContractInterface": text,
            "type": "SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM",
            "label": "token",
            "notes": "",
        },
    )
    return status, data


async def attempts(org: Org, who: Member, key: str, unsigned: bytes) -> list[tuple[str, int, Any]]:
    """The same transaction through the three signing activities whose policies can see it."""
    out = []
    for path, kind, params in (
        (
            "sign_transaction",
            "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
            {"signWith": key, "type": "TRANSACTION_TYPE_ETHEREUM", "unsignedTransaction": unsigned.hex()},
        ),
        (
            "sign_raw_payload",
            "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
            {
                "signWith": key,
                "payload": unsigned.hex(),
                "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
                "hashFunction": "HASH_FUNCTION_KECCAK256",
            },
        ),
        (
            "sign_raw_payloads",
            "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS",
            {
                "signWith": key,
                "payloads": ["00" * 4, unsigned.hex()],
                "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
                "hashFunction": "HASH_FUNCTION_SHA256",
            },
        ),
    ):
        status, data, _ = await org.submit(who, path, kind, params)
        out.append((path, status, data))
    return out


async def test_an_erc20_transfer_cap_by_abi_holds_on_every_signing_path(org: Org) -> None:
    key, _ = await make_key(org, "treasury")
    trader = org.add_user("trader")
    await org.policy(
        "transfers of the token up to the cap",
        "EFFECT_ALLOW",
        f"eth.tx.to == '{TOKEN}' && eth.tx.function_name == 'transfer' && eth.tx.contract_call_args['value'] <= {CAP}",
    )
    await org.policy(  # the other payload of the batch needs its own permission
        "the batch's other payload", "EFFECT_ALLOW", "activity.params.payload == '00000000'"
    )
    status, data = await upload(org)
    assert status == 200, data

    for path, status, data in await attempts(org, trader, key, erc20_transfer(CAP)):
        assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", (path, data)
    before = org.token_ops
    for path, status, data in await attempts(org, trader, key, erc20_transfer(CAP + 1)):
        assert status == 403, (path, data)
    # Calldata the ABI does not describe (another selector) decodes to nothing: not allowed.
    unknown = erc20_transfer(0, data=bytes.fromhex("deadbeef") + encode(["uint256"], [1]))
    for path, status, data in await attempts(org, trader, key, unknown):
        assert status == 403, (path, data)
    # Another token, no ABI: the call fields are absent, so the ALLOW does not allow.
    for path, status, data in await attempts(org, trader, key, erc20_transfer(1, token=OTHER_TOKEN)):
        assert status == 403, (path, data)
    assert org.token_ops == before


async def test_a_deny_on_call_arguments_denies_what_it_cannot_read(org: Org) -> None:
    key, _ = await make_key(org, "hot")
    trader = org.add_user("trader")
    await org.policy("sign anything", "EFFECT_ALLOW", "activity.action == 'SIGN'")
    await org.policy(
        "no transfers to the blocked recipient",
        "EFFECT_DENY",
        f"eth.tx.contract_call_args['to'] == '{RECIPIENT}'",
    )
    # No ABI yet: the DENY cannot read the call, and a DENY that fails to evaluate denies.
    for path, status, data in await attempts(org, trader, key, erc20_transfer(5)):
        assert status == 403, (path, data)
    assert (await upload(org))[0] == 200
    for path, status, data in await attempts(org, trader, key, erc20_transfer(5)):
        assert status == 403, (path, data)  # now it reads the recipient, and denies
    # The ABI is gone once deleted, and the interfaces are listed with their digest.
    status, data = await org.query(org.root, "list_smart_contract_interfaces")
    (item,) = data["smartContractInterfaces"]
    assert item["smartContractAddress"] == TOKEN and item["smartContractInterface"] == ERC20
    status, data = await org.query(org.root, "get_organization")
    assert data["organizationData"]["smartContractInterfaceReferences"] == [
        {
            "smartContractInterfaceId": item["smartContractInterfaceId"],
            "smartContractAddress": TOKEN,
            "digest": hashlib.sha256(ERC20.encode()).hexdigest(),
        }
    ]
    status, data, _ = await org.submit(
        org.root,
        "delete_smart_contract_interface",
        "ACTIVITY_TYPE_DELETE_SMART_CONTRACT_INTERFACE",
        {"smartContractInterfaceId": item["smartContractInterfaceId"]},
    )
    assert status == 200, data
    status, data = await org.query(
        org.root, "get_smart_contract_interface", smartContractInterfaceId=item["smartContractInterfaceId"]
    )
    assert status == 404, data


@pytest.mark.parametrize(
    ("address", "text", "kind"),
    [
        ("0x1234", ERC20, "SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM"),
        (TOKEN, "not json", "SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM"),
        (TOKEN, "[]", "SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM"),
        (TOKEN, ERC20, "SMART_CONTRACT_INTERFACE_TYPE_BITCOIN"),
        (TOKEN, '{"instructions": []}', "SMART_CONTRACT_INTERFACE_TYPE_SOLANA"),  # not a base58 program id
    ],
)
async def test_bad_interfaces_are_refused(org: Org, address: str, text: str, kind: str) -> None:
    status, data, _ = await org.submit(
        org.root,
        "create_smart_contract_interface",
        "ACTIVITY_TYPE_CREATE_SMART_CONTRACT_INTERFACE",
        {"smartContractAddress": address, "smartContractInterface": text, "type": kind, "label": "x"},
    )
    assert status == 400 and set(data) == {"code", "message", "details"}, data
    status, data = await org.query(org.root, "list_smart_contract_interfaces")
    assert data["smartContractInterfaces"] == []
