"""Request authentication: the `X-Stamp` header, verified over the exact body bytes.

The stamp's signature is checked before the body is parsed and before anything is looked up;
only then is the stamp's public key resolved to a credential of the target organization.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from strongroom.crypto import encoding, p256
from strongroom.errors import ErrorCode, InvalidSignature, Unauthenticated
from strongroom.store.records import ApiKey, Repository, User

SCHEME_P256: Final = "SIGNATURE_SCHEME_TK_API_P256"
MAX_STAMP_LEN: Final = 4096


@dataclass(frozen=True, slots=True)
class Stamp:
    header: str
    public_key: str  # lowercase hex
    scheme: str
    signature: str  # lowercase hex (DER)


@dataclass(frozen=True, slots=True)
class Principal:
    user: User
    api_key: ApiKey
    stamp: Stamp


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp's CIMultiDict is case-insensitive already; plain dicts in tests may not be.
    v = headers.get(name)
    if v is not None:
        return v
    lname = name.lower()
    for k, val in headers.items():
        if k.lower() == lname:
            return val
    return None


def parse_stamp(headers: Mapping[str, str]) -> Stamp:
    value = _header(headers, "X-Stamp")
    if value is None:
        if _header(headers, "X-Stamp-WebAuthn") is not None:
            raise Unauthenticated("passkey (X-Stamp-WebAuthn) stamps are not enabled on this daemon yet")
        raise Unauthenticated(
            "cannot authenticate public API activity request without a stamp (X-Stamp/X-Stamp-Webauthn header)",
            code=ErrorCode.SIGNATURE_MISSING,
        )
    if len(value) > MAX_STAMP_LEN:
        raise Unauthenticated("malformed activity stamp")
    try:
        data = json.loads(encoding.b64url_decode(value.strip()))
        public_key = data["publicKey"]
        scheme = data["scheme"]
        signature = data["signature"]
        if not all(isinstance(x, str) for x in (public_key, scheme, signature)):
            raise TypeError("stamp fields must be strings")
    except (ValueError, KeyError, TypeError) as err:
        raise Unauthenticated("could not extract api key stamp") from err
    return Stamp(value, public_key.lower(), scheme, signature.lower())


def verify_stamp(stamp: Stamp, body: bytes) -> None:
    """Check the stamp's signature over `body`; raises `Unauthenticated`."""
    if stamp.scheme != SCHEME_P256:
        raise Unauthenticated(f"unsupported stamp scheme `{stamp.scheme[:64]}`")
    try:
        p256.verify_sha256_der(encoding.hex_to_bytes(stamp.public_key), body, encoding.hex_to_bytes(stamp.signature))
    except (InvalidSignature, ValueError) as err:
        raise Unauthenticated("could not verify api key signature", code=ErrorCode.SIGNATURE_INVALID) from err


def resolve(repo: Repository, stamp: Stamp, organization_id: str, now_ms: int) -> Principal:
    """Find the stamp's credential among the users of `organization_id`."""
    key = repo.api_key_in_org(organization_id, stamp.public_key)
    if key is None or key.curve != "API_KEY_CURVE_P256":
        raise Unauthenticated("could not find public key in organization", code=ErrorCode.PUBLIC_KEY_NOT_FOUND)
    if key.expires_at is not None and key.expires_at <= now_ms:
        raise Unauthenticated("expired api key", code=ErrorCode.API_KEY_EXPIRED)
    user = repo.user(key.user_id)
    if user is None:  # pragma: no cover - foreign keys make this impossible
        raise Unauthenticated("could not find public key in organization", code=ErrorCode.PUBLIC_KEY_NOT_FOUND)
    return Principal(user, key, stamp)
