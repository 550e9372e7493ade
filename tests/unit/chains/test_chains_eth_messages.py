"""EIP-191, EIP-712 (viem and ethers serialisations) and EIP-7702 authorization digests."""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum import messages as msg
from strongroom.chains.ethereum import rlp
from strongroom.crypto.keccak import keccak256
from strongroom.errors import InvalidRequest

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


EIP712 = _load("eip712.json")
MAIL = EIP712["mail"]
MESSAGES = _load("eth_messages.json")


# --- EIP-191 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", MESSAGES["eip191"], ids=[v["message_utf8"] for v in MESSAGES["eip191"]])
def test_eip191(vector: dict[str, str]) -> None:
    assert msg.eip191_hash(vector["message_utf8"].encode()).hex() == vector["digest"]


def test_eip191_hello_envelope() -> None:
    assert msg.eip191_hash(b"hello") == keccak256(b"\x19Ethereum Signed Message:\n5hello")
    with pytest.raises(InvalidRequest):
        msg.eip191_hash("hello")  # type: ignore[arg-type]


# --- EIP-712 Mail ----------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["viem", "ethers"])
def test_mail_example(style: str) -> None:
    payload = MAIL[style]
    typed = msg.parse_typed_data(payload)
    assert typed.encode_type("Mail") == MAIL["encode_type"]
    assert typed.type_hash("Mail").hex() == MAIL["type_hash"]
    assert typed.domain_separator().hex() == MAIL["domain_separator"]
    assert typed.struct_hash().hex() == MAIL["struct_hash"]
    assert typed.hash().hex() == MAIL["digest"]
    assert msg.typed_data_hash(payload).hex() == MAIL["digest"]
    # The same, from the JSON text the request carries.
    assert msg.typed_data_hash(json.dumps(payload)).hex() == MAIL["digest"]
    assert msg.typed_data_hash(json.dumps(payload).encode()).hex() == MAIL["digest"]


def test_mail_serialisations_differ_but_agree() -> None:
    assert MAIL["viem"]["domain"]["chainId"] == 1
    assert MAIL["ethers"]["domain"]["chainId"] == "0x1"
    assert MAIL["viem"] != MAIL["ethers"]
    assert msg.typed_data_hash(MAIL["viem"]) == msg.typed_data_hash(MAIL["ethers"])


@pytest.mark.parametrize(
    ("chain_id", "ok"),
    [(1, True), ("1", True), ("0x1", True), ("0x01", True), (1.0, True), ("0X1", True), ("01", False), (True, False)],
)
def test_chain_id_spellings(chain_id: object, ok: bool) -> None:
    payload = copy.deepcopy(MAIL["viem"])
    payload["domain"]["chainId"] = chain_id
    if ok:
        assert msg.typed_data_hash(payload).hex() == MAIL["digest"]
    else:
        with pytest.raises(InvalidRequest, match="chainId"):
            msg.typed_data_hash(payload)


def test_address_case_does_not_matter() -> None:
    payload = copy.deepcopy(MAIL["viem"])
    payload["domain"]["verifyingContract"] = "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
    payload["message"]["to"]["wallet"] = "0x" + "BB" * 20
    assert msg.typed_data_hash(payload).hex() == MAIL["digest"]
    payload["message"]["to"]["wallet"] = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbb"  # bad EIP-55 checksum
    with pytest.raises(InvalidRequest, match=r"message\.to\.wallet must be a 0x address"):
        msg.typed_data_hash(payload)


def test_domain_type_derived_when_absent() -> None:
    payload = copy.deepcopy(MAIL["viem"])
    del payload["types"]["EIP712Domain"]
    assert msg.typed_data_hash(payload).hex() == MAIL["digest"]
    empty = EIP712["mail_empty_domain"]
    assert msg.typed_data_hash(empty["payload"]).hex() == empty["digest"]
    # Derived type follows the canonical order, not the key order of the domain object.
    shuffled = copy.deepcopy(payload)
    shuffled["domain"] = dict(reversed(list(payload["domain"].items())))
    assert msg.typed_data_hash(shuffled).hex() == MAIL["digest"]


