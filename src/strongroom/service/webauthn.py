"""Passkeys: WebAuthn registration (attestation) and `X-Stamp-WebAuthn` assertions.

Both ceremonies are verified by the maintained `webauthn` library (py_webauthn); this module
only maps Turnkey's wire shapes onto it:

- Registration (`v1AuthenticatorParamsV2`): `{authenticatorName, challenge, attestation:
  {credentialId, clientDataJson, attestationObject, transports}}`, all base64url. The
  clientData challenge must equal `challenge`, its type `webauthn.create`, its origin one of the
  allowed origins, the rpIdHash that of the configured relying-party id, the user-present flag
  set, and the attestation statement must verify (`none`, `packed` self or full attestation, and
  the other formats the library knows).
- Assertion (`X-Stamp-WebAuthn`, plain JSON `{credentialId, clientDataJson, authenticatorData,
  signature}`): the challenge is the ASCII of the lowercase hex SHA-256 of the request body (a
  dashboard login: the challenge the server issued; both go through `check_assertion`);
  type `webauthn.get`; origin allowed; rpIdHash; user present; the signature over
  `authenticatorData || SHA-256(clientDataJSON)` with the registered key; and the signature
  counter must grow whenever the authenticator reports one (non-zero).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from webauthn import verify_authentication_response, verify_registration_response
from webauthn.helpers import decode_credential_public_key
from webauthn.helpers.cose import COSECRV
from webauthn.helpers.decode_credential_public_key import DecodedEC2PublicKey, DecodedOKPPublicKey
from webauthn.helpers.exceptions import WebAuthnException

from strongroom import strictjson
from strongroom.crypto import encoding
from strongroom.errors import ErrorCode, InvalidRequest, Unauthenticated
from strongroom.store.records import Authenticator

SCHEME_WEBAUTHN: Final = "SIGNATURE_SCHEME_WEBAUTHN"  # what votes record as their `scheme` for passkeys
TRANSPORTS: Final = {
    "AUTHENTICATOR_TRANSPORT_BLE": "ble",
    "AUTHENTICATOR_TRANSPORT_INTERNAL": "internal",
    "AUTHENTICATOR_TRANSPORT_NFC": "nfc",
    "AUTHENTICATOR_TRANSPORT_USB": "usb",
    "AUTHENTICATOR_TRANSPORT_HYBRID": "hybrid",
}
_NOT_VERIFIED: Final = "could not verify WebAuthN signature"


@dataclass(frozen=True, slots=True)
class WebAuthnSettings:
    rp_id: str
    origins: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Registration:
    """What a verified attestation yields (the daemon keeps only public material)."""

    credential_id: str  # base64url, no padding
    cose_key: bytes
    public_key: str
    aaguid: str
    attestation_type: str
    sign_count: int


def display_public_key(cose_key: bytes) -> str:
    """`credential.publicKey` as shown to clients: compressed SEC1 hex for P-256, raw hex for Ed25519."""
    decoded = decode_credential_public_key(cose_key)
    if isinstance(decoded, DecodedEC2PublicKey) and decoded.crv == COSECRV.P256:
        prefix = b"\x03" if decoded.y[-1] & 1 else b"\x02"
        return (prefix + decoded.x).hex()
    if isinstance(decoded, DecodedOKPPublicKey):
        return decoded.x.hex()
    return cose_key.hex()


def _b64url(value: str, what: str) -> bytes:
    try:
        return encoding.b64url_decode(value)
    except ValueError as err:
        raise InvalidRequest(f"`{what}` must be base64url") from err


def verify_registration(
    settings: WebAuthnSettings,
    *,
    where: str,
    challenge: str,
    credential_id: str,
    client_data_json: str,
    attestation_object: str,
    transports: list[str],
) -> Registration:
    """Verify a passkey's attestation; `InvalidRequest` (naming `where`) when it does not hold."""
    raw_id = _b64url(credential_id, f"{where}attestation.credentialId")
    expected_challenge = _b64url(challenge, f"{where}challenge")
    client_data = _b64url(client_data_json, f"{where}attestation.clientDataJson")
    try:  # the library parses it with the standard decoder: refuse what that would choke on first
        strictjson.loads(client_data)
    except strictjson.StrictJsonError as err:
        raise InvalidRequest(
            f"invalid passkey attestation in `{where.rstrip('.')}`: clientDataJson: {err.reason}"
        ) from err
    _b64url(attestation_object, f"{where}attestation.attestationObject")
    for t in transports:
        if t not in TRANSPORTS:
            raise InvalidRequest(f"invalid authenticator transport `{t[:64]}` in `{where}attestation.transports`")
    canonical_id = encoding.b64url_encode(raw_id)
    credential: dict[str, Any] = {
        "id": canonical_id,
        "rawId": canonical_id,
        "type": "public-key",
        "response": {
            "clientDataJSON": client_data_json.rstrip("="),
            "attestationObject": attestation_object.rstrip("="),
            "transports": [TRANSPORTS[t] for t in transports],
        },
    }
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=expected_challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=list(settings.origins),
            require_user_presence=True,
            require_user_verification=False,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as err:
        raise InvalidRequest(f"invalid passkey attestation in `{where.rstrip('.')}`: {err}") from err
    if verified.credential_id != raw_id:
        raise InvalidRequest(f"invalid passkey attestation in `{where.rstrip('.')}`: credential id mismatch")
    try:
        public_key = display_public_key(verified.credential_public_key)
    except (WebAuthnException, ValueError, KeyError, TypeError) as err:
        raise InvalidRequest(f"invalid passkey public key in `{where.rstrip('.')}`: {err}") from err
    return Registration(
        canonical_id,
        verified.credential_public_key,
        public_key,
        verified.aaguid,
        str(getattr(verified.fmt, "value", verified.fmt)),
        verified.sign_count,
    )


