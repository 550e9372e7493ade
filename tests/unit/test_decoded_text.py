"""The exact decimal amounts of the decoded view (service/decoded.py): never through a float."""

from __future__ import annotations

import pytest

from strongroom.service.decoded import LAMPORTS_PER_SOL, WEI_PER_ETH, decimal_units


@pytest.mark.parametrize(
    ("amount", "unit", "text"),
    [
        (0, WEI_PER_ETH, "0"),
        (1, WEI_PER_ETH, "0.000000000000000001"),
        (10**18, WEI_PER_ETH, "1"),
        (25 * 10**16, WEI_PER_ETH, "0.25"),
        (2**256 - 1, WEI_PER_ETH, "115792089237316195423570985008687907853269984665640564039457.584007913129639935"),
        (1_500_000_001, LAMPORTS_PER_SOL, "1.500000001"),
        (-15 * 10**17, WEI_PER_ETH, "-1.5"),
    ],
)
def test_decimal_units_is_exact(amount: int, unit: int, text: str) -> None:
    assert decimal_units(amount, unit) == text
