"""The dashboard's domain: passkey login, sessions, and the reads its pages render.

Security model (issue 8):

- Login is a WebAuthn assertion over a server-issued, short-lived, single-use challenge, for a
  user whose access type allows the web (ACCESS_TYPE_WEB or ACCESS_TYPE_ALL), checked by the one
  assertion check stamps use too (`webauthn.check_assertion`). It opens a server-side session
  (256-bit random id, with an expiry) kept in the store (`store/sessions.py`: only its SHA-256),
  so replicas share it and a restart keeps it.
- A session authorizes reads only; writes are Turnkey activities the browser stamps itself. A
  session ends at logout, at expiry, or at its first use after its user, organization or passkey
  is gone or its user lost web access.

Login challenges are a shared, unauthenticated resource, so their table is bounded fairly
(settings `login_challenges_*`): a challenge lives two minutes; one client address holds at most
`login_challenges_per_client` at once, and one email at most `login_challenges_per_email`
(of which one address at most two: asking again replaces that address's own oldest challenge for
the email, never someone else's); the whole table holds `login_challenges_max` live ones (expired
ones are purged first), then refuses. Every refusal is a ResourceExhausted (429) that names the
limit. Nobody's issued challenge is ever dropped early, so filling the table needs many
addresses, and keeping one email from logging in needs several.

`login_options` does not say who exists: an email with no web user behind it (unknown, API-only
or without passkeys) gets the same answer shape, with decoy credential ids derived from an HMAC of
the email under a secret kept in `<data_dir>/login-decoy.key` (stable across requests, restarts
and replicas that share the file), and is limited exactly like a real one.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from strongroom import strictjson
from strongroom.chains.address_formats import SUPPORTED_FORMATS
from strongroom.clock import Clock
from strongroom.config import Settings
from strongroom.crypto import encoding
from strongroom.errors import InvalidRequest, ResourceExhausted, Unauthenticated
from strongroom.logs import get_logger
from strongroom.policy import check_policy
from strongroom.service import render
from strongroom.service import webauthn as passkeys
from strongroom.service.auth import ACCESS_ALL, ACCESS_WEB, Principal, Stamp
from strongroom.service.invites import Invites
from strongroom.service.queries import Queries
from strongroom.store.records import Authenticator, Organization, User
from strongroom.store.repository import Repository
from strongroom.store.sessions import Challenge, ChallengeLimits, Session, SessionRepository, digest

log = get_logger("strongroom.dashboard")

SESSION_TTL_S: Final = 30 * 60
CHALLENGE_TTL_S: Final = 120
PER_EMAIL_PER_CLIENT: Final = 2  # one address's share of an email's challenges
DECOY_KEY_FILE: Final = "login-decoy.key"
DECOY_ID_LENGTHS: Final = (16, 20, 32, 64)  # bytes: what common authenticators use
WEB_ACCESS: Final = frozenset({ACCESS_WEB, ACCESS_ALL})
POLICY_FIELD_MAX: Final = 65536


def decoy_key(data_dir: Path) -> bytes:
    """The secret behind decoy credential ids: `<data_dir>/login-decoy.key` (0600), created once.

    Kept on disk so decoys survive restarts (a changed decoy would tell a real user from a
    missing one); replicas behind one address should share the file. If it cannot be kept, a
    per-process key is used and the reason logged.
    """
    path = data_dir / DECOY_KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("login_decoy_key_unreadable", path=str(path), error=err.strerror)
        return secrets.token_bytes(32)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
    except OSError as err:
        log.warning("login_decoy_key_not_saved", path=str(path), error=err.strerror)
    return key


def decoy_credentials(key: bytes, email: str) -> list[dict[str, Any]]:
    """What `allowCredentials` looks like for an email with no web user: stable, and like real ones."""
    seed = hmac.new(key, b"login-decoy\x00" + email.lower().encode(), hashlib.sha256).digest()
    count = 2 if seed[0] < 32 else 1  # most users have one passkey, some two
    out = []
    for i in range(count):
        length = DECOY_ID_LENGTHS[seed[1 + i] % len(DECOY_ID_LENGTHS)]
        raw = b"".join(hmac.new(seed, bytes([i, block]), hashlib.sha256).digest() for block in range(2))
        out.append({"type": "public-key", "id": encoding.b64url_encode(raw[:length])})
    return out


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a live dashboard session stands for."""

    user: User
    organization: Organization
    authenticator: Authenticator

    @property
    def principal(self) -> Principal:
        # Reads need no stamp: the session stands for the passkey assertion made at login.
        stamp = Stamp("", self.authenticator.public_key, passkeys.SCHEME_WEBAUTHN, "")
        return Principal(self.user, self.authenticator, stamp)


