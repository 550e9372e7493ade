"""Amounts on the command line: `21000`, `30gwei`, `0.01eth` (wei by default)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

UNITS: Final = {"wei": 0, "gwei": 9, "eth": 18, "ether": 18}


def parse_amount(text: str) -> int:
    """An integer number of wei; refuses fractions of a wei and negative amounts."""
    raw = text.strip().lower().replace("_", "")
    unit = next((u for u in sorted(UNITS, key=len, reverse=True) if raw.endswith(u)), "wei")
    number = raw.removesuffix(unit).strip() if raw.endswith(unit) else raw
    try:
        value = Decimal(number) * (Decimal(10) ** UNITS[unit])
    except InvalidOperation as err:
        raise ValueError(f"`{text}` is not an amount (examples: 21000, 30gwei, 0.01eth)") from err
    if value < 0 or value != value.to_integral_value():
        raise ValueError(f"`{text}` is not a whole, non-negative number of wei")
    return int(value)
