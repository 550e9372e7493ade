"""Sub-organizations: create one with its root users, optionally an HD wallet (and, as an extension,
its first private keys).

A sub-organization cannot create sub-organizations (Turnkey's limit for them is 0). Its parent's
users may read it (queries), not act in it.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from strongroom.errors import InvalidRequest, ResourceExhausted
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.credentials import Seen
from strongroom.service.activities.keys import PRIVATE_KEYS_SCHEMA, create_private_keys
from strongroom.service.activities.schema import POSITIVE, json_array, json_object, json_string
from strongroom.service.activities.users import MAX_USERS_PER_ORG, USER, USERS_LIMIT_MESSAGE, plan_user
from strongroom.service.activities.wallets import WALLET, plan_wallet
from strongroom.service.params import JsonObj, obj, req_list, req_str
from strongroom.store.records import Organization


async def create_sub_organization(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    """V8: `{subOrganizationName, rootUsers, rootQuorumThreshold, wallet?, ...}`.

    `wallet` (`{walletName, accounts, mnemonicLength?}`) creates an HD wallet in the new
    sub-organization; the result then carries `wallet: {walletId, addresses}`. Strongroom extension:
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
    items = req_list(params, "rootUsers", p, max_items=MAX_USERS_PER_ORG + 1, allow_empty=False)
    if len(items) > MAX_USERS_PER_ORG:
        raise ResourceExhausted(USERS_LIMIT_MESSAGE)
    threshold = params.get("rootQuorumThreshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise InvalidRequest("quorum threshold must be non-zero integer (`parameters.rootQuorumThreshold`)")
    if threshold > len(items):
        raise InvalidRequest(f"quorum threshold {threshold} is larger than the {len(items)} root users")
    sub_id = str(uuid.uuid4())
    seen = Seen()
    plans = [
        plan_user(deps, ctx, sub_id, obj(raw, f"{p}rootUsers[{i}]"), f"{p}rootUsers[{i}].", seen, tags=False)
        for i, raw in enumerate(items)
    ]
    root_ids = tuple(pl.user.id for pl in plans)
    sub = Organization(sub_id, name, parent.id, threshold, root_ids, ctx.now_ms, ctx.now_ms)
    wallet = None
    if params.get("wallet") is not None:
        wallet = plan_wallet(deps, sub_id, obj(params["wallet"], f"{p}wallet"), f"{p}wallet.", new_org=True)
    keys_prepared: Prepared | None = None
    if params.get("privateKeys") is not None:
        keys_prepared = await create_private_keys(
            deps, Context(sub, ctx.now_ms, ctx.activity_id, ctx.user_id), {"privateKeys": params["privateKeys"]}
        )

    async def run() -> Execution:
        ops: list[Any] = deps.repo.organizations.insert_organization(sub)
        for plan in plans:
            ops += plan.ops(deps.repo)
        ops += deps.repo.organizations.insert_root_users(sub_id, root_ids)
        result: dict[str, Any] = {"subOrganizationId": sub_id, "rootUserIds": list(root_ids)}
        if wallet is not None:
            result["wallet"], wallet_ops = await wallet.make(deps, ctx.now_ms)
            ops += wallet_ops
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


ACTIVITIES: Final = (
    activity(
        "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
        create_sub_organization,
        "ORGANIZATION",
        "CREATE",
        json_object(
            ["subOrganizationName", "rootUsers", "rootQuorumThreshold"],
            subOrganizationName=json_string(256),
            rootUsers=json_array(USER, MAX_USERS_PER_ORG, 1),
            rootQuorumThreshold=POSITIVE,
            privateKeys=PRIVATE_KEYS_SCHEMA,
            wallet=WALLET,
        ),
        result_version=True,
        older=("ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V7",),  # Turnkey's Python SDK (turnkey-http) sends V7
    ),
)
