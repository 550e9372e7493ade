"""The daemon's trusted clock: the one source of time for timestamp checks and `time.now`.

Wall time is anchored to the monotonic clock. Every reading compares how far the wall clock
moved with how far the monotonic clock moved since the last trusted reading:

- within the tolerance (plus a slew allowance of 1000 ppm of the elapsed time, far more than
  NTP's 500 ppm limit), the reading is trusted and becomes the new anchor, so slow NTP
  corrections are absorbed;
- beyond it, someone stepped the wall clock (back or forward). The clock is untrusted: every
  guarded operation is refused with `Unavailable` and `/readyz` says why. The anchor stays put,
  so trust comes back by itself when the wall clock is stepped back to where it should be, or
  when an operator re-anchors (`reanchor`, done at every start).

The sources are injectable, so tests step a fake wall clock without touching the system's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final, Protocol

from strongroom.errors import ErrorCode, Unavailable

SLEW_PPM: Final = 1000


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch; raises `Unavailable` when time cannot be trusted."""
        ...

    def status(self) -> str | None:
        """None when trusted, else why not (does not raise)."""
        ...

    def reading_ms(self) -> int:
        """What the clock reads, trusted or not: only for records that must be written either way
        (the audit entry of a request refused because the time could not be trusted)."""
        ...


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _mono_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class SystemClock:
    def __init__(
        self,
        tolerance_ms: int = 2_000,
        *,
        wall: Callable[[], int] = _wall_ms,
        monotonic: Callable[[], int] = _mono_ms,
    ) -> None:
        self.tolerance_ms: Final = tolerance_ms
        self._wall = wall
        self._mono = monotonic
        self._lock = threading.Lock()
        self._anchor_wall = wall()
        self._anchor_mono = monotonic()
        self._reason: str | None = None

    def _read(self) -> tuple[int, str | None]:
        wall, mono = self._wall(), self._mono()
        with self._lock:
            elapsed = mono - self._anchor_mono
            drift = (wall - self._anchor_wall) - elapsed
            allowed = self.tolerance_ms + elapsed * SLEW_PPM // 1_000_000
            if abs(drift) <= allowed:
                self._anchor_wall, self._anchor_mono = wall, mono
                self._reason = None
            elif drift < 0:
                self._reason = f"the wall clock was stepped back by {-drift} ms"
            else:
                self._reason = f"the wall clock jumped forward by {drift} ms"
            return wall, self._reason

    def now_ms(self) -> int:
        wall, reason = self._read()
        if reason is not None:
            raise Unavailable(f"trusted clock unavailable: {reason}", code=ErrorCode.INVALID_TIME)
        return wall

    def status(self) -> str | None:
        return self._read()[1]

    def reading_ms(self) -> int:
        return self._read()[0]

    def reanchor(self) -> None:
        """Accept the current wall time as correct (an operator decision)."""
        with self._lock:
            self._anchor_wall, self._anchor_mono = self._wall(), self._mono()
            self._reason = None


class FixedClock:
    """A settable clock for tests; `untrusted` makes it refuse like a stepped clock."""

    def __init__(self, now_ms: int) -> None:
        self.value = now_ms
        self.untrusted: str | None = None

    def now_ms(self) -> int:
        if self.untrusted is not None:
            raise Unavailable(f"trusted clock unavailable: {self.untrusted}", code=ErrorCode.INVALID_TIME)
        return self.value

    def status(self) -> str | None:
        return self.untrusted

    def reading_ms(self) -> int:
        return self.value
