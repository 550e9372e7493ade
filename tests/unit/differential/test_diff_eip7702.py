"""Differential tests: EIP-7702 authorization digests (``messages.eip7702_authorization_hash``,
the ``PAYLOAD_ENCODING_EIP7702_AUTHORIZATION`` payload ``{address, chainId, nonce}``) against
eth-account (``Account.sign_authorization(...).authorization_hash``).

The digest is ``keccak256(0x05 || rlp([chainId, address, nonce]))``. Valid payloads must agree;
payloads with one edited value are fed to both, and when both accept the digests must agree.

Allow-listed disagreements, tied to the edit that provokes them:

Only Strongroom accepts:

- ``int-string``: ``chainId``/``nonce`` as a decimal or ``0x`` string or an integral float (the
  JSON forms viem and ethers produce; see messages.py). eth-account accepts only ints for these.

Only eth-account accepts:

- ``uint-width``: a nonce of 2**64 or more, or a chainId of 2**256 or more. EIP-7702 bounds both
  (``nonce < 2**64``, ``chain_id < 2**256``); eth-account's ``big_endian_int`` sedes has no width.
- ``address-form``: an address without ``0x`` or with a wrong EIP-55 checksum, or given as
  bytes; Strongroom wants the 0x-hex JSON string (mixed case only with a valid checksum).
"""

from __future__ import annotations

from typing import Any

from diffkit import Outcome, run
from eth_account import Account
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum.messages import eip7702_authorization_hash

KEY = "0x" + "46" * 32

payloads = st.fixed_dictionaries(
    {
        "chainId": st.one_of(st.integers(0, 2**64), st.integers(0, 2**256 - 1)),
        "address": st.binary(min_size=20, max_size=20).map(to_checksum_address),
        "nonce": st.integers(0, 2**64 - 1),
    }
)


def ref_hash(payload: dict[str, Any]) -> bytes:
    return bytes(Account.sign_authorization(dict(payload), KEY).authorization_hash)


@settings(max_examples=200, deadline=None)
@given(payloads)
def test_valid_authorizations_agree(payload: dict[str, Any]) -> None:
    assert eip7702_authorization_hash(payload) == ref_hash(payload)


def _edits(key: str, v: Any) -> list[tuple[str, Any]]:
    if isinstance(v, int):
        return [
            ("int-dec-str", str(v)),
            ("int-hex-str", hex(v)),
            ("int-float", float(v) if v < 2**53 else str(v)),
            ("int-negative", -1 - v),
            ("int-wide", v + 2**256),
            ("nonce-wide", v + 2**64),
            ("null", None),
            ("int-bool", True),
        ]
    body = v[2:]
    return [
        ("addr-lower", v.lower()),
        ("addr-upper", "0x" + body.upper()),
        ("addr-no-prefix", body),
        ("addr-bad-checksum", "0x" + body.swapcase() if body.lower() != body.upper() else v),
        ("addr-short", v[:-2]),
        ("addr-bytes", bytes.fromhex(body)),
        ("null", None),
    ]


ALLOWED: dict[str, tuple[str, str]] = {
    **{
        f"{k}:{kind}": ("strongroom", "int-string")
        for k in ("chainId", "nonce")
        for kind in ("int-dec-str", "int-hex-str", "int-float")
    },
    "nonce:nonce-wide": ("eth-account", "uint-width"),
    "nonce:int-wide": ("eth-account", "uint-width"),
    "chainId:int-wide": ("eth-account", "uint-width"),
    "chainId:nonce-wide": ("eth-account", "uint-width"),  # chainId + 2**64 may pass 2**256
    **{
        f"address:{kind}": ("eth-account", "address-form")
        for kind in ("addr-no-prefix", "addr-bad-checksum", "addr-bytes")
    },
}


@st.composite
def edited(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    payload = draw(payloads)
    key = draw(st.sampled_from(["chainId", "address", "nonce", "missing", "extra"]))
    if key == "missing":
        del payload[draw(st.sampled_from(sorted(payload)))]
        return "missing", payload
    if key == "extra":
        payload["yParity"] = 1
        return "extra", payload
    kind, value = draw(st.sampled_from(_edits(key, payload[key])))
    payload[key] = value
    return f"{key}:{kind}", payload


def _classify(kind: str, ours: Outcome, ref: Outcome) -> str | None:
    who = "strongroom" if ours.ok else "eth-account"
    expected = ALLOWED.get(kind)
    return expected[1] if expected is not None and expected[0] == who else None


@settings(max_examples=400, deadline=None)
@given(edited())
def test_edited_authorizations_agree(case: tuple[str, dict[str, Any]]) -> None:
    kind, payload = case
    ours = run(lambda: eip7702_authorization_hash(dict(payload)))
    ref = run(lambda: ref_hash(payload))
    if ours.ok and ref.ok:
        assert ours.value == ref.value, kind
    elif ours.ok != ref.ok:
        assert _classify(kind, ours, ref) is not None, f"{kind}: {ours.error or ref.error!r}"


def test_allow_list_examples() -> None:
    base = {"chainId": 1, "address": "0x" + "35" * 20, "nonce": 0}
    cases = [
        ("nonce:int-dec-str", {**base, "nonce": "7"}, "int-string"),
        ("chainId:int-hex-str", {**base, "chainId": "0x1"}, "int-string"),
        ("nonce:nonce-wide", {**base, "nonce": 2**64}, "uint-width"),
        ("chainId:int-wide", {**base, "chainId": 2**256}, "uint-width"),
        ("address:addr-no-prefix", {**base, "address": "35" * 20}, "address-form"),
    ]
    for kind, payload, entry in cases:
        ours = run(lambda payload=payload: eip7702_authorization_hash(dict(payload)))
        ref = run(lambda payload=payload: ref_hash(payload))
        assert ours.ok != ref.ok, kind
        assert _classify(kind, ours, ref) == entry, kind
    # The string forms hash like the ints they stand for.
    assert eip7702_authorization_hash({**base, "nonce": "7", "chainId": "0x1"}) == ref_hash({**base, "nonce": 7})
