"""Interop: `@turnkey/solana`'s TurnkeySigner against a real daemon, on the token backend (`daemon`)
and the software fallback (`fallback_daemon`).

`turnkey_solana.mjs` signs a legacy and a v0 transaction (with an address lookup table) through
`signTransaction` (SIGN_TRANSACTION_V2, TRANSACTION_TYPE_SOLANA), `addSignature` (SIGN_RAW_PAYLOAD_V2
over the message) and `signAllTransactions` (SIGN_RAW_PAYLOADS), with `@turnkey/solana` 1.1.37 on
`@solana/web3.js` 1.98.4 and `@turnkey/http` 6.2.1 (the version `@turnkey/solana` pins, so its
`instanceof TurnkeyClient` test holds), verifies every signature with web3.js and Node's Ed25519,
and prints one JSON object. Here every check is asserted and every signature re-verified in Python.

The module installs the pinned npm packages itself (`npm ci`) when `node_modules` is missing or
older than `package-lock.json`. Without `node`/`npm` on PATH the tests fail, unless
STRONGROOM_SKIP_INTEROP=1 is set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from conftest import node_project, run_node_script
from strongroom.chains.solana import policy, wire
from strongroom.crypto import ed25519
from strongroom.crypto.base58 import b58decode, b58encode

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "turnkey_solana.mjs"
LOCKFILE = HERE / "package-lock.json"
NODE_MODULES = HERE / "node_modules"
PINNED = {
    "@solana/web3.js": "1.98.4",
    "@turnkey/api-key-stamper": "0.6.12",
    "@turnkey/http": "6.2.1",
    "@turnkey/solana": "1.1.37",
}


class Run(NamedTuple):
    fixture: str
    daemon: Any
    out: dict[str, Any]


@pytest.fixture(scope="module")
def node() -> str:
    return node_project(HERE)


@pytest.fixture(scope="module", params=["daemon", "fallback_daemon"])
def run(request: pytest.FixtureRequest, node: str) -> Run:
    d = request.getfixturevalue(request.param)
    return Run(request.param, d, run_node_script(node, SCRIPT, d, request.param))


def test_pinned_versions_are_installed(node: str) -> None:
    manifest = json.loads((HERE / "package.json").read_text())
    assert manifest["dependencies"] == PINNED
    lock = json.loads(LOCKFILE.read_text())
    for name, version in PINNED.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        assert json.loads((NODE_MODULES / name / "package.json").read_text())["version"] == version
    # one @turnkey/http in the tree: @turnkey/solana's `instanceof TurnkeyClient` sees the client we pass
    assert not (NODE_MODULES / "@turnkey" / "solana" / "node_modules" / "@turnkey" / "http").exists()


def test_every_js_check_passed(run: Run) -> None:
    checks = run.out["checks"]
    assert sorted(name for name, ok in checks.items() if ok is not True) == []
    for name in (
        "signTransaction.legacy.web3.verifySignatures",
        "signTransaction.legacy.ed25519",
        "signTransaction.v0.ed25519",
        "signTransaction.v0.type",
        "addSignature.legacy.web3.verifySignatures",
        "addSignature.v0.ed25519",
        "signAllTransactions.legacy.web3.verifySignatures",
        "signAllTransactions.v0.ed25519",
        "signMessage.ed25519",
    ):
        assert checks[name] is True, name


def test_requests_the_sdk_sent_and_what_came_back(run: Run) -> None:
    out = run.out
    address = out["key"]["address"]
    methods = [(c["label"], c["method"]) for c in out["calls"]]
    assert methods == [
        ("signTransaction.legacy", "signTransaction"),
        ("signTransaction.v0", "signTransaction"),
        ("addSignature.legacy", "signRawPayload"),
        ("addSignature.v0", "signRawPayload"),
        ("signAllTransactions", "signRawPayloads"),
        ("signMessage", "signRawPayload"),
    ]
    for call in out["calls"]:
        assert call["response"]["status"] == "ACTIVITY_STATUS_COMPLETED", call
        params = call["request"]["parameters"]
        assert params["signWith"] == address
        if call["method"] == "signTransaction":
            assert call["request"]["type"] == "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
            assert params["type"] == "TRANSACTION_TYPE_SOLANA"
            sent = params["unsignedTransaction"]
            assert sent == out["transactions"][call["label"]]["unsigned"]  # hex, no 0x
            signed = call["response"]["result"]["signTransactionResult"]["signedTransaction"]
            assert signed == out["transactions"][call["label"]]["signed"]
            # the daemon filled only the payer's slot; everything after the signatures is as sent
            assert signed[2 + 128 :] == sent[2 + 128 :]
        else:
            assert params["encoding"] == "PAYLOAD_ENCODING_HEXADECIMAL"
            assert params["hashFunction"] == "HASH_FUNCTION_NOT_APPLICABLE"


def test_signatures_verify_in_python(run: Run) -> None:
    out = run.out
    public = b58decode(out["key"]["address"])
    assert len(out["transactions"]) == 4
    for label, entry in out["transactions"].items():
        tx = wire.parse_transaction(bytes.fromhex(entry["signed"]))
        assert tx.message.raw.hex() == entry["message"], label
        assert tx.signer_index(public) == 0
        ed25519.verify(public, tx.message.raw, tx.signatures[0])
        assert (tx.message.version == 0) == label.endswith("v0")


def test_what_policies_saw(run: Run) -> None:
    """The transactions the SDK built parse into Turnkey's `solana.tx` as expected."""
    out = run.out
    address = out["key"]["address"]
    legacy = policy.policy_fields(
        wire.parse_message(bytes.fromhex(out["transactions"]["signTransaction.legacy"]["message"]))
    )
    assert legacy["transfers"][0]["from"] == address
    assert legacy["transfers"][0]["amount"] == 1000
    (spl,) = legacy["spl_transfers"]
    assert (spl["owner"], spl["amount"], spl["signers"]) == (address, 2500, [])
    v0 = policy.policy_fields(wire.parse_message(bytes.fromhex(out["transactions"]["signTransaction.v0"]["message"])))
    assert v0["transfers"] == [{"from": address, "to": policy.ADDRESS_TABLE_LOOKUP, "amount": 50_000_000}]
    (table,) = v0["address_table_lookups"]
    assert table["address_table_key"] == b58encode(bytes([14]) * 32)  # labelled(14) in transactions.mjs
    assert sorted(table["writable_indexes"] + table["readonly_indexes"]) == [0, 1, 2]