def test_primary_type_domain_signs_domain_only() -> None:
    payload = copy.deepcopy(MAIL["ethers"])
    payload["primaryType"] = "EIP712Domain"
    expected = keccak256(b"\x19\x01" + bytes.fromhex(MAIL["domain_separator"]))
    assert msg.typed_data_hash(payload) == expected
    assert msg.typed_data_policy_fields(payload)["message"] == {}


def test_mail_policy_fields_same_for_both_styles() -> None:
    expected = {
        "primary_type": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chain_id": 1,
            "verifying_contract": "0xcccccccccccccccccccccccccccccccccccccccc",
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826"},
            "to": {"name": "Bob", "wallet": "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
            "contents": "Hello, Bob!",
        },
    }
    assert msg.typed_data_policy_fields(MAIL["viem"]) == expected
    assert msg.typed_data_policy_fields(MAIL["ethers"]) == expected


def test_undeclared_message_keys_ignored() -> None:
    payload = copy.deepcopy(MAIL["viem"])
    payload["message"]["extra"] = "not signed"
    assert msg.typed_data_hash(payload).hex() == MAIL["digest"]
    assert "extra" not in msg.typed_data_policy_fields(payload)["message"]


# --- EIP-712 nested structs, arrays, bytes, signed ints ------------------------------------


def test_order_vector() -> None:
    order = EIP712["order"]
    assert msg.typed_data_hash(order["payload"]).hex() == order["digest"]
    fields = msg.typed_data_policy_fields(order["payload"])
    assert fields["domain"] == {
        "name": "Exchange",
        "version": None,
        "chain_id": 137,
        "verifying_contract": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
    }
    message = fields["message"]
    assert message["amounts"] == [1, 10**18, 255]
    assert message["delta"] == -42
    assert message["tag"] == "0xa9059cbb"
    assert message["legs"][1] == {
        "asset": {"token": "0xd1220a0cf47c7b9be7a2e6ba89f429762e7b9adb", "id": 16},
        "weight": 65535,
    }
    assert message["grid"] == [[1, 2], [3, 255]]
    assert message["ok"] is True


def test_order_int_spellings_agree() -> None:
    payload = copy.deepcopy(EIP712["order"]["payload"])
    payload["message"]["amounts"] = ["0x1", 10**18, "255"]
    payload["message"]["delta"] = "-0x2a"
    payload["message"]["tag"] = "0xA9059CBB"
    assert msg.typed_data_hash(payload).hex() == EIP712["order"]["digest"]


