"""Policies: create, update and delete them (one or several at a time).

Policies are parsed and checked when they are created or updated, never at signing time: a
syntax error, an unknown keyword or a type error is answered with its position and nothing is
stored. A policy that reads a keyword no request fills, or a DENY that an ALLOW for blind digests
walks around, is stored with `warnings` in the result (a Strongroom extension; see
`Decider.creation_warnings`).
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted
from strongroom.policy import check_policy
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.schema import JSON_ID, JSON_IDS, json_array, json_enum, json_object, json_string
from strongroom.service.params import JsonObj, obj, opt_str, req_list, req_str, str_list
from strongroom.store.records import PolicyRecord

MAX_POLICIES_PER_ORG: Final = 100
EFFECTS: Final = ("EFFECT_ALLOW", "EFFECT_DENY")

_TEXT: Final = json_string(65536)
POLICY: Final = json_object(
    ["policyName", "effect"],
    policyName=json_string(256),
    effect=json_enum(*EFFECTS),
    condition=_TEXT,
    consensus=_TEXT,
    time=_TEXT,
    notes=json_string(4096),
)
# UPDATE_POLICY_V2 takes each field of a policy, all optional, under its `policy...` name (`time` stays).
_UPDATE_NAMES: Final = {"effect": "policyEffect", "condition": "policyCondition", "consensus": "policyConsensus"}
_UPDATE_POLICY: Final = json_object(
    ["policyId"],
    policyId=JSON_ID,
    **{_UPDATE_NAMES.get(k, "policyNotes" if k == "notes" else k): v for k, v in POLICY["properties"].items()},
)


def check_policy_text(condition: str, consensus: str, time: str) -> None:
    issues = check_policy(condition or None, consensus or None, time or None)
    if issues:
        first = issues[0]
        more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
        raise InvalidRequest(
            f"invalid policy {first.field}: {first.message} at line {first.line}, column {first.column}{more}"
        )


def _with_warnings(result: dict[str, Any], warnings: tuple[str, ...]) -> dict[str, Any]:
    """A policy activity's result, with `warnings` (a Strongroom extension) when there are any."""
    return {**result, "warnings": list(warnings)} if warnings else result


def _pick(new: str | None, old: str) -> str:
    return old if new is None else new


def _policy_from(ctx: Context, item: JsonObj, where: str, policy_id: str) -> PolicyRecord:
    name = req_str(item, "policyName", where, max_len=256)
    effect = req_str(item, "effect", where, max_len=32)
    if effect not in EFFECTS:
        raise InvalidRequest(f"invalid policy effect `{effect}`: use EFFECT_ALLOW or EFFECT_DENY")
    condition = opt_str(item, "condition", where, max_len=65536) or ""
    consensus = opt_str(item, "consensus", where, max_len=65536) or ""
    time = opt_str(item, "time", where, max_len=65536) or ""
    notes = opt_str(item, "notes", where, max_len=4096) or ""
    check_policy_text(condition, consensus, time)
    now = ctx.now_ms
    return PolicyRecord(policy_id, ctx.organization.id, name, effect, condition, consensus, time, notes, now, now)


def _check_new_names(deps: Deps, org_id: str, names: list[str], adding: int) -> None:
    existing = deps.repo.policies.policies(org_id)
    taken = {p.name for p in existing}
    seen: set[str] = set()
    for name in names:
        if name in taken or name in seen:
            raise InvalidRequest(f"policy label must be unique: `{name}` is already used")
        seen.add(name)
    if len(existing) + adding > MAX_POLICIES_PER_ORG:
        raise ResourceExhausted(f"organization has reached its limit of {MAX_POLICIES_PER_ORG} policies")


