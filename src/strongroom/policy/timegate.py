"""`Timestamp('...')` literals: RFC 3339 date-times with a zero UTC offset, as epoch milliseconds.

Pure arithmetic (no `datetime`, no clock): the policy package never reads the time; the caller
passes `now_ms`, which becomes `time.now`.
"""

from __future__ import annotations

import re
from typing import Final

_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|z|\+00:00)",
    re.ASCII,
)
_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_before_year(year: int) -> int:
    """Days from 1970-01-01 to January 1st of `year` (negative before 1970)."""
    y = year - 1
    return 365 * (year - 1970) + (y // 4 - y // 100 + y // 400) - (1969 // 4 - 1969 // 100 + 1969 // 400)


def parse_timestamp_ms(text: str) -> int | None:
    """Milliseconds since the Unix epoch for `YYYY-MM-DDTHH:MM:SS[.fff]Z`, or None if invalid.

    Fractions beyond milliseconds are truncated; leap seconds (`:60`) are rejected.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    if not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        return None
    days_in_month = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= days_in_month:
        return None
    days = _days_before_year(year) + sum(_DAYS_IN_MONTH[: month - 1]) + day - 1
    if month > 2 and _is_leap(year):
        days += 1
    millis = int((fraction + "000")[:3])
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis


__all__ = ["parse_timestamp_ms"]
