"""Per-client-IP token buckets, as Turnkey limits clients (60 requests per second by default).

The client IP is the TCP peer, unless the peer is a configured trusted proxy: then it is the
right-most `X-Forwarded-For` entry that is not itself a trusted proxy. A client cannot spoof
its address by sending the header directly. Requests over the local Unix socket have no IP and
are not limited.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

RATE_LIMIT_MESSAGE: Final = "Too many requests. Please wait and try again in a few seconds."
_MAX_BUCKETS: Final = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    client_ip: str


class RateLimiter:
    def __init__(self, per_second: float, burst: int | None = None, trusted_proxies: Iterable[str] = ()) -> None:
        self.per_second: Final = per_second
        self.burst: Final = burst if burst is not None else max(1, int(per_second))
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies]
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    def _trusted(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self._proxies)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        if not forwarded_for or not self._trusted(peer):
            return peer
        for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
            if hop and not self._trusted(hop):
                return hop
        return peer

    def check(self, peer: str, forwarded_for: str | None, now: float | None = None) -> Verdict:
        ip = self.client_ip(peer, forwarded_for)
        if not self.enabled:
            return Verdict(True, 0, 0, ip)
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= _MAX_BUCKETS:
                self._evict(now)
            bucket = _Bucket(float(self.burst), now)
            self._buckets[ip] = bucket
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.per_second)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return Verdict(True, self.burst, int(bucket.tokens), ip)
        return Verdict(False, self.burst, 0, ip)

    def _evict(self, now: float) -> None:
        # Buckets that have refilled completely carry no state worth keeping.
        full = self.burst / self.per_second
        for ip in [ip for ip, b in self._buckets.items() if now - b.at >= full]:
            del self._buckets[ip]
        if len(self._buckets) >= _MAX_BUCKETS:
            self._buckets.clear()
