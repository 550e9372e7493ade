"""Immutable AST of the policy language.

Every node carries `pos`, the position of the token that identifies it: the literal or name itself,
the operator of a binary or unary expression, the field name of an access, the `[` of an index or
slice, the method name of a method call, the function name of a call. Positions are excluded from
equality so that `parse(to_source(e)) == e` holds for any parsed `e`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal


@dataclass(frozen=True, slots=True)
class Pos:
    """1-based line and column; `Pos(0, 0)` for synthesised nodes."""

    line: int
    column: int


NOPOS: Final = Pos(0, 0)

BoolOperator = Literal["&&", "||"]
CompareOperator = Literal["==", "!=", "<", ">", "<=", ">="]
QuantifierKind = Literal["any", "all", "filter"]

BOOL_OPERATORS: Final[tuple[BoolOperator, ...]] = ("&&", "||")
COMPARE_OPERATORS: Final[tuple[CompareOperator, ...]] = ("==", "!=", "<", ">", "<=", ">=")
QUANTIFIER_KINDS: Final[tuple[QuantifierKind, ...]] = ("any", "all", "filter")


@dataclass(frozen=True, slots=True)
class BoolLit:
    value: bool
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class IntLit:
    value: int
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class StrLit:
    value: str
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Expr, ...]
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class TimestampLit:
    """`Timestamp('<RFC 3339, zero UTC offset>')`; `ms` is milliseconds since the Unix epoch."""

    text: str
    ms: int
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """A function other than `Timestamp` (only `CronSpan` parses; the checker reports it unsupported)."""

    name: str
    args: tuple[Expr, ...]
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Name:
    """A root keyword (`activity`, `approvers`, ...) or a variable bound by `.any/.all/.filter`."""

    name: str
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Attribute:
    """`obj.name`; on a list, `.count` without parentheses is the element count."""

    obj: Expr
    name: str
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Index:
    """`obj[index]`: list or string position, or map key."""

    obj: Expr
    index: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Slice:
    """`obj[start..end]`, end-exclusive; an omitted bound is the start or end of `obj`."""

    obj: Expr
    start: Expr | None
    end: Expr | None
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: BoolOperator
    left: Expr
    right: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOperator
    left: Expr
    right: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Membership:
    """`element in container`."""

    element: Expr
    container: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Quantifier:
    """`target.any(var, body)`, `target.all(var, body)`, `target.filter(var, body)`."""

    kind: QuantifierKind
    target: Expr
    var: str
    body: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Contains:
    """`target.contains(value)`."""

    target: Expr
    value: Expr
    pos: Pos = field(default=NOPOS, compare=False)


@dataclass(frozen=True, slots=True)
class Count:
    """`target.count()`."""

    target: Expr
    pos: Pos = field(default=NOPOS, compare=False)


Expr = (
    BoolLit
    | IntLit
    | StrLit
    | ListLit
    | TimestampLit
    | Call
    | Name
    | Attribute
    | Index
    | Slice
    | Not
    | BoolOp
    | Compare
    | Membership
    | Quantifier
    | Contains
    | Count
)


def children(node: Expr) -> Iterator[Expr]:
    """The direct sub-expressions of `node`, left to right."""
    match node:
        case BoolLit() | IntLit() | StrLit() | TimestampLit() | Name():
            return
        case ListLit(items=items) | Call(args=items):
            yield from items
        case Attribute(obj=obj):
            yield obj
        case Index(obj=obj, index=index):
            yield obj
            yield index
        case Slice(obj=obj, start=start, end=end):
            yield obj
            if start is not None:
                yield start
            if end is not None:
                yield end
        case Not(operand=operand):
            yield operand
        case BoolOp(left=left, right=right) | Compare(left=left, right=right):
            yield left
            yield right
        case Membership(element=element, container=container):
            yield element
            yield container
        case Quantifier(target=target, body=body):
            yield target
            yield body
        case Contains(target=target, value=value):
            yield target
            yield value
        case Count(target=target):
            yield target


def depth(node: Expr) -> int:
    """Height of the tree (a leaf has depth 1), computed without recursion."""
    best = 0
    stack: list[tuple[Expr, int]] = [(node, 1)]
    while stack:
        current, level = stack.pop()
        best = max(best, level)
        stack.extend((child, level + 1) for child in children(current))
    return best


__all__ = [
    "BOOL_OPERATORS",
    "COMPARE_OPERATORS",
    "NOPOS",
    "QUANTIFIER_KINDS",
    "Attribute",
    "BoolLit",
    "BoolOp",
    "BoolOperator",
    "Call",
    "Compare",
    "CompareOperator",
    "Contains",
    "Count",
    "Expr",
    "Index",
    "IntLit",
    "ListLit",
    "Membership",
    "Name",
    "Not",
    "Pos",
    "Quantifier",
    "QuantifierKind",
    "Slice",
    "StrLit",
    "TimestampLit",
    "children",
    "depth",
]
