"""Credentials: API keys and passkeys (authenticators), created with a user or added and deleted later.

A user's access type decides which kinds it may hold (see `users`): an API key for a web user,
or a passkey for an API user, is refused. Limits (Turnkey's, per user): 10 long-lived and 10
expiring API keys (an 11th expiring key evicts an expired one, else the oldest), 10 passkeys.
Each is refused with ResourceExhausted (gRPC 8, HTTP 429) naming the limit. Changing a root
user's credentials is root-quorum-only (`RootOnly.ROOT_TARGET`).

Passkey invites (`auth.INVITE_KEY_PREFIX`, `service/invites.py`) are expiring API keys a web user
may hold; registering a passkey for a user deletes its invites in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from strongroom.crypto import encoding, p256, secp256k1
from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.lookups import is_root, user_in
from strongroom.service.activities.schema import (
    JSON_ID,
    JSON_IDS,
    Schema,
    json_array,
    json_enum,
    json_object,
    json_string,
)
from strongroom.service.auth import ACCESS_API, ACCESS_WEB, CURVE_ED25519, CURVE_P256, CURVE_SECP256K1, is_invite
from strongroom.service.decide import snake_case
from strongroom.service.params import JsonObj, obj, req_list, req_str, str_list
from strongroom.service.webauthn import verify_registration
from strongroom.store.records import ApiKey, Authenticator, User
from strongroom.strictjson import is_ascii_digits

MAX_LONG_LIVED_API_KEYS: Final = 10
MAX_EXPIRING_API_KEYS: Final = 10
MAX_AUTHENTICATORS: Final = 10
MAX_EXPIRATION_SECONDS: Final = 100 * 365 * 24 * 3600

API_KEY: Final = json_object(
    ["apiKeyName", "publicKey", "curveType"],
    apiKeyName=json_string(256),
    publicKey=json_string(200),
    curveType=json_enum(CURVE_P256, CURVE_SECP256K1, CURVE_ED25519),
    expirationSeconds=json_string(32),
)
AUTHENTICATOR: Final = json_object(
    ["authenticatorName", "challenge", "attestation"],
    authenticatorName=json_string(256),
    challenge=json_string(1024),
    attestation=json_object(
        ["credentialId", "clientDataJson", "attestationObject"],
        credentialId=json_string(2048),
        clientDataJson=json_string(16384),
        attestationObject=json_string(65536),
        transports=json_array(json_string(64), 8),
    ),
)


def _deletes(field: str) -> Schema:
    return json_object(["userId", field], userId=JSON_ID, **{field: JSON_IDS})


@dataclass(slots=True)
class Seen:
    """What one request introduces, so duplicates within it are caught too."""

    emails: set[str] = field(default_factory=set)
    public_keys: set[str] = field(default_factory=set)
    credential_ids: set[str] = field(default_factory=set)


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


def _each(items: list[Any], where: str) -> Iterator[tuple[JsonObj, str]]:
    """Each item of a list of objects, with where it is (`parameters.apiKeys[2].`)."""
    for i, raw in enumerate(items):
        w = f"{where}[{i}]."
        yield obj(raw, w.rstrip(".")), w


def read_api_keys(
    deps: Deps, ctx: Context, org_id: str, user_id: str, items: list[Any], where: str, seen: Seen
) -> list[ApiKey]:
    out = []
    for item, w in _each(items, where):
        name = req_str(item, "apiKeyName", w, max_len=256)
        curve = req_str(item, "curveType", w, max_len=64)
        if curve not in (CURVE_P256, CURVE_SECP256K1, CURVE_ED25519):
            raise InvalidRequest(
                f"invalid curve `{curve[:64]}` in `{w}curveType`: use API_KEY_CURVE_P256,"
                " API_KEY_CURVE_SECP256K1 or API_KEY_CURVE_ED25519"
            )
        public_key = _check_public_key(req_str(item, "publicKey", w, max_len=200), curve, w)
        if public_key in seen.public_keys or deps.repo.users.api_key_in_org(org_id, public_key) is not None:
            raise InvalidRequest(f"api key `{public_key}` already exists in this organization")
        seen.public_keys.add(public_key)
        expires = _expiration_ms(item, w)
        expires_at = None if expires is None else ctx.now_ms + expires
        key_id = str(uuid.uuid4())
        out.append(ApiKey(key_id, user_id, org_id, name, public_key, curve, expires_at, ctx.now_ms, ctx.now_ms))
    return out


def read_authenticators(
    deps: Deps, ctx: Context, org_id: str, user_id: str, items: list[Any], where: str, seen: Seen
) -> list[Authenticator]:
    return [_authenticator(deps, ctx, org_id, user_id, item, w, seen) for item, w in _each(items, where)]


def _authenticator(
    deps: Deps, ctx: Context, org_id: str, user_id: str, item: JsonObj, w: str, seen: Seen
) -> Authenticator:
    name = req_str(item, "authenticatorName", w, max_len=256)
    challenge = req_str(item, "challenge", w, max_len=1024)
    attestation = obj(item.get("attestation"), f"{w}attestation")
    a = f"{w}attestation."
    transports = str_list(attestation, "transports", a, max_items=8) if "transports" in attestation else []
    reg = verify_registration(
        deps.webauthn,
        where=w,
        challenge=challenge,
        credential_id=req_str(attestation, "credentialId", a, max_len=2048),
        client_data_json=req_str(attestation, "clientDataJson", a, max_len=16384),
        attestation_object=req_str(attestation, "attestationObject", a, max_len=65536),
        transports=transports,
    )
    if (
        reg.credential_id in seen.credential_ids
        or deps.repo.users.authenticator_by_credential_id(org_id, reg.credential_id) is not None
    ):
        raise InvalidRequest(f"passkey `{reg.credential_id}` is already registered in this organization")
    seen.credential_ids.add(reg.credential_id)
    now = ctx.now_ms
    return Authenticator(
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


def _check_access(user: User, kind: str, *, invites_only: bool = False) -> None:
    """`invites_only`: the API keys are passkey invites, which a web user may hold."""
    refused = ACCESS_WEB if kind == "api keys" else ACCESS_API
    if user.access_type == refused and not (invites_only and refused == ACCESS_WEB):
        raise InvalidRequest(
            f"user `{user.id}` has access type {refused}: it cannot hold {kind}; change its access type"
            " first (update_user `accessType`)"
        )


async def create_api_keys(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    p = "parameters."
    org_id = ctx.organization.id
    user = user_in(deps, org_id, req_str(params, "userId", p, max_len=64))
    items = req_list(params, "apiKeys", p, max_items=MAX_LONG_LIVED_API_KEYS + MAX_EXPIRING_API_KEYS + 1)
    if not items:
        raise InvalidRequest("`parameters.apiKeys` must not be empty")
    new = read_api_keys(deps, ctx, org_id, user.id, items, f"{p}apiKeys", Seen())
    invites_only = all(is_invite(k) for k in new)
    _check_access(user, "api keys", invites_only=invites_only)
    if invites_only and user.access_type == ACCESS_API:
        raise InvalidRequest(
            f"user `{user.id}` has access type {ACCESS_API}: a passkey invite needs web access; change its"
            " access type first (update_user `accessType`)"
        )
    existing = deps.repo.users.api_keys_of_user(user.id)
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
            ops += deps.repo.users.delete_api_key(org_id, k.id)
        for k in new:
            ops += deps.repo.users.insert_api_key(k)
        return Execution({"apiKeyIds": [k.id for k in new]}, ops)

    return Prepared(run, params={"user_id": user.id}, root_only=is_root(ctx, user))


async def create_authenticators(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    p = "parameters."
    org_id = ctx.organization.id
    user = user_in(deps, org_id, req_str(params, "userId", p, max_len=64))
    _check_access(user, "passkeys")
    items = req_list(params, "authenticators", p, max_items=MAX_AUTHENTICATORS + 1, allow_empty=False)
    existing = deps.repo.users.authenticators_of_user(user.id)
    if len(existing) + len(items) > MAX_AUTHENTICATORS:
        raise ResourceExhausted(
            f"user has exceeded maximum authenticators: the limit is {MAX_AUTHENTICATORS} per user"
            f" (it has {len(existing)})"
        )
    new = read_authenticators(deps, ctx, org_id, user.id, items, f"{p}authenticators", Seen())

    async def run() -> Execution:
        ops: list[Any] = []
        for a in new:
            ops += deps.repo.users.insert_authenticator(a)
        # A registered passkey voids the user's passkey invites, in the same transaction (the invite
        # that stamped this request, if one did, is spent by the pipeline: `Pipeline._new`).
        for k in deps.repo.users.api_keys_of_user(user.id):
            if is_invite(k):
                ops += deps.repo.users.delete_api_key(org_id, k.id)
        return Execution({"authenticatorIds": [a.id for a in new]}, ops)

    return Prepared(run, params={"user_id": user.id}, root_only=is_root(ctx, user))


async def _delete(
    deps: Deps, ctx: Context, params: JsonObj, field: str, what: Literal["api key", "authenticator"]
) -> Prepared:
    """Delete some of one user's credentials (its API keys or its passkeys), named by `field`."""
    p = "parameters."
    org_id = ctx.organization.id
    user = user_in(deps, org_id, req_str(params, "userId", p, max_len=64))
    ids = list(dict.fromkeys(str_list(params, field, p, max_items=100, allow_empty=False)))
    for credential_id in ids:
        found = (
            deps.repo.users.api_key(org_id, credential_id)
            if what == "api key"
            else deps.repo.users.authenticator(org_id, credential_id)
        )
        if found is None or found.user_id != user.id:
            raise NotFound(f"no {what} `{credential_id[:64]}` found for user `{user.id}`")

    async def run() -> Execution:
        ops: list[Any] = []
        for credential_id in ids:
            if what == "api key":
                ops += deps.repo.users.delete_api_key(org_id, credential_id)
            else:
                ops += deps.repo.users.delete_authenticator(org_id, credential_id)
        return Execution({field: ids}, ops)

    return Prepared(run, params={"user_id": user.id, snake_case(field): ids}, root_only=is_root(ctx, user))


