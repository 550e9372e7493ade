"""Webhook events: written with the activity change they report (an outbox), delivered by a duty.

Events (docs/webhooks.md): an activity parked for consensus, a vote cast on it, and its end:
completed, rejected (a reject vote), expired (the vote window ended) or failed. They concern the
activities that waited for approvals, the ones people act on; an activity decided at once
produces none.

**Written, never invented, never lost.** `Outbox.ops` builds an event's rows: the event (its
exact JSON payload and the token's HMAC over it) and one pending delivery per active endpoint of
the organization. The pipeline and the expiry add them to the ops of the activity change itself,
so both commit in one transaction or neither does. The HMAC is checked before an event is signed
and sent: a row inserted into the database by hand is not delivered.

**Delivered at least once, without blocking the pipeline.** `Delivery.run` is a background duty
(`daemon/lifecycle.py`) on every replica: it claims a due delivery (a conditional UPDATE of its
attempt counter and lease, store/webhooks.py: one replica wins a row), signs `timestamp.body` with
the token's webhook key (P-256 ECDSA over SHA-256, `get_webhook_signer` publishes the public key)
and POSTs it. A 2xx answer delivers it; anything else (another status, a redirect, a timeout, a
refused connection) schedules the next attempt after an exponential backoff, up to
`webhook_max_attempts`. A daemon killed between the POST and the record of its answer posts again
after a restart (its lease runs out): receivers dedupe by event id. Response bodies are neither
read into logs nor kept; the logs name the endpoint by id, never by URL (a URL may hold a secret).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from strongroom.clock import Clock
from strongroom.errors import Conflict, InvalidRequest, StrongroomError
from strongroom.hsm import AsyncKeyStore
from strongroom.logs import get_logger
from strongroom.service import render
from strongroom.service.params import JsonObj, obj
from strongroom.store import webhooks as rows
from strongroom.store.group_commit import Op
from strongroom.store.records import Activity, WebhookEndpoint, WebhookEvent
from strongroom.store.repository import Repository
from strongroom.strictjson import StrictJsonError, loads

log = get_logger("strongroom.webhooks")

CONSENSUS_NEEDED: Final = "ACTIVITY_CONSENSUS_NEEDED"
VOTE_CAST: Final = "ACTIVITY_VOTE_CAST"
COMPLETED: Final = "ACTIVITY_COMPLETED"
REJECTED: Final = "ACTIVITY_REJECTED"
EXPIRED: Final = "ACTIVITY_EXPIRED"
FAILED: Final = "ACTIVITY_FAILED"
EVENT_TYPES: Final = (CONSENSUS_NEEDED, VOTE_CAST, COMPLETED, REJECTED, EXPIRED, FAILED)

SUBSCRIPTION: Final = "ACTIVITY_UPDATES"
"""Turnkey's subscription event type for activities: the one an endpoint may subscribe to here."""

MAC_PREFIX: Final = b"strongroom-webhook-event-v1"
SIGNATURE_SCHEME: Final = "ecdsa-p256-sha256"
HEADER_ID: Final = "X-Strongroom-Event-Id"
HEADER_TYPE: Final = "X-Strongroom-Event-Type"
HEADER_TIMESTAMP: Final = "X-Strongroom-Timestamp"
HEADER_SIGNATURE: Final = "X-Strongroom-Signature"

Post = Callable[[str, bytes, Mapping[str, str], float], Awaitable[int]]
"""POST (url, body, headers, timeout in seconds) → the HTTP status; raises OSError when there is no
answer (refused, reset, timed out). The daemon provides it (the service room does no HTTP)."""