def _order_with(path: list[str | int], value: object) -> dict[str, Any]:
    payload: dict[str, Any] = copy.deepcopy(EIP712["order"]["payload"])
    node: Any = payload["message"]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["legs", 0, "weight"], 65536, r"legs\[0\]\.weight is out of range for uint16"),
        (["legs", 0, "weight"], -1, "out of range for uint16"),
        (["delta"], 2**127, "out of range for int128"),
        (["delta"], -(2**127) - 1, "out of range for int128"),
        (["delta"], 1.5, "must be an integer"),
        (["delta"], "1e3", "decimal or 0x-hex"),
        (["delta"], " 1", "decimal or 0x-hex"),
        (["delta"], None, "must be an integer"),
        (["tag"], "0xa9059c", "exactly 4 bytes"),
        (["tag"], "a9059cbb", "0x followed by an even number"),
        (["blob"], "0xabc", "0x followed by an even number"),
        (["ok"], 1, "must be a boolean"),
        (["names"], ["a"], "exactly 2 elements"),
        (["names"], "ab", "must be an array"),
        (["grid", 0], [1, 2, 3], "exactly 2 elements"),
        (["grid", 0, 1], 256, "out of range for uint8"),
        (["legs", 0], "x", "must be an object of type `Leg`"),
        (["maker"], "0x1234", "must be a 0x address"),
        (["legs", 0, "asset", "id"], "0x" + "f" * 65, "out of range for uint256"),
    ],
)
def test_value_errors(path: list[str | int], value: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        msg.typed_data_hash(_order_with(path, value))


def test_missing_field() -> None:
    payload = copy.deepcopy(MAIL["viem"])
    del payload["message"]["to"]["wallet"]
    with pytest.raises(InvalidRequest, match=r"message\.to is missing field `wallet`"):
        msg.typed_data_hash(payload)
    payload = copy.deepcopy(MAIL["ethers"])
    del payload["domain"]["version"]
    with pytest.raises(InvalidRequest, match="domain is missing field `version`"):
        msg.typed_data_hash(payload)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.update(types=[]), "`types` must be an object"),
        (lambda p: p.update(primaryType=3), "`primaryType` must be a string"),
        (lambda p: p.update(primaryType="Nope"), "`Nope` is not declared"),
        (lambda p: p.update(domain=[]), "`domain` must be an object"),
        (lambda p: p.update(message="x"), "`message` must be an object"),
        (lambda p: p["types"]["Mail"].append({"name": "x", "type": "Unknown"}), "unknown type `Unknown`"),
        (
            lambda p: p["types"]["Mail"].append({"name": "contents", "type": "string"}),
            "declares field `contents` twice",
        ),
        (lambda p: p["types"]["Mail"].append({"name": "bad name", "type": "string"}), "invalid field name"),
        (lambda p: p["types"]["Mail"].append({"name": "x"}), "not {name, type}"),
        (lambda p: p["types"].update({"uint256": []}), "shadows an atomic type"),
        (lambda p: p["types"].update({"Bad(": []}), "not a valid identifier"),
        (lambda p: p["types"]["Mail"].append({"name": "x", "type": "uint7"}), "unknown type `uint7`"),
        (lambda p: p["types"]["Mail"].append({"name": "x", "type": "bytes33"}), "unknown type `bytes33`"),
        (lambda p: p["types"]["Mail"].append({"name": "x", "type": "uint256[01]"}), "malformed array size"),
    ],
)
def test_structure_errors(mutate: Any, message: str) -> None:
    payload = copy.deepcopy(MAIL["viem"])
    mutate(payload)
    with pytest.raises(InvalidRequest, match=message):
        msg.typed_data_hash(payload)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (42, "must be a JSON object"),
        ("[" * 100_000, "larger than"),
        ("[" * 10_000 + "]" * 10_000, "not valid JSON"),
    ],
)
def test_json_errors(payload: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        msg.typed_data_hash(payload)


def test_recursive_type_depth_is_capped() -> None:
    node: dict[str, Any] = {"value": 1, "children": []}
    root = node
    for _ in range(40):
        child: dict[str, Any] = {"value": 1, "children": []}
        node["children"].append(child)
        node = child
    payload = {
        "types": {"Node": [{"name": "value", "type": "uint8"}, {"name": "children", "type": "Node[]"}]},
        "primaryType": "Node",
        "domain": {},
        "message": root,
    }
    with pytest.raises(InvalidRequest, match="nests deeper"):
        msg.typed_data_hash(payload)
    root["children"] = []
    typed = msg.parse_typed_data(payload)
    assert typed.encode_type("Node") == "Node(uint8 value,Node[] children)"
    assert len(typed.hash()) == 32


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.fixed_dictionaries({}, optional={"types": _JSON, "primaryType": _JSON, "domain": _JSON, "message": _JSON}))
def test_random_typed_data_only_invalid_request(payload: dict[str, Any]) -> None:
    try:
        msg.typed_data_hash(payload)
        msg.typed_data_policy_fields(payload)
    except InvalidRequest:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["domain", "message"]), st.text(max_size=12), _JSON)
def test_random_mail_values_only_invalid_request(where: str, key: str, value: object) -> None:
    payload = copy.deepcopy(MAIL["viem"])
    payload[where][key] = value
    with contextlib.suppress(InvalidRequest):
        msg.typed_data_policy_fields(payload)