async def delete_api_keys(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    return await _delete(deps, ctx, params, "apiKeyIds", "api key")


async def delete_authenticators(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    return await _delete(deps, ctx, params, "authenticatorIds", "authenticator")


_ROOT: Final = "root target"  # a root user's credentials change only with the root quorum
ACTIVITIES: Final = (
    activity(
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        create_api_keys,
        "CREDENTIAL",
        "CREATE",
        json_object(["userId", "apiKeys"], userId=JSON_ID, apiKeys=json_array(API_KEY)),
        root_only=_ROOT,
    ),
    activity(
        "ACTIVITY_TYPE_DELETE_API_KEYS", delete_api_keys, "CREDENTIAL", "DELETE", _deletes("apiKeyIds"), root_only=_ROOT
    ),
    activity(
        "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
        create_authenticators,
        "CREDENTIAL",
        "CREATE",
        json_object(
            ["userId", "authenticators"], userId=JSON_ID, authenticators=json_array(AUTHENTICATOR, min_items=1)
        ),
        root_only=_ROOT,
    ),
    activity(
        "ACTIVITY_TYPE_DELETE_AUTHENTICATORS",
        delete_authenticators,
        "CREDENTIAL",
        "DELETE",
        _deletes("authenticatorIds"),
        root_only=_ROOT,
    ),
)
