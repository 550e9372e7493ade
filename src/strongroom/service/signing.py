"""Raw-payload signing: decode the payload, hash it as asked, sign with the right backend.

Rules (Turnkey's): secp256k1 keys take KECCAK256, SHA256 or NO_OP (the payload already is a
32-byte digest); Ed25519 keys sign the message itself and take only NOT_APPLICABLE.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from strongroom.chains.ethereum import messages
from strongroom.crypto import encoding, hd
from strongroom.crypto.keccak import keccak256
from strongroom.errors import InvalidRequest, UnsupportedAlgorithm
from strongroom.hsm import AsyncKeyStore, Backend, Curve, KeyRef
from strongroom.service.decide import private_key_probe
from strongroom.store.records import PrivateKey, Wallet, WalletAccount

ENC_HEX: Final = "PAYLOAD_ENCODING_HEXADECIMAL"
ENC_TEXT: Final = "PAYLOAD_ENCODING_TEXT_UTF8"
ENC_EIP712: Final = "PAYLOAD_ENCODING_EIP712"
ENC_EIP7702: Final = "PAYLOAD_ENCODING_EIP7702_AUTHORIZATION"
ENCODINGS: Final = frozenset({ENC_HEX, ENC_TEXT, ENC_EIP712, ENC_EIP7702})
# Encodings whose digest is defined by the payload's structure (the server computes it).
STRUCTURED: Final = frozenset({ENC_EIP712, ENC_EIP7702})
HASH_KECCAK: Final = "HASH_FUNCTION_KECCAK256"
HASH_SHA256: Final = "HASH_FUNCTION_SHA256"
HASH_NO_OP: Final = "HASH_FUNCTION_NO_OP"
HASH_NA: Final = "HASH_FUNCTION_NOT_APPLICABLE"
HASH_FUNCTIONS: Final = frozenset({HASH_KECCAK, HASH_SHA256, HASH_NO_OP, HASH_NA})


def structured_digest(curve: str, hash_function: str, payload: str, encoding_name: str) -> bytes:
    """EIP-712 typed data or an EIP-7702 authorization: the digest the server computes itself."""
    if curve != Curve.SECP256K1:
        raise InvalidRequest(f"`{encoding_name}` payloads are signed with secp256k1 keys only")
    if hash_function != HASH_NO_OP:
        raise InvalidRequest(
            f"`{encoding_name}` payloads are hashed by their own rules: use HASH_FUNCTION_NO_OP, not `{hash_function}`"
        )
    if encoding_name == ENC_EIP712:
        return messages.typed_data_hash(payload)
    return messages.eip7702_authorization_hash(payload)


def decode_payload(payload: str, encoding_name: str) -> bytes:
    if encoding_name == ENC_HEX:
        try:
            return encoding.hex_to_bytes(payload)
        except ValueError as err:
            raise InvalidRequest("payload is not valid hexadecimal for PAYLOAD_ENCODING_HEXADECIMAL") from err
    if encoding_name == ENC_TEXT:
        return payload.encode("utf-8")
    if encoding_name in ENCODINGS:
        raise UnsupportedAlgorithm(f"payload encoding `{encoding_name}` is not supported yet")
    raise InvalidRequest(f"invalid payload encoding `{encoding_name[:64]}`")


def check_hash_function(curve: str, hash_function: str) -> None:
    if hash_function not in HASH_FUNCTIONS:
        raise InvalidRequest(f"invalid hash function `{hash_function[:64]}`")
    if curve == Curve.ED25519 and hash_function != HASH_NA:
        raise InvalidRequest(
            f"ed25519 keys sign the message itself: use HASH_FUNCTION_NOT_APPLICABLE, not `{hash_function}`"
        )
    if curve == Curve.SECP256K1 and hash_function == HASH_NA:
        raise InvalidRequest(
            "HASH_FUNCTION_NOT_APPLICABLE is only valid for ed25519 keys; secp256k1 needs KECCAK256, SHA256 or NO_OP"
        )


def message_for(curve: str, hash_function: str, data: bytes) -> bytes:
    """What the key signs: a 32-byte digest for secp256k1, the message itself for Ed25519."""
    check_hash_function(curve, hash_function)
    if curve == Curve.ED25519:
        return data
    if hash_function == HASH_KECCAK:
        return keccak256(data)
    if hash_function == HASH_SHA256:
        return hashlib.sha256(data).digest()
    if len(data) != 32:
        raise InvalidRequest(f"HASH_FUNCTION_NO_OP needs a 32-byte payload (a digest); got {len(data)} bytes")
    return data


@dataclass(frozen=True, slots=True)
class SigningKey:
    """What signs a request: a private key or an HD wallet account, and what policies read of it
    (`private_key` for a private key; `wallet` and `wallet_account` for a wallet account)."""

    id: str  # the private key's id or the wallet account's id
    curve: str
    public_key: bytes
    ref: KeyRef
    env: dict[str, Any]

    def __repr__(self) -> str:
        return f"SigningKey({self.id!r}, {self.curve})"


def key_ref(key: PrivateKey) -> KeyRef:
    return KeyRef(key.id, Curve(key.curve), key.public_key, Backend(key.backend), key.wrapped)


def private_key_signer(key: PrivateKey) -> SigningKey:
    env = {"private_key": private_key_probe(key.id, key.tags, key.name, imported=key.imported, exported=key.exported)}
    return SigningKey(key.id, key.curve, key.public_key, key_ref(key), env)


def wallet_probe(wallet: Wallet) -> dict[str, Any]:
    """What policies read of a wallet: `wallet.{id,label,imported,exported}`."""
    return {"id": wallet.id, "label": wallet.name, "imported": wallet.imported, "exported": wallet.exported}


def wallet_account_signer(wallet: Wallet, account: WalletAccount) -> SigningKey:
    """An account's key: derived from its wallet's sealed seed at `account.path` for each signature."""
    curve = Curve(account.curve)
    path = hd.parse_path(account.path, account.curve)
    ref = KeyRef(wallet.id, curve, account.public_key, Backend.WALLET, wallet.sealed_seed, path)
    env = {"wallet": wallet_probe(wallet), "wallet_account": {"address": account.address}}
    return SigningKey(account.id, account.curve, account.public_key, ref, env)


def payload_message(curve: str, hash_function: str, payload: str, encoding_name: str) -> bytes:
    """What the key signs for one raw payload, whatever its encoding."""
    if encoding_name in STRUCTURED:
        return structured_digest(curve, hash_function, payload, encoding_name)
    return message_for(curve, hash_function, decode_payload(payload, encoding_name))


async def sign(keys: AsyncKeyStore, key: SigningKey, message: bytes) -> dict[str, Any]:
    """Sign and return Turnkey's `{r, s, v}` (64/64/2 hex chars, no 0x)."""
    ref = key.ref
    if ref.curve is Curve.SECP256K1:
        sig = await keys.sign_secp256k1(ref, message)
        return {"r": f"{sig.r:064x}", "s": f"{sig.s:064x}", "v": f"{sig.v:02x}"}
    raw = await keys.sign_ed25519(ref, message)
    return {"r": raw[:32].hex(), "s": raw[32:].hex(), "v": "00"}
