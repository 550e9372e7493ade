"""HPKE (RFC 9180), base mode, for one suite only: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM.

This is the suite Turnkey's export and import bundles use (docs/export-import.md). It is written
here on `cryptography`'s ECDH, HMAC-SHA256 and AES-GCM because `cryptography`'s own HPKE API
(`hazmat.primitives.hpke`, 50.x) takes no associated data in its public single-shot calls, and
Turnkey's bundles authenticate ``enc || pkR`` as AAD. `cryptography`'s API is still used by the
tests as a second implementation (with empty AAD).

API, in RFC 9180's terms (§5.1, §5.2):

* :func:`setup_sender` (SetupBaseS) returns ``enc`` and a :class:`SenderContext` whose
  :meth:`~SenderContext.seal` encrypts successive messages (nonce = base_nonce XOR seq);
* :func:`setup_receiver` (SetupBaseR) takes the receiver's private scalar, or
  :func:`setup_receiver_with_dh` a callback that performs the ECDH (for a key kept elsewhere);
* :func:`seal` / :func:`open` are the single-shot forms (§6.1).

Public keys are SEC1 uncompressed points (65 bytes, ``04 || X || Y``), as RFC 9180 serialises
them; anything else is refused. Every failure is a ``ValueError`` (:class:`OpenError` when a
ciphertext does not authenticate). Decrypted plaintext is written straight into a ``bytearray``
the caller owns and can wipe (:func:`strongroom.crypto.memory.wipe`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEM_ID: Final = 0x0010  # DHKEM(P-256, HKDF-SHA256)
KDF_ID: Final = 0x0001  # HKDF-SHA256
AEAD_ID: Final = 0x0002  # AES-256-GCM

N_SECRET: Final = 32
N_ENC: Final = 65
N_PK: Final = 65
N_SK: Final = 32
N_K: Final = 32
N_N: Final = 12
N_T: Final = 16
N_H: Final = 32

_MODE_BASE: Final = 0x00
_VERSION: Final = b"HPKE-v1"
_KEM_SUITE_ID: Final = b"KEM" + KEM_ID.to_bytes(2, "big")
_SUITE_ID: Final = b"HPKE" + KEM_ID.to_bytes(2, "big") + KDF_ID.to_bytes(2, "big") + AEAD_ID.to_bytes(2, "big")
_CURVE: Final = ec.SECP256R1()
_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_MAX_INPUT: Final = 64 * 1024  # info and AAD lengths we accept (RFC 9180 §7.2.1 lets us pick a bound)
_MAX_SEQ: Final = (1 << (8 * N_N)) - 1

DiffieHellman = Callable[[bytes], bytes]
"""A receiver-side ECDH: given the sender's uncompressed point, return the 32-byte x-coordinate."""


class OpenError(ValueError):
    """The ciphertext does not authenticate under this key, enc, info and AAD."""

    def __init__(self) -> None:
        super().__init__("hpke: ciphertext does not decrypt with this key")


def _as_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ValueError(f"hpke: {what} must be bytes")  # noqa: TRY004
    return bytes(value)


def _extract(salt: bytes, ikm: bytes) -> bytes:
    # HKDF-Extract (RFC 5869 §2.2): an empty salt is the same HMAC key as HashLen zero bytes.
    return hmac.digest(salt, ikm, "sha256")


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    # HKDF-Expand (RFC 5869 §2.3).
    if not 0 < length <= 255 * N_H:
        raise ValueError("hpke: expand length out of range")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.digest(prk, block + info + bytes([counter]), "sha256")
        out += block
        counter += 1
    return out[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, _VERSION + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, length.to_bytes(2, "big") + _VERSION + suite_id + label + info, length)


