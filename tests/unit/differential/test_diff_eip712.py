"""Differential tests: EIP-712 typed-data digests (chains/ethereum/messages.py) against eth-account
(``eth_account.messages.encode_typed_data(full_message=...)`` hashed with ``_hash_eip191_message``).

Hypothesis builds random acyclic struct types (atomic fields of every kind, nested structs,
dynamic and fixed arrays, arrays of structs), a random domain and matching values. Valid data
must give the same digest. Then single edits (a value in another representation, out of range,
of the wrong type or length; a field removed or added; a declared type made unknown) are fed to
both, and when both accept the digests must still be equal.

The ``EIP712Domain`` rule. Strongroom hashes ``types.EIP712Domain`` exactly as declared when it
is present (EIP-712: the domain is a struct like any other and its type string is whatever was
declared), and derives ``name, version, chainId, verifyingContract, salt`` (present fields, in
that order) only when it is absent. eth-account always derives the canonical order and uses the
declaration only to check that it names the same fields as the domain. So the two agree whenever
the declaration is in canonical order, and differ (``domain-order``) otherwise; see
docs/formats.md for why Strongroom keeps the declared order.

Allow-listed disagreements. Each is tied to the edit that provokes it (``ALLOWED`` below maps
edit kinds to entries), so an entry cannot excuse a disagreement caused by another edit.

Both accept, different digest:

- ``domain-order``: ``types.EIP712Domain`` declared in a non-canonical order (above).

Only Strongroom accepts:

- ``int-string``: an integer given as a negative ``0x`` string (``"-0x71"``) or as an integral
  float (``2.0``), the JavaScript/JSON forms messages.py documents. eth-account refuses those two
  (it does take decimal and non-negative hex strings, and then the digests agree).
- ``primary-type``: ``primaryType`` names a struct that another type references. EIP-712 lets the
  signer pick any declared struct as the primary type; eth-account derives the single
  unreferenced struct and refuses a different choice.
- ``domain-keys``: the domain carries a key that ``types.EIP712Domain`` does not declare. Strongroom
  hashes the declared fields only (undeclared keys are ignored, as for messages, and policies see
  them as absent); eth-account refuses when the two key sets differ.

Only eth-account accepts (it coerces; Strongroom refuses rather than sign something other than
what the payload shows):

- ``lenient-value``: a ``bool`` given as 0/1 or ``"true"``; a ``string`` given as a number or a
  bool; ``bytes``/``bytesN`` given as an int, without ``0x``, with an odd number of hex digits, or
  ``bytesN`` with fewer than N bytes; an address without ``0x``; ``null`` for a value; a struct
  with a declared field missing (eth-account hashes it as zero); a fixed-size array ``T[n]`` with
  another number of elements.
- ``address-form``: a mixed-case address whose EIP-55 checksum is wrong (eth-account does not
  check it; a bad checksum usually means a mistyped address).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from diffkit import Outcome, run
from eth_account._utils.encode_typed_data.encoding_and_hashing import hash_eip712_message, hash_struct
from eth_account.messages import _hash_eip191_message, encode_typed_data
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum.messages import typed_data_hash, typed_data_policy_fields

ATOMIC = [
    "uint8",
    "uint64",
    "uint256",
    "int8",
    "int128",
    "int256",
    "bool",
    "address",
    "string",
    "bytes",
    "bytes1",
    "bytes4",
    "bytes32",
]
CANONICAL_DOMAIN = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
]


def ref_hash(payload: dict[str, Any]) -> bytes:
    return bytes(_hash_eip191_message(encode_typed_data(full_message=copy.deepcopy(payload))))


def _atomic_value(type_: str) -> st.SearchStrategy[Any]:
    if type_.startswith("uint"):
        bits = int(type_[4:])
        return st.one_of(st.integers(0, 2**bits - 1), st.sampled_from([0, 2**bits - 1]))
    if type_.startswith("int"):
        bits = int(type_[3:])
        return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if type_ == "bool":
        return st.booleans()
    if type_ == "address":
        return st.binary(min_size=20, max_size=20).map(to_checksum_address)
    if type_ == "string":
        return st.text(max_size=12)
    if type_ == "bytes":
        return st.binary(max_size=40).map(lambda b: "0x" + b.hex())
    size = int(type_[5:])
    return st.binary(min_size=size, max_size=size).map(lambda b: "0x" + b.hex())


def _value(types: dict[str, list[dict[str, str]]], type_: str, depth: int = 0) -> st.SearchStrategy[Any]:
    if type_.endswith("]"):
        inner, size = type_[: type_.rindex("[")], type_[type_.rindex("[") + 1 : -1]
        n = int(size) if size else None
        elements = _value(types, inner, depth + 1)
        return st.lists(elements, min_size=n or 0, max_size=n if n is not None else 3)
    if type_ in types:
        return st.fixed_dictionaries({f["name"]: _value(types, f["type"], depth + 1) for f in types[type_]})
    return _atomic_value(type_)


@st.composite
def typed_data(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload whose primary type is the only unreferenced struct (eth-account's rule)."""
    n_structs = draw(st.integers(0, 3))
    names = [f"S{i}" for i in range(n_structs)]
    types: dict[str, list[dict[str, str]]] = {}
    for i in reversed(range(n_structs)):
        types[names[i]] = _fields(draw, names[i + 1 :])
    types["Main"] = _fields(draw, names)
    # Keep only what Main reaches, so that Main is the single root.
    reachable, pending = set(), ["Main"]
    while pending:
        name = pending.pop()
        if name in reachable:
            continue
        reachable.add(name)
        pending += [b for b in (fld["type"].split("[")[0] for fld in types[name]) if b in types]
    types = {k: v for k, v in types.items() if k in reachable}
    domain_fields = [f for f in CANONICAL_DOMAIN if draw(st.booleans())]
    domain = {name: draw(_atomic_value(t)) for name, t in domain_fields}
    payload = {
        "types": {"EIP712Domain": [{"name": n, "type": t} for n, t in domain_fields], **types},
        "primaryType": "Main",
        "domain": domain,
        "message": draw(_value(types, "Main")),
    }
    return payload


