"""Turnkey ADDRESS_FORMAT_* derivation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.chains import address_formats as af
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.crypto import bech32, ed25519, secp256k1
from strongroom.crypto.base58 import b58check_decode, b58decode, b58encode
from strongroom.crypto.hashes import hash160
from strongroom.errors import InvalidRequest

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


_BTC = _load("bitcoin_addresses.json")
G_COMPRESSED = bytes.fromhex(_BTC["public_key_compressed"])
G_UNCOMPRESSED = secp256k1.decompress(G_COMPRESSED)
SECP = af.CURVE_SECP256K1
ED = af.CURVE_ED25519


def test_hash160_of_generator() -> None:
    assert hash160(G_COMPRESSED).hex() == _BTC["hash160"]


@pytest.mark.parametrize(("fmt", "expected"), sorted(_BTC["addresses"].items()))
def test_known_addresses(fmt: str, expected: str) -> None:
    assert af.derive_address(fmt, SECP, G_UNCOMPRESSED) == expected
    assert af.derive_address(fmt, SECP, G_COMPRESSED) == expected


def test_bip173_and_p2pkh_literals() -> None:
    assert (
        af.derive_address(af.ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH, SECP, G_UNCOMPRESSED)
        == "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    )
    assert (
        af.derive_address(af.ADDRESS_FORMAT_BITCOIN_MAINNET_P2PKH, SECP, G_UNCOMPRESSED)
        == "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"
    )


def test_testnet_p2pkh_structure() -> None:
    address = af.derive_address(af.ADDRESS_FORMAT_BITCOIN_TESTNET_P2PKH, SECP, G_UNCOMPRESSED)
    assert address[0] in "mn"
    assert b58check_decode(address) == b"\x6f" + hash160(G_COMPRESSED)


def test_hex_formats() -> None:
    assert af.derive_address(af.ADDRESS_FORMAT_COMPRESSED, SECP, G_UNCOMPRESSED) == G_COMPRESSED.hex()
    assert af.derive_address(af.ADDRESS_FORMAT_UNCOMPRESSED, SECP, G_UNCOMPRESSED) == G_UNCOMPRESSED.hex()
    out = af.derive_address(af.ADDRESS_FORMAT_UNCOMPRESSED, SECP, G_UNCOMPRESSED)
    assert out == out.lower()
    assert not out.startswith("0x")


def test_tron_structure() -> None:
    public_key = secp256k1.public_key_from_secret(secp256k1.generate_secret())
    address = af.derive_address(af.ADDRESS_FORMAT_TRON, SECP, public_key)
    assert address.startswith("T")
    assert len(address) == 34
    payload = b58check_decode(address)
    assert payload[0] == 0x41
    assert "0x" + payload[1:].hex() == address_from_public_key(public_key).lower()


def test_cosmos_structure() -> None:
    public_key = secp256k1.public_key_from_secret(secp256k1.generate_secret())
    address = af.derive_address(af.ADDRESS_FORMAT_COSMOS, SECP, public_key)
    assert address.startswith("cosmos1")
    assert len(address) == 45
    assert bech32.decode_bytes("cosmos", address) == hash160(secp256k1.compress(public_key))
    assert (
        af.derive_address(af.ADDRESS_FORMAT_COSMOS, SECP, G_UNCOMPRESSED)
        == "cosmos1w508d6qejxtdg4y5r3zarvary0c5xw7k6ah60c"
    )


def test_ed25519_formats() -> None:
    public_key = ed25519.public_key_from_seed(ed25519.generate_seed())
    solana = af.derive_address(af.ADDRESS_FORMAT_SOLANA, ED, public_key)
    assert solana == b58encode(public_key)
    assert b58decode(solana) == public_key
    assert af.derive_address(af.ADDRESS_FORMAT_COMPRESSED, ED, public_key) == public_key.hex()
    with pytest.raises(ValueError):
        af.derive_address(af.ADDRESS_FORMAT_SOLANA, ED, public_key[:31])


@pytest.mark.parametrize(
    ("fmt", "curve"),
    [
        (af.ADDRESS_FORMAT_ETHEREUM, ED),
        (af.ADDRESS_FORMAT_UNCOMPRESSED, ED),
        (af.ADDRESS_FORMAT_TRON, ED),
        (af.ADDRESS_FORMAT_SOLANA, SECP),
        ("ADDRESS_FORMAT_APTOS", ED),
        (af.ADDRESS_FORMAT_ETHEREUM, "CURVE_P256"),
    ],
)
def test_unsupported_combinations(fmt: str, curve: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        af.derive_address(fmt, curve, b"\x00" * 32)
    assert info.value.message == f"address format `{fmt}` is not supported for curve `{curve}`"


def test_supported_formats_table() -> None:
    assert af.SUPPORTED_FORMATS[ED] == frozenset({af.ADDRESS_FORMAT_SOLANA, af.ADDRESS_FORMAT_COMPRESSED})
    assert af.SUPPORTED_FORMATS[SECP] == frozenset(
        {
            af.ADDRESS_FORMAT_ETHEREUM,
            af.ADDRESS_FORMAT_COMPRESSED,
            af.ADDRESS_FORMAT_UNCOMPRESSED,
            af.ADDRESS_FORMAT_TRON,
            af.ADDRESS_FORMAT_COSMOS,
            af.ADDRESS_FORMAT_BITCOIN_MAINNET_P2PKH,
            af.ADDRESS_FORMAT_BITCOIN_TESTNET_P2PKH,
            af.ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH,
            af.ADDRESS_FORMAT_BITCOIN_TESTNET_P2WPKH,
        }
    )
    for curve, formats in af.SUPPORTED_FORMATS.items():
        key = G_UNCOMPRESSED if curve == SECP else ed25519.public_key_from_seed(b"\x07" * 32)
        for fmt in formats:
            assert af.derive_address(fmt, curve, key)
