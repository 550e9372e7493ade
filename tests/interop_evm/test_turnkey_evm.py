"""Interop: Turnkey's EVM signer integrations against a real daemon, on the token backend
(`daemon`) and the software fallback (`fallback_daemon`).

`turnkey_evm.mjs` drives the daemon through `@turnkey/viem` 0.14.37 (`createAccount`, on viem
2.57.20) and `@turnkey/ethers` 1.3.29 (`TurnkeySigner`, on ethers 6.17.0), both over an
`@turnkey/http` 6.6.0 `TurnkeyClient` with `@turnkey/api-key-stamper` 0.6.17, verifies every
result with viem / ethers and prints one JSON object. Here every verification boolean is
asserted, and the signed transactions, EIP-191 messages and EIP-712 signatures are re-verified
with independent code (coincurve recovery over digests computed here or by the JS libraries).

The module installs the pinned npm packages itself (`npm ci`) when `node_modules` is missing or
older than `package-lock.json`. Without `node`/`npm` on PATH the tests fail, unless
STRONGROOM_SKIP_INTEROP=1 is set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import coincurve
import pytest

from conftest import node_project, run_node_script
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.chains.ethereum.messages import eip191_hash
from strongroom.chains.ethereum.tx import TYPE_ACCESS_LIST, TYPE_DYNAMIC_FEE, TYPE_LEGACY, parse_signed_transaction
from strongroom.crypto.keccak import keccak256

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "turnkey_evm.mjs"
LOCKFILE = HERE / "package-lock.json"
NODE_MODULES = HERE / "node_modules"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MESSAGE = b"hello strongroom"
TO = "0x3535353535353535353535353535353535353535"
# EIP-712's own test vector: the digest of the "Mail" example the script signs
MAIL_DIGEST = bytes.fromhex("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
MAIL_STRUCT_HASH = bytes.fromhex("c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e")  # hashStruct(mail)
MAIL_DOMAIN_SEPARATOR = bytes.fromhex("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f")
PINNED = {
    "@turnkey/http": "6.6.0",
    "@turnkey/api-key-stamper": "0.6.17",
    "@turnkey/viem": "0.14.37",
    "@turnkey/ethers": "1.3.29",
    "viem": "2.57.20",
    "ethers": "6.17.0",
}


class Run(NamedTuple):
    fixture: str  # "daemon" or "fallback_daemon"
    daemon: Any  # conftest.Daemon
    out: dict[str, Any]  # what turnkey_evm.mjs printed


@pytest.fixture(scope="module")
def node() -> str:
    """Path of `node`, with the pinned packages installed in tests/interop_evm/node_modules."""
    return node_project(HERE)


@pytest.fixture(scope="module", params=["daemon", "fallback_daemon"])
def run(request: pytest.FixtureRequest, node: str) -> Run:
    """Runs turnkey_evm.mjs once against the daemon and returns its JSON report."""
    d = request.getfixturevalue(request.param)
    return Run(request.param, d, run_node_script(node, SCRIPT, d, request.param))


def _recover(digest: bytes, r: int, s: int, y_parity: int) -> str:
    """The Ethereum address that signed `digest`, recovered with coincurve (libsecp256k1)."""
    assert y_parity in (0, 1)
    assert 0 < r < SECP256K1_N
    assert 0 < s <= SECP256K1_N // 2, "high-s signature"
    sig65 = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    public = coincurve.PublicKey.from_signature_and_message(sig65, digest, hasher=None)
    return address_from_public_key(public.format(compressed=False))


def _recover_hex_signature(digest: bytes, signature: str) -> str:
    """Recover from a 65-byte `0x` r‖s‖v signature with v = 27/28 (what both libraries return)."""
    raw = bytes.fromhex(signature.removeprefix("0x"))
    assert len(raw) == 65
    assert raw[64] in (27, 28)
    return _recover(digest, int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big"), raw[64] - 27)


def _sign_calls(out: dict[str, Any], label: str) -> list[dict[str, Any]]:
    return [c for c in out["calls"] if c["label"] == label and c["method"] != "getPrivateKey"]


# -- tests ---------------------------------------------------------------------------------------


def test_pinned_versions_are_installed(node: str) -> None:
    manifest = json.loads((HERE / "package.json").read_text())
    assert manifest["dependencies"] == PINNED
    lock = json.loads(LOCKFILE.read_text())
    for name, version in PINNED.items():
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
        installed = json.loads((NODE_MODULES / name / "package.json").read_text())
        assert installed["version"] == version


def test_every_js_check_passed(run: Run) -> None:
    checks = run.out["checks"]
    failed = sorted(name for name, ok in checks.items() if ok is not True)
    assert failed == []
    # the scenarios the brief asks for are all there (the script must not silently skip any)
    for kind in ("privateKeyId", "address"):
        for name in (
            "viem.verifyMessage",
            "viem.verifyTypedData",
            "viem.noDomainType.recoversUnderEmptyDomain",
            "viem.noDomainType.failsUnderMailDomain",
            "ethers.getAddress",
            "ethers.verifyMessage",
            "ethers.verifyTypedData",
            "ethers.Transaction.from",
        ):
            assert checks[f"{name}.{kind}"] is True
    for name in ("eip1559", "legacy", "eip2930", "eip1559WithData"):
        assert checks[f"viem.recoverTransactionAddress.{name}"] is True
        assert checks[f"viem.reserialize.{name}"] is True
    assert checks["viem.verifyTypedData.walletClient"] is True
    assert checks["viem.recoverAuthorizationAddress"] is True
    assert checks["ethers.Transaction.from.legacy"] is True
    assert checks["addressIsEip55"] is True


def test_key_and_address_lookup(run: Run) -> None:
    d, out = run.daemon, run.out
    key = out["key"]
    got = d.client().query("get_private_key", privateKeyId=key["privateKeyId"])["privateKey"]
    assert got["curve"] == "CURVE_SECP256K1"
    assert got["addresses"] == [{"format": "ADDRESS_FORMAT_ETHEREUM", "address": key["address"]}]
    assert address_from_public_key(bytes.fromhex(got["publicKey"])) == key["address"]
    # createAccount / TurnkeySigner with a private-key ID looked the address up via get_private_key;
    # with an address as signWith they did not
    lookups = [c for c in out["calls"] if c["method"] == "getPrivateKey"]
    assert {c["label"] for c in lookups} >= {"viem.createAccount(privateKeyId)", "ethers.getAddress(privateKeyId)"}
    assert all(c["request"]["privateKeyId"] == key["privateKeyId"] for c in lookups)
    assert all(c["response"]["addresses"] == got["addresses"] for c in lookups)
    assert not any(c["label"].endswith("(address)") for c in lookups)
    assert out["viem"]["accountByIdAddress"] == key["address"]
    assert out["ethers"]["address.privateKeyId"] == key["address"]


def test_sdk_requests_and_daemon_responses(run: Run) -> None:
    """What the libraries sent, and that each sign activity completed synchronously."""
    out = run.out
    key = out["key"]
    sign_calls = [c for c in out["calls"] if c["method"] != "getPrivateKey"]
    assert len(sign_calls) >= 20
    encodings = set()
    for call in sign_calls:
        resp = call["response"]
        assert resp["status"] == "ACTIVITY_STATUS_COMPLETED", call
        params = call["request"]["parameters"]
        assert params["signWith"] in {key["privateKeyId"], key["address"]}
        if call["method"] == "signRawPayload":
            assert call["request"]["type"] == "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
            assert resp["type"] == "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
            assert params["hashFunction"] == "HASH_FUNCTION_NO_OP"
            encodings.add(params["encoding"])
            sig = resp["result"]["signRawPayloadResult"]
            assert len(sig["r"]) == 64
            assert len(sig["s"]) == 64
            assert sig["v"] in {"00", "01"}
        else:
            assert call["request"]["type"] == "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
            assert resp["type"] == "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
            assert params["type"] == "TRANSACTION_TYPE_ETHEREUM"
            assert not params["unsignedTransaction"].startswith("0x")
            signed = resp["result"]["signTransactionResult"]["signedTransaction"]
            assert not signed.startswith("0x")
    assert encodings == {
        "PAYLOAD_ENCODING_HEXADECIMAL",
        "PAYLOAD_ENCODING_EIP712",
        "PAYLOAD_ENCODING_EIP7702_AUTHORIZATION",
    }
    # the EIP-712 JSON each path sends: viem's WalletClient adds EIP712Domain to `types`, ethers
    # always includes it (chainId as 0x-hex); @turnkey/viem's account called without it sends an
    # empty domain (viem's serializeTypedData drops the domain when `types` lacks EIP712Domain)
    payloads = {
        label: json.loads(_sign_calls(out, label)[0]["request"]["parameters"]["payload"])
        for label in (
            "viem.signTypedData(privateKeyId)",
            "viem.signTypedData.noDomainType(privateKeyId)",
            "viem.walletClient.signTypedData",
            "ethers.signTypedData(privateKeyId)",
        )
    }
    for label, payload in payloads.items():
        assert payload["primaryType"] == "Mail"
        if label.startswith("viem.signTypedData.noDomainType"):
            assert "EIP712Domain" not in payload["types"]
            assert payload["domain"] == {}
        else:
            assert [f["name"] for f in payload["types"]["EIP712Domain"]] == [
                "name",
                "version",
                "chainId",
                "verifyingContract",
            ]
            assert payload["domain"]["chainId"] in (1, "0x1"), label


def test_eip1559_transaction_recovers_in_python(run: Run) -> None:
    out = run.out
    address = out["key"]["address"]
    signed_hexes = [
        out["viem"]["transactions"]["eip1559"]["signed"],
        out["ethers"]["transactions"]["privateKeyId"]["signed"],
        out["ethers"]["transactions"]["address"]["signed"],
    ]
    for signed_hex in signed_hexes:
        signed = parse_signed_transaction(signed_hex)
        tx, sig = signed.tx, signed.signature
        assert tx.tx_type == TYPE_DYNAMIC_FEE
        assert tx.chain_id == 1
        assert tx.nonce == 0
        assert tx.to is not None
        assert tx.to.lower() == TO
        assert tx.value == 10**16
        assert tx.gas == 21000
        assert tx.max_fee_per_gas == 20 * 10**9
        assert tx.max_priority_fee_per_gas == 10**9
        assert tx.data == b""
        recovered = coincurve.PublicKey.from_signature_and_message(sig.to_bytes65(), tx.signing_hash(), hasher=None)
        assert address_from_public_key(recovered.format(compressed=False)) == address
        assert _recover(tx.signing_hash(), sig.r, sig.s, sig.v) == address  # and low-s
        # the signing hash is keccak(0x02 ‖ rlp(unsigned)) as viem computed it
        assert "0x" + tx.signing_hash().hex() == out["viem"]["transactions"]["eip1559"]["signingHash"]
    # same unsigned tx from viem (signWith = key ID) and ethers (both kinds of signWith)
    assert len({parse_signed_transaction(h).tx for h in signed_hexes}) == 1


def test_other_transaction_types_recover_in_python(run: Run) -> None:
    out = run.out
    address = out["key"]["address"]
    expected_types = {"legacy": TYPE_LEGACY, "eip2930": TYPE_ACCESS_LIST, "eip1559WithData": TYPE_DYNAMIC_FEE}
    for name, tx_type in expected_types.items():
        entry = out["viem"]["transactions"][name]
        signed = parse_signed_transaction(entry["signed"])
        assert signed.tx.tx_type == tx_type, name
        assert "0x" + signed.tx.signing_hash().hex() == entry["signingHash"], name
        assert _recover(signed.tx.signing_hash(), signed.signature.r, signed.signature.s, signed.signature.v) == address
        # the daemon echoes the client's transaction: re-encoding it gives exactly what viem sent
        assert "0x" + signed.tx.encode_unsigned().hex() == entry["unsigned"], name
    legacy = out["viem"]["transactions"]["legacy"]
    assert parse_signed_transaction(legacy["signed"]).tx.chain_id == 1
    assert legacy["parsed"]["v"] in {"37", "38"}  # EIP-155 on mainnet
    assert parse_signed_transaction(out["viem"]["transactions"]["eip1559WithData"]["signed"]).tx.chain_id == 11155111
    ethers_legacy = parse_signed_transaction(out["ethers"]["transactions"]["legacy"]["signed"])
    assert ethers_legacy.tx.tx_type == TYPE_LEGACY
    assert ethers_legacy.tx.chain_id == 1
    sig = ethers_legacy.signature
    assert _recover(ethers_legacy.tx.signing_hash(), sig.r, sig.s, sig.v) == address


def test_eip191_messages_recover_in_python(run: Run) -> None:
    out = run.out
    address = out["key"]["address"]
    digest = eip191_hash(MESSAGE)
    assert digest == keccak256(b"\x19Ethereum Signed Message:\n16" + MESSAGE)
    assert "0x" + digest.hex() == out["viem"]["messageDigest"] == out["ethers"]["messageDigest"]
    sigs = [*out["viem"]["messages"].values(), *out["ethers"]["messages"].values()]
    assert len(sigs) == 5
    for signature in sigs:
        assert _recover_hex_signature(digest, signature) == address
    # the request carried exactly the EIP-191 digest (hashed client-side), 0x-prefixed
    for label in ("viem.signMessage(privateKeyId)", "ethers.signMessage(address)"):
        (call,) = _sign_calls(out, label)
        assert call["request"]["parameters"]["payload"] == "0x" + digest.hex()
        assert call["request"]["parameters"]["encoding"] == "PAYLOAD_ENCODING_HEXADECIMAL"


def test_eip712_signatures_recover_in_python(run: Run) -> None:
    out = run.out
    address = out["key"]["address"]
    assert out["viem"]["mailDigest"] == out["ethers"]["mailDigest"] == "0x" + MAIL_DIGEST.hex()
    # the spec's intermediate values give the digest: keccak(0x1901 ‖ domainSeparator ‖ hashStruct(mail))
    assert keccak256(b"\x19\x01" + MAIL_DOMAIN_SEPARATOR + MAIL_STRUCT_HASH) == MAIL_DIGEST
    sigs = [*out["viem"]["typedData"].values(), *out["ethers"]["typedData"].values()]
    assert len(sigs) == 5
    for signature in sigs:
        assert _recover_hex_signature(MAIL_DIGEST, signature) == address
    # without EIP712Domain in `types`, @turnkey/viem sent an empty domain: the signature is over
    # hashStruct(EIP712Domain()) = keccak(keccak("EIP712Domain()")) as the domain separator
    empty_domain_digest = keccak256(b"\x19\x01" + keccak256(keccak256(b"EIP712Domain()")) + MAIL_STRUCT_HASH)
    assert out["viem"]["mailDigestEmptyDomain"] == "0x" + empty_domain_digest.hex()
    bare = list(out["viem"]["typedDataNoDomainType"].values())
    assert len(bare) == 2
    for signature in bare:
        assert _recover_hex_signature(empty_domain_digest, signature) == address


def test_eip7702_authorization_recovers_in_python(run: Run) -> None:
    out = run.out
    auth = out["viem"]["authorization"]
    assert auth["chainId"] == 1
    assert auth["nonce"] == 7
    assert auth["address"].lower() == TO
    # keccak(0x05 ‖ rlp([chainId, address, nonce])), built by hand: 0xd7 = list of 23 bytes
    digest = keccak256(b"\x05\xd7\x01\x94" + bytes.fromhex(TO[2:]) + b"\x07")
    r, s = int(auth["r"], 16), int(auth["s"], 16)
    assert _recover(digest, r, s, int(auth["yParity"])) == out["key"]["address"]


def test_every_path_recovers_to_the_one_key(run: Run) -> None:
    """Every signature the libraries got back, whichever signWith and path, is from one key."""
    out = run.out
    assert {tx["from"] for tx in out["ethers"]["transactions"].values()} == {out["key"]["address"]}
    assert {tx["recovered"] for tx in out["viem"]["transactions"].values()} == {out["key"]["address"]}
