"""Shared helpers for the differential tests: byte mutations and a two-sided outcome.

Each differential test runs Strongroom's implementation and a reference library on the same
input and compares *outcomes*: both accept (then the results must be equal), both refuse (fine,
the error texts are not compared), or exactly one refuses, which must match an entry of the
file's explicit allow-list of known, justified disagreements.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

_BROAD = (Exception,)


@dataclass(frozen=True)
class Outcome:
    """What one implementation did with an input: a value, or the exception it raised."""

    ok: bool
    value: Any = None
    error: BaseException | None = None


def run(fn: Callable[[], Any]) -> Outcome:
    """Call ``fn`` and record its result or the exception (any Exception counts as a refusal)."""
    try:
        return Outcome(ok=True, value=fn())
    except _BROAD as exc:
        return Outcome(ok=False, error=exc)


@st.composite
def mutated(draw: st.DrawFn, base: bytes, max_ops: int = 3) -> bytes:
    """``base`` with one to ``max_ops`` random edits: overwrite, bit flip, insert, delete, truncate, append."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["set", "flip", "insert", "delete", "truncate", "append"]))
        if op in ("set", "flip", "delete") and not data:
            op = "insert"
        if op == "set":
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "flip":
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data.insert(draw(st.integers(0, len(data))), draw(st.integers(0, 255)))
        elif op == "delete":
            del data[draw(st.integers(0, len(data) - 1))]
        elif op == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        else:
            data += draw(st.binary(min_size=1, max_size=4))
    return bytes(data)
