"""Request authentication: `X-Stamp` (API keys) and `X-Stamp-WebAuthn` (passkeys).

An API-key stamp's signature is checked over the exact body bytes before the body is parsed and
before anything is looked up, for each of Turnkey's schemes (P-256, secp256k1, secp256k1 with the
EIP-191 envelope, Ed25519). A passkey stamp carries no public key, so before parsing only its
binding to the body (the clientData challenge) is checked; its signature is verified against the
registered credential once the target organization is known.

Resolution: the credential is looked up among the users of the target organization; failing
that, among those of its parent organization, which may *read* a sub-organization (queries)
but never act in it (submissions need a credential of the target organization itself). A
sub-organization's credentials are never looked for in its parent or its siblings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from strongroom import strictjson
from strongroom.crypto import ed25519, encoding, p256, secp256k1
from strongroom.errors import ErrorCode, InvalidSignature, PermissionDenied, Unauthenticated
from strongroom.service import webauthn as webauthn_stamp
from strongroom.service.webauthn import Assertion, WebAuthnSettings
from strongroom.store.group_commit import Op
from strongroom.store.records import ApiKey, Authenticator, Organization, User
from strongroom.store.repository import Repository

SCHEME_P256: Final = "SIGNATURE_SCHEME_TK_API_P256"
SCHEME_SECP256K1: Final = "SIGNATURE_SCHEME_TK_API_SECP256K1"
SCHEME_SECP256K1_EIP191: Final = "SIGNATURE_SCHEME_TK_API_SECP256K1_EIP191"
SCHEME_ED25519: Final = "SIGNATURE_SCHEME_TK_API_ED25519"
CURVE_P256: Final = "API_KEY_CURVE_P256"
CURVE_SECP256K1: Final = "API_KEY_CURVE_SECP256K1"
CURVE_ED25519: Final = "API_KEY_CURVE_ED25519"
# Each scheme is accepted only against a key registered with this curve.
SCHEME_CURVES: Final = {
    SCHEME_P256: CURVE_P256,
    SCHEME_SECP256K1: CURVE_SECP256K1,
    SCHEME_SECP256K1_EIP191: CURVE_SECP256K1,
    SCHEME_ED25519: CURVE_ED25519,
}
ACCESS_API: Final = "ACCESS_TYPE_API"
ACCESS_WEB: Final = "ACCESS_TYPE_WEB"
ACCESS_ALL: Final = "ACCESS_TYPE_ALL"
MAX_STAMP_LEN: Final = 4096
MAX_WEBAUTHN_STAMP_LEN: Final = 16384

Credential = ApiKey | Authenticator

INVITE_KEY_PREFIX: Final = "strongroom-invite:"
"""An API key named so is a passkey invite (`strongroom dashboard invite`): it may do one thing,
register a passkey for its own user (CREATE_AUTHENTICATORS_V2), which consumes it. A web user may
hold one. See `service/invites.py`."""


def is_invite(credential: Credential) -> bool:
    return isinstance(credential, ApiKey) and credential.name.startswith(INVITE_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class Stamp:
    header: str
    public_key: str  # API keys: lowercase hex (compressed for ECDSA); passkeys: "" until resolved
    scheme: str
    signature: str  # lowercase hex
    assertion: Assertion | None = None  # passkeys only

    @property
    def is_passkey(self) -> bool:
        return self.assertion is not None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request, with which credential; `ops` are writes authentication requires (a passkey's counter)."""

    user: User
    credential: Credential
    stamp: Stamp
    ops: tuple[Op, ...] = field(default=())

    @property
    def public_key(self) -> str:
        return self.credential.public_key

    @property
    def scheme(self) -> str:
        return webauthn_stamp.SCHEME_WEBAUTHN if self.stamp.is_passkey else self.stamp.scheme


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


def _normalize_public_key(scheme: str, public_key: str) -> str:
    """Lowercase; an uncompressed ECDSA point (`04‖X‖Y`) is compressed, as keys are registered."""
    pk = public_key.lower().removeprefix("0x")
    if len(pk) == 130 and pk.startswith("04") and scheme in SCHEME_CURVES and scheme != SCHEME_ED25519:
        try:
            raw = bytes.fromhex(pk)
        except ValueError:
            return pk
        return (bytes([2 + (raw[64] & 1)]) + raw[1:33]).hex()
    return pk


def parse_stamp(headers: Mapping[str, str]) -> Stamp:
    value = _header(headers, "X-Stamp")
    if value is None:
        webauthn = _header(headers, "X-Stamp-WebAuthn")
        if webauthn is not None:
            if len(webauthn) > MAX_WEBAUTHN_STAMP_LEN:
                raise Unauthenticated("could not extract webauthn stamp")
            assertion = webauthn_stamp.parse_assertion(webauthn)
            return Stamp(webauthn, "", webauthn_stamp.SCHEME_WEBAUTHN, assertion.signature.hex(), assertion)
        raise Unauthenticated(
            "cannot authenticate public API activity request without a stamp (X-Stamp/X-Stamp-Webauthn header)",
            code=ErrorCode.SIGNATURE_MISSING,
        )
    if len(value) > MAX_STAMP_LEN:
        raise Unauthenticated("malformed activity stamp")
    try:
        data = strictjson.loads(encoding.b64url_decode(value.strip()))
        public_key = data["publicKey"]
        scheme = data["scheme"]
        signature = data["signature"]
        if not all(isinstance(x, str) for x in (public_key, scheme, signature)):
            raise TypeError("stamp fields must be strings")
        if not isinstance(data, dict):
            raise TypeError("stamp must be an object")
    except (ValueError, KeyError, TypeError) as err:
        raise Unauthenticated("could not extract api key stamp") from err
    return Stamp(value, _normalize_public_key(scheme, public_key), scheme, signature.lower())


