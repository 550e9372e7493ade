"""Private keys: create them in the token (CREATE_PRIVATE_KEYS).

Keys are generated only by the executor, after the policy decision; every key made for a
request that then fails before its commit is destroyed again (`Execution.rollback`).
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from strongroom.chains.address_formats import SUPPORTED_FORMATS, derive_address
from strongroom.errors import InvalidRequest, ResourceExhausted, UnsupportedAlgorithm
from strongroom.hsm import Backend, Curve, KeyRef
from strongroom.logs import get_logger
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.lookups import private_keys_in, unexported_refusal
from strongroom.service.activities.schema import JSON_ID, json_array, json_enum, json_object, json_string
from strongroom.service.decide import private_key_probe
from strongroom.service.params import JsonObj, obj, req_list, req_str, str_list
from strongroom.store.records import PrivateKey

log = get_logger("strongroom.keys")

MAX_PRIVATE_KEYS_PER_ORG: Final = 1000
MAX_KEYS_PER_REQUEST: Final = 100

PRIVATE_KEYS_SCHEMA: Final = json_array(
    json_object(
        ["privateKeyName", "curve"],
        privateKeyName=json_string(256),
        curve=json_enum("CURVE_SECP256K1", "CURVE_ED25519"),
        privateKeyTags=json_array(JSON_ID),
        addressFormats=json_array(json_string(64), 16),
    ),
    MAX_KEYS_PER_REQUEST,
    1,
)


def _tag_ids(deps: Deps, org_id: str, tags: list[str]) -> tuple[str, ...]:
    known = {t.id for t in deps.repo.tags.tags(org_id, "TAG_TYPE_PRIVATE_KEY")}
    for tag in tags:
        if tag not in known:
            raise InvalidRequest(f"private key tag `{tag[:64]}` not found")
    return tuple(dict.fromkeys(tags))


def key_curve(item: JsonObj, where: str) -> Curve:
    """`curve` of a private key: secp256k1 or Ed25519 (P-256 is for API keys only)."""
    curve_name = req_str(item, "curve", where, max_len=64)
    try:
        return Curve(curve_name)
    except ValueError:
        if curve_name == "CURVE_P256":
            raise UnsupportedAlgorithm("curve `CURVE_P256` is not supported for private keys") from None
        raise InvalidRequest(f"invalid curve `{curve_name[:64]}`") from None


def address_formats(item: JsonObj, where: str, curve: Curve) -> list[str]:
    """`addressFormats` (absent: none), each once and each one the curve can have."""
    formats = str_list(item, "addressFormats", where, max_items=16) if "addressFormats" in item else []
    for fmt in formats:
        if fmt not in SUPPORTED_FORMATS[curve.value]:
            raise InvalidRequest(f"invalid address format `{fmt[:64]}` for curve `{curve.value}`")
    return list(dict.fromkeys(formats))


async def create_private_keys(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    items = req_list(params, "privateKeys", "parameters.", max_items=MAX_KEYS_PER_REQUEST, allow_empty=False)
    wanted: list[tuple[str, Curve, list[str], tuple[str, ...]]] = []
    names: set[str] = set()
    for i, raw in enumerate(items):
        where = f"parameters.privateKeys[{i}]."
        item = obj(raw, where.rstrip("."))
        name = req_str(item, "privateKeyName", where, max_len=256)
        curve = key_curve(item, where)
        tags = str_list(item, "privateKeyTags", where, max_items=100) if "privateKeyTags" in item else []
        formats = address_formats(item, where, curve)
        if name in names or deps.repo.private_keys.private_key_name_taken(org_id, name):
            raise InvalidRequest(f"private key name `{name}` is already used in this organization")
        names.add(name)
        wanted.append((name, curve, formats, _tag_ids(deps, org_id, tags)))
    if len(deps.repo.private_keys.private_keys(org_id)) + len(wanted) > MAX_PRIVATE_KEYS_PER_ORG:
        raise ResourceExhausted(f"organization has reached its limit of {MAX_PRIVATE_KEYS_PER_ORG} private keys")

    async def run() -> Execution:
        # Every key made here is destroyed if anything fails before the commit: here, by the
        # except below; after `run` returns, by the pipeline calling `rollback`.
        created: list[KeyRef] = []
        records: list[PrivateKey] = []

        async def rollback() -> None:
            for ref in created:
                await deps.keys.destroy(ref)

        try:
            for name, curve, formats, tags in wanted:
                ref = await deps.keys.generate(str(uuid.uuid4()), curve)
                created.append(ref)
                addresses = tuple((f, derive_address(f, curve.value, ref.public_key)) for f in formats)
                records.append(
                    PrivateKey(
                        ref.key_id,
                        org_id,
                        name,
                        curve.value,
                        ref.public_key,
                        ref.backend.value,
                        ref.wrapped,
                        addresses,
                        tags,
                        ctx.now_ms,
                        ctx.now_ms,
                    )
                )
            ops: list[Any] = []
            for rec in records:
                ops += deps.repo.private_keys.insert_private_key(rec)
            result = {
                "privateKeys": [
                    {"privateKeyId": r.id, "addresses": [{"format": f, "address": a} for f, a in r.addresses]}
                    for r in records
                ]
            }
        except BaseException:
            try:
                await rollback()
            except Exception as err:  # noqa: BLE001 - the original failure is the one to report
                log.error("rollback_failed", keys=len(created), error=type(err).__name__)
            raise
        return Execution(result, ops, rollback)

    return Prepared(run)


async def delete_private_keys(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    """`{privateKeyIds, deleteWithoutExport?}`: the records go in the commit; a token key's object is
    destroyed right after it (`after_commit`), a software key's sealed secret goes with its row.

    Deleting a key that was never exported destroys it for good, so (as Turnkey) it needs the
    explicit `deleteWithoutExport: true`. Once committed, no request can name the key again: not a
    new one, not one parked for consensus (its executor resolves the key again), not a replay.
    """
    org_id = ctx.organization.id
    ids = str_list(params, "privateKeyIds", "parameters.", max_items=MAX_KEYS_PER_REQUEST, allow_empty=False)
    keys = private_keys_in(deps, org_id, ids)
    flag = params.get("deleteWithoutExport", False)
    if not isinstance(flag, bool):
        raise InvalidRequest("`parameters.deleteWithoutExport` must be a boolean")
    for key in keys:
        if not flag and not key.exported:
            raise unexported_refusal(f"private key `{key.id}`")

    async def run() -> Execution:
        ops: list[Any] = []
        for key in keys:
            ops += deps.repo.private_keys.delete_private_key(org_id, key.id)

        async def destroy() -> None:
            for key in keys:
                await deps.keys.destroy(KeyRef(key.id, Curve(key.curve), key.public_key, Backend(key.backend)))

        return Execution({"privateKeyIds": [k.id for k in keys]}, ops, after_commit=destroy)

    env: dict[str, Any] = {}
    if len(keys) == 1:
        k = keys[0]
        env["private_key"] = private_key_probe(k.id, k.tags, k.name, imported=k.imported, exported=k.exported)
    return Prepared(run, env=env)


ACTIVITIES: Final = (
    activity(
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        create_private_keys,
        "PRIVATE_KEY",
        "CREATE",
        json_object(["privateKeys"], privateKeys=PRIVATE_KEYS_SCHEMA),
        result_version=True,
    ),
    activity(
        "ACTIVITY_TYPE_DELETE_PRIVATE_KEYS",
        delete_private_keys,
        "PRIVATE_KEY",
        "DELETE",
        json_object(
            ["privateKeyIds"],
            privateKeyIds=json_array(JSON_ID, MAX_KEYS_PER_REQUEST, 1),
            deleteWithoutExport={"type": "boolean"},
        ),
    ),
)
