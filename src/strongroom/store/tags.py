"""Tags, and the tags set on users and private keys."""

from __future__ import annotations

import json
from collections.abc import Sequence

from strongroom.store.core import Aggregate, columns, delete, from_row, in_org, insert, mark, update
from strongroom.store.group_commit import Op, Param
from strongroom.store.records import Tag


class Tags(Aggregate):
    """Tags, and the tags set on users and private keys."""

    def tags(self, org_id: str, tag_type: str) -> list[Tag]:
        return list(self.core.cached(("tags", org_id, tag_type), lambda: self._load_tags(org_id, tag_type)))

    def _load_tags(self, org_id: str, tag_type: str) -> tuple[Tag, ...]:
        rows = self.core.checked_all(
            "tags",
            org_id,
            self.db.all(
                "SELECT * FROM tags WHERE organization_id = ? AND type = ? ORDER BY created_at, id", (org_id, tag_type)
            ),
            lambda r: r["type"] == tag_type,
        )
        return tuple(from_row(Tag, r) for r in rows)

    @staticmethod
    def insert_tag(tag: Tag) -> list[Op]:
        return mark(tag.organization_id, [insert("tags", columns(tag))])

    @staticmethod
    def rename_tag(org_id: str, tag_id: str, name: str, now_ms: int) -> list[Op]:
        return mark(org_id, [update("tags", {"name": name, "updated_at": now_ms}, in_org(org_id, tag_id))])

    @staticmethod
    def delete_tag(org_id: str, tag_id: str) -> list[Op]:
        return mark(org_id, [delete("tags", in_org(org_id, tag_id))])

    @staticmethod
    def _set_tags(table: str, org_id: str, row_id: str, tags: Sequence[str], now_ms: int) -> list[Op]:
        changed: dict[str, Param] = {"tags": json.dumps(list(tags)), "updated_at": now_ms}
        return mark(org_id, [update(table, changed, in_org(org_id, row_id))])

    @staticmethod
    def set_user_tags(org_id: str, user_id: str, tags: Sequence[str], now_ms: int) -> list[Op]:
        return Tags._set_tags("users", org_id, user_id, tags, now_ms)

    @staticmethod
    def set_private_key_tags(org_id: str, key_id: str, tags: Sequence[str], now_ms: int) -> list[Op]:
        return Tags._set_tags("private_keys", org_id, key_id, tags, now_ms)
