"""Passkey invites: a one-time link that registers a passkey for one user, through the pipeline.

How an invite is made (`strongroom dashboard invite`, `strongroom users add-passkey-invite`): the
operator's CLI generates a fresh P-256 key pair and, with the operator's own stamped activity
(CREATE_USERS_V4 for a new user, CREATE_API_KEYS_V2 for an existing one), registers its public
half on the invited user as an expiring API key named `strongroom-invite:…`
(`auth.INVITE_KEY_PREFIX`). The private half is the invite's secret: it is printed once, inside
the link's fragment (`/dashboard/#invite/<organization id>.<secret>`, which browsers never send
to a server or in a Referer), and is never stored: the daemon keeps only the public key, a one-way
function of it, notarised like every credential.

What the invite may do: `auth.resolve` lets a web user hold it, and `Pipeline.authenticate`
refuses it for everything except CREATE_AUTHENTICATORS_V2 for its own user (no query, no vote,
no other activity). Registering a passkey for the user deletes its invites in the same
transaction (a conditional delete: of two concurrent redemptions, one conflicts and writes
nothing), so an invite is single-use.

Redeeming (`POST /dashboard/api/invite`, `Invites.redeem`): the browser sends the secret, the
email the invite was made for, and the passkey's attestation; this module checks the invite
(it exists, is an invite, has not expired, is for that email), then stamps the Turnkey envelope
with the invite's key, exactly as a client would, and submits it through the ordinary pipeline
(stamp, policies: a user may manage its own credentials, root users' credentials need the root
quorum; audit). Every refusal is a Turnkey error and writes nothing.

Threat model: the link is a bearer secret. Whoever has it before the invitee can register their
own passkey for that user (as that user, root included with `--root`). It is short-lived (24 h by
default, the key's expiry), single-use, bound to one user and email, and revocable at any time
(`strongroom users remove-credential USER strongroom-invite:…`). Send it over a channel you would
trust with a password reset; the invitee can check that `users list` shows their passkey.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final

import orjson

from strongroom.clock import Clock
from strongroom.crypto import encoding, p256
from strongroom.errors import Conflict, ErrorCode, InvalidRequest, Unauthenticated
from strongroom.service.auth import INVITE_KEY_PREFIX, SCHEME_P256, is_invite
from strongroom.service.pipeline import Pipeline
from strongroom.store.repository import Repository

INVITE_PATH: Final = "create_authenticators"
INVITE_TYPE: Final = "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2"
DEFAULT_TTL_S: Final = 24 * 3600
_TOKEN: Final = re.compile(r"^([0-9a-fA-F-]{1,64})\.([A-Za-z0-9_-]{43})$")
_INVALID: Final = "this invite is not valid: it was used or revoked, or the link is not the one you were sent"


def make_token(organization_id: str, private_hex: str) -> str:
    """The invite's secret as it appears in the link: `<organization id>.<the key, base64url>`."""
    return f"{organization_id}.{encoding.b64url_encode(encoding.hex_to_bytes(private_hex))}"


def parse_token(token: object) -> tuple[str, str]:
    """(organization id, private key hex) of a token; `Unauthenticated` for anything else."""
    match = _TOKEN.match(token) if isinstance(token, str) else None
    if match is None:
        raise Unauthenticated(_INVALID, code=ErrorCode.PUBLIC_KEY_NOT_FOUND)
    raw = encoding.b64url_decode(match.group(2))
    return match.group(1), raw.hex()


class Invites:
    """Redeeming a passkey invite (see the module docstring)."""

    def __init__(self, repo: Repository, pipeline: Pipeline, clock: Clock) -> None:
        self.repo: Final = repo
        self.pipeline: Final = pipeline
        self.clock: Final = clock

    def check(self, token: object) -> None:
        """`Unauthenticated` unless the invite can still be redeemed (it does not say for whom:
        the invitee types the email, a second thing to know besides the link)."""
        self._check(token)

    def _check(self, token: object) -> tuple[str, str, str, str]:
        """(organization id, email, user id, private key hex) of a valid invite."""
        org_id, private_hex = parse_token(token)
        try:
            public = p256.public_key_of(private_hex)
        except ValueError as err:
            raise Unauthenticated(_INVALID, code=ErrorCode.PUBLIC_KEY_NOT_FOUND) from err
        key = self.repo.users.api_key_in_org(org_id, public)
        if key is None or not is_invite(key):
            raise Unauthenticated(_INVALID, code=ErrorCode.PUBLIC_KEY_NOT_FOUND)
        if key.expires_at is not None and key.expires_at <= self.clock.now_ms():
            raise Unauthenticated(
                "this invite has expired: ask an administrator for a new one (strongroom users add-passkey-invite)",
                code=ErrorCode.API_KEY_EXPIRED,
            )
        user = self.repo.users.user(key.user_id)
        if user is None:  # pragma: no cover - foreign keys make this impossible
            raise Unauthenticated(_INVALID, code=ErrorCode.PUBLIC_KEY_NOT_FOUND)
        return org_id, user.email or "", user.id, private_hex

    async def redeem(self, token: object, email: object, authenticator: object) -> dict[str, Any]:
        """Register the passkey (`authenticator`: Turnkey's v1AuthenticatorParamsV2) for the
        invited user; returns the submit answer (`{"activity": …}`)."""
        org_id, invited, user_id, private_hex = self._check(token)
        if not isinstance(email, str) or email.strip().lower() != invited.lower():
            raise InvalidRequest("this invite was made for another email address: type the one it was sent to")
        if not isinstance(authenticator, dict):
            raise InvalidRequest("`authenticator` must be the passkey registration (authenticatorName, challenge, …)")
        body = orjson.dumps(
            {
                "type": INVITE_TYPE,
                "timestampMs": str(self.clock.now_ms()),
                "organizationId": org_id,
                "parameters": {"userId": user_id, "authenticators": [authenticator]},
            }
        )
        public = p256.public_key_of(private_hex)
        signature = p256.sign_sha256_der(private_hex, body).hex()
        stamp = orjson.dumps({"publicKey": public, "scheme": SCHEME_P256, "signature": signature})
        header = base64.urlsafe_b64encode(stamp).rstrip(b"=").decode()
        try:
            return await self.pipeline.submit(INVITE_PATH, body, {"X-Stamp": header})
        except Conflict as err:  # another redemption of this invite committed first
            raise Conflict("this invite was used by another request at the same time: nothing was registered") from err


__all__ = ["DEFAULT_TTL_S", "INVITE_KEY_PREFIX", "Invites", "make_token", "parse_token"]