def verify_stamp(stamp: Stamp, body: bytes) -> None:
    """Check the stamp against `body` (raises `Unauthenticated`); see the module docstring for passkeys."""
    if stamp.assertion is not None:
        webauthn_stamp.check_challenge(stamp.assertion, body)
        return
    if stamp.scheme not in SCHEME_CURVES:
        raise Unauthenticated(f"unsupported stamp scheme `{stamp.scheme[:64]}`")
    try:
        public_key = encoding.hex_to_bytes(stamp.public_key)
        signature = encoding.hex_to_bytes(stamp.signature)
        if stamp.scheme == SCHEME_P256:
            p256.verify_sha256_der(public_key, body, signature)
        elif stamp.scheme == SCHEME_SECP256K1:
            secp256k1.verify_sha256_der(public_key, body, signature)
        elif stamp.scheme == SCHEME_SECP256K1_EIP191:
            secp256k1.verify_eip191_der(public_key, body, signature)
        else:
            ed25519.verify(public_key, body, signature)
    except (InvalidSignature, ValueError) as err:
        raise Unauthenticated("could not verify api key signature", code=ErrorCode.SIGNATURE_INVALID) from err


def _find(repo: Repository, stamp: Stamp, org_id: str) -> Credential | None:
    if stamp.assertion is not None:
        return repo.users.authenticator_by_credential_id(org_id, stamp.assertion.credential_id)
    return repo.users.api_key_in_org(org_id, stamp.public_key)


def resolve(
    repo: Repository,
    stamp: Stamp,
    org: Organization | str,
    now_ms: int,
    *,
    read: bool = False,
    webauthn: WebAuthnSettings | None = None,
    body: bytes = b"",
) -> Principal:
    """Find the stamp's credential for a request to `org` and check it may be used (see the module docstring)."""
    if isinstance(org, str):
        found_org = repo.organizations.organization(org)
        if found_org is None:
            raise Unauthenticated("could not find public key in organization", code=ErrorCode.PUBLIC_KEY_NOT_FOUND)
        org = found_org
    credential = _find(repo, stamp, org.id)
    from_parent = False
    if credential is None and org.parent_id is not None:
        credential = _find(repo, stamp, org.parent_id)
        from_parent = credential is not None
    where = "organization or its parent organization" if org.parent_id is not None else "organization"
    if credential is None:
        if stamp.assertion is not None:
            raise Unauthenticated(f"credential ID could not be found in {where}", code=ErrorCode.CREDENTIAL_NOT_FOUND)
        raise Unauthenticated(f"could not find public key in {where}", code=ErrorCode.PUBLIC_KEY_NOT_FOUND)
    ops: tuple[Op, ...] = ()
    if isinstance(credential, Authenticator):
        assert stamp.assertion is not None
        if webauthn is None:
            raise Unauthenticated("passkey (X-Stamp-WebAuthn) stamps are not enabled on this daemon")
        count = webauthn_stamp.verify_assertion(webauthn, credential, stamp.assertion, body)
        if count:
            ops = tuple(repo.users.advance_sign_count(credential.id, count))
    else:
        if SCHEME_CURVES[stamp.scheme] != credential.curve:
            raise Unauthenticated(
                f"stamp scheme `{stamp.scheme}` cannot be used with an api key of curve `{credential.curve}`",
                code=ErrorCode.SIGNATURE_INVALID,
            )
        if credential.expires_at is not None and credential.expires_at <= now_ms:
            raise Unauthenticated("expired api key", code=ErrorCode.API_KEY_EXPIRED)
    if from_parent and not read:  # refused only once the stamp is known to be genuine
        raise PermissionDenied(
            "request not authorized: a credential of the parent organization may read this"
            " sub-organization but not submit activities in it",
            code=ErrorCode.REQUEST_NOT_AUTHORIZED,
        )
    user = repo.users.user(credential.user_id)
    if user is None:  # pragma: no cover - foreign keys make this impossible
        raise Unauthenticated(f"could not find public key in {where}", code=ErrorCode.PUBLIC_KEY_NOT_FOUND)
    if isinstance(credential, Authenticator) and user.access_type == ACCESS_API:
        raise Unauthenticated(
            "user has access type ACCESS_TYPE_API: it cannot authenticate with a passkey",
            code=ErrorCode.REQUEST_NOT_AUTHORIZED,
        )
    if isinstance(credential, ApiKey) and user.access_type == ACCESS_WEB and not is_invite(credential):
        raise Unauthenticated(
            "user has access type ACCESS_TYPE_WEB: it cannot authenticate with an api key",
            code=ErrorCode.REQUEST_NOT_AUTHORIZED,
        )
    return Principal(user, credential, stamp, ops)
