"""Usage metering: signatures per organization per calendar month (UTC), with optional quotas.

Turnkey prices per signature, so that is what is counted. Counts live in memory (loaded from
the store on first use) together with the signatures currently being made, so concurrent
requests cannot overshoot a quota: a request reserves its signatures before the token is
touched, and the reservation becomes usage only when its activity commits (in the same
transaction). A quota set by an operator is re-read every few seconds.

`Meter.attempt` is the one way the pipeline carries out work: reserve, execute, then commit or
roll back. Whatever fails after the reservation (the work, building the commit, the commit
itself, a cancellation) releases it and undoes the work's side effects outside the database.
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

QUOTA_TTL_MS: Final = 5_000
log = get_logger("strongroom.metering")


def month_of(ms: int) -> str:
    t = time.gmtime(ms / 1000)
    return f"{t.tm_year:04d}-{t.tm_mon:02d}"


@dataclass(slots=True)
class _Count:
    committed: int
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class Reservation:
    organization_id: str
    month: str
    signatures: int


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
        self._counts: dict[tuple[str, str], _Count] = {}
        self._quotas: dict[str, tuple[int | None, int]] = {}

    def _count(self, org_id: str, month: str) -> _Count:
        c = self._counts.get((org_id, month))
        if c is None:
            c = _Count(self._repo.usage.signatures_used(org_id, month))
            self._counts[(org_id, month)] = c
        return c

    def quota(self, org_id: str, now_ms: int) -> int | None:
        cached = self._quotas.get(org_id)
        if cached is None or now_ms - cached[1] > QUOTA_TTL_MS:
            cached = (self._repo.usage.signature_quota(org_id), now_ms)
            self._quotas[org_id] = cached
        return cached[0]

    def reserve(self, org_id: str, signatures: int, now_ms: int) -> Reservation:
        month = month_of(now_ms)
        c = self._count(org_id, month)
        quota = self.quota(org_id, now_ms)
        if quota is not None and c.committed + c.reserved + signatures > quota:
            raise ResourceExhausted(
                f"monthly signature quota of {quota} is exhausted for this organization ({month}: {c.committed} used)",
                code=ErrorCode.FORBIDDEN,
            )
        c.reserved += signatures
        return Reservation(org_id, month, signatures)

    def ops(self, r: Reservation) -> list[Op]:
        return self._repo.usage.add_usage(r.organization_id, r.month, r.signatures)

    def committed(self, r: Reservation) -> None:
        c = self._count(r.organization_id, r.month)
        c.reserved -= r.signatures
        c.committed += r.signatures

    def released(self, r: Reservation) -> None:
        self._count(r.organization_id, r.month).reserved -= r.signatures

    def reserved(self, org_id: str, now_ms: int) -> int:
        """Signatures reserved by requests in flight this month (0 when none is running)."""
        return self._count(org_id, month_of(now_ms)).reserved

    @asynccontextmanager
    async def attempt(self, org_id: str, signatures: int, now_ms: int) -> AsyncIterator[Attempt]:
        """Reserve `signatures` (if any), run the body, then settle: see the module docstring.

        Leaving the block normally means the commit happened: the reservation becomes usage if
        the body `charged` it, else it is released. Leaving it by an exception releases the
        reservation and runs `rollback`; the exception goes on.
        """
        reservation = self.reserve(org_id, signatures, now_ms) if signatures else None
        attempt = Attempt(self, reservation)
        try:
            yield attempt
        except BaseException:
            if reservation is not None:
                self.released(reservation)
            if attempt.rollback is not None:
                try:
                    await attempt.rollback()
                except Exception as err:  # noqa: BLE001 - the original failure is the one to report
                    log.error("rollback_failed", organization_id=org_id, error=type(err).__name__)
            raise
        if reservation is not None:
            if attempt.charged:
                self.committed(reservation)
            else:
                self.released(reservation)

    def usage(self, org_id: str, now_ms: int, month: str | None = None) -> dict[str, object]:
        month = month or month_of(now_ms)
        quota = self.quota(org_id, now_ms)
        out: dict[str, object] = {
            "organizationId": org_id,
            "month": month,
            "signatures": str(self._count(org_id, month).committed),
        }
        if quota is not None:
            out["monthlySignatureQuota"] = str(quota)
        return out
