"""Interop: Turnkey's official JS client (`@turnkey/http` 6.6.0 + `@turnkey/api-key-stamper` 0.6.17)
against a real daemon, on the token backend (`daemon`) and the software fallback (`fallback_daemon`).

`turnkey_http.mjs` drives the daemon through the SDK and prints one JSON object; everything it
reports is re-verified here with independent code (coincurve / cryptography for secp256k1,
PyNaCl for Ed25519). The module installs the pinned npm packages itself (`npm ci`) when
`node_modules` is missing or older than `package-lock.json`. Without `node`/`npm` on PATH the tests
fail, unless STRONGROOM_SKIP_INTEROP=1 is set.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, NamedTuple

import coincurve
import nacl.signing
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from conftest import node_project, run_node_script
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.client import ClientError
from strongroom.crypto.base58 import b58decode, b58encode
from strongroom.crypto.keccak import keccak256

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "turnkey_http.mjs"
LOCKFILE = HERE / "package-lock.json"
NODE_MODULES = HERE / "node_modules"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
V1_PRIVATE_KEY_FIELDS = {
    "privateKeyId",
    "publicKey",
    "privateKeyName",
    "curve",
    "addresses",
    "privateKeyTags",
    "createdAt",
    "updatedAt",
    "exported",
    "imported",
}


class Run(NamedTuple):
    fixture: str  # "daemon" or "fallback_daemon"
    daemon: Any  # conftest.Daemon
    out: dict[str, Any]  # what turnkey_http.mjs printed


@pytest.fixture(scope="module")
def node() -> str:
    """Path of `node`, with the pinned packages installed in tests/interop/node_modules."""
    return node_project(HERE)


@pytest.fixture(scope="module", params=["daemon", "fallback_daemon"])
def run(request: pytest.FixtureRequest, node: str) -> Run:
    """Runs turnkey_http.mjs once against the daemon and returns its JSON report."""
    d = request.getfixturevalue(request.param)
    return Run(request.param, d, run_node_script(node, SCRIPT, d, request.param))


def _payload_bytes(payload: str, encoding: str) -> bytes:
    if encoding == "PAYLOAD_ENCODING_TEXT_UTF8":
        return payload.encode("utf-8")
    assert encoding == "PAYLOAD_ENCODING_HEXADECIMAL", encoding
    return bytes.fromhex(payload.removeprefix("0x"))


def _digest(payload: bytes, hash_function: str) -> bytes:
    if hash_function == "HASH_FUNCTION_KECCAK256":
        return keccak256(payload)
    if hash_function == "HASH_FUNCTION_SHA256":
        return hashlib.sha256(payload).digest()
    assert hash_function == "HASH_FUNCTION_NO_OP", hash_function
    assert len(payload) == 32
    return payload


def _verify_secp256k1(sig: dict[str, Any], key: dict[str, Any]) -> None:
    r, s, v = sig["r"], sig["s"], sig["v"]
    assert len(r) == 64
    assert len(s) == 64
    assert v in {"00", "01"}
    r_int, s_int = int(r, 16), int(s, 16)
    assert 0 < r_int < SECP256K1_N
    assert 0 < s_int <= SECP256K1_N // 2, f"high-s signature: {sig['label']}"
    digest = _digest(_payload_bytes(sig["payload"], sig["encoding"]), sig["hashFunction"])
    recovered = coincurve.PublicKey.from_signature_and_message(bytes.fromhex(r + s + v), digest, hasher=None)
    assert address_from_public_key(recovered.format(compressed=False)) == key["address"], sig["label"]
    assert recovered.format(compressed=True).hex() == key["privateKey"]["publicKey"]
    # and once more with a second, unrelated implementation (OpenSSL via `cryptography`)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), bytes.fromhex(key["privateKey"]["publicKey"]))
    public.verify(encode_dss_signature(r_int, s_int), digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def _verify_ed25519(sig: dict[str, Any], key: dict[str, Any]) -> None:
    assert len(sig["r"]) == 64
    assert len(sig["s"]) == 64
    assert sig["v"] == "00"
    verify_key = nacl.signing.VerifyKey(b58decode(key["address"]))
    message = _payload_bytes(sig["payload"], sig["encoding"])
    assert verify_key.verify(message, bytes.fromhex(sig["r"] + sig["s"])) == message


# -- tests ---------------------------------------------------------------------------------------


def test_whoami(run: Run) -> None:
    d, out = run.daemon, run.out
    who = out["whoami"]
    assert who["organizationId"] == d.organization_id
    assert who["userId"] == d.user_id
    assert isinstance(who["username"], str)
    assert who["username"]
    assert isinstance(who["organizationName"], str)
    assert out["clientVersion"] == "@turnkey/http@6.6.0"


def test_created_keys_and_addresses(run: Run) -> None:
    out = run.out
    secp, ed = out["keys"]["secp256k1"], out["keys"]["ed25519"]
    assert secp["privateKey"]["curve"] == "CURVE_SECP256K1"
    assert ed["privateKey"]["curve"] == "CURVE_ED25519"
    assert secp["createdAddresses"] == [{"format": "ADDRESS_FORMAT_ETHEREUM", "address": secp["address"]}]
    assert ed["createdAddresses"] == [{"format": "ADDRESS_FORMAT_SOLANA", "address": ed["address"]}]
    for key in (secp, ed):
        assert key["privateKey"]["addresses"] == key["createdAddresses"]
        assert set(key["privateKey"]) == V1_PRIVATE_KEY_FIELDS
        assert key["privateKey"]["privateKeyTags"] == []
    # the addresses derive from the public keys the daemon reports (EIP-55 checksummed; base58 of the raw key)
    secp_pub = bytes.fromhex(secp["privateKey"]["publicKey"])
    assert len(secp_pub) == 33
    assert secp_pub[0] in (2, 3)
    assert address_from_public_key(secp_pub) == secp["address"]
    ed_pub = bytes.fromhex(ed["privateKey"]["publicKey"])
    assert len(ed_pub) == 32
    assert b58encode(ed_pub) == ed["address"]


def test_every_signature_verifies(run: Run) -> None:
    out = run.out
    sigs = out["signatures"]
    seen = {(s["curve"], s["hashFunction"], s["encoding"], s["signWithKind"], s["activityType"]) for s in sigs}
    # coverage: every hash function, both encodings, both kinds of signWith, single and batch
    assert {h for c, h, *_ in seen if c == "secp256k1"} == {
        "HASH_FUNCTION_KECCAK256",
        "HASH_FUNCTION_SHA256",
        "HASH_FUNCTION_NO_OP",
    }
    assert {(e, k) for c, _, e, k, _ in seen if c == "ed25519"} >= {
        ("PAYLOAD_ENCODING_HEXADECIMAL", "address"),
        ("PAYLOAD_ENCODING_TEXT_UTF8", "address"),
    }
    assert {k for c, *_, k, _ in seen if c == "secp256k1"} == {"address", "privateKeyId"}
    assert any(s["hashFunction"] == "HASH_FUNCTION_NO_OP" and s["payload"].startswith("0x") for s in sigs)
    assert any(
        s["curve"] == "ed25519"
        and s["encoding"] == "PAYLOAD_ENCODING_HEXADECIMAL"
        and not s["payload"].startswith("0x")
        for s in sigs
    )
    for sig in sigs:
        assert sig["status"] == "ACTIVITY_STATUS_COMPLETED"
        key = out["keys"][sig["curve"]]
        expected_sign_with = key["address"] if sig["signWithKind"] == "address" else key["privateKeyId"]
        assert sig["signWith"] == expected_sign_with
        if sig["curve"] == "secp256k1":
            _verify_secp256k1(sig, key)
        else:
            _verify_ed25519(sig, key)


def test_sign_raw_payloads_batch(run: Run) -> None:
    out = run.out
    batch = [s for s in out["signatures"] if s["activityType"] == "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS"]
    assert len(out["batchActivityIds"]) == 2
    for activity_id in out["batchActivityIds"]:
        members = [s for s in batch if s["activityId"] == activity_id]
        assert len(members) == 3
        assert len({(s["r"], s["s"]) for s in members}) == 3  # one distinct signature per payload, in order


def test_get_activity(run: Run) -> None:
    out = run.out
    probe = out["signatures"][0]
    got = out["getActivity"]
    assert got["id"] == probe["activityId"]
    assert got["type"] == "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
    assert got["status"] == "ACTIVITY_STATUS_COMPLETED"
    assert got["result"] == {"signRawPayloadResult": {"r": probe["r"], "s": probe["s"], "v": probe["v"]}}
    intent = got["intent"]["signRawPayloadIntentV2"]
    assert intent["signWith"] == probe["signWith"]
    assert intent["payload"] == probe["payload"]
    assert intent["encoding"] == probe["encoding"]
    assert intent["hashFunction"] == probe["hashFunction"]
    assert isinstance(got["fingerprint"], str)
    assert got["fingerprint"]
    assert set(got["createdAt"]) == {"seconds", "nanos"}
    assert all(isinstance(v, str) for v in got["createdAt"].values())


def test_list_activities(run: Run) -> None:
    out = run.out
    listed = out["activities"]
    ours = {out["createActivityId"], *(s["activityId"] for s in out["signatures"])}
    assert ours <= set(listed["ids"])  # the script checked this as well
    assert len(listed["ids"]) == listed["count"] <= 100
    assert len(set(listed["ids"])) == listed["count"]
    assert 1 <= listed["defaultPageCount"] <= 10
    entries = {e["id"]: e for e in listed["entries"]}
    assert {entries[i]["status"] for i in ours} == {"ACTIVITY_STATUS_COMPLETED"}
    assert entries[out["createActivityId"]]["type"] == "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2"
    assert {entries[i]["type"] for i in out["batchActivityIds"]} == {"ACTIVITY_TYPE_SIGN_RAW_PAYLOADS"}
    # newest first: this run's activities lead the list, in the order they were created
    created = [out["createActivityId"], *dict.fromkeys(s["activityId"] for s in out["signatures"])]
    assert [i for i in listed["ids"] if i in ours] == list(reversed(created))


def test_secp256k1_with_not_applicable_is_invalid_argument(run: Run) -> None:
    d, out = run.daemon, run.out
    err = out["error"]
    assert err["name"] == "TurnkeyRequestError"
    assert err["code"] == 3
    assert err["message"].startswith("Turnkey error 3: ")
    assert "NOT_APPLICABLE" in err["message"]
    assert err["details"] == [
        {"@type": "type.googleapis.com/errors.v1.TurnkeyErrorDetail", "turnkeyErrorCode": "REQUEST_INVALID"}
    ]
    # the same request from Python: HTTP 400 behind the gRPC code 3
    with pytest.raises(ClientError) as excinfo:
        d.client().sign_raw_payload(
            out["keys"]["secp256k1"]["address"], "x", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_NOT_APPLICABLE"
        )
    assert excinfo.value.status == 400
    assert excinfo.value.code == 3


def test_resubmitting_the_same_envelope_is_idempotent(run: Run) -> None:
    out = run.out
    idem = out["idempotency"]
    assert idem["firstActivityId"] == idem["secondActivityId"]
    assert idem["firstFingerprint"] == idem["secondFingerprint"]
    assert idem["firstResult"] == idem["secondResult"]


def test_python_client_sees_the_same_keys(run: Run) -> None:
    """The fallback token hides ECDSA/EdDSA; the API must not reveal where a key lives."""
    d, out = run.daemon, run.out
    for key in out["keys"].values():
        got = d.client().query("get_private_key", privateKeyId=key["privateKeyId"])
        assert got == {"privateKey": key["privateKey"]}


def test_keys_live_where_the_token_allows(run: Run) -> None:
    """Only the daemon log says which backend holds the keys: the token, or the software fallback."""
    ready = [
        entry
        for entry in (json.loads(line) for line in run.daemon.logs().splitlines() if line.startswith("{"))
        if entry.get("event") == "token_ready"
    ]
    assert len(ready) == 1
    expected = "token" if run.fixture == "daemon" else "software-fallback"
    assert ready[0]["secp256k1"] == expected
    assert ready[0]["ed25519"] == expected
