"""Identity activities: users, API keys, passkeys and sub-organizations.

Access type. Turnkey's current user parameters carry no access type, so Strongroom derives it
from the credentials a user is created with: API keys only → ACCESS_TYPE_API, passkeys only →
ACCESS_TYPE_WEB, both → ACCESS_TYPE_ALL. It is enforced at authentication (an API user's passkey
and a web user's API key are refused at once) and when credentials are added (an API key for a
web user, or a passkey for an API user, is refused). It changes only deliberately, through
UPDATE_USER's `accessType` (a Strongroom extension; a USER/UPDATE activity, so policy-governed).
For a root user, changing its access type, email or credentials is root-quorum-only (decide.py).

Limits (Turnkey's resource limits, per organization or per user): 100 users per organization
(use sub-organizations for more), 10 long-lived and 10 expiring API keys per user (an 11th
expiring key evicts an expired one, else the oldest), 10 passkeys per user, 100 tags on a user.
Each is refused with ResourceExhausted (gRPC 8, HTTP 429) naming the limit.

Emails are unique across the daemon (the dashboard finds a user's organization by email, as
Turnkey does); the refusal says only "email already in use" and is budgeted per requester
(`EmailRefusals`), since it tells whether another tenant uses an email.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Final

from strongroom.crypto import encoding, p256, secp256k1
from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted, UnsupportedAlgorithm
from strongroom.service import webauthn as webauthn_stamp
from strongroom.service.activities.keys import KeyHandlers
from strongroom.service.auth import ACCESS_ALL, ACCESS_API, ACCESS_WEB, CURVE_ED25519, CURVE_P256, CURVE_SECP256K1
from strongroom.service.params import JsonObj, obj, opt_str, req_list, req_str, str_list
from strongroom.service.pipeline import ActivitySpec, Context, Execution, Pipeline, Prepared
from strongroom.service.webauthn import WebAuthnSettings
from strongroom.store.records import ApiKey, Authenticator, Organization, User
from strongroom.store.repository import Repository
from strongroom.strictjson import is_ascii_digits

MAX_USERS_PER_ORG: Final = 100
MAX_LONG_LIVED_API_KEYS: Final = 10
MAX_EXPIRING_API_KEYS: Final = 10
MAX_AUTHENTICATORS: Final = 10
MAX_TAGS_PER_USER: Final = 100
MAX_EXPIRATION_SECONDS: Final = 100 * 365 * 24 * 3600
USERS_LIMIT_MESSAGE: Final = (
    f"organization has reached its limit of {MAX_USERS_PER_ORG} users: use sub-organizations for more users"
)
EMAIL_REFUSALS_PER_REQUESTER: Final = 5
EMAIL_REFUSALS_PER_ORGANIZATION: Final = 20
EMAIL_REFUSAL_WINDOW_MS: Final = 3600 * 1000
_E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")
_EMAIL: Final = re.compile(r"[^@\s]+@[^@\s]+")


@dataclass(frozen=True, slots=True)
class UserPlan:
    """A user to create, with its credentials (validated, nothing written yet)."""

    user: User
    api_keys: tuple[ApiKey, ...]
    authenticators: tuple[Authenticator, ...]

    def ops(self, repo: Repository) -> list[Any]:
        ops = repo.users.insert_user(self.user)
        for k in self.api_keys:
            ops += repo.users.insert_api_key(k)
        for a in self.authenticators:
            ops += repo.users.insert_authenticator(a)
        return ops


class EmailRefusals:
    """Per-requester and per-organization budgets of "email already in use" refusals (one hour)."""

    def __init__(self, per_requester: int, per_organization: int, window_ms: int = EMAIL_REFUSAL_WINDOW_MS) -> None:
        self.per_requester = per_requester
        self.per_organization = per_organization
        self.window_ms = window_ms
        self._spent: dict[str, deque[int]] = {}

    def _recent(self, key: str, now_ms: int) -> deque[int]:
        times = self._spent.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now_ms - self.window_ms:
            times.popleft()
        if not times:
            del self._spent[key]
        return times

    def check(self, ctx: Context) -> None:
        requester = len(self._recent(f"user:{ctx.user_id}", ctx.now_ms))
        organization = len(self._recent(f"org:{ctx.organization.id}", ctx.now_ms))
        if requester >= self.per_requester or organization >= self.per_organization:
            limit = (
                f"{self.per_requester} per requester"
                if requester >= self.per_requester
                else f"{self.per_organization} per organization"
            )
            raise ResourceExhausted(
                f'too many "email already in use" refusals: the limit is {limit} an hour; requests that'
                " name an email are refused until then"
            )

    def spend(self, ctx: Context) -> None:
        for key in (f"user:{ctx.user_id}", f"org:{ctx.organization.id}"):
            self._spent.setdefault(key, deque()).append(ctx.now_ms)


@dataclass(slots=True)
class _Seen:
    """What one request introduces, so duplicates within it are caught too."""

    emails: set[str]
    public_keys: set[str]
    credential_ids: set[str]


def access_type_for(has_api_keys: bool, has_authenticators: bool) -> str:
    if has_api_keys and has_authenticators:
        return ACCESS_ALL
    return ACCESS_WEB if has_authenticators else ACCESS_API


def _check_public_key(public_key: str, curve: str, where: str) -> str:
    pk = public_key.lower()
    try:
        raw = encoding.hex_to_bytes(pk)
        if curve == CURVE_P256:
            if len(raw) != 33:
                raise ValueError("length")
            p256.load_public_key(raw)
        elif curve == CURVE_SECP256K1:
            if len(raw) != 33:
                raise ValueError("length")
            secp256k1.compress(raw)
        elif len(raw) != 32:
            raise ValueError("length")
    except ValueError as err:
        shape = "32 bytes as 64 hex characters" if curve == CURVE_ED25519 else "a compressed point, 66 hex characters"
        raise InvalidRequest(f"invalid public key in `{where}publicKey` for `{curve}`: expected {shape}") from err
    return pk.removeprefix("0x")


def _expiration_ms(item: JsonObj, where: str) -> int | None:
    raw = item.get("expirationSeconds")
    if raw is None or raw == "":
        return None
    text = str(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not is_ascii_digits(text) or not 0 < int(text) <= MAX_EXPIRATION_SECONDS:
        raise InvalidRequest(
            f"invalid api key expiration in `{where}expirationSeconds`: a string of seconds from 1 to"
            f" {MAX_EXPIRATION_SECONDS}"
        )
    return int(text) * 1000


class IdentityHandlers:
    def __init__(self, repo: Repository, webauthn: WebAuthnSettings, keys: KeyHandlers | None = None) -> None:
        self.repo = repo
        self.webauthn = webauthn
        self.keys = keys
        self.email_refusals = EmailRefusals(EMAIL_REFUSALS_PER_REQUESTER, EMAIL_REFUSALS_PER_ORGANIZATION)

    def register(self, pipeline: Pipeline) -> None:
        pipeline.webauthn = self.webauthn
        for path, activity_type, intent, result, prepare, resource, action in (
            (
                "create_users",
                "ACTIVITY_TYPE_CREATE_USERS_V4",
                "createUsersIntentV4",
                "createUsersResult",
                self.create_users,
                "USER",
                "CREATE",
            ),
            (
                "delete_users",
                "ACTIVITY_TYPE_DELETE_USERS",
                "deleteUsersIntent",
                "deleteUsersResult",
                self.delete_users,
                "USER",
                "DELETE",
            ),
            (
                "update_user",
                "ACTIVITY_TYPE_UPDATE_USER",
                "updateUserIntent",
                "updateUserResult",
                self.update_user,
                "USER",
                "UPDATE",
            ),
            (
                "create_api_keys",
                "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
                "createApiKeysIntentV2",
                "createApiKeysResult",
                self.create_api_keys,
                "CREDENTIAL",
                "CREATE",
            ),
            (
                "delete_api_keys",
                "ACTIVITY_TYPE_DELETE_API_KEYS",
                "deleteApiKeysIntent",
                "deleteApiKeysResult",
                self.delete_api_keys,
                "CREDENTIAL",
                "DELETE",
            ),
            (
                "create_authenticators",
                "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
                "createAuthenticatorsIntentV2",
                "createAuthenticatorsResult",
                self.create_authenticators,
                "CREDENTIAL",
                "CREATE",
            ),
            (
                "delete_authenticators",
                "ACTIVITY_TYPE_DELETE_AUTHENTICATORS",
                "deleteAuthenticatorsIntent",
                "deleteAuthenticatorsResult",
                self.delete_authenticators,
                "CREDENTIAL",
                "DELETE",
            ),
            (
                "create_sub_organization",
                "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
                "createSubOrganizationIntentV8",
                "createSubOrganizationResultV8",
                self.create_sub_organization,
                "ORGANIZATION",
                "CREATE",
            ),
        ):
            pipeline.register(ActivitySpec(path, activity_type, intent, result, prepare, resource, action))

    # -- validation helpers -----------------------------------------------------------------------
    def _user(self, org_id: str, user_id: str) -> User:
        user = self.repo.users.user(user_id)
        if user is None or user.organization_id != org_id:
            raise NotFound(f"no user `{user_id[:64]}` found in this organization")
        return user

    @staticmethod
    def _is_root(ctx: Context, user: User) -> bool:
        """Changes to a root user's credentials or access type are root-quorum-only (see decide.py)."""
        return user.id in ctx.organization.root_user_ids

    def _email(
        self, ctx: Context, email: str | None, where: str, seen: _Seen, *, owner: str | None = None
    ) -> str | None:
        """Emails are unique across the daemon (the dashboard finds a user's organization by email).

        A refusal says only "email already in use", and it is an oracle for other tenants' emails,
        so each requester gets a small budget of them (EMAIL_REFUSALS_PER_REQUESTER an hour, and
        EMAIL_REFUSALS_PER_ORGANIZATION for all of an organization's requesters). Once it is spent,
        every request that names an email is refused with 429 until the hour has passed, whether
        the email is taken or not, so the 429 itself says nothing.
        """
        if not email:
            return None
        if len(email) > 320 or _EMAIL.fullmatch(email) is None:
            raise InvalidRequest(f"invalid email address in `{where}userEmail`")
        key = email.lower()
        if key in seen.emails:
            raise InvalidRequest(f"email already in use (`{where}userEmail` repeats an email of this request)")
        self.email_refusals.check(ctx)
        existing = self.repo.users.user_by_email(email)
        if existing is not None and existing.id != owner:
            self.email_refusals.spend(ctx)
            raise InvalidRequest(f"email already in use (`{where}userEmail`)")
        seen.emails.add(key)
        return email

    @staticmethod
    def _phone(phone: str | None, where: str) -> str | None:
        if not phone:
            return None
        if _E164.fullmatch(phone) is None:
            raise InvalidRequest(f"invalid phone number in `{where}userPhoneNumber`: use E.164, e.g. +13214567890")
        return phone

    def _user_tags(self, org_id: str, tags: list[str], where: str) -> tuple[str, ...]:
        if len(tags) > MAX_TAGS_PER_USER:
            raise ResourceExhausted(f"a user may carry at most {MAX_TAGS_PER_USER} tags (`{where}` has {len(tags)})")
        known = {t.id for t in self.repo.tags.tags(org_id, "TAG_TYPE_USER")}
        for tag in tags:
            if tag not in known:
                raise InvalidRequest(f"user tag `{tag[:64]}` not found in this organization")
        return tuple(dict.fromkeys(tags))

    def _api_keys(
        self, ctx: Context, org_id: str, user_id: str, items: list[Any], where: str, seen: _Seen
    ) -> list[ApiKey]:
        out = []
        for i, raw in enumerate(items):
            w = f"{where}[{i}]."
            item = obj(raw, w.rstrip("."))
            name = req_str(item, "apiKeyName", w, max_len=256)
            curve = req_str(item, "curveType", w, max_len=64)
            if curve not in (CURVE_P256, CURVE_SECP256K1, CURVE_ED25519):
                raise InvalidRequest(
                    f"invalid curve `{curve[:64]}` in `{w}curveType`: use API_KEY_CURVE_P256,"
                    " API_KEY_CURVE_SECP256K1 or API_KEY_CURVE_ED25519"
                )
            public_key = _check_public_key(req_str(item, "publicKey", w, max_len=200), curve, w)
            if public_key in seen.public_keys or self.repo.users.api_key_in_org(org_id, public_key) is not None:
                raise InvalidRequest(f"api key `{public_key}` already exists in this organization")
            seen.public_keys.add(public_key)
            expires = _expiration_ms(item, w)
            now = ctx.now_ms
            out.append(
                ApiKey(
                    str(uuid.uuid4()),
                    user_id,
                    org_id,
                    name,
                    public_key,
                    curve,
                    None if expires is None else now + expires,
                    now,
                    now,
                )
            )
        return out

    def _authenticators(
        self, ctx: Context, org_id: str, user_id: str, items: list[Any], where: str, seen: _Seen
    ) -> list[Authenticator]:
        out = []
        for i, raw in enumerate(items):
            w = f"{where}[{i}]."
            item = obj(raw, w.rstrip("."))
            name = req_str(item, "authenticatorName", w, max_len=256)
            challenge = req_str(item, "challenge", w, max_len=1024)
            attestation = obj(item.get("attestation"), f"{w}attestation")
            a = f"{w}attestation."
            transports = str_list(attestation, "transports", a, max_items=8) if "transports" in attestation else []
            reg = webauthn_stamp.verify_registration(
                self.webauthn,
                where=w,
                challenge=challenge,
                credential_id=req_str(attestation, "credentialId", a, max_len=2048),
                client_data_json=req_str(attestation, "clientDataJson", a, max_len=16384),
                attestation_object=req_str(attestation, "attestationObject", a, max_len=65536),
                transports=transports,
            )
            if (
                reg.credential_id in seen.credential_ids
                or self.repo.users.authenticator_by_credential_id(org_id, reg.credential_id) is not None
            ):
                raise InvalidRequest(f"passkey `{reg.credential_id}` is already registered in this organization")
            seen.credential_ids.add(reg.credential_id)
            now = ctx.now_ms
            out.append(
                Authenticator(
                    str(uuid.uuid4()),
                    user_id,
                    org_id,
                    name,
                    reg.credential_id,
                    reg.cose_key,
                    reg.public_key,
                    reg.aaguid,
                    reg.attestation_type,
                    tuple(dict.fromkeys(transports)),
                    reg.sign_count,
                    now,
                    now,
                )
            )
        return out

    def _plan_user(self, ctx: Context, org_id: str, item: JsonObj, where: str, seen: _Seen, *, tags: bool) -> UserPlan:
        name = req_str(item, "userName", where, max_len=256)
        email = self._email(ctx, opt_str(item, "userEmail", where, max_len=320), where, seen)
        phone = self._phone(opt_str(item, "userPhoneNumber", where, max_len=32), where)
        if item.get("oauthProviders"):
            raise UnsupportedAlgorithm(f"`{where}oauthProviders`: OAuth providers are not supported yet")
        user_id = str(uuid.uuid4())
        key_items = req_list(item, "apiKeys", where, max_items=100) if item.get("apiKeys") is not None else []
        auth_items = (
            req_list(item, "authenticators", where, max_items=100) if item.get("authenticators") is not None else []
        )
        api_keys = self._api_keys(ctx, org_id, user_id, key_items, f"{where}apiKeys", seen)
        authenticators = self._authenticators(ctx, org_id, user_id, auth_items, f"{where}authenticators", seen)
        if not api_keys and not authenticators:
            raise InvalidRequest(
                f"`{where.rstrip('.')}` needs at least one credential: an api key or a passkey (authenticator)"
            )
        long_lived = sum(1 for k in api_keys if k.expires_at is None)
        if long_lived > MAX_LONG_LIVED_API_KEYS:
            raise ResourceExhausted(
                f"user has exceeded maximum long-lived api keys: the limit is {MAX_LONG_LIVED_API_KEYS} per user"
            )
        if len(api_keys) - long_lived > MAX_EXPIRING_API_KEYS:
            raise ResourceExhausted(
                f"user has exceeded maximum short-lived api keys: the limit is {MAX_EXPIRING_API_KEYS} per user"
            )
        if len(authenticators) > MAX_AUTHENTICATORS:
            raise ResourceExhausted(
                f"user has exceeded maximum authenticators: the limit is {MAX_AUTHENTICATORS} per user"
            )
        tag_ids = (
            self._user_tags(org_id, str_list(item, "userTags", where), f"{where}userTags")
            if tags and item.get("userTags") is not None
            else ()
        )
        now = ctx.now_ms
        user = User(
            user_id,
            org_id,
            name,
            email,
            access_type_for(bool(api_keys), bool(authenticators)),
            tag_ids,
            now,
            now,
            phone,
        )
        return UserPlan(user, tuple(api_keys), tuple(authenticators))

    # -- users --------------------------------------------------------------------------------------
    async def create_users(self, ctx: Context, params: JsonObj) -> Prepared:
        org_id = ctx.organization.id
        items = req_list(params, "users", "parameters.", max_items=MAX_USERS_PER_ORG + 1, allow_empty=False)
        if self.repo.users.user_count(org_id) + len(items) > MAX_USERS_PER_ORG:
            raise ResourceExhausted(USERS_LIMIT_MESSAGE)
        seen = _Seen(set(), set(), set())
        plans = [
            self._plan_user(ctx, org_id, obj(raw, f"parameters.users[{i}]"), f"parameters.users[{i}].", seen, tags=True)
            for i, raw in enumerate(items)
        ]

        async def run() -> Execution:
            ops: list[Any] = []
            for plan in plans:
                ops += plan.ops(self.repo)
            return Execution({"userIds": [p.user.id for p in plans]}, ops)

        return Prepared(run)

    async def delete_users(self, ctx: Context, params: JsonObj) -> Prepared:
        org = ctx.organization
        ids = list(dict.fromkeys(str_list(params, "userIds", "parameters.", max_items=100, allow_empty=False)))
        users = [self._user(org.id, i) for i in ids]
        for u in users:
            if u.id in org.root_user_ids:
                raise InvalidRequest(
                    f"cannot delete user `{u.id}`: it is a member of the root quorum; remove it from the root"
                    " quorum first (update_root_quorum)"
                )

        async def run() -> Execution:
            ops: list[Any] = []
            for u in users:
                ops += self.repo.users.delete_user(org.id, u.id)
            return Execution({"userIds": [u.id for u in users]}, ops)

        return Prepared(run, params={"user_ids": ids})

    async def update_user(self, ctx: Context, params: JsonObj) -> Prepared:
        p = "parameters."
        old = self._user(ctx.organization.id, req_str(params, "userId", p, max_len=64))
        name = opt_str(params, "userName", p, max_len=256)
        email = opt_str(params, "userEmail", p, max_len=320)
        phone = opt_str(params, "userPhoneNumber", p, max_len=32)
        access_type = opt_str(params, "accessType", p, max_len=32) or old.access_type
        if access_type not in (ACCESS_API, ACCESS_WEB, ACCESS_ALL):
            raise InvalidRequest(
                f"invalid access type `{access_type[:32]}`: use ACCESS_TYPE_API, ACCESS_TYPE_WEB or ACCESS_TYPE_ALL"
            )
        seen = _Seen(set(), set(), set())
        tags = old.tags
        if params.get("userTagIds"):  # absent or [] leaves the tags as they are (Turnkey's convention)
            tags = self._user_tags(ctx.organization.id, str_list(params, "userTagIds", p), f"{p}userTagIds")
        new = replace(
            old,
            name=name or old.name,
            email=old.email if email is None else self._email(ctx, email, p, seen, owner=old.id),
            phone_number=old.phone_number if phone is None else self._phone(phone, p),
            access_type=access_type,
            tags=tags,
            updated_at=ctx.now_ms,
        )

        async def run() -> Execution:
            return Execution({"userId": new.id}, self.repo.users.update_user(new))

        # A root user's access type and email (its dashboard login) change only with the root quorum.
        guarded = new.access_type != old.access_type or (new.email or "").lower() != (old.email or "").lower()
        return Prepared(run, params={"user_id": old.id}, root_only=guarded and self._is_root(ctx, old))

    # -- API keys -----------------------------------------------------------------------------------
    @staticmethod
    def _check_access(user: User, kind: str) -> None:
        refused = ACCESS_WEB if kind == "api keys" else ACCESS_API
        if user.access_type == refused:
            raise InvalidRequest(
                f"user `{user.id}` has access type {refused}: it cannot hold {kind}; change its access type"
                " first (update_user `accessType`)"
            )

    async def create_api_keys(self, ctx: Context, params: JsonObj) -> Prepared:
        p = "parameters."
        org_id = ctx.organization.id
        user = self._user(org_id, req_str(params, "userId", p, max_len=64))
        self._check_access(user, "api keys")
        items = req_list(params, "apiKeys", p, max_items=MAX_LONG_LIVED_API_KEYS + MAX_EXPIRING_API_KEYS + 1)
        if not items:
            raise InvalidRequest("`parameters.apiKeys` must not be empty")
        new = self._api_keys(ctx, org_id, user.id, items, f"{p}apiKeys", _Seen(set(), set(), set()))
        existing = self.repo.users.api_keys_of_user(user.id)
        long_lived = [k for k in existing if k.expires_at is None]
        new_long = sum(1 for k in new if k.expires_at is None)
        if len(long_lived) + new_long > MAX_LONG_LIVED_API_KEYS:
            raise ResourceExhausted(
                f"user has exceeded maximum long-lived api keys: the limit is {MAX_LONG_LIVED_API_KEYS} per user"
                f" (it has {len(long_lived)})"
            )
        new_expiring = len(new) - new_long
        if new_expiring > MAX_EXPIRING_API_KEYS:
            raise ResourceExhausted(
                f"user has exceeded maximum short-lived api keys: the limit is {MAX_EXPIRING_API_KEYS} per user"
            )
        # Expiring keys beyond the limit evict expired ones first, then the oldest (Turnkey's rule).
        expiring = [k for k in existing if k.expires_at is not None]
        excess = len(expiring) + new_expiring - MAX_EXPIRING_API_KEYS
        evict: list[ApiKey] = []
        if excess > 0:
            order = sorted(
                expiring,
                key=lambda k: (0 if (k.expires_at or 0) <= ctx.now_ms else 1, k.created_at, k.id),
            )
            evict = order[:excess]

        async def run() -> Execution:
            ops: list[Any] = []
            for k in evict:
                ops += self.repo.users.delete_api_key(org_id, k.id)
            for k in new:
                ops += self.repo.users.insert_api_key(k)
            return Execution({"apiKeyIds": [k.id for k in new]}, ops)

        return Prepared(run, params={"user_id": user.id}, root_only=self._is_root(ctx, user))

    async def delete_api_keys(self, ctx: Context, params: JsonObj) -> Prepared:
        p = "parameters."
        org_id = ctx.organization.id
        user = self._user(org_id, req_str(params, "userId", p, max_len=64))
        ids = list(dict.fromkeys(str_list(params, "apiKeyIds", p, max_items=100, allow_empty=False)))
        for key_id in ids:
            key = self.repo.users.api_key(org_id, key_id)
            if key is None or key.user_id != user.id:
                raise NotFound(f"no api key `{key_id[:64]}` found for user `{user.id}`")

        async def run() -> Execution:
            ops: list[Any] = []
            for key_id in ids:
                ops += self.repo.users.delete_api_key(org_id, key_id)
            return Execution({"apiKeyIds": ids}, ops)

        return Prepared(run, params={"user_id": user.id, "api_key_ids": ids}, root_only=self._is_root(ctx, user))

    # -- passkeys -------------------------------------------------------------------------------------
    async def create_authenticators(self, ctx: Context, params: JsonObj) -> Prepared:
        p = "parameters."
        org_id = ctx.organization.id
        user = self._user(org_id, req_str(params, "userId", p, max_len=64))
        self._check_access(user, "passkeys")
        items = req_list(params, "authenticators", p, max_items=MAX_AUTHENTICATORS + 1, allow_empty=False)
        existing = self.repo.users.authenticators_of_user(user.id)
        if len(existing) + len(items) > MAX_AUTHENTICATORS:
            raise ResourceExhausted(
                f"user has exceeded maximum authenticators: the limit is {MAX_AUTHENTICATORS} per user"
                f" (it has {len(existing)})"
            )
        new = self._authenticators(ctx, org_id, user.id, items, f"{p}authenticators", _Seen(set(), set(), set()))

        async def run() -> Execution:
            ops: list[Any] = []
            for a in new:
                ops += self.repo.users.insert_authenticator(a)
            return Execution({"authenticatorIds": [a.id for a in new]}, ops)

        return Prepared(run, params={"user_id": user.id}, root_only=self._is_root(ctx, user))

    async def delete_authenticators(self, ctx: Context, params: JsonObj) -> Prepared:
        p = "parameters."
        org_id = ctx.organization.id
        user = self._user(org_id, req_str(params, "userId", p, max_len=64))
        ids = list(dict.fromkeys(str_list(params, "authenticatorIds", p, max_items=100, allow_empty=False)))
        for authenticator_id in ids:
            found = self.repo.users.authenticator(org_id, authenticator_id)
            if found is None or found.user_id != user.id:
                raise NotFound(f"no authenticator `{authenticator_id[:64]}` found for user `{user.id}`")

        async def run() -> Execution:
            ops: list[Any] = []
            for authenticator_id in ids:
                ops += self.repo.users.delete_authenticator(org_id, authenticator_id)
            return Execution({"authenticatorIds": ids}, ops)

        return Prepared(run, params={"user_id": user.id, "authenticator_ids": ids}, root_only=self._is_root(ctx, user))

    # -- sub-organizations -------------------------------------------------------------------------
    async def create_sub_organization(self, ctx: Context, params: JsonObj) -> Prepared:
        """V8: `{subOrganizationName, rootUsers, rootQuorumThreshold, wallet?, ...}`.

        `wallet` (an HD wallet) is refused: HD wallets are not supported yet. Strongroom extension:
        `privateKeys` (the `create_private_keys` list) creates keys in the new sub-organization in
        the same activity; the result then carries `privateKeys` as create_private_keys does.
        """
        p = "parameters."
        parent = ctx.organization
        if parent.parent_id is not None:
            raise ResourceExhausted(
                "a sub-organization cannot create sub-organizations: the limit for sub-organizations is 0"
            )
        name = req_str(params, "subOrganizationName", p, max_len=256)
        if params.get("wallet") is not None:
            raise UnsupportedAlgorithm(
                "`parameters.wallet`: HD wallets are not supported yet; create the sub-organization without"
                " `wallet`, then create private keys in it (or pass `privateKeys`)"
            )
        items = req_list(params, "rootUsers", p, max_items=MAX_USERS_PER_ORG + 1, allow_empty=False)
        if len(items) > MAX_USERS_PER_ORG:
            raise ResourceExhausted(USERS_LIMIT_MESSAGE)
        threshold = params.get("rootQuorumThreshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise InvalidRequest("quorum threshold must be non-zero integer (`parameters.rootQuorumThreshold`)")
        if threshold > len(items):
            raise InvalidRequest(f"quorum threshold {threshold} is larger than the {len(items)} root users")
        sub_id = str(uuid.uuid4())
        seen = _Seen(set(), set(), set())
        plans = [
            self._plan_user(ctx, sub_id, obj(raw, f"{p}rootUsers[{i}]"), f"{p}rootUsers[{i}].", seen, tags=False)
            for i, raw in enumerate(items)
        ]
        root_ids = tuple(pl.user.id for pl in plans)
        sub = Organization(sub_id, name, parent.id, threshold, root_ids, ctx.now_ms, ctx.now_ms)
        keys_prepared: Prepared | None = None
        if params.get("privateKeys") is not None:
            if self.keys is None:  # pragma: no cover - the service always wires the key handlers
                raise UnsupportedAlgorithm("`parameters.privateKeys` is not available on this daemon")
            keys_prepared = await self.keys.create_private_keys(
                Context(sub, ctx.now_ms, ctx.activity_id, ctx.user_id), {"privateKeys": params["privateKeys"]}
            )

        async def run() -> Execution:
            ops: list[Any] = self.repo.organizations.insert_organization(sub)
            for plan in plans:
                ops += plan.ops(self.repo)
            ops += self.repo.organizations.insert_root_users(sub_id, root_ids)
            result: dict[str, Any] = {"subOrganizationId": sub_id, "rootUserIds": list(root_ids)}
            rollback = None
            if keys_prepared is not None:
                created = await keys_prepared.run()
                rollback = created.rollback
                try:
                    ops += created.ops
                    result["privateKeys"] = created.result["privateKeys"]
                except BaseException:
                    if rollback is not None:
                        await rollback()
                    raise
            return Execution(result, ops, rollback)

        return Prepared(run, signatures=0)
