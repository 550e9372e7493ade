"""Anchor IDLs: both formats read, instruction data decoded strictly (Borsh), hostile data harmless.

The instruction data is written by a small Borsh encoder of this test's own (the spec at borsh.io:
little-endian integers, u32 lengths, 1-byte option and enum tags), from values hypothesis draws;
the expected decode is those values as policies read them (keys in base58, bytes in hex).
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solana_build import Ix, Msg, labelled
from strongroom.chains.solana import idl as solidl
from strongroom.chains.solana import policy as solpolicy
from strongroom.chains.solana import wire
from strongroom.crypto.base58 import b58encode
from strongroom.errors import InvalidRequest

PROGRAM = labelled(0x70)
PROGRAM_ID = b58encode(PROGRAM)


def anchor_sighash(snake_name: str) -> list[int]:
    return list(hashlib.sha256(f"global:{snake_name}".encode()).digest()[:8])


# The same program, written as `anchor build` writes it (0.30+) and as older Anchor did (legacy).
MODERN: dict[str, Any] = {
    "address": PROGRAM_ID,
    "metadata": {"name": "vault", "version": "0.1.0", "spec": "0.1.0"},
    "instructions": [
        {
            "name": "deposit",
            "discriminator": anchor_sighash("deposit"),
            "accounts": [
                {"name": "vault", "writable": True},
                {"name": "authority", "accounts": [{"name": "owner", "signer": True}, {"name": "delegate"}]},
                {"name": "system_program", "address": "11111111111111111111111111111111"},
            ],
            "args": [{"name": "amount", "type": "u64"}],
        },
        {
            "name": "configure",
            "discriminator": anchor_sighash("configure"),
            "accounts": [{"name": "vault", "writable": True}],
            "args": [
                {"name": "params", "type": {"defined": {"name": "Params"}}},
                {"name": "memo", "type": {"option": "string"}},
            ],
        },
    ],
    "types": [
        {
            "name": "Params",
            "type": {
                "kind": "struct",
                "fields": [
                    {"name": "fee_bps", "type": "u16"},
                    {"name": "label", "type": "string"},
                    {"name": "mode", "type": {"defined": {"name": "Mode"}}},
                    {"name": "limits", "type": {"option": {"vec": "u128"}}},
                    {"name": "admin", "type": "pubkey"},
                    {"name": "tag", "type": {"array": ["u8", 4]}},
                    {"name": "blob", "type": "bytes"},
                    {"name": "ratio", "type": "f64"},
                    {"name": "paused", "type": "bool"},
                    {"name": "delta", "type": "i64"},
                    {"name": "huge", "type": "i256"},
                ],
            },
        },
        {
            "name": "Mode",
            "type": {
                "kind": "enum",
                "variants": [
                    {"name": "Off"},
                    {"name": "Fixed", "fields": ["u64"]},
                    {"name": "Range", "fields": [{"name": "lo", "type": "i32"}, {"name": "hi", "type": "i32"}]},
                ],
            },
        },
        {"name": "Unused", "type": {"kind": "struct", "fields": [{"name": "x", "type": {"generic": "T"}}]}},
    ],
}


def legacy_of(modern: dict[str, Any]) -> dict[str, Any]:
    """The legacy spelling: no discriminators, camelCase names, isMut/isSigner, publicKey, defined: "T"."""

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(p.title() for p in rest)

    def ty(t: Any) -> Any:
        if t == "pubkey":
            return "publicKey"
        if isinstance(t, dict):
            if "defined" in t:
                return {"defined": t["defined"]["name"]}
            if "array" in t:
                return {"array": [ty(t["array"][0]), t["array"][1]]}
            return {k: ty(v) for k, v in t.items()}
        return t

    def account(a: dict[str, Any]) -> dict[str, Any]:
        if "accounts" in a:
            return {"name": camel(a["name"]), "accounts": [account(x) for x in a["accounts"]]}
        return {"name": camel(a["name"]), "isMut": a.get("writable", False), "isSigner": a.get("signer", False)}

    def fields(fs: list[Any]) -> list[Any]:
        return [{"name": camel(f["name"]), "type": ty(f["type"])} if isinstance(f, dict) else ty(f) for f in fs]

    return {
        "version": "0.1.0",
        "name": "vault",
        "instructions": [
            {"name": camel(i["name"]), "accounts": [account(a) for a in i["accounts"]], "args": fields(i["args"])}
            for i in modern["instructions"]
        ],
        "types": [
            {
                "name": t["name"],
                "type": {"kind": "struct", "fields": fields(t["type"]["fields"])}
                if t["type"]["kind"] == "struct"
                else {
                    "kind": "enum",
                    "variants": [
                        {"name": v["name"], **({"fields": fields(v["fields"])} if "fields" in v else {})}
                        for v in t["type"]["variants"]
                    ],
                },
            }
            for t in modern["types"]
            if t["name"] != "Unused"
        ],
    }


LEGACY = legacy_of(MODERN)


# --- A Borsh encoder of the test's own --------------------------------------------------------

INT_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16, "u256": 32}


def borsh(value: Any, t: Any, types: dict[str, Any]) -> bytes:
    if isinstance(t, str):
        base = t.lstrip("ui")
        if t[0] in "ui" and base.isdigit():
            return value.to_bytes(int(base) // 8, "little", signed=t[0] == "i")
        if t == "bool":
            return bytes([value])
        if t == "f64":
            return struct.pack("<d", value)
        if t in ("pubkey", "publicKey"):
            return bytes(value)
        raw = value.encode() if t == "string" else bytes(value)
        return len(raw).to_bytes(4, "little") + raw
    if "option" in t:
        return b"\x00" if value is None else b"\x01" + borsh(value, t["option"], types)
    if "vec" in t:
        return len(value).to_bytes(4, "little") + b"".join(borsh(v, t["vec"], types) for v in value)
    if "array" in t:
        return b"".join(borsh(v, t["array"][0], types) for v in value)
    d = types[t["defined"]["name"] if isinstance(t["defined"], dict) else t["defined"]]
    if d["kind"] == "struct":
        return b"".join(borsh(value[f["name"]], f["type"], types) for f in d["fields"])
    ((name, inner),) = value.items()
    index = [v["name"] for v in d["variants"]].index(name)
    fields = d["variants"][index].get("fields")
    if fields is None:
        return bytes([index])
    if isinstance(fields[0], dict):
        return bytes([index]) + b"".join(borsh(inner[f["name"]], f["type"], types) for f in fields)
    return bytes([index]) + b"".join(borsh(v, f, types) for v, f in zip(inner, fields, strict=True))


MODERN_TYPES = {t["name"]: t["type"] for t in MODERN["types"]}
PARAMS_FIELDS = MODERN_TYPES["Params"]["fields"]


def ints(bits: int, signed: bool = False) -> st.SearchStrategy[int]:
    return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else st.integers(0, (1 << bits) - 1)


modes = st.one_of(
    st.just({"Off": None}),
    st.builds(lambda n: {"Fixed": [n]}, ints(64)),
    st.builds(lambda lo, hi: {"Range": {"lo": lo, "hi": hi}}, ints(32, True), ints(32, True)),
)
params = st.fixed_dictionaries(
    {
        "fee_bps": ints(16),
        "label": st.text(max_size=20),
        "mode": modes,
        "limits": st.none() | st.lists(ints(128), max_size=4),
        "admin": st.binary(min_size=32, max_size=32),
        "tag": st.lists(ints(8), min_size=4, max_size=4),
        "blob": st.binary(max_size=16),
        "ratio": st.floats(allow_nan=False),
        "paused": st.booleans(),
        "delta": ints(64, True),
        "huge": ints(256, True),
    }
)


def as_policies_read(p: dict[str, Any]) -> dict[str, Any]:
    return {**p, "admin": b58encode(p["admin"]), "blob": p["blob"].hex()}


def configure_data(p: dict[str, Any], memo: str | None) -> bytes:
    args = borsh(p, {"defined": {"name": "Params"}}, MODERN_TYPES) + borsh(memo, {"option": "string"}, {})
    return bytes(anchor_sighash("configure")) + args


KEYS = [b58encode(labelled(n)) for n in range(1, 6)]


@pytest.mark.parametrize("document", [MODERN, LEGACY], ids=["0.30", "legacy"])
@settings(max_examples=60, deadline=None)
@given(p=params, memo=st.none() | st.text(max_size=10))
def test_both_formats_decode_the_same_call(document: dict[str, Any], p: dict[str, Any], memo: str | None) -> None:
    idl = solidl.parse_idl(json.dumps(document))
    out = solidl.decode(idl, configure_data(p, memo), KEYS[:1])
    assert out is not None
    args = out["program_call_args"]
    expected = as_policies_read(p)
    if document is LEGACY:  # legacy field names are camelCase
        expected = {("feeBps" if k == "fee_bps" else k): v for k, v in expected.items()}
    assert args == {"params": expected, "memo": memo}
    assert out["instruction_name"] == document["instructions"][1]["name"]
    assert out["discriminator"] == bytes(anchor_sighash("configure")).hex()
    assert out["named_accounts"] == {"vault": KEYS[0]}
    assert out["idl_source"] == "Custom"


def test_the_legacy_discriminator_is_anchors_sighash() -> None:
    # Anchor's well-known `initialize` discriminator, and a camelCase name snake-cased first.
    assert solidl.legacy_discriminator("initialize") == bytes([175, 175, 109, 31, 13, 152, 155, 237])
    assert solidl.legacy_discriminator("swapExactIn") == hashlib.sha256(b"global:swap_exact_in").digest()[:8]


def test_idl_hash_is_of_the_text_without_whitespace() -> None:
    text = json.dumps(MODERN, indent=2)
    compact = json.dumps(MODERN, separators=(",", ":"))
    assert solidl.parse_idl(text).idl_hash == hashlib.sha256(compact.encode()).hexdigest()
    assert solidl.parse_idl(compact).idl_hash == solidl.parse_idl(text).idl_hash


@pytest.mark.parametrize("document", [MODERN, LEGACY], ids=["0.30", "legacy"])
def test_named_accounts_flatten_groups(document: dict[str, Any]) -> None:
    idl = solidl.parse_idl(json.dumps(document))
    data = bytes(anchor_sighash("deposit")) + (7).to_bytes(8, "little")
    out = solidl.decode(idl, data, KEYS)  # one more account than named: remaining accounts are ignored
    assert out is not None
    names = ["vault", "owner", "delegate", "system_program" if document is MODERN else "systemProgram"]
    assert out["named_accounts"] == dict(zip(names, KEYS, strict=False))
    assert out["program_call_args"] == {"amount": 7}
    assert solidl.decode(idl, data, KEYS[:3]) is None  # fewer accounts than the IDL names


def deposit(amount_bytes: bytes) -> bytes:
    return bytes(anchor_sighash("deposit")) + amount_bytes


@pytest.mark.parametrize(
    "data",
    [
        deposit((7).to_bytes(8, "little") + b"\x00"),  # a trailing byte: refused, like Turnkey's parser
        deposit((7).to_bytes(7, "little")),  # ends early
        bytes(anchor_sighash("deposit"))[:7],  # not even a discriminator
        bytes(anchor_sighash("withdraw")) + bytes(8),  # a discriminator the IDL does not have
        b"",
    ],
)
def test_data_that_is_not_exactly_an_instruction_decodes_to_nothing(data: bytes) -> None:
    assert solidl.decode(solidl.parse_idl(json.dumps(MODERN)), data, KEYS) is None


def test_tags_and_text_are_strict() -> None:
    idl = solidl.parse_idl(json.dumps(MODERN))
    p = {
        "fee_bps": 1,
        "label": "ok",
        "mode": {"Off": None},
        "limits": None,
        "admin": bytes(32),
        "tag": [0, 0, 0, 0],
        "blob": b"",
        "ratio": 0.5,
        "paused": False,
        "delta": -1,
        "huge": 0,
    }
    good = configure_data(p, None)
    assert solidl.decode(idl, good, KEYS) is not None
    disc = 8
    label_at = disc + 2
    mode_at = label_at + 4 + 2
    limits_at = mode_at + 1
    paused_at = len(good) - 1 - 32 - 8 - 1
    for at, byte in ((mode_at, 3), (limits_at, 2), (paused_at, 2), (len(good) - 1, 2)):
        bad = bytearray(good)
        bad[at] = byte
        assert solidl.decode(idl, bytes(bad), KEYS) is None, at
    bad = bytearray(good)
    bad[label_at + 4] = 0xFF  # not UTF-8
    assert solidl.decode(idl, bytes(bad), KEYS) is None


SMALL = {
    "instructions": [
        {
            "name": "set",
            "discriminator": [1],
            "args": [
                {"name": "flag", "type": "bool"},
                {"name": "maybe", "type": {"option": "u8"}},
                {"name": "side", "type": {"defined": {"name": "Side"}}},
                {"name": "note", "type": "string"},
            ],
        }
    ],
    "types": [{"name": "Side", "type": {"kind": "enum", "variants": [{"name": "Bid"}, {"name": "Ask"}]}}],
}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (b"\x01\x01\x05\x01\x00\x00\x00\x00", {"flag": True, "maybe": 5, "side": {"Ask": None}, "note": ""}),
        (b"\x00\x00\x00\x02\x00\x00\x00hi", {"flag": False, "maybe": None, "side": {"Bid": None}, "note": "hi"}),
        (b"\x02\x01\x05\x01\x00\x00\x00\x00", None),  # bool 2
        (b"\x01\x02\x05\x01\x00\x00\x00\x00", None),  # option tag 2
        (b"\x01\x00\x02\x00\x00\x00\x00", None),  # enum variant 2 of 2
        (b"\x01\x00\x00\x01\x00\x00\x00\xff", None),  # not UTF-8
        (b"\x01\x00\x00\x02\x00\x00\x00h", None),  # string longer than the data
    ],
)
def test_tags_and_text_are_strict_one_by_one(args: bytes, expected: dict[str, Any] | None) -> None:
    out = solidl.decode(solidl.parse_idl(json.dumps(SMALL)), b"\x01" + args, [])
    assert (None if out is None else out["program_call_args"]) == expected


def test_hostile_lengths_are_bounded() -> None:
    document = {
        "instructions": [
            {
                "name": "spam",
                "discriminator": [9],
                "accounts": [],
                "args": [{"name": "xs", "type": {"vec": {"defined": {"name": "Empty"}}}}],
            },
            {
                "name": "loop",
                "discriminator": [10],
                "accounts": [],
                "args": [{"name": "n", "type": {"defined": "Node"}}],
            },
        ],
        "types": [
            {"name": "Empty", "type": {"kind": "struct", "fields": []}},
            {"name": "Node", "type": {"kind": "struct", "fields": [{"name": "next", "type": {"defined": "Node"}}]}},
        ],
    }
    idl = solidl.parse_idl(json.dumps(document))
    assert solidl.decode(idl, b"\x09" + (3).to_bytes(4, "little"), []) == {
        "instruction_name": "spam",
        "discriminator": "09",
        "named_accounts": {},
        "program_call_args": {"xs": [{}, {}, {}]},
        "idl_source": "Custom",
        "idl_hash": idl.idl_hash,
    }
    assert solidl.decode(idl, b"\x09" + b"\xff\xff\xff\xff", []) is None  # 4 billion empty values: refused
    assert solidl.decode(idl, b"\x0a", []) is None  # a type that contains itself never ends: refused
    assert solidl.decode(idl, b"\x09" + b"\xff" * (solidl.MAX_DATA + 1), []) is None
    # One message's instructions share the budget: the second of two large ones is not decoded.
    half = b"\x09" + (solidl.MAX_VALUES // 2 + 10).to_bytes(4, "little")
    budget = solidl.Budget()
    assert solidl.decode(idl, half, [], budget) is not None
    assert solidl.decode(idl, half, [], budget) is None
    left = budget.left
    assert 0 < left < solidl.MAX_VALUES // 2
    assert solidl.decode(idl, b"\x09" + (left - 1).to_bytes(4, "little"), [], budget) is not None  # all that is left
    assert solidl.decode(idl, b"\x09" + (0).to_bytes(4, "little"), [], budget) is None  # spent
    assert solidl.decode(idl, half, []) is not None  # a fresh budget


@settings(max_examples=400, deadline=None)
@given(which=st.sampled_from(["deposit", "configure"]), tail=st.binary(max_size=300))
def test_random_instruction_data_decodes_or_not_without_failing(which: str, tail: bytes) -> None:
    idl = solidl.parse_idl(json.dumps(MODERN))
    out = solidl.decode(idl, bytes(anchor_sighash(which)) + tail, KEYS)
    assert out is None or (
        out["instruction_name"] == which
        and set(out)
        == {"instruction_name", "discriminator", "named_accounts", "program_call_args", "idl_source", "idl_hash"}
    )
    json.dumps(out)  # what policies read is plain JSON-like data


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("not json", "not valid JSON"),
        ("[]", "instructions"),
        ('{"instructions": [{"name": "a", "args": [{"name": "x", "type": "u7"}]}]}', "unsupported type `u7`"),
        ('{"instructions": [{"name": "a", "args": [{"name": "x", "type": {"defined": "Nope"}}]}]}', "`Nope`"),
        ('{"instructions": [{"name": "a", "discriminator": [256]}]}', "discriminator"),
        ('{"instructions": [{"name": "a", "discriminator": []}]}', "discriminator"),
        (
            '{"instructions": [{"name": "a", "discriminator": [1]}, {"name": "b", "discriminator": [1, 2]}]}',
            "ambiguous",
        ),
        ('{"instructions": [{"name": "a"}, {"name": "a"}]}', "ambiguous"),
        ('{"instructions": [], "types": [{"name": "T", "type": {}}, {"name": "T", "type": {}}]}', "twice"),
        ('{"instructions": [{"name": "a", "args": [{"name": "x", "type": {"array": ["u8", -1]}}]}]}', "array"),
        ('{"instructions": [{"name": "a", "args": [{"name": "x", "type": {"coption": "u8"}}]}]}', "coption"),
        (
            '{"instructions": [{"name": "a", "args": [{"name": "x", "type": {"defined": "T"}}]}],'
            ' "types": [{"name": "T", "type": {"kind": "struct", "serialization": "bytemuck", "fields": []}}]}',
            "borsh",
        ),
        (
            '{"instructions": [{"name": "a", "args": [{"name": "x", "type": '
            + '{"vec": ' * 20
            + '"u8"'
            + "}" * 20
            + "}]}]}",
            "nested too deeply",
        ),
    ],
)
def test_bad_idls_are_refused_with_the_defect_named(text: str, needle: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        solidl.parse_idl(text)
    assert needle in err.value.message


def test_policy_fields_fill_parsed_instruction_data_for_programs_with_an_idl() -> None:
    idl = solidl.parse_idl(json.dumps(MODERN))
    payer, vault, other_program = labelled(1), labelled(2), labelled(0x71)
    table = labelled(0x55)
    data = deposit((500).to_bytes(8, "little"))
    message = Msg(
        (1, 0, 2),
        [payer, vault, PROGRAM, other_program],
        labelled(0xBB),
        # accounts 4.. are loaded from the lookup table
        [Ix(2, [1, 0, 4, 5], data), Ix(3, [1], data), Ix(2, [1], b"\x00")],
        lookups=[(table, [], [7, 8])],
    ).encode()
    seen: list[str] = []

    def idl_for(program_id: str) -> solidl.Idl | None:
        seen.append(program_id)
        return idl if program_id == PROGRAM_ID else None

    fields = solpolicy.policy_fields(wire.parse_message(message), idl_for)
    first, other, short = fields["instructions"]
    assert first["parsed_instruction_data"]["named_accounts"] == {
        "vault": b58encode(vault),
        "owner": b58encode(payer),
        "delegate": solpolicy.ADDRESS_TABLE_LOOKUP,
        "system_program": solpolicy.ADDRESS_TABLE_LOOKUP,
    }
    assert first["parsed_instruction_data"]["program_call_args"] == {"amount": 500}
    assert "parsed_instruction_data" not in other  # same bytes, another program, no IDL
    assert "parsed_instruction_data" not in short  # the IDL does not decode it
    assert sorted(seen) == sorted({PROGRAM_ID, b58encode(other_program)})  # looked up once per program
    assert "parsed_instruction_data" not in solpolicy.policy_fields(wire.parse_message(message))["instructions"][0]


def test_a_stored_idl_that_no_longer_parses_reads_as_none() -> None:
    """An IDL stored before uploads were checked must not break signing: it reads as no IDL."""
    from types import SimpleNamespace

    from strongroom.service.activities import contracts

    def row(text: str) -> Any:
        return SimpleNamespace(digest=hashlib.sha256(text.encode()).hexdigest(), interface=text)

    stored = {PROGRAM_ID: row(json.dumps(MODERN)), b58encode(labelled(0x72)): row('{"instructions": "x"}')}
    repo = SimpleNamespace(contracts=SimpleNamespace(for_address=lambda org, address, kind: stored.get(address)))
    idl_for = contracts.idl_lookup(SimpleNamespace(repo=repo), "org")  # type: ignore[arg-type]
    found = idl_for(PROGRAM_ID)
    assert found is not None and [i.name for i in found.instructions] == ["deposit", "configure"]
    assert idl_for(b58encode(labelled(0x72))) is None
    assert idl_for(b58encode(labelled(0x73))) is None