def load_public_key(public_key: bytes) -> ec.EllipticCurvePublicKey:
    """DeserializePublicKey: a 65-byte uncompressed P-256 point on the curve, else ValueError."""
    raw = _as_bytes(public_key, "public key")
    if len(raw) != N_PK or raw[0] != 0x04:
        raise ValueError("hpke: public key must be a 65-byte uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, raw)
    except ValueError:
        raise ValueError("hpke: public key is not a point on P-256") from None


def _serialize_public(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def load_private_key(private_key: bytes | bytearray) -> ec.EllipticCurvePrivateKey:
    """DeserializePrivateKey: a 32-byte big-endian scalar in [1, n-1], else ValueError."""
    if not isinstance(private_key, bytes | bytearray):
        raise ValueError("hpke: private key must be bytes")  # noqa: TRY004
    if len(private_key) != N_SK:
        raise ValueError("hpke: private key must be 32 bytes")
    scalar = int.from_bytes(private_key, "big")
    if not 0 < scalar < _ORDER:
        raise ValueError("hpke: private key is out of range")
    return ec.derive_private_key(scalar, _CURVE)


def public_key_of(private_key: bytes | bytearray) -> bytes:
    """The uncompressed public point (65 bytes) of a 32-byte private scalar."""
    return _serialize_public(load_private_key(private_key).public_key())


def generate_key_pair() -> tuple[bytearray, bytes]:
    """A fresh key pair: (32-byte private scalar in a wipeable bytearray, 65-byte public point)."""
    key = ec.generate_private_key(_CURVE)
    scalar = bytearray(key.private_numbers().private_value.to_bytes(N_SK, "big"))
    return scalar, _serialize_public(key.public_key())


def _dh_with(private: ec.EllipticCurvePrivateKey) -> DiffieHellman:
    def dh(peer: bytes) -> bytes:
        return private.exchange(ec.ECDH(), load_public_key(peer))

    return dh


def _extract_and_expand(dh: bytes, kem_context: bytes) -> bytes:
    eae_prk = _labeled_extract(_KEM_SUITE_ID, b"", b"eae_prk", dh)
    return _labeled_expand(_KEM_SUITE_ID, eae_prk, b"shared_secret", kem_context, N_SECRET)


def _check_info(info: object) -> bytes:
    raw = _as_bytes(info, "info")
    if len(raw) > _MAX_INPUT:
        raise ValueError("hpke: info is too long")
    return raw


def key_schedule(shared_secret: bytes, info: bytes) -> tuple[bytes, bytes]:
    """KeyScheduleS/R for mode_base (RFC 9180 §5.1): returns (key, base_nonce)."""
    psk_id_hash = _labeled_extract(_SUITE_ID, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(_SUITE_ID, b"", b"info_hash", info)
    context = bytes([_MODE_BASE]) + psk_id_hash + info_hash
    secret = _labeled_extract(_SUITE_ID, shared_secret, b"secret", b"")
    key = _labeled_expand(_SUITE_ID, secret, b"key", context, N_K)
    base_nonce = _labeled_expand(_SUITE_ID, secret, b"base_nonce", context, N_N)
    return key, base_nonce


class _Context:
    def __init__(self, key: bytes, base_nonce: bytes) -> None:
        self._key = key
        self._base_nonce = base_nonce
        self._seq = 0

    def _nonce(self) -> bytes:
        # ComputeNonce(seq); the sequence number advances only after a successful seal or open (§5.2).
        if self._seq >= _MAX_SEQ:
            raise ValueError("hpke: message limit reached")
        return bytes(a ^ b for a, b in zip(self._base_nonce, self._seq.to_bytes(N_N, "big"), strict=True))


class SenderContext(_Context):
    """An encryption context (RFC 9180 §5.2); each :meth:`seal` uses the next sequence number."""

    def seal(self, plaintext: bytes | bytearray | memoryview, aad: bytes = b"") -> bytes:
        """AES-256-GCM encryption; returns ciphertext || 16-byte tag."""
        message = _as_bytes(plaintext, "plaintext") if isinstance(plaintext, memoryview) else plaintext
        if not isinstance(message, bytes | bytearray):
            raise ValueError("hpke: plaintext must be bytes")  # noqa: TRY004
        associated = _as_bytes(aad, "aad")
        if len(associated) > _MAX_INPUT:
            raise ValueError("hpke: aad is too long")
        encryptor = Cipher(algorithms.AES(self._key), modes.GCM(self._nonce())).encryptor()
        encryptor.authenticate_additional_data(associated)
        body = encryptor.update(message) + encryptor.finalize()
        self._seq += 1
        return body + encryptor.tag


class ReceiverContext(_Context):
    """A decryption context (RFC 9180 §5.2); each :meth:`open` uses the next sequence number."""

    def open(self, ciphertext: bytes | bytearray | memoryview, aad: bytes = b"") -> bytearray:
        """Authenticate and decrypt; the plaintext is written into a new bytearray (wipe it after use)."""
        data = _as_bytes(ciphertext, "ciphertext")
        associated = _as_bytes(aad, "aad")
        if len(associated) > _MAX_INPUT:
            raise ValueError("hpke: aad is too long")
        if len(data) < N_T:
            raise OpenError
        body, tag = data[:-N_T], data[-N_T:]
        decryptor = Cipher(algorithms.AES(self._key), modes.GCM(self._nonce(), tag)).decryptor()
        decryptor.authenticate_additional_data(associated)
        out = bytearray(len(body) + 15)  # update_into wants room for one more block than it writes
        try:
            written = decryptor.update_into(body, out)
            decryptor.finalize()
        except InvalidTag:
            out[:] = bytes(len(out))
            raise OpenError from None
        del out[written:]
        self._seq += 1
        return out


def _setup_sender(
    receiver_public: bytes, info: bytes, ephemeral: ec.EllipticCurvePrivateKey
) -> tuple[bytes, SenderContext]:
    pk_r = _as_bytes(receiver_public, "receiver public key")
    peer = load_public_key(pk_r)
    info_bytes = _check_info(info)
    dh = ephemeral.exchange(ec.ECDH(), peer)
    enc = _serialize_public(ephemeral.public_key())
    shared_secret = _extract_and_expand(dh, enc + pk_r)
    key, base_nonce = key_schedule(shared_secret, info_bytes)
    return enc, SenderContext(key, base_nonce)


def setup_sender(receiver_public: bytes, info: bytes) -> tuple[bytes, SenderContext]:
    """SetupBaseS: a fresh ephemeral key; returns (enc, context). ``enc`` is 65 bytes."""
    return _setup_sender(receiver_public, info, ec.generate_private_key(_CURVE))


def setup_receiver_with_dh(dh: DiffieHellman, receiver_public: bytes, enc: bytes, info: bytes) -> ReceiverContext:
    """SetupBaseR where ``dh(enc)`` performs the receiver's ECDH (the key may live elsewhere)."""
    pk_r = _as_bytes(receiver_public, "receiver public key")
    load_public_key(pk_r)
    enc_bytes = _as_bytes(enc, "enc")
    load_public_key(enc_bytes)  # a malformed enc is the sender's fault: ValueError before any DH
    info_bytes = _check_info(info)
    shared_secret = _extract_and_expand(dh(enc_bytes), enc_bytes + pk_r)
    key, base_nonce = key_schedule(shared_secret, info_bytes)
    return ReceiverContext(key, base_nonce)


def setup_receiver(receiver_private: bytes | bytearray, enc: bytes, info: bytes) -> ReceiverContext:
    """SetupBaseR with the receiver's 32-byte private scalar."""
    private = load_private_key(receiver_private)
    return setup_receiver_with_dh(_dh_with(private), _serialize_public(private.public_key()), enc, info)


def seal(
    receiver_public: bytes, plaintext: bytes | bytearray | memoryview, info: bytes, aad: bytes
) -> tuple[bytes, bytes]:
    """Single-shot SealBase: returns (enc, ciphertext || tag)."""
    enc, ctx = setup_sender(receiver_public, info)
    return enc, ctx.seal(plaintext, aad)


def open(  # RFC 9180's name for the operation (it shadows the builtin inside this module only)
    receiver_private: bytes | bytearray, enc: bytes, ciphertext: bytes | bytearray | memoryview, info: bytes, aad: bytes
) -> bytearray:
    """Single-shot OpenBase with the receiver's private scalar; OpenError if it does not authenticate."""
    return setup_receiver(receiver_private, enc, info).open(ciphertext, aad)


__all__ = [
    "AEAD_ID",
    "KDF_ID",
    "KEM_ID",
    "N_ENC",
    "N_PK",
    "N_SK",
    "N_T",
    "DiffieHellman",
    "OpenError",
    "ReceiverContext",
    "SenderContext",
    "generate_key_pair",
    "key_schedule",
    "load_private_key",
    "load_public_key",
    "open",
    "public_key_of",
    "seal",
    "setup_receiver",
    "setup_receiver_with_dh",
    "setup_sender",
]