async def create_policy(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    record = _policy_from(ctx, params, "parameters.", str(uuid.uuid4()))
    _check_new_names(deps, ctx.organization.id, [record.name], 1)
    warnings = deps.decider.creation_warnings(ctx.organization, [record])

    async def run() -> Execution:
        return Execution(_with_warnings({"policyId": record.id}, warnings), deps.repo.policies.insert_policy(record))

    return Prepared(run)


async def create_policies(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    items = req_list(params, "policies", "parameters.", max_items=MAX_POLICIES_PER_ORG, allow_empty=False)
    records = [
        _policy_from(ctx, obj(raw, f"parameters.policies[{i}]"), f"parameters.policies[{i}].", str(uuid.uuid4()))
        for i, raw in enumerate(items)
    ]
    _check_new_names(deps, ctx.organization.id, [r.name for r in records], len(records))
    warnings = deps.decider.creation_warnings(ctx.organization, records)

    async def run() -> Execution:
        ops: list[Any] = []
        for r in records:
            ops += deps.repo.policies.insert_policy(r)
        return Execution(_with_warnings({"policyIds": [r.id for r in records]}, warnings), ops)

    return Prepared(run)


def _existing_policy(deps: Deps, org_id: str, policy_id: str) -> PolicyRecord:
    found = deps.repo.policies.policy(org_id, policy_id)
    if found is None:
        raise NotFound(f"no policy `{policy_id[:64]}` found in this organization")
    return found


async def update_policy(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    old = _existing_policy(deps, ctx.organization.id, req_str(params, "policyId", "parameters.", max_len=64))
    p = "parameters."
    name = opt_str(params, "policyName", p, max_len=256)
    effect = opt_str(params, "policyEffect", p, max_len=32)
    if effect is not None and effect not in EFFECTS:
        raise InvalidRequest(f"invalid policy effect `{effect}`: use EFFECT_ALLOW or EFFECT_DENY")
    new = PolicyRecord(
        old.id,
        old.organization_id,
        name if name else old.name,
        effect or old.effect,
        _pick(opt_str(params, "policyCondition", p, max_len=65536), old.condition),
        _pick(opt_str(params, "policyConsensus", p, max_len=65536), old.consensus),
        _pick(opt_str(params, "time", p, max_len=65536), old.time),
        _pick(opt_str(params, "policyNotes", p, max_len=4096), old.notes),
        old.created_at,
        ctx.now_ms,
    )
    check_policy_text(new.condition, new.consensus, new.time)
    if new.name != old.name and any(q.name == new.name for q in deps.repo.policies.policies(ctx.organization.id)):
        raise InvalidRequest(f"policy label must be unique: `{new.name}` is already used")
    warnings = deps.decider.creation_warnings(ctx.organization, [new])

    async def run() -> Execution:
        return Execution(_with_warnings({"policyId": new.id}, warnings), deps.repo.policies.update_policy(new))

    return Prepared(run)


async def delete_policy(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    found = _existing_policy(deps, ctx.organization.id, req_str(params, "policyId", "parameters.", max_len=64))

    async def run() -> Execution:
        return Execution({"policyId": found.id}, deps.repo.policies.delete_policy(ctx.organization.id, found.id))

    return Prepared(run)


async def delete_policies(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    ids = str_list(params, "policyIds", "parameters.", max_items=MAX_POLICIES_PER_ORG, allow_empty=False)
    found = [_existing_policy(deps, ctx.organization.id, i) for i in dict.fromkeys(ids)]

    async def run() -> Execution:
        ops: list[Any] = []
        for f in found:
            ops += deps.repo.policies.delete_policy(ctx.organization.id, f.id)
        return Execution({"policyIds": [f.id for f in found]}, ops)

    return Prepared(run)


ACTIVITIES: Final = (
    activity("ACTIVITY_TYPE_CREATE_POLICY_V3", create_policy, "POLICY", "CREATE", POLICY),
    activity(
        "ACTIVITY_TYPE_CREATE_POLICIES",
        create_policies,
        "POLICY",
        "CREATE",
        json_object(["policies"], policies=json_array(POLICY, MAX_POLICIES_PER_ORG, 1)),
    ),
    activity("ACTIVITY_TYPE_UPDATE_POLICY_V2", update_policy, "POLICY", "UPDATE", _UPDATE_POLICY, result_version=True),
    activity(
        "ACTIVITY_TYPE_DELETE_POLICY", delete_policy, "POLICY", "DELETE", json_object(["policyId"], policyId=JSON_ID)
    ),
    activity(
        "ACTIVITY_TYPE_DELETE_POLICIES",
        delete_policies,
        "POLICY",
        "DELETE",
        json_object(["policyIds"], policyIds=JSON_IDS),
    ),
)
