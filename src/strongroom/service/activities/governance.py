"""Governance activities: policies, tags, and the root quorum.

Policies are parsed and checked when they are created or updated, never at signing time: a
syntax error, an unknown keyword or a type error is answered with its position and nothing is
stored.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted
from strongroom.policy import check_policy
from strongroom.service.decide import Decider
from strongroom.service.params import JsonObj, obj, opt_str, req_list, req_str, str_list
from strongroom.service.pipeline import ActivitySpec, Context, Execution, Pipeline, Prepared
from strongroom.store.records import PolicyRecord, Tag
from strongroom.store.repository import Repository

MAX_POLICIES_PER_ORG: Final = 100
MAX_TAGS_PER_ORG: Final = 100
MAX_TAGS_PER_SUB_ORG: Final = 10  # Turnkey's limits: 100 per organization, 10 per sub-organization
EFFECTS: Final = ("EFFECT_ALLOW", "EFFECT_DENY")


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


class GovernanceHandlers:
    def __init__(self, repo: Repository, decider: Decider) -> None:
        self.repo = repo
        self.decider = decider

    def register(self, pipeline: Pipeline) -> None:
        for path, activity_type, intent, result, prepare, resource, action in (
            (
                "create_policy",
                "ACTIVITY_TYPE_CREATE_POLICY_V3",
                "createPolicyIntentV3",
                "createPolicyResult",
                self.create_policy,
                "POLICY",
                "CREATE",
            ),
            (
                "create_policies",
                "ACTIVITY_TYPE_CREATE_POLICIES",
                "createPoliciesIntent",
                "createPoliciesResult",
                self.create_policies,
                "POLICY",
                "CREATE",
            ),
            (
                "update_policy",
                "ACTIVITY_TYPE_UPDATE_POLICY_V2",
                "updatePolicyIntentV2",
                "updatePolicyResultV2",
                self.update_policy,
                "POLICY",
                "UPDATE",
            ),
            (
                "delete_policy",
                "ACTIVITY_TYPE_DELETE_POLICY",
                "deletePolicyIntent",
                "deletePolicyResult",
                self.delete_policy,
                "POLICY",
                "DELETE",
            ),
            (
                "delete_policies",
                "ACTIVITY_TYPE_DELETE_POLICIES",
                "deletePoliciesIntent",
                "deletePoliciesResult",
                self.delete_policies,
                "POLICY",
                "DELETE",
            ),
            (
                "create_user_tag",
                "ACTIVITY_TYPE_CREATE_USER_TAG",
                "createUserTagIntent",
                "createUserTagResult",
                self.create_user_tag,
                "USER",
                "CREATE",
            ),
            (
                "update_user_tag",
                "ACTIVITY_TYPE_UPDATE_USER_TAG",
                "updateUserTagIntent",
                "updateUserTagResult",
                self.update_user_tag,
                "USER",
                "UPDATE",
            ),
            (
                "delete_user_tags",
                "ACTIVITY_TYPE_DELETE_USER_TAGS",
                "deleteUserTagsIntent",
                "deleteUserTagsResult",
                self.delete_user_tags,
                "USER",
                "DELETE",
            ),
            (
                "create_private_key_tag",
                "ACTIVITY_TYPE_CREATE_PRIVATE_KEY_TAG",
                "createPrivateKeyTagIntent",
                "createPrivateKeyTagResult",
                self.create_private_key_tag,
                "PRIVATE_KEY",
                "CREATE",
            ),
            (
                "update_private_key_tag",
                "ACTIVITY_TYPE_UPDATE_PRIVATE_KEY_TAG",
                "updatePrivateKeyTagIntent",
                "updatePrivateKeyTagResult",
                self.update_private_key_tag,
                "PRIVATE_KEY",
                "UPDATE",
            ),
            (
                "delete_private_key_tags",
                "ACTIVITY_TYPE_DELETE_PRIVATE_KEY_TAGS",
                "deletePrivateKeyTagsIntent",
                "deletePrivateKeyTagsResult",
                self.delete_private_key_tags,
                "PRIVATE_KEY",
                "DELETE",
            ),
            (
                "update_root_quorum",
                "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM",
                "updateRootQuorumIntent",
                "updateRootQuorumResult",
                self.update_root_quorum,
                "ORGANIZATION",
                "UPDATE",
            ),
        ):
            pipeline.register(ActivitySpec(path, activity_type, intent, result, prepare, resource, action))

    # -- policies ---------------------------------------------------------------------------------
    def _policy_from(self, ctx: Context, item: JsonObj, where: str, policy_id: str) -> PolicyRecord:
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

    def _check_new_names(self, org_id: str, names: list[str], adding: int) -> None:
        existing = self.repo.policies.policies(org_id)
        taken = {p.name for p in existing}
        seen: set[str] = set()
        for name in names:
            if name in taken or name in seen:
                raise InvalidRequest(f"policy label must be unique: `{name}` is already used")
            seen.add(name)
        if len(existing) + adding > MAX_POLICIES_PER_ORG:
            raise ResourceExhausted(f"organization has reached its limit of {MAX_POLICIES_PER_ORG} policies")

    async def create_policy(self, ctx: Context, params: JsonObj) -> Prepared:
        record = self._policy_from(ctx, params, "parameters.", str(uuid.uuid4()))
        self._check_new_names(ctx.organization.id, [record.name], 1)
        warnings = self.decider.creation_warnings(ctx.organization, [record])

        async def run() -> Execution:
            return Execution(
                _with_warnings({"policyId": record.id}, warnings), self.repo.policies.insert_policy(record)
            )

        return Prepared(run)

    async def create_policies(self, ctx: Context, params: JsonObj) -> Prepared:
        items = req_list(params, "policies", "parameters.", max_items=MAX_POLICIES_PER_ORG, allow_empty=False)
        records = [
            self._policy_from(
                ctx, obj(raw, f"parameters.policies[{i}]"), f"parameters.policies[{i}].", str(uuid.uuid4())
            )
            for i, raw in enumerate(items)
        ]
        self._check_new_names(ctx.organization.id, [r.name for r in records], len(records))
        warnings = self.decider.creation_warnings(ctx.organization, records)

        async def run() -> Execution:
            ops: list[Any] = []
            for r in records:
                ops += self.repo.policies.insert_policy(r)
            return Execution(_with_warnings({"policyIds": [r.id for r in records]}, warnings), ops)

        return Prepared(run)

    def _existing_policy(self, org_id: str, policy_id: str) -> PolicyRecord:
        found = self.repo.policies.policy(org_id, policy_id)
        if found is None:
            raise NotFound(f"no policy `{policy_id[:64]}` found in this organization")
        return found

    async def update_policy(self, ctx: Context, params: JsonObj) -> Prepared:
        old = self._existing_policy(ctx.organization.id, req_str(params, "policyId", "parameters.", max_len=64))
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
        if new.name != old.name and any(q.name == new.name for q in self.repo.policies.policies(ctx.organization.id)):
            raise InvalidRequest(f"policy label must be unique: `{new.name}` is already used")
        warnings = self.decider.creation_warnings(ctx.organization, [new])

        async def run() -> Execution:
            return Execution(_with_warnings({"policyId": new.id}, warnings), self.repo.policies.update_policy(new))

        return Prepared(run)

    async def delete_policy(self, ctx: Context, params: JsonObj) -> Prepared:
        found = self._existing_policy(ctx.organization.id, req_str(params, "policyId", "parameters.", max_len=64))

        async def run() -> Execution:
            return Execution({"policyId": found.id}, self.repo.policies.delete_policy(ctx.organization.id, found.id))

        return Prepared(run)

    async def delete_policies(self, ctx: Context, params: JsonObj) -> Prepared:
        ids = str_list(params, "policyIds", "parameters.", max_items=MAX_POLICIES_PER_ORG, allow_empty=False)
        found = [self._existing_policy(ctx.organization.id, i) for i in dict.fromkeys(ids)]

        async def run() -> Execution:
            ops: list[Any] = []
            for f in found:
                ops += self.repo.policies.delete_policy(ctx.organization.id, f.id)
            return Execution({"policyIds": [f.id for f in found]}, ops)

        return Prepared(run)

    # -- tags -----------------------------------------------------------------------------------------
    def _new_tag(self, ctx: Context, tag_type: str, name: str) -> Tag:
        tags = self.repo.tags.tags(ctx.organization.id, tag_type)
        if any(t.name == name for t in tags):
            raise InvalidRequest(f"tag name `{name}` is already used")
        limit = MAX_TAGS_PER_ORG if ctx.organization.parent_id is None else MAX_TAGS_PER_SUB_ORG
        kind = "organization" if ctx.organization.parent_id is None else "sub-organization"
        if len(tags) >= limit:
            raise ResourceExhausted(f"{kind} has reached its limit of {limit} tags of this type")
        return Tag(str(uuid.uuid4()), ctx.organization.id, name, tag_type, ctx.now_ms, ctx.now_ms)

    def _tag(self, ctx: Context, tag_type: str, tag_id: str) -> Tag:
        found = next((t for t in self.repo.tags.tags(ctx.organization.id, tag_type) if t.id == tag_id), None)
        if found is None:
            raise NotFound(f"no tag `{tag_id[:64]}` found in this organization")
        return found

    def _users(self, ctx: Context, ids: list[str]) -> list[Any]:
        out = []
        for user_id in dict.fromkeys(ids):
            user = self.repo.users.user(user_id)
            if user is None or user.organization_id != ctx.organization.id:
                raise NotFound(f"no user `{user_id[:64]}` found in this organization")
            out.append(user)
        return out

    def _keys(self, ctx: Context, ids: list[str]) -> list[Any]:
        out = []
        for key_id in dict.fromkeys(ids):
            key = self.repo.private_keys.private_key(ctx.organization.id, key_id)
            if key is None:
                raise NotFound(f"no private key `{key_id[:64]}` found in this organization")
            out.append(key)
        return out

    async def create_user_tag(self, ctx: Context, params: JsonObj) -> Prepared:
        tag = self._new_tag(ctx, "TAG_TYPE_USER", req_str(params, "userTagName", "parameters.", max_len=256))
        users = self._users(ctx, str_list(params, "userIds", "parameters."))

        async def run() -> Execution:
            ops = self.repo.tags.insert_tag(tag)
            for u in users:
                ops += self.repo.tags.set_user_tags(ctx.organization.id, u.id, [*u.tags, tag.id], ctx.now_ms)
            return Execution({"userTagId": tag.id, "userIds": [u.id for u in users]}, ops)

        return Prepared(run)

    async def create_private_key_tag(self, ctx: Context, params: JsonObj) -> Prepared:
        tag = self._new_tag(
            ctx, "TAG_TYPE_PRIVATE_KEY", req_str(params, "privateKeyTagName", "parameters.", max_len=256)
        )
        keys = self._keys(ctx, str_list(params, "privateKeyIds", "parameters."))

        async def run() -> Execution:
            ops = self.repo.tags.insert_tag(tag)
            for k in keys:
                ops += self.repo.tags.set_private_key_tags(ctx.organization.id, k.id, [*k.tags, tag.id], ctx.now_ms)
            return Execution({"privateKeyTagId": tag.id, "privateKeyIds": [k.id for k in keys]}, ops)

        return Prepared(run)

    async def update_user_tag(self, ctx: Context, params: JsonObj) -> Prepared:
        p = "parameters."
        tag = self._tag(ctx, "TAG_TYPE_USER", req_str(params, "userTagId", p, max_len=64))
        new_name = opt_str(params, "newUserTagName", p, max_len=256)
        adds = self._users(ctx, str_list(params, "addUserIds", p))
        removes = self._users(ctx, str_list(params, "removeUserIds", p))

        async def run() -> Execution:
            ops = self.repo.tags.rename_tag(ctx.organization.id, tag.id, new_name, ctx.now_ms) if new_name else []
            for u in adds:
                if tag.id not in u.tags:
                    ops += self.repo.tags.set_user_tags(ctx.organization.id, u.id, [*u.tags, tag.id], ctx.now_ms)
            for u in removes:
                ops += self.repo.tags.set_user_tags(
                    ctx.organization.id, u.id, [t for t in u.tags if t != tag.id], ctx.now_ms
                )
            return Execution({"userTagId": tag.id}, ops)

        return Prepared(run)

    async def update_private_key_tag(self, ctx: Context, params: JsonObj) -> Prepared:
        p = "parameters."
        tag = self._tag(ctx, "TAG_TYPE_PRIVATE_KEY", req_str(params, "privateKeyTagId", p, max_len=64))
        new_name = opt_str(params, "newPrivateKeyTagName", p, max_len=256)
        adds = self._keys(ctx, str_list(params, "addPrivateKeyIds", p))
        removes = self._keys(ctx, str_list(params, "removePrivateKeyIds", p))

        async def run() -> Execution:
            ops = self.repo.tags.rename_tag(ctx.organization.id, tag.id, new_name, ctx.now_ms) if new_name else []
            for k in adds:
                if tag.id not in k.tags:
                    ops += self.repo.tags.set_private_key_tags(ctx.organization.id, k.id, [*k.tags, tag.id], ctx.now_ms)
            for k in removes:
                ops += self.repo.tags.set_private_key_tags(
                    ctx.organization.id, k.id, [t for t in k.tags if t != tag.id], ctx.now_ms
                )
            return Execution({"privateKeyTagId": tag.id}, ops)

        return Prepared(run)

    async def delete_user_tags(self, ctx: Context, params: JsonObj) -> Prepared:
        tags = [
            self._tag(ctx, "TAG_TYPE_USER", t) for t in str_list(params, "userTagIds", "parameters.", allow_empty=False)
        ]
        ids = {t.id for t in tags}
        users = [u for u in self.repo.users.users(ctx.organization.id) if ids & set(u.tags)]

        async def run() -> Execution:
            ops: list[Any] = []
            for t in tags:
                ops += self.repo.tags.delete_tag(ctx.organization.id, t.id)
            for u in users:
                ops += self.repo.tags.set_user_tags(
                    ctx.organization.id, u.id, [x for x in u.tags if x not in ids], ctx.now_ms
                )
            return Execution({"userTagIds": [t.id for t in tags], "userIds": [u.id for u in users]}, ops)

        return Prepared(run)

    async def delete_private_key_tags(self, ctx: Context, params: JsonObj) -> Prepared:
        tags = [
            self._tag(ctx, "TAG_TYPE_PRIVATE_KEY", t)
            for t in str_list(params, "privateKeyTagIds", "parameters.", allow_empty=False)
        ]
        ids = {t.id for t in tags}
        keys = [k for k in self.repo.private_keys.private_keys(ctx.organization.id) if ids & set(k.tags)]

        async def run() -> Execution:
            ops: list[Any] = []
            for t in tags:
                ops += self.repo.tags.delete_tag(ctx.organization.id, t.id)
            for k in keys:
                ops += self.repo.tags.set_private_key_tags(
                    ctx.organization.id, k.id, [x for x in k.tags if x not in ids], ctx.now_ms
                )
            return Execution({"privateKeyTagIds": [t.id for t in tags], "privateKeyIds": [k.id for k in keys]}, ops)

        return Prepared(run)

    # -- root quorum -------------------------------------------------------------------------------
    async def update_root_quorum(self, ctx: Context, params: JsonObj) -> Prepared:
        threshold = params.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise InvalidRequest("quorum threshold must be non-zero integer")
        user_ids = list(dict.fromkeys(str_list(params, "userIds", "parameters.", allow_empty=False)))
        self._users(ctx, user_ids)
        if threshold > len(user_ids):
            raise InvalidRequest(f"quorum threshold {threshold} is larger than the {len(user_ids)} quorum users")

        async def run() -> Execution:
            return Execution(
                {}, self.repo.organizations.set_root_quorum(ctx.organization.id, threshold, user_ids, ctx.now_ms)
            )

        return Prepared(run, params={"threshold": threshold, "user_ids": user_ids})


def _pick(new: str | None, old: str) -> str:
    return old if new is None else new
