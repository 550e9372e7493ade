"""Differential tests: Turnkey ``ADDRESS_FORMAT_*`` derivation (chains/address_formats.py) against
bip-utils' address encoders (``EthAddrEncoder``, ``TrxAddrEncoder``, ``AtomAddrEncoder``,
``P2PKHAddrEncoder``, ``P2WPKHAddrEncoder``, ``SolAddrEncoder``) and key classes.

Inputs: public keys of random secp256k1 / Ed25519 secrets (in both SEC1 forms for secp256k1),
and random byte strings of the lengths a key could have (mostly not valid points).

Allow-listed disagreements:

- ``sec1-hybrid`` (only bip-utils accepts): a 65-byte "hybrid" key (prefix ``06``/``07``, an
  X9.62 form that libsecp256k1 still parses). Strongroom takes only the two standard SEC1 forms,
  33 bytes ``02``/``03`` and 65 bytes ``04``, which is what the token returns; a hybrid key is a
  malformed request. (Both refuse a 64-byte ``X || Y`` key without prefix.)
- ``ed25519-not-a-point`` (only Strongroom accepts): 32 bytes that do not decode to an Ed25519
  curve point. bip-utils validates the point; Strongroom encodes the 32 bytes as given (a Solana
  address is just Base58 of 32 bytes, and off-curve addresses exist, e.g. program-derived ones).
  Keys only ever come from the token, so Strongroom never sees such bytes in practice.
"""

from __future__ import annotations

import pytest
from bip_utils import (
    AtomAddrEncoder,
    Ed25519PublicKey,
    EthAddrEncoder,
    P2PKHAddrEncoder,
    P2WPKHAddrEncoder,
    Secp256k1PublicKey,
    SolAddrEncoder,
    TrxAddrEncoder,
)
from coincurve import PrivateKey
from diffkit import Outcome, run
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from strongroom.chains import address_formats as af
from strongroom.crypto.secp256k1 import N

SECP_REFERENCE = {
    af.ADDRESS_FORMAT_UNCOMPRESSED: lambda k: Secp256k1PublicKey.FromBytes(k).RawUncompressed().ToHex(),
    af.ADDRESS_FORMAT_COMPRESSED: lambda k: Secp256k1PublicKey.FromBytes(k).RawCompressed().ToHex(),
    af.ADDRESS_FORMAT_ETHEREUM: EthAddrEncoder.EncodeKey,
    af.ADDRESS_FORMAT_TRON: TrxAddrEncoder.EncodeKey,
    af.ADDRESS_FORMAT_COSMOS: lambda k: AtomAddrEncoder.EncodeKey(k, hrp="cosmos"),
    af.ADDRESS_FORMAT_BITCOIN_MAINNET_P2PKH: lambda k: P2PKHAddrEncoder.EncodeKey(k, net_ver=b"\x00"),
    af.ADDRESS_FORMAT_BITCOIN_TESTNET_P2PKH: lambda k: P2PKHAddrEncoder.EncodeKey(k, net_ver=b"\x6f"),
    af.ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH: lambda k: P2WPKHAddrEncoder.EncodeKey(k, hrp="bc", wit_ver=0),
    af.ADDRESS_FORMAT_BITCOIN_TESTNET_P2WPKH: lambda k: P2WPKHAddrEncoder.EncodeKey(k, hrp="tb", wit_ver=0),
}
ED_REFERENCE = {
    af.ADDRESS_FORMAT_SOLANA: SolAddrEncoder.EncodeKey,
    # bip-utils' raw compressed Ed25519 key carries a 0x00 prefix byte; Turnkey's format is the bare 32 bytes.
    af.ADDRESS_FORMAT_COMPRESSED: lambda k: Ed25519PublicKey.FromBytes(k).RawCompressed().ToHex()[2:],
}


def test_every_supported_format_has_a_reference() -> None:
    assert set(SECP_REFERENCE) == af.SUPPORTED_FORMATS[af.CURVE_SECP256K1]
    assert set(ED_REFERENCE) == af.SUPPORTED_FORMATS[af.CURVE_ED25519]


secp_keys = st.builds(
    lambda secret, compressed: PrivateKey.from_int(secret).public_key.format(compressed=compressed),
    st.integers(1, N - 1),
    st.booleans(),
)
ed_keys = st.binary(min_size=32, max_size=32).map(lambda seed: bytes(SigningKey(seed).verify_key))


