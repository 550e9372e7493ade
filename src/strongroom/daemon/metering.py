"""Usage metering: signatures per organization per calendar month (UTC), with optional quotas.

Turnkey prices per signature, so that is what is counted. Counts live in memory (loaded from
the store on first use) together with the signatures currently being made, so concurrent
requests cannot overshoot a quota: a request reserves its signatures before the token is
touched, and the reservation becomes usage only when its activity commits (in the same
transaction). A quota set by an operator is re-read every few seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from strongroom.errors import ErrorCode, ResourceExhausted
from strongroom.store.group_commit import Op
from strongroom.store.records import Repository

QUOTA_TTL_MS: Final = 5_000


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


class Meter:
    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self._counts: dict[tuple[str, str], _Count] = {}
        self._quotas: dict[str, tuple[int | None, int]] = {}

    def _count(self, org_id: str, month: str) -> _Count:
        c = self._counts.get((org_id, month))
        if c is None:
            c = _Count(self._repo.signatures_used(org_id, month))
            self._counts[(org_id, month)] = c
        return c

    def quota(self, org_id: str, now_ms: int) -> int | None:
        cached = self._quotas.get(org_id)
        if cached is None or now_ms - cached[1] > QUOTA_TTL_MS:
            cached = (self._repo.signature_quota(org_id), now_ms)
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
        return self._repo.add_usage(r.organization_id, r.month, r.signatures)

    def committed(self, r: Reservation) -> None:
        c = self._count(r.organization_id, r.month)
        c.reserved -= r.signatures
        c.committed += r.signatures

    def released(self, r: Reservation) -> None:
        self._count(r.organization_id, r.month).reserved -= r.signatures

    def reserved(self, org_id: str, now_ms: int) -> int:
        """Signatures reserved by requests in flight this month (0 when none is running)."""
        return self._count(org_id, month_of(now_ms)).reserved

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
