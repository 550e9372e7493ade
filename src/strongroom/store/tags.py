"""Tags, and the tags set on users and private keys."""

from __future__ import annotations

import json
from collections.abc import Sequence

from strongroom.store.core import Aggregate, mark
from strongroom.store.group_commit import Op
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
        return tuple(
            Tag(r["id"], r["organization_id"], r["name"], r["type"], r["created_at"], r["updated_at"]) for r in rows
        )

    @staticmethod
    def insert_tag(tag: Tag) -> list[Op]:
        return mark(
            tag.organization_id,
            [
                (
                    "INSERT INTO tags (id, organization_id, name, type, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (tag.id, tag.organization_id, tag.name, tag.type, tag.created_at, tag.updated_at),
                )
            ],
        )

    @staticmethod
    def rename_tag(org_id: str, tag_id: str, name: str, now_ms: int) -> list[Op]:
        return mark(
            org_id,
            [
                (
                    "UPDATE tags SET name = ?, updated_at = ? WHERE id = ? AND organization_id = ?",
                    (name, now_ms, tag_id, org_id),
                )
            ],
        )

    @staticmethod
    def delete_tag(org_id: str, tag_id: str) -> list[Op]:
        return mark(org_id, [("DELETE FROM tags WHERE id = ? AND organization_id = ?", (tag_id, org_id))])

    @staticmethod
    def set_user_tags(org_id: str, user_id: str, tags: Sequence[str], now_ms: int) -> list[Op]:
        return mark(
            org_id,
            [
                (
                    "UPDATE users SET tags = ?, updated_at = ? WHERE id = ? AND organization_id = ?",
                    (json.dumps(list(tags)), now_ms, user_id, org_id),
                )
            ],
        )

    @staticmethod
    def set_private_key_tags(org_id: str, key_id: str, tags: Sequence[str], now_ms: int) -> list[Op]:
        return mark(
            org_id,
            [
                (
                    "UPDATE private_keys SET tags = ?, updated_at = ? WHERE id = ? AND organization_id = ?",
                    (json.dumps(list(tags)), now_ms, key_id, org_id),
                )
            ],
        )
