"""The client's side of an import: what `@turnkey/crypto`'s `encryptPrivateKeyToBundle` and
`encryptWalletToBundle` do, for the Python client, the CLI and tests.

The `importBundle` is checked first (the signer key pinned by the caller, its signature over
`data`, the organization and user it was issued for), then the secret is HPKE-sealed to its
`targetPublic` with Turnkey's info and AAD (docs/export-import.md).
"""

from __future__ import annotations

import json
from typing import Final

from strongroom.crypto import hpke
from strongroom.crypto.bundles import (
    BUNDLE_VERSION,
    TURNKEY_HPKE_INFO,
    BundleError,
    _hex_field,
    _load_object,
    _point_field,
)
from strongroom.crypto.p256 import verify_sha256_der
from strongroom.errors import InvalidSignature

_ENVELOPE: Final = frozenset({"version", "data", "dataSignature", "enclaveQuorumPublic"})
_IMPORT_DATA: Final = frozenset({"organizationId", "userId", "targetPublic"})


def import_target(import_bundle: str, organization_id: str, user_id: str, signer_public_key: str) -> bytes:
    """The target key an `importBundle` names, after checking who signed it and for whom (BundleError)."""
    outer = _load_object(import_bundle, "importBundle", _ENVELOPE)
    if outer["version"] != BUNDLE_VERSION:
        raise BundleError("`importBundle` has an unsupported version")
    if outer["enclaveQuorumPublic"] != signer_public_key:
        raise BundleError("`importBundle` is signed by an unexpected key")
    data = _hex_field(outer["data"], "data")
    try:
        verify_sha256_der(_point_field(signer_public_key, "signer"), data, _hex_field(outer["dataSignature"], "sig"))
    except InvalidSignature:
        raise BundleError("`importBundle` signature does not verify") from None
    try:
        inner = _load_object(data.decode("utf-8"), "data", _IMPORT_DATA)
    except UnicodeDecodeError:
        raise BundleError("`data` is not UTF-8") from None
    if inner["organizationId"] != organization_id or inner["userId"] != user_id:
        raise BundleError("`importBundle` was issued for another organization or user")
    return _point_field(inner["targetPublic"], "targetPublic")


def encrypt_to_import_bundle(
    import_bundle: str, plaintext: bytes | bytearray, organization_id: str, user_id: str, signer_public_key: str
) -> str:
    """The `encryptedBundle` for IMPORT_PRIVATE_KEY (raw 32-byte key) or IMPORT_WALLET (UTF-8 mnemonic)."""
    target = import_target(import_bundle, organization_id, user_id, signer_public_key)
    enc, ctx = hpke.setup_sender(target, TURNKEY_HPKE_INFO)
    ciphertext = ctx.seal(plaintext, aad=enc + target)
    return json.dumps({"encappedPublic": enc.hex(), "ciphertext": ciphertext.hex()}, separators=(",", ":"))
