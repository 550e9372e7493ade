"""The daemon's trusted clock: the one source of time for timestamp checks.

Wall time is anchored to the monotonic clock at start. If the wall clock is later seen to
have moved backwards, or to disagree with the monotonic clock by more than the tolerance
(someone stepped it), the clock is no longer trusted and every guarded operation is refused
until an operator restarts the daemon or the clock is re-anchored.
"""

from __future__ import annotations

import threading
import time
from typing import Final, Protocol

from strongroom.errors import ErrorCode, Unavailable


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch; raises `Unavailable` when time cannot be trusted."""
        ...


class SystemClock:
    def __init__(self, tolerance_ms: int = 2_000) -> None:
        self.tolerance_ms: Final = tolerance_ms
        self._lock = threading.Lock()
        self._anchor_wall = time.time_ns() // 1_000_000
        self._anchor_mono = time.monotonic_ns() // 1_000_000
        self._last = self._anchor_wall
        self.untrusted_reason: str | None = None

    def now_ms(self) -> int:
        wall = time.time_ns() // 1_000_000
        mono = time.monotonic_ns() // 1_000_000
        with self._lock:
            if self.untrusted_reason is None:
                drift = (wall - self._anchor_wall) - (mono - self._anchor_mono)
                if wall < self._last - self.tolerance_ms:
                    self.untrusted_reason = f"wall clock stepped back by {self._last - wall} ms"
                elif abs(drift) > self.tolerance_ms:
                    self.untrusted_reason = f"wall clock jumped by {drift} ms against the monotonic clock"
                self._last = max(self._last, wall)
            reason = self.untrusted_reason
        if reason is not None:
            raise Unavailable(f"trusted clock unavailable: {reason}", code=ErrorCode.INVALID_TIME)
        return wall

    def reanchor(self) -> None:
        with self._lock:
            self._anchor_wall = time.time_ns() // 1_000_000
            self._anchor_mono = time.monotonic_ns() // 1_000_000
            self._last = self._anchor_wall
            self.untrusted_reason = None


class FixedClock:
    """A settable clock for tests."""

    def __init__(self, now_ms: int) -> None:
        self.value = now_ms

    def now_ms(self) -> int:
        return self.value
