"""The local event stream: the webhook events of one organization as server-sent events.

`POST /public/v1/stream/events` (docs/events.md) with a stamped body
`{organizationId, timestampMs, lastEventId?, filters?}`. The request is checked like a query (the
stamp over the exact body, the organization, a credential that may read it: its own users or its
parent's) plus the trusted-time window of an activity's `timestampMs`. Every refusal happens in
`EventStreams.open`, before the first byte of the stream, so it is Turnkey's error shape.

**From the store, never from memory.** Events are the webhook outbox's rows (`store/webhooks.py`),
read by the organization's ascending cursor (`event_stream.seq`, indexed per organization), so a
stream sees the events every replica writes, and a resumed stream (`lastEventId`, or the
`Last-Event-ID` header an SSE client sends) continues right after the event it names: nothing
lost, nothing twice. A stream polls the store (`poll_s`) and is woken at once when this process
commits a change (`notify`). Only rows carrying the token's MAC are sent (a row inserted by hand
is skipped, as for webhooks).

**Each event is signed like a webhook**: the data is `{eventId, eventType, timestamp, signature,
body}`, where `body` is the exact webhook body (text) and `signature` is the webhook key's
signature over `timestamp.body` (`get_webhook_signer` publishes the key).

**Bounded**: at most `per_user` streams per user and `total` per process (ResourceExhausted); a
`: keepalive` comment every `heartbeat_s`; `close` ends every stream (the daemon's stop).
A stream also ends when signing is stopped, or when its user is deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import orjson

from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted, StrongroomError, Unavailable
from strongroom.hsm import AsyncKeyStore
from strongroom.logs import get_logger
from strongroom.service import webhooks
from strongroom.service.auth import Principal
from strongroom.service.params import JsonObj, opt_str
from strongroom.service.pipeline import Pipeline
from strongroom.store.records import Organization, WebhookEvent
from strongroom.store.repository import Repository

log = get_logger("strongroom.events")

FIELDS: Final = frozenset({"organizationId", "timestampMs", "lastEventId", "filters"})
OPENED: Final = b": stream open\nretry: 2000\n\n"
KEEPALIVE: Final = b": keepalive\n\n"


def frame(event_id: str, event_type: str, data: bytes) -> bytes:
    """One SSE event (`data` is one line of JSON: orjson never writes a newline)."""
    return b"id: " + event_id.encode() + b"\nevent: " + event_type.encode() + b"\ndata: " + data + b"\n\n"


@dataclass(frozen=True, slots=True)
class StreamRequest:
    org: Organization
    principal: Principal
    after: int  # the cursor the stream starts after
    filter: webhooks.EventFilter


class EventStreams:
    """Every open stream of this process, their limits and their wake-up."""

    def __init__(
        self,
        repo: Repository,
        pipeline: Pipeline,
        keys: AsyncKeyStore,
        *,
        poll_s: float = 0.5,
        heartbeat_s: float = 15.0,
        per_user: int = 4,
        total: int = 256,
        batch: int = 100,
    ) -> None:
        self.repo: Final = repo
        self.pipeline: Final = pipeline
        self.keys: Final = keys
        self.poll_s = poll_s
        self.heartbeat_s = max(heartbeat_s, 0.5)  # 0 would write a keepalive at every poll
        self.per_user: Final = per_user
        self.total: Final = total
        self.batch: Final = batch
        self.open_by_user: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._closed = False

    @property
    def open_streams(self) -> int:
        return sum(self.open_by_user.values())

    def notify(self) -> None:
        """Something was committed by this process: wake every stream to read the store now."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def close(self) -> None:
        """End every stream (after the event it is writing) and refuse new ones: the daemon stops."""
        self._closed = True
        self.notify()

    def _parse(
        self, params: JsonObj, headers: Mapping[str, str], org: Organization
    ) -> tuple[int, webhooks.EventFilter]:
        unknown = sorted(set(params) - FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field `{unknown[0][:64]}` in the stream request")
        found = webhooks.EVERYTHING
        if params.get("filters") is not None:
            found = webhooks.parse_filter(params["filters"], "filters.")
        last = headers.get("Last-Event-ID") or opt_str(params, "lastEventId", max_len=64)
        if not last:
            return self.repo.webhooks.stream_head(org.id), found
        try:
            uuid.UUID(last)
        except ValueError as err:
            raise InvalidRequest("malformed last event ID provided") from err
        cursor = self.repo.webhooks.stream_cursor(org.id, last)
        if cursor is None:
            raise NotFound(f"no event `{last}` found in this organization")
        return cursor, found

    async def open(self, body: bytes, headers: Mapping[str, str]) -> StreamRequest:
        """Check a stream request (as a query, plus `timestampMs`) and take a slot; every error is
        raised here, before the stream starts. The caller must `release` the slot."""
        if self._closed:
            raise Unavailable("the daemon is stopping")
        if self.pipeline.stopped is not None:
            raise Unavailable(f"signing is stopped: {self.pipeline.stopped}")
        params, org, principal, now_ms = await self.pipeline.authenticate(headers, body, read=True)
        self.pipeline.check_timestamp(params, now_ms)
        after, found = self._parse(params, headers, org)
        user_id = principal.user.id
        if self.open_streams >= self.total:
            raise ResourceExhausted(f"this daemon serves at most {self.total} event streams at once")
        if self.open_by_user.get(user_id, 0) >= self.per_user:
            raise ResourceExhausted(f"a user may hold at most {self.per_user} event streams at once")
        self.open_by_user[user_id] = self.open_by_user.get(user_id, 0) + 1
        log.info("event_stream_opened", organization_id=org.id, user_id=user_id, after=after)
        return StreamRequest(org, principal, after, found)

    def release(self, request: StreamRequest) -> None:
        user_id = request.principal.user.id
        left = self.open_by_user.get(user_id, 0) - 1
        if left > 0:
            self.open_by_user[user_id] = left
        else:
            self.open_by_user.pop(user_id, None)
        log.info("event_stream_closed", organization_id=request.org.id, user_id=user_id)

    def _authentic(self, event: WebhookEvent) -> bool:
        notary = self.repo.notary
        if notary is None:
            return True
        return notary.check(webhooks.mac_message(event.id, event.organization_id, event.payload), event.mac)

    async def _signed(self, event: WebhookEvent) -> bytes:
        timestamp = str(self.pipeline.clock.now_ms())
        signature = await self.keys.sign_webhook(webhooks.signed_message(timestamp, event.payload))
        data = orjson.dumps(
            {
                "eventId": event.id,
                "eventType": event.type,
                "timestamp": timestamp,
                "signature": signature.hex(),
                "body": event.payload.decode(),
            }
        )
        return frame(event.id, event.type, data)

    def _still_allowed(self, request: StreamRequest, connected: Callable[[], bool]) -> bool:
        if self._closed or self.pipeline.stopped is not None or not connected():
            return False
        return self.repo.users.user(request.principal.user.id) is not None

    async def frames(self, request: StreamRequest, connected: Callable[[], bool]) -> AsyncIterator[bytes]:
        """The stream's bytes: an opening comment, then each event after the cursor as it is
        committed, and keepalive comments; ends on `close`, stopped signing, a deleted user or
        when `connected()` says the client went away (its slot is then free within `poll_s`)."""
        yield OPENED
        cursor = request.after
        org_id = request.org.id
        last_sent = time.monotonic()
        while self._still_allowed(request, connected):
            changed = self._changed  # taken before reading: a commit after the read wakes the wait
            try:
                rows = self.repo.webhooks.stream_after(org_id, cursor, self.batch)
            except StrongroomError as err:  # the store is failing: say nothing, try again
                log.warning("event_stream_read_failed", organization_id=org_id, error=err.message)
                rows = []
            for seq, event in rows:
                cursor = seq
                if event.organization_id != org_id or not self._authentic(event):
                    log.error("event_stream_event_forged", event_id=event.id, organization_id=org_id)
                    continue
                activity_type = str(orjson.loads(event.payload).get("activity", {}).get("type", ""))
                if not request.filter.matches(event.type, activity_type):
                    continue
                try:
                    out = await self._signed(event)
                except StrongroomError as err:  # the token or the clock: the client resumes later
                    log.warning("event_stream_sign_failed", event_id=event.id, error=err.message)
                    return
                yield out
                last_sent = time.monotonic()
            if len(rows) >= self.batch:
                continue  # more are waiting
            if time.monotonic() - last_sent >= self.heartbeat_s:
                yield KEEPALIVE
                last_sent = time.monotonic()
            wait = min(self.poll_s, max(0.0, self.heartbeat_s - (time.monotonic() - last_sent)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(wait, 0.01))