_ACTIVITY_TYPE: Final = re.compile(r"ACTIVITY_TYPE_[A-Z0-9_]{1,96}")
MAX_FILTER_ITEMS: Final = 64


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events an endpoint or a stream gets (docs/webhooks.md#filters): an empty set lets
    every value through; two sets must both match."""

    event_types: frozenset[str] = frozenset()
    activity_types: frozenset[str] = frozenset()

    def matches(self, event_type: str, activity_type: str) -> bool:
        return (not self.event_types or event_type in self.event_types) and (
            not self.activity_types or activity_type in self.activity_types
        )


EVERYTHING: Final = EventFilter()


def _filter_list(data: JsonObj, key: str, where: str, allowed: Any) -> frozenset[str]:
    raw = data.get(key)
    if raw is None:
        return frozenset()
    if not isinstance(raw, list) or not raw or len(raw) > MAX_FILTER_ITEMS:
        raise InvalidRequest(f"`{where}{key}` must be a list of 1 to {MAX_FILTER_ITEMS} strings")
    for item in raw:
        if not isinstance(item, str) or not allowed(item):
            shown = item[:96] if isinstance(item, str) else type(item).__name__
            raise InvalidRequest(f"`{where}{key}` has an unknown value `{shown}`")
    return frozenset(raw)


def parse_filter(data: Any, where: str) -> EventFilter:
    """A filter object `{eventTypes?: [...], activityTypes?: [...]}` (nothing else); InvalidRequest,
    naming `where`, for anything else."""
    filters = obj(data, where.rstrip(".") or "filters")
    unknown = sorted(set(filters) - {"eventTypes", "activityTypes"})
    if unknown:
        raise InvalidRequest(f"`{where}{unknown[0][:64]}` is not a filter: use eventTypes and activityTypes")
    return EventFilter(
        _filter_list(filters, "eventTypes", where, lambda t: t in EVENT_TYPES),
        _filter_list(filters, "activityTypes", where, lambda t: _ACTIVITY_TYPE.fullmatch(t) is not None),
    )


def parse_filters_json(text: str, where: str) -> EventFilter:
    """A subscription's `filtersJson`: the JSON text of a filter object (see `parse_filter`)."""
    try:
        data = loads(text.encode())
    except StrictJsonError as err:
        raise InvalidRequest(f"`{where}` is not valid JSON: {err.reason}") from err
    return parse_filter(data, where + ".")


def endpoint_filter(endpoint: WebhookEndpoint) -> EventFilter | None:
    """The filter of the endpoint's ACTIVITY_UPDATES subscription; None when it receives nothing
    (inactive, or not subscribed). An endpoint created without subscriptions receives everything.
    A stored `filtersJson` that does not parse (written before filters were checked) filters
    nothing, as it did then."""
    if not endpoint.is_active:
        return None
    subs = endpoint.subscriptions
    if not subs:
        return EVERYTHING
    for sub in subs:
        if sub.get("eventType") == SUBSCRIPTION and sub.get("isActive", True):
            text = sub.get("filtersJson")
            if not isinstance(text, str) or not text:
                return EVERYTHING
            try:
                return parse_filters_json(text, "filtersJson")
            except InvalidRequest:
                return EVERYTHING
    return None


def receives(endpoint: WebhookEndpoint, event_type: str | None = None, activity_type: str = "") -> bool:
    """Does this endpoint get activity events: active, and subscribed to ACTIVITY_UPDATES (an
    endpoint created without subscriptions gets them too); with `event_type`, does its filter let
    this event through."""
    found = endpoint_filter(endpoint)
    if found is None:
        return False
    return event_type is None or found.matches(event_type, activity_type)


def mac_message(event_id: str, org_id: str, payload: bytes) -> bytes:
    """What the token's HMAC covers for an event row."""
    return b"\n".join([MAC_PREFIX, event_id.encode(), org_id.encode(), payload])


def signed_message(timestamp: str, payload: bytes) -> bytes:
    """What the webhook key signs: `<timestamp>.<body>` (the receiver rebuilds it from the request)."""
    return timestamp.encode() + b"." + payload


class Outbox:
    """Builds an event's rows, to commit in the activity change's own transaction.

    `view` is the decoded view of an activity (`service/decoded.Views.view`): every event carries
    it under `view`, next to Turnkey's `activity`, so a receiver can show what is asked without
    decoding anything itself.
    """

    def __init__(
        self, repo: Repository, view: Callable[[Activity, Mapping[str, Any] | None], dict[str, Any]] | None = None
    ) -> None:
        self.repo: Final = repo
        self.view: Final = view

    def _view(self, activity: Activity, stamped: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if self.view is None:
            return None
        try:
            return self.view(activity, stamped)
        except Exception as err:  # noqa: BLE001 - a view that cannot be built must not stop the vote it reports
            log.error("webhook_view_failed", activity_id=activity.id, error=type(err).__name__)
            return None

    def ops(
        self, event_type: str, activity: Activity, at_ms: int, *, stamped: Mapping[str, Any] | None = None
    ) -> list[Op]:
        """`stamped`: the activity's parameters as its request was just stamped, when that request
        is not stored yet (the view reads them from the stored request otherwise)."""
        assert event_type in EVENT_TYPES
        org_id = activity.organization_id
        event_id = str(uuid.uuid4())
        payload = orjson.dumps(
            {
                "id": event_id,
                "type": event_type,
                "organizationId": org_id,
                "activity": render.activity(activity),
                "view": self._view(activity, stamped),
                "timestampMs": str(at_ms),
            }
        )
        notary = self.repo.notary
        mac = b"" if notary is None else notary.mac(mac_message(event_id, org_id, payload))
        endpoints = [e.id for e in self.repo.webhooks.endpoints(org_id) if receives(e, event_type, activity.type)]
        event = WebhookEvent(event_id, org_id, event_type, activity.id, payload, mac, at_ms)
        return self.repo.webhooks.insert_event(event, endpoints)

    def outcome_ops(self, activity: Activity, at_ms: int) -> list[Op]:
        """The event of an activity's end by a vote: completed, failed or rejected."""
        kind = {
            "ACTIVITY_STATUS_COMPLETED": COMPLETED,
            "ACTIVITY_STATUS_FAILED": FAILED,
            "ACTIVITY_STATUS_REJECTED": REJECTED,
        }[activity.status]
        return self.ops(kind, activity, at_ms)


class Delivery:
    """The duty that posts pending deliveries (see the module docstring)."""

    def __init__(
        self,
        repo: Repository,
        clock: Clock,
        keys: AsyncKeyStore,
        *,
        timeout_s: float = 5.0,
        backoff_base_ms: int = 2000,
        backoff_max_ms: int = 3600 * 1000,
        max_attempts: int = 20,
        batch: int = 32,
        concurrency: int = 8,
    ) -> None:
        self.repo: Final = repo
        self.clock: Final = clock
        self.keys: Final = keys
        self.timeout_s: Final = timeout_s
        self.backoff_base_ms: Final = backoff_base_ms
        self.backoff_max_ms: Final = backoff_max_ms
        self.max_attempts: Final = max_attempts
        self.batch: Final = batch
        self._slots: Final = asyncio.Semaphore(concurrency)
        # A claimed row is this replica's until then; a process killed mid-attempt loses it then.
        self.lease_ms: Final = int(timeout_s * 1000) * 2 + 1000
        self.delivered = 0  # by this process: for logs and tests
        self.failed_attempts = 0
        self._public_key: str | None = None

    def backoff_ms(self, attempts: int) -> int:
        """The wait after the `attempts`-th failed attempt: base, twice that, four times, ... up to the max."""
        return int(min(self.backoff_max_ms, self.backoff_base_ms * 2 ** min(attempts - 1, 40)))

    async def public_key(self) -> str:
        """The webhook key's public key (uncompressed P-256, hex), what receivers verify with."""
        if self._public_key is None:
            self._public_key = await self.keys.webhook_public_key()
        return self._public_key

    async def run(self, post: Post) -> int:
        """Attempt every due delivery (up to `batch`); how many were delivered. Skipped while the
        store is failing or the clock is untrusted (backoff and leases are read on it)."""
        if self.repo.db.failure is not None:
            return 0
        try:
            now_ms = self.clock.now_ms()
        except StrongroomError:
            return 0
        due = self.repo.webhooks.due(now_ms, self.batch)
        if not due:
            return 0
        done = await asyncio.gather(*(self._slot(post, *d, now_ms) for d in due))
        return sum(done)

    async def _slot(self, post: Post, event_id: str, endpoint_id: str, attempts: int, now_ms: int) -> int:
        async with self._slots:
            return await self._attempt(post, event_id, endpoint_id, attempts, now_ms)

    async def _settle(
        self, event_id: str, endpoint_id: str, attempt: int, state: str, status: int | None, next_at: int
    ) -> None:
        ops = self.repo.webhooks.settle(event_id, endpoint_id, attempt, state, status, next_at, self.clock.reading_ms())
        await self.repo.write(ops)

    def _authentic(self, event: WebhookEvent) -> bool:
        """Was this event written by the pipeline (its MAC is the token's)?"""
        notary = self.repo.notary
        if notary is None:  # a store opened without a token (store tests): nothing to check with
            return True
        return notary.check(mac_message(event.id, event.organization_id, event.payload), event.mac)

    async def _attempt(self, post: Post, event_id: str, endpoint_id: str, attempts: int, now_ms: int) -> int:
        webhooks = self.repo.webhooks
        try:
            await self.repo.write(webhooks.claim(event_id, endpoint_id, attempts, now_ms, now_ms + self.lease_ms))
        except Conflict:
            return 0  # another replica (or an earlier run of this one) has it
        attempt = attempts + 1
        event = webhooks.event(event_id)
        if event is None or not self._authentic(event):
            # Not written by the pipeline: never signed, never sent.
            log.error("webhook_event_forged", event_id=event_id, endpoint_id=endpoint_id)
            await self._settle(event_id, endpoint_id, attempt, rows.FAILED, None, now_ms)
            return 0
        try:
            endpoint = webhooks.endpoint(event.organization_id, endpoint_id)
        except StrongroomError as err:  # the endpoints' notarisation does not verify: refuse, retry later
            log.error("webhook_endpoint_unverified", event_id=event_id, endpoint_id=endpoint_id, error=err.message)
            return 0
        if endpoint is None or not receives(endpoint):
            await self._settle(event_id, endpoint_id, attempt, rows.DROPPED, None, now_ms)
            return 0
        timestamp = str(now_ms)
        signature = await self.keys.sign_webhook(signed_message(timestamp, event.payload))
        headers = {
            "Content-Type": "application/json",
            HEADER_ID: event.id,
            HEADER_TYPE: event.type,
            HEADER_TIMESTAMP: timestamp,
            HEADER_SIGNATURE: signature.hex(),
            "User-Agent": "strongroom-webhooks",
        }
        why = ""
        try:
            status = await post(endpoint.url, event.payload, headers, self.timeout_s)
        except OSError as err:
            status, why = 0, type(err).__name__
        at_ms = self.clock.reading_ms()
        fields: dict[str, Any] = {
            "event_id": event.id,
            "event_type": event.type,
            "endpoint_id": endpoint.id,
            "organization_id": event.organization_id,
            "attempt": attempt,
            "status": status,
        }
        if 200 <= status < 300:
            await self._settle(event.id, endpoint.id, attempt, rows.DELIVERED, status, at_ms)
            self.delivered += 1
            log.info("webhook_delivered", **fields)
            return 1
        self.failed_attempts += 1
        final = attempt >= self.max_attempts
        next_at = at_ms + self.backoff_ms(attempt)
        await self._settle(event.id, endpoint.id, attempt, rows.FAILED if final else rows.PENDING, status, next_at)
        fields.update(error=why or None, final=final, next_at=None if final else next_at)
        log.warning("webhook_attempt_failed", **fields)
        return 0
