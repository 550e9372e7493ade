"""Raw-payload signing: decode the payload, hash it as asked, sign with the right backend.

Rules (Turnkey's): secp256k1 keys take KECCAK256, SHA256 or NO_OP (the payload already is a
32-byte digest); Ed25519 keys sign the message itself and take only NOT_APPLICABLE.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from strongroom.chains.ethereum import messages
from strongroom.crypto import encoding
from strongroom.crypto.keccak import keccak256
from strongroom.errors import InvalidRequest, UnsupportedAlgorithm
from strongroom.hsm import AsyncKeyStore, Backend, Curve, KeyRef
from strongroom.store.records import PrivateKey

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


def key_ref(key: PrivateKey) -> KeyRef:
    return KeyRef(key.id, Curve(key.curve), key.public_key, Backend(key.backend), key.wrapped)


def payload_message(curve: str, hash_function: str, payload: str, encoding_name: str) -> bytes:
    """What the key signs for one raw payload, whatever its encoding."""
    if encoding_name in STRUCTURED:
        return structured_digest(curve, hash_function, payload, encoding_name)
    return message_for(curve, hash_function, decode_payload(payload, encoding_name))


async def sign(keys: AsyncKeyStore, key: PrivateKey, message: bytes) -> dict[str, Any]:
    """Sign and return Turnkey's `{r, s, v}` (64/64/2 hex chars, no 0x)."""
    ref = key_ref(key)
    if ref.curve is Curve.SECP256K1:
        sig = await keys.sign_secp256k1(ref, message)
        return {"r": f"{sig.r:064x}", "s": f"{sig.s:064x}", "v": f"{sig.v:02x}"}
    raw = await keys.sign_ed25519(ref, message)
    return {"r": raw[:32].hex(), "s": raw[32:].hex(), "v": "00"}
