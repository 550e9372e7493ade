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


def _paths(item: Any, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    out = [prefix]
    if isinstance(item, list):
        for i, child in enumerate(item):
            out += _paths(child, (*prefix, i))
    return out


def _replace(item: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    copy = list(item)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)
    return copy


rlp_leaves = st.one_of(
    st.binary(max_size=4),
    st.binary(min_size=19, max_size=21),
    st.binary(min_size=31, max_size=33),
    st.integers(0, 2**80).map(lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")),
    st.integers(1, 2**64).map(lambda n: b"\x00" + n.to_bytes((n.bit_length() + 7) // 8, "big")),
    st.just(b""),
    st.just(b"\x01"),
    st.just(b"\x02"),
    st.just([]),
)


@st.composite
def edited_rlp_item(draw: st.DrawFn, item: Any, max_ops: int = 2) -> Any:
    """A decoded RLP item with one to ``max_ops`` structural edits: replace any node by a leaf
    (random, width-edge, leading-zero, empty), drop a list element, or append one."""
    for _ in range(draw(st.integers(1, max_ops))):
        path = draw(st.sampled_from(_paths(item)))
        node: Any = item
        for i in path:
            node = node[i]
        op = draw(st.sampled_from(["replace", "drop", "append"] if isinstance(node, list) else ["replace"]))
        if op == "replace" and path:
            item = _replace(item, path, draw(rlp_leaves))
        elif op == "drop" and node:
            item = _replace(item, path, [c for j, c in enumerate(node) if j != draw(st.integers(0, len(node) - 1))])
        elif op == "append":
            item = _replace(item, path, [*node, draw(rlp_leaves)])
    return item
