"""Tags: user tags and private-key tags (create, update, delete).

The two kinds behave alike and differ only in what they tag, so one `TagKind` serves both: its
parameter names are Turnkey's (`userTagName`, `addPrivateKeyIds`, ...), made from its prefix.
Limits are Turnkey's: 100 tags of a type per organization, 10 per sub-organization.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted
from strongroom.service.activities.base import ActivityType, Context, Deps, Execution, Prepared, Resource, activity
from strongroom.service.activities.lookups import private_keys_in, users_in
from strongroom.service.activities.schema import JSON_ID, JSON_IDS, Schema, json_array, json_object, json_string
from strongroom.service.params import JsonObj, opt_str, req_str, str_list
from strongroom.store.records import PrivateKey, Tag, User

MAX_TAGS_PER_ORG: Final = 100
MAX_TAGS_PER_SUB_ORG: Final = 10  # Turnkey's limits: 100 per organization, 10 per sub-organization


class Tagged(Protocol):
    """What a tag is put on: a user or a private key."""

    @property
    def id(self) -> str: ...

    @property
    def tags(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class TagKind:
    """One kind of tag: its type, its parameters' prefix, and how its members are found and re-tagged."""

    tag_type: str
    prefix: str  # "user" or "privateKey": `userTagName`, `addUserIds`, `userTagIds`, ...
    members: Callable[[Deps, str, list[str]], Sequence[Tagged]]  # by id, NotFound for a stranger
    tagged: Callable[[Deps, str], Sequence[Tagged]]  # every member of the organization
    set_tags: Callable[[Deps, Context, str, list[str]], list[Any]]

    @property
    def _title(self) -> str:
        return self.prefix[0].upper() + self.prefix[1:]

    def schemas(self) -> tuple[Schema, Schema, Schema]:
        """The parameters of create, update and delete (Turnkey's names, made from the prefix)."""
        p, title = self.prefix, self._title
        create = json_object(
            [f"{p}TagName", f"{p}Ids"], **{f"{p}TagName": json_string(256), f"{p}Ids": json_array(JSON_ID)}
        )
        update = json_object(
            [f"{p}TagId", f"add{title}Ids", f"remove{title}Ids"],
            **{
                f"{p}TagId": JSON_ID,
                f"new{title}TagName": json_string(256),
                f"add{title}Ids": json_array(JSON_ID),
                f"remove{title}Ids": json_array(JSON_ID),
            },
        )
        return create, update, json_object([f"{p}TagIds"], **{f"{p}TagIds": JSON_IDS})

    def activities(self, name: str, resource: Resource) -> tuple[ActivityType, ...]:
        """Its three catalog entries: CREATE_<NAME>_TAG, UPDATE_<NAME>_TAG, DELETE_<NAME>_TAGS."""
        create, update, delete = self.schemas()
        return (
            activity(f"ACTIVITY_TYPE_CREATE_{name}_TAG", self.create, resource, "CREATE", create),
            activity(f"ACTIVITY_TYPE_UPDATE_{name}_TAG", self.update, resource, "UPDATE", update),
            activity(f"ACTIVITY_TYPE_DELETE_{name}_TAGS", self.delete, resource, "DELETE", delete),
        )

    def _new_tag(self, deps: Deps, ctx: Context, name: str) -> Tag:
        tags = deps.repo.tags.tags(ctx.organization.id, self.tag_type)
        if any(t.name == name for t in tags):
            raise InvalidRequest(f"tag name `{name}` is already used")
        limit = MAX_TAGS_PER_ORG if ctx.organization.parent_id is None else MAX_TAGS_PER_SUB_ORG
        kind = "organization" if ctx.organization.parent_id is None else "sub-organization"
        if len(tags) >= limit:
            raise ResourceExhausted(f"{kind} has reached its limit of {limit} tags of this type")
        return Tag(str(uuid.uuid4()), ctx.organization.id, name, self.tag_type, ctx.now_ms, ctx.now_ms)

    def _tag(self, deps: Deps, ctx: Context, tag_id: str) -> Tag:
        found = next((t for t in deps.repo.tags.tags(ctx.organization.id, self.tag_type) if t.id == tag_id), None)
        if found is None:
            raise NotFound(f"no tag `{tag_id[:64]}` found in this organization")
        return found

    async def create(self, deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
        p, org_id = self.prefix, ctx.organization.id
        tag = self._new_tag(deps, ctx, req_str(params, f"{p}TagName", "parameters.", max_len=256))
        members = self.members(deps, org_id, str_list(params, f"{p}Ids", "parameters."))

        async def run() -> Execution:
            ops = deps.repo.tags.insert_tag(tag)
            for m in members:
                ops += self.set_tags(deps, ctx, m.id, [*m.tags, tag.id])
            return Execution({f"{p}TagId": tag.id, f"{p}Ids": [m.id for m in members]}, ops)

        return Prepared(run)

    async def update(self, deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
        w, p, title, org_id = "parameters.", self.prefix, self._title, ctx.organization.id
        tag = self._tag(deps, ctx, req_str(params, f"{p}TagId", w, max_len=64))
        new_name = opt_str(params, f"new{title}TagName", w, max_len=256)
        adds = self.members(deps, org_id, str_list(params, f"add{title}Ids", w))
        removes = self.members(deps, org_id, str_list(params, f"remove{title}Ids", w))

        async def run() -> Execution:
            ops = deps.repo.tags.rename_tag(org_id, tag.id, new_name, ctx.now_ms) if new_name else []
            for m in adds:
                if tag.id not in m.tags:
                    ops += self.set_tags(deps, ctx, m.id, [*m.tags, tag.id])
            for m in removes:
                ops += self.set_tags(deps, ctx, m.id, [t for t in m.tags if t != tag.id])
            return Execution({f"{p}TagId": tag.id}, ops)

        return Prepared(run)

    async def delete(self, deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
        p, org_id = self.prefix, ctx.organization.id
        tags = [self._tag(deps, ctx, t) for t in str_list(params, f"{p}TagIds", "parameters.", allow_empty=False)]
        ids = {t.id for t in tags}
        members = [m for m in self.tagged(deps, org_id) if ids & set(m.tags)]

        async def run() -> Execution:
            ops: list[Any] = []
            for t in tags:
                ops += deps.repo.tags.delete_tag(org_id, t.id)
            for m in members:
                ops += self.set_tags(deps, ctx, m.id, [x for x in m.tags if x not in ids])
            return Execution({f"{p}TagIds": [t.id for t in tags], f"{p}Ids": [m.id for m in members]}, ops)

        return Prepared(run)


def _users(deps: Deps, org_id: str) -> list[User]:
    return deps.repo.users.users(org_id)


def _tag_user(deps: Deps, ctx: Context, user_id: str, tags: list[str]) -> list[Any]:
    return deps.repo.tags.set_user_tags(ctx.organization.id, user_id, tags, ctx.now_ms)


def _keys(deps: Deps, org_id: str) -> list[PrivateKey]:
    return deps.repo.private_keys.private_keys(org_id)


def _tag_key(deps: Deps, ctx: Context, key_id: str, tags: list[str]) -> list[Any]:
    return deps.repo.tags.set_private_key_tags(ctx.organization.id, key_id, tags, ctx.now_ms)


USER_TAGS: Final = TagKind("TAG_TYPE_USER", "user", users_in, _users, _tag_user)
PRIVATE_KEY_TAGS: Final = TagKind("TAG_TYPE_PRIVATE_KEY", "privateKey", private_keys_in, _keys, _tag_key)

ACTIVITIES: Final = (*USER_TAGS.activities("USER", "USER"), *PRIVATE_KEY_TAGS.activities("PRIVATE_KEY", "PRIVATE_KEY"))
