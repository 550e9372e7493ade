"""The end of a vote window: an activity waiting for consensus that is not decided within 24 hours
of its creation is rejected as expired, with the reason in its `failure` and an audit entry.

Turnkey lets the votes lapse and leaves the activity CONSENSUS_NEEDED forever; its status enum
has no expired value. Strongroom ends it instead, as `ACTIVITY_STATUS_REJECTED` (a terminal
status every SDK knows) whose `failure` says why (`EXPIRED_MESSAGE`), so that nobody waits on,
nor counts against the organization's pending cap, something that can no longer complete.

Two paths end a window, and each activity is expired exactly once:

- the background duty (`Expiry.run`, scheduled by `daemon/lifecycle.py` on every replica) finds
  the overdue activities in the store, oldest first;
- a vote that arrives after the window (`Pipeline._vote`) expires its target before it is
  refused, so the activity reads as expired even if the duty has not run yet.

Both hold the activity's consensus lock (the pipeline's: in-process, then the cross-replica
`db.exclusive`) and re-read the status under it; the write is conditional on the status still
being CONSENSUS_NEEDED (`update_activity`'s `EXPECT_ROW`), so a vote racing an expiry, on this
replica or another, ends in exactly one outcome, and two replicas running the duty write one
expiry and one audit entry. The `ACTIVITY_EXPIRED` webhook event (`service/webhooks.py`) is
written in the expiry's own transaction, so it exists exactly when the expiry does. A parked
activity holds no quota reservation (signatures are reserved only when it executes,
`service/metering.py`), so there is nothing else to release.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any, Final

from strongroom.clock import Clock
from strongroom.errors import Conflict, Grpc, InvalidRequest, StrongroomError
from strongroom.logs import get_logger
from strongroom.service import webhooks
from strongroom.store.records import Activity
from strongroom.store.repository import Repository

log = get_logger("strongroom.expiry")

VOTE_WINDOW_MS: Final = 24 * 60 * 60 * 1000
"""Votes are accepted for this long after an activity was created (Turnkey's 24 hours)."""
WAITING: Final = "ACTIVITY_STATUS_CONSENSUS_NEEDED"
EXPIRED_STATUS: Final = "ACTIVITY_STATUS_REJECTED"
EXPIRED_MESSAGE: Final = (
    "expired: the vote window ended (24 hours after the activity was created) before consensus was reached"
)
AUDIT_REASON: Final = "vote window ended"
BATCH: Final = 100
"""Activities expired per run of the duty (the next run takes the rest)."""


def overdue(activity: Activity, now_ms: int) -> bool:
    """Has the vote window of `activity` ended at `now_ms`?"""
    return now_ms - activity.created_at > VOTE_WINDOW_MS


def is_expired(activity: Activity) -> bool:
    """Was `activity` ended by its vote window (rather than by a reject vote)?"""
    return activity.status == EXPIRED_STATUS and (activity.failure or {}).get("message") == EXPIRED_MESSAGE


def expired_failure() -> dict[str, Any]:
    """The `failure` of an expired activity: Turnkey's Status shape, DEADLINE_EXCEEDED."""
    return {"code": int(Grpc.DEADLINE_EXCEEDED), "message": EXPIRED_MESSAGE, "details": []}


def late_vote(activity: Activity) -> InvalidRequest:
    """The refusal of a vote on an activity whose window has ended."""
    return InvalidRequest(
        f"activity `{activity.id}` has expired: votes are accepted for 24 hours after it was created;"
        " it was rejected at the end of that window, nothing was signed"
    )


class Expiry:
    """Ends the vote windows of one store's activities (see the module docstring).

    `lock(activity_id)` is the pipeline's consensus lock: the one a vote holds while it decides
    and executes, so that an expiry never interleaves with it.
    """

    def __init__(
        self,
        repo: Repository,
        clock: Clock,
        lock: Callable[[str], AbstractAsyncContextManager[None]],
        outbox: webhooks.Outbox | None = None,
    ) -> None:
        self.repo: Final = repo
        self.outbox: Final = outbox or webhooks.Outbox(repo)  # the "expired" webhook event
        self.clock: Final = clock
        self.lock: Final = lock
        self.expired = 0  # by this process (the duty and late votes): for logs and tests

    async def expire_locked(self, activity: Activity, now_ms: int) -> Activity | None:
        """Expire `activity`, read under its consensus lock (the caller holds it) and overdue.

        Returns the expired activity, or None when another writer changed it first (it is then
        whatever that writer made it: completed, rejected, or expired by another replica).
        """
        assert activity.status == WAITING
        assert overdue(activity, now_ms)
        expired = replace(activity, status=EXPIRED_STATUS, failure=expired_failure(), updated_at=now_ms)
        ops = self.repo.activities.update_activity(expired, expected_status=WAITING, reason=AUDIT_REASON)
        ops += self.outbox.ops(webhooks.EXPIRED, expired, now_ms)  # committed with the expiry, or not at all
        try:
            await self.repo.write(ops)
        except Conflict:
            return None
        self.expired += 1
        log.info(
            "activity_expired",
            activity_id=activity.id,
            organization_id=activity.organization_id,
            type=activity.type,
            created_at=activity.created_at,
        )
        return expired

    async def expire(self, activity: Activity, now_ms: int) -> Activity | None:
        """Take the activity's consensus lock, read it again, and expire it if it still waits."""
        async with self.lock(activity.id):
            current = self.repo.activities.activity(activity.organization_id, activity.id)
            if current is None or current.status != WAITING or not overdue(current, now_ms):
                return None
            return await self.expire_locked(current, now_ms)

    async def run(self) -> int:
        """The duty: expire every overdue activity (up to `BATCH`); how many this run expired.

        Skipped while the clock is untrusted (no expiry on a stepped clock) or the store is failing.
        """
        if self.repo.db.failure is not None:
            return 0
        try:
            now_ms = self.clock.now_ms()
        except StrongroomError:
            return 0
        done = 0
        for activity in self.repo.activities.waiting_since(WAITING, now_ms - VOTE_WINDOW_MS - 1, BATCH):
            if await self.expire(activity, now_ms) is not None:
                done += 1
        return done