@dataclass(frozen=True, slots=True)
class Assertion:
    """A parsed `X-Stamp-WebAuthn` header (the browser's assertion, base64url fields decoded)."""

    credential_id: str  # canonical base64url (no padding)
    client_data: bytes
    authenticator_data: bytes
    signature: bytes


def parse_assertion(value: str) -> Assertion:
    try:
        data = strictjson.loads(value)
        fields = [data[k] for k in ("credentialId", "clientDataJson", "authenticatorData", "signature")]
        if not all(isinstance(x, str) for x in fields):
            raise TypeError("webauthn stamp fields must be strings")
        raw = [encoding.b64url_decode(x) for x in fields]
    except (ValueError, KeyError, TypeError) as err:
        raise Unauthenticated("could not extract webauthn stamp") from err
    return Assertion(encoding.b64url_encode(raw[0]), raw[1], raw[2], raw[3])


def expected_challenge(body: bytes) -> bytes:
    """The challenge a passkey signs for a request: ASCII of the lowercase hex SHA-256 of the body."""
    return hashlib.sha256(body).hexdigest().encode("ascii")


def check_challenge(assertion: Assertion, body: bytes) -> None:
    """Before the body is parsed: the assertion must be bound to exactly these bytes."""
    try:
        client = strictjson.loads(assertion.client_data)
        challenge = encoding.b64url_decode(client["challenge"])
    except (ValueError, KeyError, TypeError) as err:
        raise Unauthenticated(_NOT_VERIFIED, code=ErrorCode.SIGNATURE_INVALID) from err
    if challenge != expected_challenge(body):
        raise Unauthenticated(
            f"{_NOT_VERIFIED}: the challenge is not the SHA-256 of this request body",
            code=ErrorCode.SIGNATURE_INVALID,
        )


def credential_json(assertion: Assertion) -> dict[str, object]:
    """An assertion in the JSON shape the `webauthn` library verifies."""
    return {
        "id": assertion.credential_id,
        "rawId": assertion.credential_id,
        "type": "public-key",
        "response": {
            "clientDataJSON": encoding.b64url_encode(assertion.client_data),
            "authenticatorData": encoding.b64url_encode(assertion.authenticator_data),
            "signature": encoding.b64url_encode(assertion.signature),
        },
    }


def check_assertion(
    settings: WebAuthnSettings, authenticator: Authenticator, assertion: Assertion, challenge: bytes, *, sign_count: int
) -> int:
    """The one passkey assertion check, for stamps and dashboard logins alike: `challenge` is what
    the passkey must have signed (a stamp: the body's digest, `expected_challenge`; a login: the
    challenge the server issued). Type `webauthn.get`, an allowed origin, the relying party's id
    hash, user presence, the signature with the registered key, and a counter above `sign_count`
    whenever the authenticator reports one. Returns the new counter; `Unauthenticated` otherwise."""
    try:
        verified = verify_authentication_response(
            credential=credential_json(assertion),
            expected_challenge=challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=list(settings.origins),
            credential_public_key=authenticator.cose_key,
            credential_current_sign_count=sign_count,
            require_user_verification=False,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as err:
        raise Unauthenticated(f"{_NOT_VERIFIED}: {err}", code=ErrorCode.SIGNATURE_INVALID) from err
    return int(verified.new_sign_count)


def verify_assertion(
    settings: WebAuthnSettings,
    authenticator: Authenticator,
    assertion: Assertion,
    body: bytes,
    *,
    check_counter: bool = True,
) -> int:
    """Verify a passkey stamp against the registered credential; returns the new signature counter.

    `check_counter=False` re-verifies a stamp that was accepted before (a recorded vote): its
    counter is by now behind the credential's, and only its signature matters.
    """
    count = authenticator.sign_count if check_counter else 0
    return check_assertion(settings, authenticator, assertion, expected_challenge(body), sign_count=count)
