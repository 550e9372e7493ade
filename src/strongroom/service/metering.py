"""Usage metering: signatures per organization per calendar month (UTC), with optional quotas.

Turnkey prices per signature, so that is what is counted, in the store (`usage`), shared by all
replicas. For an organization with a quota, a request reserves its signatures in the store before
the token is touched (`store/usage.py`: atomic across replicas, so together they never sign more
than the quota), and the reservation becomes usage only when its activity commits (in the same
transaction). Without a quota nothing is reserved: the commit just adds the usage. A quota set by
an operator is re-read every few seconds.

`Meter.attempt` is the one way the pipeline carries out work: reserve, execute, then commit or
roll back. Whatever fails after the reservation (the work, building the commit, the commit
itself, a cancellation) releases it and undoes the work's side effects outside the database; a
reservation whose process dies expires on its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

from strongroom.errors import ErrorCode, ResourceExhausted
from strongroom.logs import get_logger
from strongroom.store.group_commit import Op
from strongroom.store.repository import Repository
from strongroom.store.usage import Reservation, Reservations

QUOTA_TTL_MS: Final = 5_000
log = get_logger("strongroom.metering")


def month_of(ms: int) -> str:
    t = time.gmtime(ms / 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}"


@dataclass(slots=True)
class Attempt:
    """One piece of work under `Meter.attempt`; the caller fills in what the work did.

    `rollback` undoes side effects outside the database (token objects) if the commit does not
    happen; `charged` says that the reservation's usage rows (`usage_ops`) are in the commit.
    """

    meter: Meter
    reservation: Reservation | None
    rollback: Callable[[], Awaitable[None]] | None = None
    charged: bool = False

    def usage_ops(self) -> list[Op]:
        """The usage rows to commit with the work (none without a reservation)."""
        if self.reservation is None:
            return []
        self.charged = True
        return self.meter.ops(self.reservation)


class Meter:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._reservations = Reservations(repo.db)
        self._quotas: dict[str, tuple[int | None, int]] = {}

    def quota(self, org_id: str, now_ms: int) -> int | None:
        cached = self._quotas.get(org_id)
        if cached is None or now_ms - cached[1] > QUOTA_TTL_MS:
            cached = (self._repo.usage.signature_quota(org_id), now_ms)
            self._quotas[org_id] = cached
        return cached[0]

    async def reserve(self, org_id: str, signatures: int, now_ms: int) -> Reservation:
        """Reserve `signatures` under the organization's quota (in the store, for all replicas);
        `ResourceExhausted` if they would exceed it. Without a quota nothing is written."""
        month = month_of(now_ms)
        quota = self.quota(org_id, now_ms)
        if quota is None:
            return Reservation(org_id, month, signatures)
        reservation = await self._reservations.reserve(org_id, month, signatures, quota, now_ms)
        if reservation is None:
            used = self._repo.usage.signatures_used(org_id, month)
            raise ResourceExhausted(
                f"monthly signature quota of {quota} is exhausted for this organization ({month}: {used} used)",
                code=ErrorCode.FORBIDDEN,
            )
        return reservation

    def ops(self, r: Reservation) -> list[Op]:
        """In the commit: the signatures become usage, and the reservation goes."""
        return self._repo.usage.add_usage(r.organization_id, r.month, r.signatures) + self._reservations.release_ops(r)

    async def release(self, r: Reservation) -> None:
        """The work was not committed: the reservation goes (if this fails, it expires on its own)."""
        try:
            await self._reservations.release(r)
        except Exception as err:  # noqa: BLE001 - the reservation expires; the request's own outcome stands
            log.error("reservation_release_failed", organization_id=r.organization_id, error=type(err).__name__)

    def reserved(self, org_id: str, now_ms: int) -> int:
        """Signatures reserved by requests in flight this month, on any replica (0 when none is running)."""
        return self._reservations.reserved(org_id, month_of(now_ms), now_ms)

    @asynccontextmanager
    async def attempt(self, org_id: str, signatures: int, now_ms: int) -> AsyncIterator[Attempt]:
        """Reserve `signatures` (if any), run the body, then settle: see the module docstring.

        Leaving the block normally means the commit happened: the reservation became usage if
        the body `charged` it, else it is released. Leaving it by an exception releases the
        reservation and runs `rollback`; the exception goes on.
        """
        reservation = await self.reserve(org_id, signatures, now_ms) if signatures else None
        attempt = Attempt(self, reservation)
        try:
            yield attempt
        except BaseException:
            if reservation is not None:
                await self.release(reservation)
            if attempt.rollback is not None:
                try:
                    await attempt.rollback()
                except Exception as err:  # noqa: BLE001 - the original failure is the one to report
                    log.error("rollback_failed", organization_id=org_id, error=type(err).__name__)
            raise
        if reservation is not None and not attempt.charged:
            await self.release(reservation)

    def usage(self, org_id: str, now_ms: int, month: str | None = None) -> dict[str, object]:
        month = month or month_of(now_ms)
        quota = self.quota(org_id, now_ms)
        out: dict[str, object] = {
            "organizationId": org_id,
            "month": month,
            "signatures": str(self._repo.usage.signatures_used(org_id, month)),
        }
        if quota is not None:
            out["monthlySignatureQuota"] = str(quota)
        return out
