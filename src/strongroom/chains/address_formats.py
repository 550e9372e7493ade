"""Turnkey ``ADDRESS_FORMAT_*`` derivation from a wallet account's public key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.crypto import bech32
from strongroom.crypto.base58 import b58check_encode, b58encode
from strongroom.crypto.encoding import hex_to_bytes
from strongroom.crypto.hashes import hash160
from strongroom.crypto.secp256k1 import compress, decompress
from strongroom.errors import InvalidRequest

CURVE_SECP256K1: Final = "CURVE_SECP256K1"
CURVE_ED25519: Final = "CURVE_ED25519"

ADDRESS_FORMAT_UNCOMPRESSED: Final = "ADDRESS_FORMAT_UNCOMPRESSED"
ADDRESS_FORMAT_COMPRESSED: Final = "ADDRESS_FORMAT_COMPRESSED"
ADDRESS_FORMAT_ETHEREUM: Final = "ADDRESS_FORMAT_ETHEREUM"
ADDRESS_FORMAT_SOLANA: Final = "ADDRESS_FORMAT_SOLANA"
ADDRESS_FORMAT_COSMOS: Final = "ADDRESS_FORMAT_COSMOS"
ADDRESS_FORMAT_TRON: Final = "ADDRESS_FORMAT_TRON"
ADDRESS_FORMAT_BITCOIN_MAINNET_P2PKH: Final = "ADDRESS_FORMAT_BITCOIN_MAINNET_P2PKH"
ADDRESS_FORMAT_BITCOIN_TESTNET_P2PKH: Final = "ADDRESS_FORMAT_BITCOIN_TESTNET_P2PKH"
ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH: Final = "ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH"
ADDRESS_FORMAT_BITCOIN_TESTNET_P2WPKH: Final = "ADDRESS_FORMAT_BITCOIN_TESTNET_P2WPKH"

_TRON_PREFIX: Final = b"\x41"
_P2PKH_VERSION: Final = {
    ADDRESS_FORMAT_BITCOIN_MAINNET_P2PKH: b"\x00",
    ADDRESS_FORMAT_BITCOIN_TESTNET_P2PKH: b"\x6f",
}
_P2WPKH_HRP: Final = {
    ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH: "bc",
    ADDRESS_FORMAT_BITCOIN_TESTNET_P2WPKH: "tb",
}


def _secp_uncompressed(public_key: bytes) -> str:
    return decompress(public_key).hex()


def _secp_compressed(public_key: bytes) -> str:
    return compress(public_key).hex()


def _secp_ethereum(public_key: bytes) -> str:
    return address_from_public_key(public_key)


def _secp_tron(public_key: bytes) -> str:
    eth20 = hex_to_bytes(address_from_public_key(public_key))
    return b58check_encode(_TRON_PREFIX + eth20)


def _secp_cosmos(public_key: bytes) -> str:
    return bech32.encode_bytes("cosmos", hash160(compress(public_key)))


def _p2pkh(fmt: str) -> Callable[[bytes], str]:
    version = _P2PKH_VERSION[fmt]

    def derive(public_key: bytes) -> str:
        return b58check_encode(version + hash160(compress(public_key)))

    return derive


def _p2wpkh(fmt: str) -> Callable[[bytes], str]:
    hrp = _P2WPKH_HRP[fmt]

    def derive(public_key: bytes) -> str:
        return bech32.encode_segwit(hrp, 0, hash160(compress(public_key)))

    return derive


def _ed_check(public_key: bytes) -> bytes:
    if not isinstance(public_key, bytes | bytearray) or len(public_key) != 32:
        raise ValueError("ed25519 public key must be 32 bytes")
    return bytes(public_key)


def _ed_solana(public_key: bytes) -> str:
    return b58encode(_ed_check(public_key))


def _ed_compressed(public_key: bytes) -> str:
    return _ed_check(public_key).hex()


_DERIVERS: Final[dict[str, dict[str, Callable[[bytes], str]]]] = {
    CURVE_SECP256K1: {
        ADDRESS_FORMAT_UNCOMPRESSED: _secp_uncompressed,
        ADDRESS_FORMAT_COMPRESSED: _secp_compressed,
        ADDRESS_FORMAT_ETHEREUM: _secp_ethereum,
        ADDRESS_FORMAT_TRON: _secp_tron,
        ADDRESS_FORMAT_COSMOS: _secp_cosmos,
        **{fmt: _p2pkh(fmt) for fmt in _P2PKH_VERSION},
        **{fmt: _p2wpkh(fmt) for fmt in _P2WPKH_HRP},
    },
    CURVE_ED25519: {
        ADDRESS_FORMAT_COMPRESSED: _ed_compressed,
        ADDRESS_FORMAT_SOLANA: _ed_solana,
    },
}

SUPPORTED_FORMATS: Final[dict[str, frozenset[str]]] = {
    curve: frozenset(formats) for curve, formats in _DERIVERS.items()
}


def derive_address(fmt: str, curve: str, public_key: bytes) -> str:
    """Derive the address string of ``public_key`` in Turnkey format ``fmt``.

    ``public_key`` is the 65-byte uncompressed SEC1 point for secp256k1 (33-byte compressed is
    also accepted) and the 32 raw bytes for ed25519. Raises InvalidRequest for an unsupported
    format/curve combination and ValueError for a malformed public key.
    """
    derive = _DERIVERS.get(curve, {}).get(fmt)
    if derive is None:
        raise InvalidRequest(f"address format `{fmt}` is not supported for curve `{curve}`")
    return derive(public_key)


__all__ = [
    "ADDRESS_FORMAT_BITCOIN_MAINNET_P2PKH",
    "ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH",
    "ADDRESS_FORMAT_BITCOIN_TESTNET_P2PKH",
    "ADDRESS_FORMAT_BITCOIN_TESTNET_P2WPKH",
    "ADDRESS_FORMAT_COMPRESSED",
    "ADDRESS_FORMAT_COSMOS",
    "ADDRESS_FORMAT_ETHEREUM",
    "ADDRESS_FORMAT_SOLANA",
    "ADDRESS_FORMAT_TRON",
    "ADDRESS_FORMAT_UNCOMPRESSED",
    "CURVE_ED25519",
    "CURVE_SECP256K1",
    "SUPPORTED_FORMATS",
    "derive_address",
]
