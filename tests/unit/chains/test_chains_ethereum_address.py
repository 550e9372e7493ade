"""Ethereum address derivation and EIP-55 checksums."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.chains.ethereum.address import (
    address_from_public_key,
    checksum_address,
    is_address,
    to_checksum,
)
from strongroom.crypto import secp256k1

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


_EIP55 = _load("eip55.json")
_GROUPS: dict[str, list[str]] = _EIP55["checksum_groups"]
_ALL = [address for group in _GROUPS.values() for address in group]


@pytest.mark.parametrize("address", _ALL)
def test_eip55_round_trip(address: str) -> None:
    assert to_checksum(address) == address
    assert to_checksum(address.lower()) == address
    assert to_checksum("0x" + address[2:].upper()) == address
    assert checksum_address(bytes.fromhex(address[2:])) == address
    assert is_address(address)


def test_eip55_groups_present() -> None:
    assert set(_GROUPS) == {"all_caps", "all_lower", "normal"}
    assert all(a[2:] == a[2:].upper() for a in _GROUPS["all_caps"])
    assert all(a[2:] == a[2:].lower() for a in _GROUPS["all_lower"])


@pytest.mark.parametrize("vector", _EIP55["private_key_to_address"])
def test_eip155_private_key(vector: dict[str, str]) -> None:
    secret = bytes.fromhex(vector["private_key"])
    uncompressed = secp256k1.public_key_from_secret(secret)
    compressed = secp256k1.public_key_from_secret(secret, compressed=True)
    assert address_from_public_key(uncompressed) == vector["address"]
    assert address_from_public_key(compressed) == vector["address"]


def test_eip155_example_literal() -> None:
    public_key = secp256k1.public_key_from_secret(b"\x46" * 32)
    assert address_from_public_key(public_key) == "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"


def test_is_address() -> None:
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert is_address(good)
    assert is_address(good.lower())
    assert is_address("0x" + good[2:].upper())
    assert not is_address("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed")
    assert not is_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD")
    assert not is_address(good[2:])
    assert not is_address("0X" + good[2:])
    assert not is_address(good + "0")
    assert not is_address(good[:-1])
    assert not is_address("0x" + "g" * 40)
    assert not is_address(123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0x",
        "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
        "0x" + "0" * 39,
        "0x" + "0" * 41,
        "0xzz" + "0" * 38,
    ],
)
def test_to_checksum_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        to_checksum(value)


def test_checksum_address_rejects_wrong_length() -> None:
    with pytest.raises(ValueError):
        checksum_address(b"\x00" * 19)


def test_address_from_invalid_key() -> None:
    with pytest.raises(ValueError):
        address_from_public_key(b"\x04" + b"\x00" * 64)
