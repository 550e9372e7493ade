"""Activities, their audit entries and fingerprints, and the audit chain's signed checkpoints."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

import orjson

from strongroom.store.audit import append_op, digest
from strongroom.store.core import Aggregate, columns, from_row, insert, update
from strongroom.store.group_commit import Op, Param
from strongroom.store.records import Activity, Row
from strongroom.store.writer import EXPECT_ROW


class Activities(Aggregate):
    """Activities, their audit entries and fingerprints, and the audit chain's signed checkpoints."""

    @staticmethod
    def _activity(row: Row) -> Activity:
        return from_row(
            Activity,
            row,
            intent=json.loads(row["intent"]),
            result=json.loads(row["result"]),
            failure=None if row["failure"] is None else json.loads(row["failure"]),
            votes=json.loads(row["votes"]),
            policy_evaluations=json.loads(row["policy_evaluations"]),
        )

    @staticmethod
    def _stored(activity: Activity) -> dict[str, Param]:
        """The fields kept as JSON, as stored (the audit entry digests the stored `result`)."""
        return {
            "result": orjson.dumps(activity.result).decode(),
            "failure": None if activity.failure is None else orjson.dumps(activity.failure).decode(),
            "votes": orjson.dumps(activity.votes).decode(),
            "policy_evaluations": orjson.dumps(activity.policy_evaluations).decode(),
        }

    def activity(self, org_id: str, activity_id: str) -> Activity | None:
        row = self.db.one("SELECT * FROM activities WHERE id = ? AND organization_id = ?", (activity_id, org_id))
        return None if row is None else self._activity(row)

    def activities(
        self,
        org_id: str,
        *,
        statuses: Sequence[str] = (),
        types: Sequence[str] = (),
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Activity]:
        """Newest first. `before`/`after` are activity ids (cursors) in that order."""
        sql = "SELECT * FROM activities WHERE organization_id = ?"
        params: list[str | int] = [org_id]
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            params += list(statuses)
        if types:
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params += list(types)
        # "before" = older than the cursor (later in the newest-first list); "after" = newer.
        order = "DESC"
        if before is not None:
            sql += " AND seq < (SELECT seq FROM activities WHERE id = ? AND organization_id = ?)"
            params += [before, org_id]
        if after is not None:
            sql += " AND seq > (SELECT seq FROM activities WHERE id = ? AND organization_id = ?)"
            params += [after, org_id]
            if before is None:
                order = "ASC"
        sql += f" ORDER BY seq {order} LIMIT ?"
        params.append(limit)
        rows = [self._activity(r) for r in self.db.all(sql, params)]
        if order == "ASC":
            rows.reverse()
        return rows

    def activity_by_fingerprint(self, fingerprint: str) -> Activity | None:
        row = self.db.one("SELECT * FROM activities WHERE fingerprint = ?", (fingerprint,))
        return None if row is None else self._activity(row)

    def recent_fingerprints(self, since_ms: int, *, limit: int) -> list[tuple[str, int]]:
        """The fingerprints of activities created since `since_ms`, newest first, at most `limit`."""
        rows = self.db.all(
            "SELECT fingerprint, created_at FROM activities WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?",
            (since_ms, limit),
        )
        return [(r["fingerprint"], r["created_at"]) for r in rows]

    def stored_request(self, fingerprint: str) -> tuple[bytes, str, str | None, str] | None:
        """The exact request bytes, stamp header, user and organization recorded for a fingerprint."""
        row = self.db.one(
            "SELECT request, stamp, user_id, organization_id FROM activities WHERE fingerprint = ?", (fingerprint,)
        )
        if row is None:
            return None
        return bytes(row[0]), str(row[1]), None if row[2] is None else str(row[2]), str(row[3])

    def pending_count(self, org_id: str, status: str, since_ms: int) -> int:
        """Activities of `org_id` in `status` created after `since_ms` (the consensus cap)."""
        row = self.db.one(
            "SELECT count(*) FROM activities WHERE organization_id = ? AND status = ? AND created_at > ?",
            (org_id, status, since_ms),
        )
        return 0 if row is None else int(row[0])

    def waiting_since(self, status: str, created_before_ms: int, limit: int) -> list[Activity]:
        """Activities of every organization in `status` created at or before `created_before_ms`,
        oldest first, at most `limit` (the expiry duty: those whose vote window has ended)."""
        rows = self.db.all(
            "SELECT * FROM activities WHERE status = ? AND created_at <= ? ORDER BY created_at, seq LIMIT ?",
            (status, created_before_ms, limit),
        )
        return [self._activity(r) for r in rows]

    @staticmethod
    def _activity_entry(
        activity: Activity, request_digest: str, result: str, actor_key: str | None, reason: str | None = None
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "kind": "activity",
            "at_ms": activity.updated_at,
            "organization_id": activity.organization_id,
            "user_id": activity.user_id,
            "credential": actor_key,
            "type": activity.type,
            "status": activity.status,
            "activity_id": activity.id,
            "fingerprint": activity.fingerprint,
            "request_digest": request_digest,
            "result_digest": digest(result),
        }
        if reason is not None:
            entry["reason"] = reason
        return entry

    @staticmethod
    def insert_activity(activity: Activity, request: bytes, stamp: str, actor_key: str) -> list[Op]:
        """The activity row and its audit entry, to be committed together."""
        stored = Activities._stored(activity)
        row = columns(activity, intent=orjson.dumps(activity.intent).decode(), **stored)
        entry = Activities._activity_entry(activity, digest(request), str(stored["result"]), actor_key)
        return [insert("activities", {**row, "request": request, "stamp": stamp}), append_op(entry)]

    def update_activity(self, activity: Activity, *, expected_status: str, reason: str | None = None) -> list[Op]:
        """A state change (votes, completion, expiry), only from `expected_status`, with its audit
        entry (`reason`: why, for a change no request asked for). If the row is no longer in
        `expected_status` when the transaction runs (another writer, perhaps another replica, got
        there first), nothing is written and the write answers `Conflict` (`EXPECT_ROW`)."""
        stored = self._stored(activity)
        row = self.db.one("SELECT request FROM activities WHERE id = ?", (activity.id,))
        request_digest = digest(bytes(row["request"])) if row is not None else ""
        entry = self._activity_entry(activity, request_digest, str(stored["result"]), None, reason)
        changed = {"status": activity.status, **stored, "updated_at": activity.updated_at}
        sql, params = update("activities", changed, {"id": activity.id, "status": expected_status})
        return [(sql + EXPECT_ROW, params), append_op(entry)]

    @staticmethod
    def audit_refusal(
        at_ms: int, organization_id: str, user_id: str | None, actor_key: str, what: str, error: str, code: str
    ) -> list[Op]:
        """An authenticated request that was refused: who, what, and why."""
        return [
            append_op(
                {
                    "kind": "refusal",
                    "at_ms": at_ms,
                    "organization_id": organization_id,
                    "user_id": user_id,
                    "credential": actor_key,
                    "type": what,
                    "decision": code,
                    "reason": error,
                }
            )
        ]

    def audit_entries_of_activity(self, org_id: str, activity_id: str) -> list[tuple[int, str, dict[str, Any]]]:
        """(seq, hash, entry) of the audit entries about one activity, in order (portable SQL: no
        JSON functions, which differ between SQLite and PostgreSQL)."""
        try:
            activity_id = str(uuid.UUID(activity_id))
        except ValueError:
            return []
        rows = self.db.all(
            "SELECT seq, hash, body FROM audit_log WHERE body LIKE ? ORDER BY seq",
            (f'%"activity_id":"{activity_id}"%',),
        )
        out = []
        for row in rows:
            entry = orjson.loads(row[2])
            if entry.get("activity_id") == activity_id and entry.get("organization_id") == org_id:
                out.append((int(row[0]), str(row[1]), entry))
        return out

    def last_checkpoint_seq(self) -> int:
        """The chain entry the last signed checkpoint covers (0: none yet)."""
        row = self.db.one("SELECT max(seq) FROM audit_checkpoints")
        return 0 if row is None or row[0] is None else int(row[0])

    @staticmethod
    def insert_checkpoint(
        seq: int, head: str, at_ms: int, scheme: str, public_key: bytes | None, signature: bytes | None
    ) -> list[Op]:
        row: dict[str, Param] = {
            "seq": seq,
            "hash": head,
            "at_ms": at_ms,
            "scheme": scheme,
            "public_key": public_key,
            "signature": signature,
        }
        return [insert("audit_checkpoints", row)]