def _fields(draw: st.DrawFn, structs: list[str]) -> list[dict[str, str]]:
    n = draw(st.integers(1, 4))
    out = []
    for i in range(n):
        base = draw(st.sampled_from(ATOMIC + structs))
        suffix = draw(st.sampled_from(["", "", "", "[]", "[2]"]))
        out.append({"name": f"f{i}", "type": base + suffix})
    return out


@settings(max_examples=150, deadline=None)
@given(typed_data())
def test_valid_typed_data_agrees(payload: dict[str, Any]) -> None:
    assert typed_data_hash(payload) == ref_hash(payload)


@settings(max_examples=60, deadline=None)
@given(typed_data())
def test_without_declared_domain_agrees(payload: dict[str, Any]) -> None:
    # Without types.EIP712Domain both derive the canonical order from the domain's fields.
    del payload["types"]["EIP712Domain"]
    assert typed_data_hash(payload) == ref_hash(payload)


# --- single edits -------------------------------------------------------------------------------


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, (*path, i))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        node = node[p]
    return node


def _set(root: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    _get(root, path[:-1])[path[-1]] = value


def _value_edits(v: Any) -> list[tuple[str, Any]]:
    """(edit kind, replacement) candidates for one value, by its JSON kind."""
    if isinstance(v, bool):
        return [("bool-as-int", int(v)), ("bool-as-str", str(v).lower()), ("null", None)]
    if isinstance(v, int):
        edits = [("int-dec-str", str(v)), ("int-hex-str", hex(v)), ("int-out-of-range", v + 2**256)]
        edits += [("int-negative", -1 - abs(v)), ("int-bool", True), ("null", None)]
        if abs(v) < 2**53:
            edits.append(("int-float", float(v)))
        return edits
    if isinstance(v, str) and v.startswith("0x"):
        body = v[2:]
        edits = [
            ("hex-upper", "0x" + body.upper()),
            ("hex-lower", "0x" + body.lower()),
            ("hex-no-prefix", body),
            ("hex-short", v[:-2]),
            ("hex-long", v + "00"),
            ("hex-odd", v[:-1] if body else "0x0"),
            ("hex-as-int", int(body, 16) if body else 0),
            ("null", None),
        ]
        if any(c.isalpha() for c in body):
            i = next(i for i, c in enumerate(body) if c.isalpha())
            edits.append(("hex-case-flip", "0x" + body[:i] + body[i].swapcase() + body[i + 1 :]))
        return edits
    if isinstance(v, str):
        return [("str-as-int", 5), ("str-as-bool", True), ("null", None)]
    if isinstance(v, list):
        return [("array-drop", v[:-1]), ("array-extend", [*v, *v[:1]]), ("array-as-dict", {})]
    if isinstance(v, dict):
        edits: list[tuple[str, Any]] = [("struct-extra", {**v, "zz": 1}), ("struct-as-list", [])]
        if v:
            edits.append(("struct-missing", dict(list(v.items())[1:])))
        return edits
    return []


@st.composite
def edited_typed_data(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid payload with one edit; returns (edit kind, payload)."""
    payload = draw(typed_data())
    where = draw(st.sampled_from(["message", "message", "message", "domain", "types"]))
    if where == "types":
        kind = draw(st.sampled_from(["domain-permute", "domain-drop-decl", "primary-sub", "unknown-type"]))
        decl = payload["types"]["EIP712Domain"]
        if kind == "domain-permute" and len(decl) > 1:
            payload["types"]["EIP712Domain"] = draw(st.permutations(decl))
        elif kind == "domain-drop-decl" and decl:
            payload["types"]["EIP712Domain"] = decl[1:]
        elif kind == "primary-sub" and "S0" in payload["types"]:
            payload["primaryType"] = "S0"
            payload["message"] = draw(_value(payload["types"], "S0"))
        elif kind == "unknown-type":
            payload["types"]["Main"][0]["type"] = "Nope"
        else:
            kind = "none"
        return kind, payload
    root = payload[where]
    path = draw(st.sampled_from(_leaves(root)))
    if not path:
        kind, new = draw(st.sampled_from(_value_edits(root)))
        payload[where] = new
    else:
        kind, new = draw(st.sampled_from(_value_edits(_get(root, path)) or [("none", _get(root, path))]))
        _set(root, path, new)
    return f"{where}:{kind}", payload


# Edit kinds whose disagreement is allow-listed: kind -> (who alone accepts, or "both" for a
# different digest; the allow-list entry).
_LENIENT_KINDS = (
    "bool-as-int",
    "bool-as-str",
    "str-as-int",
    "str-as-bool",
    "hex-as-int",
    "hex-no-prefix",
    "hex-odd",
    "hex-short",
    "null",
    "struct-missing",
    "array-drop",
    "array-extend",
)
ALLOWED: dict[str, tuple[str, str]] = {
    "domain-permute": ("both", "domain-order"),
    "primary-sub": ("strongroom", "primary-type"),
    "domain-drop-decl": ("strongroom", "domain-keys"),
    "domain:struct-extra": ("strongroom", "domain-keys"),
    **{
        f"{where}:{kind}": ("strongroom", "int-string")
        for where in ("message", "domain")
        for kind in ("int-hex-str", "int-float")
    },
    **{
        f"{where}:{kind}": ("eth-account", "lenient-value")
        for where in ("message", "domain")
        for kind in _LENIENT_KINDS
    },
    **{f"{where}:hex-case-flip": ("eth-account", "address-form") for where in ("message", "domain")},
}


def _classify(kind: str, ours: Outcome, ref: Outcome) -> str | None:
    """The allow-list entry that explains a disagreement of this edit, or None."""
    who = "both" if ours.ok and ref.ok else "strongroom" if ours.ok else "eth-account"
    expected = ALLOWED.get(kind)
    if expected is not None and expected[0] == who:
        return expected[1]
    return None


def _compare(kind: str, payload: dict[str, Any]) -> None:
    ours = run(lambda: typed_data_hash(copy.deepcopy(payload)))
    ref = run(lambda: ref_hash(payload))
    if ours.ok and ref.ok and ours.value == ref.value:
        return
    if not ours.ok and not ref.ok:
        return
    entry = _classify(kind, ours, ref)
    assert entry is not None, f"{kind}: strongroom={ours.value or ours.error!r} eth-account={ref.value or ref.error!r}"


@settings(max_examples=600, deadline=None)
@given(edited_typed_data())
def test_edited_typed_data_agrees(case: tuple[str, dict[str, Any]]) -> None:
    _compare(*case)


# --- the EIP712Domain declared-order rule, and one example per allow-list entry -------------------

MAIL_TYPES = {
    "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
    "Mail": [
        {"name": "from", "type": "Person"},
        {"name": "to", "type": "Person"},
        {"name": "contents", "type": "string"},
    ],
}
ALICE = {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"}
BOB = {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"}
MAIL_DOMAIN = {
    "name": "Ether Mail",
    "version": "1",
    "chainId": 1,
    "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
}


def _mail(domain_decl: list[tuple[str, str]] | None = None, **changes: Any) -> dict[str, Any]:
    decl = domain_decl if domain_decl is not None else CANONICAL_DOMAIN[:4]
    payload: dict[str, Any] = {
        "types": {"EIP712Domain": [{"name": n, "type": t} for n, t in decl], **copy.deepcopy(MAIL_TYPES)},
        "primaryType": "Mail",
        "domain": dict(MAIL_DOMAIN),
        "message": {"from": dict(ALICE), "to": dict(BOB), "contents": "Hello, Bob!"},
    }
    payload.update(changes)
    return payload


def test_eip712_mail_example_agrees() -> None:
    payload = _mail()
    expected = "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"  # EIP-712's Mail example
    assert typed_data_hash(payload).hex() == ref_hash(payload).hex() == expected


@pytest.mark.parametrize("order", [(1, 0, 2, 3), (3, 2, 1, 0), (0, 2, 1, 3)])
def test_domain_hashed_in_declared_order(order: tuple[int, ...]) -> None:
    # Allow-list `domain-order` and the documented rule: a declared EIP712Domain is hashed as
    # declared, i.e. hashStruct over the declared type string (EIP-712's definition), computed here
    # with eth-account's own hash_struct. eth-account's encode_typed_data ignores the order.
    decl = [CANONICAL_DOMAIN[i] for i in order]
    payload = _mail(decl)
    domain_type = {"EIP712Domain": payload["types"]["EIP712Domain"]}
    separator = hash_struct("EIP712Domain", domain_type, MAIL_DOMAIN)
    message = hash_eip712_message(MAIL_TYPES, payload["message"])
    declared_digest = keccak(b"\x19\x01" + separator + message)
    assert typed_data_hash(payload) == declared_digest
    assert ref_hash(payload) == ref_hash(_mail())  # eth-account: canonical order whatever is declared
    assert typed_data_hash(payload) != ref_hash(payload)
    assert _classify("domain-permute", Outcome(ok=True), Outcome(ok=True)) == "domain-order"


def test_domain_without_declaration_is_canonical() -> None:
    payload = _mail()
    del payload["types"]["EIP712Domain"]
    payload["domain"] = dict(reversed(list(MAIL_DOMAIN.items())))  # key order of the object is irrelevant
    assert typed_data_hash(payload) == ref_hash(payload) == typed_data_hash(_mail())


def _person_as_primary() -> dict[str, Any]:
    return _mail(primaryType="Person", message=dict(ALICE))


def _bad_checksum() -> dict[str, Any]:
    p = _mail()
    p["message"]["to"]["wallet"] = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbb"
    return p


def _missing_field() -> dict[str, Any]:
    p = _mail()
    del p["message"]["contents"]
    return p


def _undeclared_domain_key() -> dict[str, Any]:
    p = _mail(CANONICAL_DOMAIN[:3])
    return p  # verifyingContract is in the domain but not declared


def _float_chain_id() -> dict[str, Any]:
    p = _mail()
    p["domain"]["chainId"] = 1.0
    return p


@pytest.mark.parametrize(
    ("make", "kind", "entry"),
    [
        (_person_as_primary, "primary-sub", "primary-type"),
        (_undeclared_domain_key, "domain-drop-decl", "domain-keys"),
        (_float_chain_id, "domain:int-float", "int-string"),
        (_missing_field, "message:struct-missing", "lenient-value"),
        (_bad_checksum, "message:hex-case-flip", "address-form"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_allow_list_examples(make: Any, kind: str, entry: str) -> None:
    payload = make()
    ours = run(lambda: typed_data_hash(copy.deepcopy(payload)))
    ref = run(lambda: ref_hash(payload))
    assert ours.ok != ref.ok
    assert _classify(kind, ours, ref) == entry


def test_policy_fields_follow_the_declaration() -> None:
    # What policies read is what is hashed: an undeclared domain key is absent for both.
    payload = _undeclared_domain_key()
    fields = typed_data_policy_fields(payload)
    assert fields["domain"]["verifying_contract"] is None
    assert fields["domain"]["chain_id"] == 1
    without = copy.deepcopy(payload)
    del without["domain"]["verifyingContract"]
    assert typed_data_hash(payload) == typed_data_hash(without)
