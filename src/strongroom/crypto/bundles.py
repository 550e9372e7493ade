"""Turnkey's export and import bundles (docs/export-import.md has the format, verified in Turnkey's code).

Export (EXPORT_PRIVATE_KEY, EXPORT_WALLET, EXPORT_WALLET_ACCOUNT): :func:`build_export_bundle`
HPKE-encrypts the secret to the client's ``targetPublicKey`` and signs the result with the
daemon's P-256 bundle key, so `@turnkey/crypto`'s ``decryptExportBundle`` opens it (with
``dangerouslyOverrideSignerPublicKey`` set to that key).

Import (INIT_IMPORT_* then IMPORT_*): :func:`build_import_bundle` signs a one-time P-256 target
public key; the client encrypts to it (``encryptPrivateKeyToBundle`` / ``encryptWalletToBundle``)
and :func:`open_import_bundle` decrypts the ``encryptedBundle`` it sends back, with the target's
private scalar (or :func:`open_import_bundle_with_dh` where the ECDH happens elsewhere).

Everything a client supplies is parsed strictly; any defect raises :class:`BundleError`, a
``ValueError`` with a short message that names no secret (the service maps it to InvalidRequest).
The signer callback is trusted code (the token); its signature is still checked before use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from strongroom.crypto import hpke
from strongroom.crypto.encoding import der_to_rs, rs_to_der
from strongroom.crypto.p256 import N as P256_N
from strongroom.crypto.p256 import verify_sha256_der
from strongroom.errors import InvalidSignature

BUNDLE_VERSION: Final = "v1.0.0"
TURNKEY_HPKE_INFO: Final = b"turnkey_hpke"
MAX_BUNDLE_CHARS: Final = 64 * 1024  # an encrypted mnemonic with passphrase is well under 2 KiB
MAX_ID_CHARS: Final = 256

_HEX: Final = re.compile(r"(?:[0-9a-fA-F]{2})+")
_UNCOMPRESSED_HEX_CHARS: Final = 2 * hpke.N_PK
_IMPORT_FIELDS: Final = frozenset({"encappedPublic", "ciphertext"})
_EXPORT_FIELDS: Final = frozenset({"version", "data", "dataSignature", "enclaveQuorumPublic"})
_EXPORT_DATA_FIELDS: Final = frozenset({"encappedPublic", "ciphertext", "organizationId"})
_WALLET_PASSPHRASE_SEPARATOR: Final = "\n--PASS--\n"  # noqa: S105 - a separator, not a password

Sign = Callable[[bytes], bytes]
"""ECDSA P-256 over SHA-256 of the given bytes, returning a DER signature."""


class BundleError(ValueError):
    """A bundle or key the client supplied is malformed or does not open (message safe to show)."""


@dataclass(frozen=True, slots=True)
class BundleSigner:
    """The daemon's bundle-signing key: what clients pin as ``enclaveQuorumPublic``.

    ``public_key`` is the uncompressed P-256 point as lowercase hex (130 characters); ``sign``
    signs SHA-256 of its argument and returns DER (wrap a raw ``r || s`` signer with
    :func:`raw_signature_to_der`).
    """

    public_key: str
    sign: Sign


def raw_signature_to_der(raw: bytes) -> bytes:
    """A 64-byte ``r || s`` P-256 signature (as PKCS#11 CKM_ECDSA returns it) as DER."""
    if not isinstance(raw, bytes | bytearray) or len(raw) != 64:
        raise ValueError("raw p256 signature must be 64 bytes")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    if not (0 < r < P256_N and 0 < s < P256_N):
        raise ValueError("raw p256 signature is out of range")
    return rs_to_der(r, s)


def _hex_field(value: object, what: str, *, length: int | None = None) -> bytes:
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise BundleError(f"`{what}` must be a non-empty even-length hex string")
    if length is not None and len(value) != 2 * length:
        raise BundleError(f"`{what}` must be {length} bytes of hex")
    return bytes.fromhex(value)


def _point_field(value: object, what: str) -> bytes:
    if not isinstance(value, str) or len(value) != _UNCOMPRESSED_HEX_CHARS:
        raise BundleError(f"`{what}` must be an uncompressed P-256 public key (130 hex characters)")
    raw = _hex_field(value, what, length=hpke.N_PK)
    try:
        hpke.load_public_key(raw)
    except ValueError:
        raise BundleError(f"`{what}` must be an uncompressed P-256 public key on the curve") from None
    return raw


def parse_target_public_key(value: object) -> bytes:
    """A client's ``targetPublicKey``: 130 hex characters of an uncompressed P-256 point, on the curve.

    Returns the 65 raw bytes; BundleError otherwise (compressed keys, ``0x`` prefixes and other
    curves are refused).
    """
    return _point_field(value, "targetPublicKey")


def _id_field(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise BundleError(f"`{what}` must be a non-empty string of at most {MAX_ID_CHARS} characters")
    if not value.isprintable():
        raise BundleError(f"`{what}` must contain printable characters only")
    return value


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise BundleError("bundle has a duplicate key")
        out[key] = value
    return out


def _reject_constant(_name: str) -> Any:
    raise BundleError("bundle is not valid JSON")


def _load_object(text: object, what: str, fields: frozenset[str]) -> dict[str, Any]:
    if not isinstance(text, str):
        raise BundleError(f"`{what}` must be a JSON string")
    if len(text) > MAX_BUNDLE_CHARS:
        raise BundleError(f"`{what}` is longer than {MAX_BUNDLE_CHARS} characters")
    try:
        value = json.loads(text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except BundleError as exc:
        raise BundleError(f"`{what}`: {exc}") from None
    except (ValueError, RecursionError):
        raise BundleError(f"`{what}` is not valid JSON") from None
    if not isinstance(value, dict):
        raise BundleError(f"`{what}` must be a JSON object")
    missing = sorted(fields - value.keys())
    if missing:
        raise BundleError(f"`{what}` lacks `{missing[0]}`")
    if value.keys() - fields:
        raise BundleError(f"`{what}` has unexpected fields")
    return value


def _canonical_json(obj: dict[str, str]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _signed(signer: BundleSigner, data: bytes) -> str:
    """Sign, check the signature against the signer's key, and return low-s DER as hex."""
    public = bytes.fromhex(signer.public_key)
    der = signer.sign(data)
    try:
        verify_sha256_der(public, data, der)
        r, s = der_to_rs(der, below=P256_N)
    except (InvalidSignature, ValueError) as exc:
        raise RuntimeError("bundle signer returned a signature that does not verify") from exc
    if s > P256_N // 2:
        s = P256_N - s
    return rs_to_der(r, s).hex()


def _check_signer(signer: BundleSigner) -> None:
    if not isinstance(signer.public_key, str) or len(signer.public_key) != _UNCOMPRESSED_HEX_CHARS:
        raise ValueError("bundle signer public key must be 130 hex characters (uncompressed P-256)")
    hpke.load_public_key(bytes.fromhex(signer.public_key))
    if signer.public_key != signer.public_key.lower():
        raise ValueError("bundle signer public key must be lowercase hex (clients compare it as a string)")


def _envelope(data: bytes, signer: BundleSigner) -> str:
    return json.dumps(
        {
            "version": BUNDLE_VERSION,
            "data": data.hex(),
            "dataSignature": _signed(signer, data),
            "enclaveQuorumPublic": signer.public_key,
        },
        separators=(",", ":"),
    )


def build_export_bundle(
    plaintext: bytes | bytearray, target_public_key: object, organization_id: str, signer: BundleSigner
) -> str:
    """The ``exportBundle`` string for a secret (raw private key bytes, or a mnemonic in UTF-8).

    ``target_public_key`` is the client's hex string as received (checked here: BundleError if it
    is not an uncompressed P-256 point).
    """
    _check_signer(signer)
    target = parse_target_public_key(target_public_key)
    org = _id_field(organization_id, "organizationId")
    enc, ctx = hpke.setup_sender(target, TURNKEY_HPKE_INFO)
    ciphertext = ctx.seal(plaintext, aad=enc + target)
    data = _canonical_json({"encappedPublic": enc.hex(), "ciphertext": ciphertext.hex(), "organizationId": org})
    return _envelope(data, signer)


def build_import_bundle(target_public: bytes, organization_id: str, user_id: str, signer: BundleSigner) -> str:
    """The ``importBundle`` of INIT_IMPORT_PRIVATE_KEY / INIT_IMPORT_WALLET: the signed target key."""
    _check_signer(signer)
    hpke.load_public_key(target_public)
    data = _canonical_json(
        {
            "organizationId": _id_field(organization_id, "organizationId"),
            "userId": _id_field(user_id, "userId"),
            "targetPublic": bytes(target_public).hex(),
        }
    )
    return _envelope(data, signer)


def parse_encrypted_bundle(encrypted_bundle: object) -> tuple[bytes, bytes]:
    """Parse an IMPORT_* ``encryptedBundle``: returns (enc, ciphertext); BundleError if malformed."""
    fields = _load_object(encrypted_bundle, "encryptedBundle", _IMPORT_FIELDS)
    enc = _point_field(fields["encappedPublic"], "encappedPublic")
    ciphertext = _hex_field(fields["ciphertext"], "ciphertext")
    if len(ciphertext) <= hpke.N_T:
        raise BundleError("`ciphertext` is too short")
    return enc, ciphertext


def _open_import(ctx: hpke.ReceiverContext, enc: bytes, ciphertext: bytes, target_public: bytes) -> bytearray:
    try:
        return ctx.open(ciphertext, aad=enc + target_public)
    except hpke.OpenError:
        raise BundleError("`encryptedBundle` does not decrypt with this import's target key") from None


def open_import_bundle_with_dh(encrypted_bundle: object, dh: hpke.DiffieHellman, target_public: bytes) -> bytearray:
    """Decrypt an ``encryptedBundle`` where ``dh`` does the target key's ECDH; returns the plaintext."""
    enc, ciphertext = parse_encrypted_bundle(encrypted_bundle)
    ctx = hpke.setup_receiver_with_dh(dh, target_public, enc, TURNKEY_HPKE_INFO)
    return _open_import(ctx, enc, ciphertext, bytes(target_public))


def open_import_bundle(encrypted_bundle: object, target_private: bytes | bytearray) -> bytearray:
    """Decrypt an ``encryptedBundle`` with the import target's 32-byte private scalar.

    Returns the plaintext in a bytearray the caller wipes: raw private-key bytes for
    IMPORT_PRIVATE_KEY (their length is whatever the client sent: check it), the UTF-8 mnemonic
    for IMPORT_WALLET (see :func:`split_wallet_plaintext`).
    """
    enc, ciphertext = parse_encrypted_bundle(encrypted_bundle)
    ctx = hpke.setup_receiver(target_private, enc, TURNKEY_HPKE_INFO)
    return _open_import(ctx, enc, ciphertext, hpke.public_key_of(target_private))


def split_wallet_plaintext(plaintext: bytes | bytearray) -> tuple[str, str | None]:
    """An imported wallet's plaintext as (mnemonic, passphrase or None).

    `@turnkey/crypto` sends the mnemonic alone; Turnkey's import iframe appends
    ``"\\n--PASS--\\n" + passphrase`` when the user gives one. BundleError if not UTF-8.
    """
    try:
        text = bytes(plaintext).decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError("wallet bundle is not UTF-8") from None
    mnemonic, sep, passphrase = text.partition(_WALLET_PASSPHRASE_SEPARATOR)
    return mnemonic, (passphrase if sep else None)


def open_export_bundle(
    export_bundle: object, target_private: bytes | bytearray, organization_id: str, signer_public_key: str
) -> bytearray:
    """What `@turnkey/crypto`'s ``decryptExportBundle`` does, for Python clients and tests.

    Checks ``enclaveQuorumPublic`` equals ``signer_public_key``, the signature over ``data``, the
    organization id, then decrypts. BundleError on any failure.
    """
    outer = _load_object(export_bundle, "exportBundle", _EXPORT_FIELDS)
    if outer["version"] != BUNDLE_VERSION:
        raise BundleError("`exportBundle` has an unsupported version")
    if outer["enclaveQuorumPublic"] != signer_public_key:
        raise BundleError("`exportBundle` is signed by an unexpected key")
    signer = _point_field(outer["enclaveQuorumPublic"], "enclaveQuorumPublic")
    data = _hex_field(outer["data"], "data")
    signature = _hex_field(outer["dataSignature"], "dataSignature")
    try:
        verify_sha256_der(signer, data, signature)
    except InvalidSignature:
        raise BundleError("`exportBundle` signature does not verify") from None
    try:
        inner_text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BundleError("`data` is not UTF-8") from None
    inner = _load_object(inner_text, "data", _EXPORT_DATA_FIELDS)
    if inner["organizationId"] != organization_id:
        raise BundleError("`exportBundle` is for another organization")
    enc = _point_field(inner["encappedPublic"], "encappedPublic")
    ciphertext = _hex_field(inner["ciphertext"], "ciphertext")
    target_public = hpke.public_key_of(target_private)
    try:
        return hpke.open(target_private, enc, ciphertext, TURNKEY_HPKE_INFO, enc + target_public)
    except hpke.OpenError:
        raise BundleError("`exportBundle` does not decrypt with this key") from None


def digest_for_signing(data: bytes) -> bytes:
    """SHA-256 of ``data``: what a raw ECDSA signer (PKCS#11 CKM_ECDSA) must sign for a bundle."""
    return hashlib.sha256(data).digest()


__all__ = [
    "BUNDLE_VERSION",
    "MAX_BUNDLE_CHARS",
    "TURNKEY_HPKE_INFO",
    "BundleError",
    "BundleSigner",
    "Sign",
    "build_export_bundle",
    "build_import_bundle",
    "digest_for_signing",
    "open_export_bundle",
    "open_import_bundle",
    "open_import_bundle_with_dh",
    "parse_encrypted_bundle",
    "parse_target_public_key",
    "raw_signature_to_der",
    "split_wallet_plaintext",
]
