"""The root quorum: which users form it and how many of them must approve (UPDATE_ROOT_QUORUM).

Only the root quorum itself may change it (`RootOnly.ALWAYS`).
"""

from __future__ import annotations

from typing import Final

from strongroom.errors import InvalidRequest
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.lookups import users_in
from strongroom.service.activities.schema import JSON_IDS, POSITIVE, json_object
from strongroom.service.params import JsonObj, str_list


async def update_root_quorum(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    threshold = params.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise InvalidRequest("quorum threshold must be non-zero integer")
    user_ids = list(dict.fromkeys(str_list(params, "userIds", "parameters.", allow_empty=False)))
    users_in(deps, ctx.organization.id, user_ids)
    if threshold > len(user_ids):
        raise InvalidRequest(f"quorum threshold {threshold} is larger than the {len(user_ids)} quorum users")

    async def run() -> Execution:
        return Execution(
            {}, deps.repo.organizations.set_root_quorum(ctx.organization.id, threshold, user_ids, ctx.now_ms)
        )

    return Prepared(run, params={"threshold": threshold, "user_ids": user_ids})


ACTIVITIES: Final = (
    activity(
        "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM",
        update_root_quorum,
        "ORGANIZATION",
        "UPDATE",
        json_object(["threshold", "userIds"], threshold=POSITIVE, userIds=JSON_IDS),
        root_only="always",
    ),
)