def _allowed(ours: Outcome, ref: Outcome, curve: str, key: bytes) -> str | None:
    if curve == af.CURVE_SECP256K1 and ref.ok and not ours.ok and len(key) == 65 and key[0] in (6, 7):
        return "sec1-hybrid"
    if curve == af.CURVE_ED25519 and ours.ok and not ref.ok and len(key) == 32:
        return "ed25519-not-a-point"
    return None


def _compare(fmt: str, curve: str, key: bytes) -> None:
    reference = (SECP_REFERENCE if curve == af.CURVE_SECP256K1 else ED_REFERENCE)[fmt]
    ours = run(lambda: af.derive_address(fmt, curve, key))
    ref = run(lambda: reference(key))
    if ours.ok and ref.ok:
        assert ours.value == ref.value, (fmt, key.hex())
    elif ours.ok != ref.ok:
        who = "Strongroom" if not ours.ok else "bip-utils"
        reason = ours.error if not ours.ok else ref.error
        assert _allowed(ours, ref, curve, key) is not None, f"{fmt}: only {who} refuses {key.hex()}: {reason!r}"


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(SECP_REFERENCE)), secp_keys)
def test_secp256k1_formats_match(fmt: str, key: bytes) -> None:
    assert af.derive_address(fmt, af.CURVE_SECP256K1, key) == SECP_REFERENCE[fmt](key)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(ED_REFERENCE)), ed_keys)
def test_ed25519_formats_match(fmt: str, key: bytes) -> None:
    assert af.derive_address(fmt, af.CURVE_ED25519, key) == ED_REFERENCE[fmt](key)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(SECP_REFERENCE)),
    st.one_of(
        st.sampled_from([33, 64, 65]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
        st.tuples(st.sampled_from([2, 3, 4, 6, 7]), st.binary(min_size=32, max_size=32)).map(
            lambda px: bytes([px[0]]) + px[1] + (px[1] if px[0] >= 4 else b"")
        ),
        secp_keys.map(lambda k: k[1:] if len(k) == 65 else k),  # 64-byte X || Y, or compressed as is
        secp_keys.map(lambda k: bytes([6 + (k[-1] & 1)]) + k[1:] if len(k) == 65 else k),  # hybrid form
        st.binary(max_size=70),
    ),
)
def test_secp256k1_arbitrary_keys_agree(fmt: str, key: bytes) -> None:
    _compare(fmt, af.CURVE_SECP256K1, key)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(ED_REFERENCE)), st.binary(max_size=40))
def test_ed25519_arbitrary_keys_agree(fmt: str, key: bytes) -> None:
    _compare(fmt, af.CURVE_ED25519, key)


@pytest.mark.parametrize("secret", [1, 2, 3])
def test_allow_listed_sec1_hybrid(secret: int) -> None:
    key = PrivateKey.from_int(secret).public_key.format(compressed=False)
    hybrid = bytes([6 + (key[-1] & 1)]) + key[1:]
    ours = run(lambda: af.derive_address(af.ADDRESS_FORMAT_ETHEREUM, af.CURVE_SECP256K1, hybrid))
    ref = run(lambda: EthAddrEncoder.EncodeKey(hybrid))
    assert ref.ok
    assert not ours.ok
    assert ref.value == af.derive_address(af.ADDRESS_FORMAT_ETHEREUM, af.CURVE_SECP256K1, key)
    assert _allowed(ours, ref, af.CURVE_SECP256K1, hybrid) == "sec1-hybrid"
    # Without any prefix both refuse.
    assert not run(lambda: EthAddrEncoder.EncodeKey(key[1:])).ok
    assert not run(lambda: af.derive_address(af.ADDRESS_FORMAT_ETHEREUM, af.CURVE_SECP256K1, key[1:])).ok


@pytest.mark.parametrize("fmt", sorted(ED_REFERENCE))
def test_allow_listed_ed25519_not_a_point(fmt: str) -> None:
    key = bytes([2]) + bytes(31)  # y = 2 has no x on edwards25519
    ours = run(lambda: af.derive_address(fmt, af.CURVE_ED25519, key))
    ref = run(lambda: ED_REFERENCE[fmt](key))
    assert ours.ok
    assert not ref.ok
    assert _allowed(ours, ref, af.CURVE_ED25519, key) == "ed25519-not-a-point"