# --- EIP-7702 --------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", MESSAGES["eip7702"])
def test_eip7702_vectors(vector: dict[str, Any]) -> None:
    assert msg.eip7702_authorization_hash(vector["payload"]).hex() == vector["hash"]
    # Turnkey's viem sends JSON text with numbers; other spellings give the same digest.
    payload = vector["payload"]
    as_text = json.dumps(
        {"address": payload["address"].lower(), "chainId": payload["chainId"], "nonce": payload["nonce"]}
    )
    assert msg.eip7702_authorization_hash(as_text).hex() == vector["hash"]
    hexed = {
        "address": payload["address"].upper().replace("X", "x"),
        "chainId": hex(payload["chainId"]),
        "nonce": str(payload["nonce"]),
    }
    assert msg.eip7702_authorization_hash(hexed).hex() == vector["hash"]


def test_eip7702_structure() -> None:
    address = "0x63c0c19a282a1b52b07dd5a65b58948a07dae32b"
    auth = msg.parse_eip7702_authorization({"address": address, "chainId": 10, "nonce": 300})
    expected = keccak256(b"\x05" + rlp.encode([b"\x0a", bytes.fromhex(address[2:]), b"\x01\x2c"]))
    assert auth.signing_hash() == expected
    assert msg.eip7702_authorization_hash({"address": address, "chainId": 0, "nonce": 0}) == keccak256(
        b"\x05" + rlp.encode([b"", bytes.fromhex(address[2:]), b""])
    )
    assert auth.policy_fields() == {"address": address, "chain_id": 10, "nonce": 300}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"chainId": 1, "nonce": 0}, "missing `address`"),
        ({"address": "0x" + "11" * 20, "nonce": 0}, "missing `chainId`"),
        ({"address": "0x" + "11" * 20, "chainId": 1}, "missing `nonce`"),
        ({"address": "0x11", "chainId": 1, "nonce": 0}, "`address` must be a 0x address"),
        ({"address": "0x" + "11" * 20, "chainId": -1, "nonce": 0}, "out of range for uint256"),
        ({"address": "0x" + "11" * 20, "chainId": 1, "nonce": 2**64}, "out of range for uint64"),
        ({"address": "0x" + "11" * 20, "chainId": 1, "nonce": "abc"}, "decimal or 0x-hex"),
        ("[1]", "must be a JSON object"),
    ],
)
def test_eip7702_errors(payload: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        msg.eip7702_authorization_hash(payload)


# --- JSON inside JSON: the strict reader's rules hold for payloads too ----------------------------


def test_payload_json_is_read_strictly() -> None:
    text = json.dumps(MAIL["viem"])
    assert msg.typed_data_hash(text).hex() == MAIL["digest"]
    for bad, why in (
        (text[:-1] + ', "primaryType": "Mail"}', "duplicate key"),
        (text.replace('"contents": "Hello, Bob!"', '"contents": "a", "contents": "b"'), "duplicate key"),
        (text.replace('"contents": "Hello, Bob!"', '"contents": "\\ud800"'), "lone surrogate"),
        (text.replace('"chainId": 1', '"chainId": ' + "[" * 5000 + "]" * 5000), "nested deeper"),
        (text.replace('"chainId": 1', '"chainId": NaN'), "not a JSON number"),
        (text.replace('"chainId": 1', f'"chainId": {2**256}'), "256-bit"),
    ):
        with pytest.raises(InvalidRequest, match=why):
            msg.typed_data_hash(bad)
    auth = '{"address": "0x63c0c19a282a1b52b07dd5a65b58948a07dae32b", "chainId": 1, "nonce": 5}'
    msg.parse_eip7702_authorization(auth)
    with pytest.raises(InvalidRequest, match="duplicate key `chainId`"):
        msg.parse_eip7702_authorization(auth[:-1] + ', "chainId": 137}')


def test_typed_data_types_are_ascii() -> None:
    data = copy.deepcopy(MAIL["viem"])
    for fields in data["types"].values():
        for f in fields:
            f["type"] = f["type"].replace("string", "uint\uff12\uff15\uff16")
    with pytest.raises(InvalidRequest, match="unknown type"):
        msg.typed_data_hash(json.dumps(data))
