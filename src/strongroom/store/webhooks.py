"""Webhooks: the organizations' endpoints (notarised), the outbox of events and their deliveries.

An event row is written by the transaction that changes its activity (the service adds these ops
to the activity's own), with one delivery row per endpoint it goes to. The delivery duty, on any
replica, claims a due delivery with a conditional UPDATE on its attempt counter and lease
(`EXPECT_ROW`: of two replicas that read the same row, one claim changes it, the other gets
`Conflict`), posts it, then records the outcome: delivered, or the next attempt's time.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson

from strongroom.store.core import Aggregate, columns, delete, from_row, in_org, insert, mark, update
from strongroom.store.group_commit import Op, Param
from strongroom.store.records import Row, WebhookEndpoint, WebhookEvent
from strongroom.store.writer import EXPECT_ROW

PENDING: Final = "pending"
DELIVERED: Final = "delivered"
FAILED: Final = "failed"  # every attempt failed: kept for the operator, no longer tried
DROPPED: Final = "dropped"  # the endpoint was deleted or deactivated before delivery


class Webhooks(Aggregate):
    """Endpoints (notarised rows), events and deliveries."""

    @staticmethod
    def _endpoint(row: Row) -> WebhookEndpoint:
        return from_row(
            WebhookEndpoint, row, is_active=bool(row["is_active"]), subscriptions=json.loads(row["subscriptions"])
        )

    @staticmethod
    def _event(row: Row) -> WebhookEvent:
        return from_row(WebhookEvent, row, payload=bytes(row["payload"]), mac=bytes(row["mac"]))

    # -- endpoints -----------------------------------------------------------------------------
    def endpoints(self, org_id: str) -> list[WebhookEndpoint]:
        """The organization's endpoints, oldest first, exactly as the token vouched for them."""
        rows = self.core.checked_all(
            "webhook_endpoints",
            org_id,
            self.db.all("SELECT * FROM webhook_endpoints WHERE organization_id = ? ORDER BY created_at, id", (org_id,)),
        )
        return [self._endpoint(r) for r in rows]

    def endpoint(self, org_id: str, endpoint_id: str) -> WebhookEndpoint | None:
        return self._one(
            "webhook_endpoints",
            self._endpoint,
            "SELECT * FROM webhook_endpoints WHERE id = ? AND organization_id = ?",
            (endpoint_id, org_id),
        )

    @staticmethod
    def _stored(endpoint: WebhookEndpoint) -> dict[str, Any]:
        return columns(endpoint, subscriptions=orjson.dumps(endpoint.subscriptions).decode())

    @staticmethod
    def insert_endpoint(endpoint: WebhookEndpoint) -> list[Op]:
        return mark(endpoint.organization_id, [insert("webhook_endpoints", Webhooks._stored(endpoint))])

    @staticmethod
    def update_endpoint(endpoint: WebhookEndpoint) -> list[Op]:
        changed = {k: v for k, v in Webhooks._stored(endpoint).items() if k not in ("id", "organization_id")}
        where = in_org(endpoint.organization_id, endpoint.id)
        return mark(endpoint.organization_id, [update("webhook_endpoints", changed, where)])

    @staticmethod
    def delete_endpoint(org_id: str, endpoint_id: str) -> list[Op]:
        return mark(org_id, [delete("webhook_endpoints", in_org(org_id, endpoint_id))])

    # -- the outbox ----------------------------------------------------------------------------
    @staticmethod
    def insert_event(event: WebhookEvent, endpoint_ids: list[str]) -> list[Op]:
        """The event and one pending delivery per endpoint, due at once (commit with the activity)."""
        ops = [
            insert("webhook_events", columns(event)),
            # The stream's cursor: assigned under the audit chain's lock, so in commit order.
            insert("event_stream", {"event_id": event.id, "organization_id": event.organization_id}),
        ]
        for endpoint_id in endpoint_ids:
            ops.append(
                insert(
                    "webhook_deliveries",
                    {
                        "event_id": event.id,
                        "endpoint_id": endpoint_id,
                        "organization_id": event.organization_id,
                        "state": PENDING,
                        "attempts": 0,
                        "next_at": event.created_at,
                        "lease_until": 0,
                        "created_at": event.created_at,
                    },
                )
            )
        return ops

    def event(self, event_id: str) -> WebhookEvent | None:
        row = self.db.one("SELECT * FROM webhook_events WHERE id = ?", (event_id,))
        return None if row is None else self._event(row)

    def events_of_activity(self, org_id: str, activity_id: str) -> list[WebhookEvent]:
        rows = self.db.all(
            "SELECT * FROM webhook_events WHERE organization_id = ? AND activity_id = ? ORDER BY created_at, id",
            (org_id, activity_id),
        )
        return [self._event(r) for r in rows]

    # -- the event stream --------------------------------------------------------------------------
    def stream_head(self, org_id: str) -> int:
        """The cursor of the organization's newest event (0: none yet)."""
        row = self.db.one("SELECT max(seq) FROM event_stream WHERE organization_id = ?", (org_id,))
        return 0 if row is None or row[0] is None else int(row[0])

    def stream_cursor(self, org_id: str, event_id: str) -> int | None:
        """The cursor of one event of this organization (None: no such event here)."""
        row = self.db.one("SELECT seq FROM event_stream WHERE event_id = ? AND organization_id = ?", (event_id, org_id))
        return None if row is None else int(row[0])

    def stream_after(self, org_id: str, after: int, limit: int) -> list[tuple[int, WebhookEvent]]:
        """(cursor, event) of the organization's events after cursor `after`, in order (the index
        `event_stream_org_seq` answers it)."""
        rows = self.db.all(
            "SELECT s.seq AS stream_seq, e.* FROM event_stream s JOIN webhook_events e ON e.id = s.event_id"
            " WHERE s.organization_id = ? AND s.seq > ? ORDER BY s.seq LIMIT ?",
            (org_id, after, limit),
        )
        return [(int(r["stream_seq"]), self._event(r)) for r in rows]

    def due(self, now_ms: int, limit: int) -> list[tuple[str, str, int]]:
        """(event id, endpoint id, attempts so far) of pending deliveries due at `now_ms` and not
        leased, the longest waiting first."""
        rows = self.db.all(
            "SELECT event_id, endpoint_id, attempts FROM webhook_deliveries"
            " WHERE state = ? AND next_at <= ? AND lease_until <= ? ORDER BY next_at, created_at LIMIT ?",
            (PENDING, now_ms, now_ms, limit),
        )
        return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]

    @staticmethod
    def claim(event_id: str, endpoint_id: str, attempts: int, now_ms: int, lease_until: int) -> list[Op]:
        """Take a delivery for one attempt until `lease_until`, only if nobody else has since it was
        read (same attempt count, still pending, no live lease): else the write answers `Conflict`."""
        sql, params = update(
            "webhook_deliveries",
            {"attempts": attempts + 1, "lease_until": lease_until},
            {"event_id": event_id, "endpoint_id": endpoint_id, "state": PENDING, "attempts": attempts},
        )
        return [(sql + " AND lease_until <= ?" + EXPECT_ROW, (*params, now_ms))]

    @staticmethod
    def settle(
        event_id: str, endpoint_id: str, attempts: int, state: str, status: int | None, next_at: int, now_ms: int
    ) -> list[Op]:
        """The outcome of the attempt numbered `attempts` (a no-op if another replica took the row
        over since: its lease had run out)."""
        changed: dict[str, Any] = {"state": state, "next_at": next_at, "lease_until": 0, "last_status": status}
        if state == DELIVERED:
            changed["delivered_at"] = now_ms
        where: dict[str, Param] = {
            "event_id": event_id,
            "endpoint_id": endpoint_id,
            "state": PENDING,
            "attempts": attempts,
        }
        return [update("webhook_deliveries", changed, where)]

    def deliveries(self, org_id: str) -> list[dict[str, Any]]:
        """Every delivery of an organization, oldest first (for operators and tests)."""
        rows = self.db.all(
            "SELECT d.event_id, d.endpoint_id, d.state, d.attempts, d.last_status, d.delivered_at, e.type"
            " FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
            " WHERE d.organization_id = ? ORDER BY d.created_at, d.event_id",
            (org_id,),
        )
        keys = ("event_id", "endpoint_id", "state", "attempts", "last_status", "delivered_at", "type")
        return [dict(zip(keys, r, strict=True)) for r in rows]