@dataclass(frozen=True, slots=True)
class Login:
    """A session just opened: its id (the cookie's value, never stored) and the answer to show."""

    session_id: str
    ttl_s: int
    body: dict[str, Any]


def _needs_vote(activity: dict[str, Any], user_id: str) -> bool:
    voted = any((v.get("userId") or v.get("user", {}).get("userId")) == user_id for v in activity.get("votes", []))
    return activity["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED" and not voted


class Dashboard:
    """Login, sessions and reads for `api/dashboard.py`, which adds only HTTP."""

    session_ttl_s: Final = SESSION_TTL_S
    challenge_ttl_s: Final = CHALLENGE_TTL_S

    def __init__(
        self,
        settings: Settings,
        repo: Repository,
        sessions: SessionRepository,
        queries: Queries,
        clock: Clock,
        webauthn: passkeys.WebAuthnSettings,
    ) -> None:
        self.settings: Final = settings
        self.repo: Final = repo
        self.sessions: Final = sessions
        self.queries: Final = queries
        self.clock: Final = clock
        self.webauthn: Final = webauthn
        self.limits: Final = ChallengeLimits(
            settings.login_challenges_per_email, settings.login_challenges_per_client, settings.login_challenges_max
        )
        self._issued = itertools.count()
        self.invites: Invites | None = None  # set by the facade

    @functools.cached_property
    def _decoy_key(self) -> bytes:
        return decoy_key(self.settings.data_dir)

    # -- login ------------------------------------------------------------------------------------------
    async def login_options(self, email: object, client: str) -> dict[str, Any]:
        """A challenge for `email`, with its user's credential ids (or decoys); 429 past a limit."""
        if not isinstance(email, str) or not 3 <= len(email) <= 320 or "@" not in email:
            raise InvalidRequest("`email` must be an email address")
        user = self.repo.users.user_by_email(email)
        credentials: list[dict[str, Any]] = []
        if user is not None and user.access_type in WEB_ACCESS:
            credentials = [
                {"type": "public-key", "id": a.credential_id} for a in self.repo.users.authenticators_of_user(user.id)
            ]
        user_id = user.id if credentials and user is not None else None
        if not credentials:
            # No web user behind this email: the same answer, with decoy ids, so it does not say who exists.
            credentials = decoy_credentials(self._decoy_key, email)
        return {
            "challenge": await self._issue_challenge(user_id, email.lower(), client),
            "rpId": self.webauthn.rp_id,
            "allowCredentials": credentials,
            "timeoutMs": CHALLENGE_TTL_S * 1000,
            "userVerification": "preferred",
        }

    def _over_limit(self, email: str, client: str, now: int, *, replacing: bool) -> ResourceExhausted | None:
        """The limit a new challenge would break, as the error to raise (None: within every limit).
        `replacing`: one of this address's challenges for this email goes first, making room."""
        limits, freed = self.limits, int(replacing)
        if not replacing and len(self.sessions.challenges_of_email(email, now)) >= limits.per_email:
            return ResourceExhausted(
                f"too many pending passkey logins for this email: the limit is {limits.per_email} at a time;"
                f" use a challenge already issued or try again within {CHALLENGE_TTL_S} s"
            )
        if self.sessions.challenges_of_client(client, now) - freed >= limits.per_client:
            return ResourceExhausted(
                f"too many pending passkey logins from this address: the limit is {limits.per_client} at a time;"
                f" try again within {CHALLENGE_TTL_S} s"
            )
        if self.sessions.pending_challenges(now) - freed >= limits.total:
            return ResourceExhausted(
                f"too many pending passkey logins on this server: the limit is {limits.total} at a time;"
                f" try again within {CHALLENGE_TTL_S} s"
            )
        return None

    async def _issue_challenge(self, user_id: str | None, email: str, client: str) -> str:
        """A new challenge, or ResourceExhausted naming the limit; never drops another's challenge."""
        now = self.clock.now_ms()
        mine = [key for key, who in self.sessions.challenges_of_email(email, now) if who == client]
        # This address asks again for this email: its own oldest one goes.
        replace = mine[0] if len(mine) >= min(PER_EMAIL_PER_CLIENT, self.limits.per_email) else ""
        refused = self._over_limit(email, client, now, replacing=bool(replace))
        if refused is not None:
            raise refused
        challenge = encoding.b64url_encode(secrets.token_bytes(32))
        issued = now * 1000 + next(self._issued) % 1000  # one address's challenges, in issue order
        record = Challenge(digest(challenge), user_id, email, client, issued, now + CHALLENGE_TTL_S * 1000)
        if not await self.sessions.add_challenge(record, self.limits, now, replace=replace):
            # Another request took the last place meanwhile: say which limit it filled.
            raise self._over_limit(email, client, now, replacing=bool(replace)) or ResourceExhausted(
                f"too many pending passkey logins: try again within {CHALLENGE_TTL_S} s"
            )
        return challenge

    def pending_challenges(self) -> int:
        """Live login challenges in the store (all replicas)."""
        return self.sessions.pending_challenges(self.clock.now_ms())

    async def login(self, raw: object) -> Login:
        """Check a passkey assertion over an issued challenge and open a session; 401 otherwise."""
        if not isinstance(raw, dict):
            raise InvalidRequest("`assertion` must be the passkey assertion (credentialId, clientDataJson, ...)")
        assertion = passkeys.parse_assertion(json.dumps(raw))
        refused = Unauthenticated("passkey login failed")
        try:
            challenge = strictjson.loads(assertion.client_data)["challenge"]
            if not isinstance(challenge, str):
                raise TypeError("challenge")
            raw_challenge = encoding.b64url_decode(challenge)
        except (ValueError, KeyError, TypeError) as err:
            raise refused from err
        taken = await self.sessions.take_challenge(digest(encoding.b64url_encode(raw_challenge)))
        now = self.clock.now_ms()
        if taken is None or taken.expires_at <= now or taken.user_id is None:
            raise refused
        user = self.repo.users.user(taken.user_id)
        if user is None or user.access_type not in WEB_ACCESS:
            raise refused
        authenticator = self.repo.users.authenticator_by_credential_id(user.organization_id, assertion.credential_id)
        if authenticator is None or authenticator.user_id != user.id:
            raise refused
        try:
            count = passkeys.check_assertion(
                self.webauthn, authenticator, assertion, raw_challenge, sign_count=authenticator.sign_count
            )
        except Unauthenticated as err:
            log.info("dashboard_login_refused", user_id=user.id, reason=err.message[:200])
            raise refused from err
        if count:
            await self.repo.write(self.repo.users.advance_sign_count(authenticator.id, count))
        session_id = secrets.token_urlsafe(32)  # 256 bits
        session = Session(user.id, user.organization_id, authenticator.id, now, now + SESSION_TTL_S * 1000)
        await self.sessions.open_session(digest(session_id), session)
        log.info("dashboard_login", user_id=user.id, organization_id=user.organization_id)
        body = {"userId": user.id, "organizationId": user.organization_id, "expiresInS": float(SESSION_TTL_S)}
        return Login(session_id, SESSION_TTL_S, body)

    async def logout(self, session_id: str) -> bool:
        return bool(session_id) and await self.sessions.close_session(digest(session_id))

    def register_options(self) -> dict[str, Any]:
        """A challenge for navigator.credentials.create(); the resulting attestation is submitted
        (create_users / create_authenticators) by an administrator stamping with their own credential,
        or with a passkey invite (`redeem_invite`). `origins`: where passkeys work (the page warns
        when it is served from elsewhere)."""
        return {
            "challenge": encoding.b64url_encode(secrets.token_bytes(32)),
            "rpId": self.webauthn.rp_id,
            "rpName": "Strongroom",
            "origins": list(self.webauthn.origins),
        }

    def _invites(self) -> Invites:
        if self.invites is None:  # pragma: no cover - the facade always sets it
            raise InvalidRequest("passkey invites are not enabled")
        return self.invites

    def invite(self, token: object) -> dict[str, Any]:
        """Whether an invite can still be redeemed (`Unauthenticated` otherwise), before a passkey is made."""
        self._invites().check(token)
        return {"valid": True}

    async def redeem_invite(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Register the invited user's passkey (see `service/invites.py`): the submit answer."""
        return await self._invites().redeem(data.get("invite"), data.get("email"), data.get("authenticator"))

    # -- sessions -----------------------------------------------------------------------------------------
    async def viewer(self, session_id: str) -> Viewer:
        """Who the session stands for; Unauthenticated (and the session ended) if it no longer can."""
        key = digest(session_id) if session_id else ""
        session = self.sessions.session(key, self.clock.now_ms()) if key else None
        if session is None:
            raise Unauthenticated("no dashboard session: log in with a passkey")
        user = self.repo.users.user(session.user_id)
        org = self.repo.organizations.organization(session.organization_id)
        authenticator = self.repo.users.authenticator(session.organization_id, session.authenticator_id)
        if (
            user is None
            or org is None
            or authenticator is None
            or user.organization_id != org.id
            or user.access_type not in WEB_ACCESS
        ):
            await self.sessions.close_session(key)  # the user, its passkey or its web access is gone
            raise Unauthenticated("dashboard session ended: log in again")
        return Viewer(user, org, authenticator)

    # -- reads -----------------------------------------------------------------------------------------------
    async def _query(self, viewer: Viewer, name: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self.queries.table[name](viewer.organization, viewer.principal, params)

    def session_info(self, viewer: Viewer) -> dict[str, Any]:
        return {
            "userId": viewer.user.id,
            "username": viewer.user.name,
            "email": viewer.user.email,
            "organizationId": viewer.organization.id,
            "organizationName": viewer.organization.name,
            "rpId": self.webauthn.rp_id,
            "credentialIds": [a.credential_id for a in self.repo.users.authenticators_of_user(viewer.user.id)],
        }

    async def overview(self, viewer: Viewer) -> dict[str, Any]:
        repo, org = self.repo, viewer.organization
        users = repo.users.users(org.id)
        names = {u.id: u.name for u in users}
        pending = repo.activities.activities(org.id, statuses=["ACTIVITY_STATUS_CONSENSUS_NEEDED"], limit=100)
        usage = await self._query(viewer, "get_usage", {})
        return {
            "organizationId": org.id,
            "name": org.name,
            "parentOrganizationId": org.parent_id,
            "rootQuorum": {
                "threshold": org.root_quorum_threshold,
                "users": [{"userId": u, "username": names.get(u, "")} for u in org.root_user_ids],
            },
            "counts": {
                "users": len(users),
                "privateKeys": len(repo.private_keys.private_keys(org.id)),
                "policies": len(repo.policies.policies(org.id)),
                "subOrganizations": len(repo.organizations.sub_organization_ids(org.id)),
                "pendingActivities": len(pending),
            },
            "usage": usage["usage"],
        }

    async def users(self, viewer: Viewer) -> dict[str, Any]:
        """`list_users` plus what the page shows beside Turnkey's user shape: the access type, and
        whether the user is in the root quorum (only the root quorum removes a root user)."""
        data = await self._query(viewer, "list_users", {})
        org = viewer.organization
        access = {u.id: u.access_type for u in self.repo.users.users(org.id)}
        for u in data["users"]:
            u["accessType"] = access.get(u["userId"], "")
            u["isRoot"] = u["userId"] in org.root_user_ids
        return {**data, **await self._query(viewer, "list_user_tags", {})}

    async def private_keys(self, viewer: Viewer) -> dict[str, Any]:
        """The keys (with the backend holding each), the wallets with their accounts, and the address
        formats each curve can have (the key form offers those, so it never offers a refused pairing)."""
        keys = [
            {**render.private_key(k), "backend": k.backend}
            for k in self.repo.private_keys.private_keys(viewer.organization.id)
        ]
        org_id = viewer.organization.id
        accounts = self.repo.wallets.accounts(org_id)
        wallets = [
            {**render.wallet(w), "accounts": [render.wallet_account(a) for a in accounts if a.wallet_id == w.id]}
            for w in self.repo.wallets.wallets(org_id)
        ]
        return {
            "privateKeys": keys,
            "wallets": wallets,
            "addressFormats": {curve: sorted(formats) for curve, formats in sorted(SUPPORTED_FORMATS.items())},
            **await self._query(viewer, "list_private_key_tags", {}),
        }

    async def policies(self, viewer: Viewer) -> dict[str, Any]:
        return await self._query(viewer, "list_policies", {})

    async def activities(self, viewer: Viewer, query: Mapping[str, str]) -> dict[str, Any]:
        """`query`: the page's filters (`limit`, `status`, `type`, `before`), as in its URL."""
        params: dict[str, Any] = {"paginationOptions": {"limit": query.get("limit", "50")}}
        if query.get("status"):
            params["filterByStatus"] = [query["status"]]
        if query.get("type"):
            params["filterByType"] = [query["type"]]
        if query.get("before"):
            params["paginationOptions"]["before"] = query["before"]
        data = await self._query(viewer, "list_activities", params)
        for a in data["activities"]:
            a["needsMyVote"] = _needs_vote(a, viewer.user.id)
        return data

    async def activity(self, viewer: Viewer, activity_id: str) -> dict[str, Any]:
        """One activity, its decoded view (`get_activity_view`), how the policies evaluated it, and
        its audit trail."""
        data = await self._query(viewer, "get_activity", {"activityId": activity_id})
        data["view"] = (await self._query(viewer, "get_activity_view", {"activityId": activity_id}))["view"]
        evaluations = await self._query(viewer, "get_policy_evaluations", {"activityId": activity_id})
        data["activity"]["needsMyVote"] = _needs_vote(data["activity"], viewer.user.id)
        data["policyEvaluations"] = evaluations["policyEvaluations"]
        trail = self.repo.activities.audit_entries_of_activity(viewer.organization.id, activity_id)
        data["audit"] = [{"seq": seq, "hash": h, "entry": entry} for seq, h, entry in trail]
        return data

    def sub_organizations(self, viewer: Viewer) -> dict[str, Any]:
        subs = (
            self.repo.organizations.organization(i)
            for i in self.repo.organizations.sub_organization_ids(viewer.organization.id)
        )
        return {
            "subOrganizations": [
                {
                    "organizationId": sub.id,
                    "name": sub.name,
                    "users": self.repo.users.user_count(sub.id),
                    "rootQuorumThreshold": sub.root_quorum_threshold,
                    "createdAt": render.timestamp(sub.created_at),
                }
                for sub in subs
                if sub is not None
            ]
        }

    @staticmethod
    def check_policy(data: Mapping[str, Any]) -> dict[str, Any]:
        """The policy checker: `condition`, `consensus`, `time` (strings) and their issues, with positions."""
        fields = {}
        for name in ("condition", "consensus", "time"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidRequest(f"`{name}` must be a string")
            if value is not None and len(value) > POLICY_FIELD_MAX:
                raise InvalidRequest(f"`{name}` is too long")
            fields[name] = value
        issues = check_policy(fields["condition"], fields["consensus"], fields["time"])
        return {
            "valid": not issues,
            "issues": [{"field": i.field, "line": i.line, "column": i.column, "message": i.message} for i in issues],
        }


__all__ = ["CHALLENGE_TTL_S", "SESSION_TTL_S", "Dashboard", "Login", "Viewer", "decoy_credentials", "decoy_key"]
