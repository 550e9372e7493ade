"""Users: create, update and delete them.

Access type. Turnkey's current user parameters carry no access type, so Strongroom derives it
from the credentials a user is created with: API keys only → ACCESS_TYPE_API, passkeys only →
ACCESS_TYPE_WEB, both → ACCESS_TYPE_ALL. It is enforced at authentication (an API user's passkey
and a web user's API key are refused at once) and when credentials are added (`credentials`).
It changes only deliberately, through UPDATE_USER's `accessType` (a Strongroom extension; a
USER/UPDATE activity, so policy-governed). For a root user, changing its access type or email is
root-quorum-only (decide.py).

Limits (Turnkey's): 100 users per organization (use sub-organizations for more), 100 tags on a
user; each is refused with ResourceExhausted (gRPC 8, HTTP 429) naming the limit.

Emails are unique across the daemon (the dashboard finds a user's organization by email, as
Turnkey does); the refusal says only "email already in use" and is budgeted per requester
(`EmailRefusals`), since it tells whether another tenant uses an email.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from typing import Any, Final

from strongroom.errors import InvalidRequest, ResourceExhausted, UnsupportedAlgorithm
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.credentials import (
    API_KEY,
    AUTHENTICATOR,
    MAX_AUTHENTICATORS,
    MAX_EXPIRING_API_KEYS,
    MAX_LONG_LIVED_API_KEYS,
    Seen,
    read_api_keys,
    read_authenticators,
)
from strongroom.service.activities.lookups import is_root, user_in
from strongroom.service.activities.schema import JSON_ID, JSON_IDS, json_array, json_enum, json_object, json_string
from strongroom.service.auth import ACCESS_ALL, ACCESS_API, ACCESS_WEB, is_invite
from strongroom.service.params import JsonObj, obj, opt_str, req_list, req_str, str_list
from strongroom.store.records import ApiKey, Authenticator, User
from strongroom.store.repository import Repository

MAX_USERS_PER_ORG: Final = 100
MAX_TAGS_PER_USER: Final = 100
USERS_LIMIT_MESSAGE: Final = (
    f"organization has reached its limit of {MAX_USERS_PER_ORG} users: use sub-organizations for more users"
)
USER: Final = json_object(
    ["userName"],
    userName=json_string(256),
    userEmail=json_string(320),
    userPhoneNumber=json_string(32),
    apiKeys=json_array(API_KEY),
    authenticators=json_array(AUTHENTICATOR),
    userTags=json_array(JSON_ID),
    oauthProviders=json_array({"type": "object"}),
)
_UPDATE_USER: Final = json_object(
    ["userId"],
    userId=JSON_ID,
    userName=json_string(256),
    userEmail=json_string(320),
    userPhoneNumber=json_string(32),
    accessType=json_enum(ACCESS_WEB, ACCESS_API, ACCESS_ALL),
    userTagIds=json_array(JSON_ID),
)
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


def access_type_for(has_api_keys: bool, has_authenticators: bool) -> str:
    if has_api_keys and has_authenticators:
        return ACCESS_ALL
    return ACCESS_WEB if has_authenticators else ACCESS_API


def _email(
    deps: Deps, ctx: Context, email: str | None, where: str, seen: Seen, *, owner: str | None = None
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
    deps.email_refusals.check(ctx)
    existing = deps.repo.users.user_by_email(email)
    if existing is not None and existing.id != owner:
        deps.email_refusals.spend(ctx)
        raise InvalidRequest(f"email already in use (`{where}userEmail`)")
    seen.emails.add(key)
    return email


def _phone(phone: str | None, where: str) -> str | None:
    if not phone:
        return None
    if _E164.fullmatch(phone) is None:
        raise InvalidRequest(f"invalid phone number in `{where}userPhoneNumber`: use E.164, e.g. +13214567890")
    return phone


def _user_tags(deps: Deps, org_id: str, tags: list[str], where: str) -> tuple[str, ...]:
    if len(tags) > MAX_TAGS_PER_USER:
        raise ResourceExhausted(f"a user may carry at most {MAX_TAGS_PER_USER} tags (`{where}` has {len(tags)})")
    known = {t.id for t in deps.repo.tags.tags(org_id, "TAG_TYPE_USER")}
    for tag in tags:
        if tag not in known:
            raise InvalidRequest(f"user tag `{tag[:64]}` not found in this organization")
    return tuple(dict.fromkeys(tags))


def plan_user(deps: Deps, ctx: Context, org_id: str, item: JsonObj, where: str, seen: Seen, *, tags: bool) -> UserPlan:
    name = req_str(item, "userName", where, max_len=256)
    email = _email(deps, ctx, opt_str(item, "userEmail", where, max_len=320), where, seen)
    phone = _phone(opt_str(item, "userPhoneNumber", where, max_len=32), where)
    if item.get("oauthProviders"):
        raise UnsupportedAlgorithm(f"`{where}oauthProviders`: OAuth providers are not supported yet")
    user_id = str(uuid.uuid4())
    key_items = req_list(item, "apiKeys", where, max_items=100) if item.get("apiKeys") is not None else []
    auth_items = (
        req_list(item, "authenticators", where, max_items=100) if item.get("authenticators") is not None else []
    )
    api_keys = read_api_keys(deps, ctx, org_id, user_id, key_items, f"{where}apiKeys", seen)
    authenticators = read_authenticators(deps, ctx, org_id, user_id, auth_items, f"{where}authenticators", seen)
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
        raise ResourceExhausted(f"user has exceeded maximum authenticators: the limit is {MAX_AUTHENTICATORS} per user")
    tag_ids = (
        _user_tags(deps, org_id, str_list(item, "userTags", where), f"{where}userTags")
        if tags and item.get("userTags") is not None
        else ()
    )
    now = ctx.now_ms
    user = User(
        user_id,
        org_id,
        name,
        email,
        # A passkey invite counts as the passkey it stands for: a user invited alone is a web user.
        access_type_for(
            any(not is_invite(k) for k in api_keys), bool(authenticators) or any(is_invite(k) for k in api_keys)
        ),
        tag_ids,
        now,
        now,
        phone,
    )
    return UserPlan(user, tuple(api_keys), tuple(authenticators))


async def create_users(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    items = req_list(params, "users", "parameters.", max_items=MAX_USERS_PER_ORG + 1, allow_empty=False)
    if deps.repo.users.user_count(org_id) + len(items) > MAX_USERS_PER_ORG:
        raise ResourceExhausted(USERS_LIMIT_MESSAGE)
    seen = Seen()
    plans = [
        plan_user(deps, ctx, org_id, obj(raw, f"parameters.users[{i}]"), f"parameters.users[{i}].", seen, tags=True)
        for i, raw in enumerate(items)
    ]

    async def run() -> Execution:
        ops: list[Any] = []
        for plan in plans:
            ops += plan.ops(deps.repo)
        return Execution({"userIds": [p.user.id for p in plans]}, ops)

    return Prepared(run)


async def delete_users(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org = ctx.organization
    ids = list(dict.fromkeys(str_list(params, "userIds", "parameters.", max_items=100, allow_empty=False)))
    users = [user_in(deps, org.id, i) for i in ids]
    for u in users:
        if u.id in org.root_user_ids:
            raise InvalidRequest(
                f"cannot delete user `{u.id}`: it is a member of the root quorum; remove it from the root"
                " quorum first (update_root_quorum)"
            )

    async def run() -> Execution:
        ops: list[Any] = []
        for u in users:
            ops += deps.repo.users.delete_user(org.id, u.id)
        return Execution({"userIds": [u.id for u in users]}, ops)

    return Prepared(run, params={"user_ids": ids})


async def update_user(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    p = "parameters."
    old = user_in(deps, ctx.organization.id, req_str(params, "userId", p, max_len=64))
    name = opt_str(params, "userName", p, max_len=256)
    email = opt_str(params, "userEmail", p, max_len=320)
    phone = opt_str(params, "userPhoneNumber", p, max_len=32)
    access_type = opt_str(params, "accessType", p, max_len=32) or old.access_type
    if access_type not in (ACCESS_API, ACCESS_WEB, ACCESS_ALL):
        raise InvalidRequest(
            f"invalid access type `{access_type[:32]}`: use ACCESS_TYPE_API, ACCESS_TYPE_WEB or ACCESS_TYPE_ALL"
        )
    seen = Seen()
    tags = old.tags
    if params.get("userTagIds"):  # absent or [] leaves the tags as they are (Turnkey's convention)
        tags = _user_tags(deps, ctx.organization.id, str_list(params, "userTagIds", p), f"{p}userTagIds")
    new = replace(
        old,
        name=name or old.name,
        email=old.email if email is None else _email(deps, ctx, email, p, seen, owner=old.id),
        phone_number=old.phone_number if phone is None else _phone(phone, p),
        access_type=access_type,
        tags=tags,
        updated_at=ctx.now_ms,
    )

    async def run() -> Execution:
        return Execution({"userId": new.id}, deps.repo.users.update_user(new))

    # A root user's access type and email (its dashboard login) change only with the root quorum.
    guarded = new.access_type != old.access_type or (new.email or "").lower() != (old.email or "").lower()
    return Prepared(run, params={"user_id": old.id}, root_only=guarded and is_root(ctx, old))


ACTIVITIES: Final = (
    activity(
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        create_users,
        "USER",
        "CREATE",
        json_object(["users"], users=json_array(USER, MAX_USERS_PER_ORG, 1)),
    ),
    activity("ACTIVITY_TYPE_DELETE_USERS", delete_users, "USER", "DELETE", json_object(["userIds"], userIds=JSON_IDS)),
    activity("ACTIVITY_TYPE_UPDATE_USER", update_user, "USER", "UPDATE", _UPDATE_USER, root_only="root target"),
)
