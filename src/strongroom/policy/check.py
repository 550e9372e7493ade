"""Static checks run when a policy is created or updated.

`check_policy(condition, consensus, time)` parses each non-empty field and reports every problem
it can see without a request: syntax errors, unknown root keywords (and keywords used in the wrong
field), unknown fields on known objects, type errors such as comparing a string with an int,
`&&` on a non-bool, `.count()` on a non-list, ordering comparisons on strings, and a top level
that is not a bool. Unsupported features (`CronSpan`, the `tron`/`bitcoin`/`tempo` keywords) are
reported too, so that a policy this daemon cannot evaluate is refused up front. Values whose type
is not known statically (map entries, `activity.params` fields) are accepted; the evaluator
checks them at run time.

The cost of evaluating a policy is bounded here, before it is stored: at most `MAX_NODES`
expression nodes, `.any/.all/.filter` nested at most `MAX_QUANTIFIER_NESTING` deep, list literals
of at most `MAX_LIST_ITEMS` items and string literals of at most `MAX_STRING_CHARS` characters
(the parser already bounds nesting depth and the text's length). At run time a step budget bounds
what the request's own data can add (`strongroom.policy.authorizer`).

An empty or absent field means "no restriction" and produces no issue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, assert_never

from strongroom.policy import ast
from strongroom.policy.errors import PolicySyntaxError
from strongroom.policy.parser import parse_expression
from strongroom.policy.schema import (
    ANY,
    BOOL,
    CONDITION_ROOTS,
    CONSENSUS_ROOTS,
    INT,
    STRING,
    TIME_ROOTS,
    ListOf,
    OpenMap,
    Prim,
    Struct,
    Type,
    Unknown,
    describe,
)

PolicyField = Literal["condition", "consensus", "time"]

ROOTS: Final[Mapping[PolicyField, Mapping[str, Type]]] = {
    "condition": CONDITION_ROOTS,
    "consensus": CONSENSUS_ROOTS,
    "time": TIME_ROOTS,
}
# Turnkey keywords this daemon does not provide (chains out of scope).
UNSUPPORTED_KEYWORDS: Final = frozenset({"tron", "bitcoin", "tempo"})
MAX_NODES: Final = 2048
MAX_QUANTIFIER_NESTING: Final = 3
MAX_LIST_ITEMS: Final = 1024
MAX_STRING_CHARS: Final = 4096


@dataclass(frozen=True, slots=True)
class PolicyIssue:
    """One problem found in a policy; `line`/`column` are 1-based within `field`'s text."""

    message: str
    line: int
    column: int
    field: PolicyField = "condition"


def _ticks(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in sorted(names))


def _compatible(a: Type, b: Type) -> bool:
    if isinstance(a, Unknown) or isinstance(b, Unknown):
        return True
    if isinstance(a, Prim) and isinstance(b, Prim):
        return a.name == b.name
    if isinstance(a, ListOf) and isinstance(b, ListOf):
        return _compatible(a.item, b.item)
    if isinstance(a, Struct) and isinstance(b, Struct):
        return a.name == b.name
    return isinstance(a, OpenMap) and isinstance(b, OpenMap)


def _is_list(t: Type) -> bool:
    return isinstance(t, ListOf | Unknown)


class _Checker:
    def __init__(self, field: PolicyField) -> None:
        self.field: PolicyField = field
        self.roots = ROOTS[field]
        self.issues: list[PolicyIssue] = []

    def report(self, message: str, node: ast.Expr) -> Type:
        self.issues.append(PolicyIssue(message, node.pos.line, node.pos.column, self.field))
        return ANY

    def expect(self, node: ast.Expr, scope: Mapping[str, Type], want: Type, what: str) -> Type:
        got = self.infer(node, scope)
        if not _compatible(got, want):
            self.report(f"{what} must be {describe(want)}, got {describe(got)}", node)
        return got

    def name(self, node: ast.Name, scope: Mapping[str, Type]) -> Type:
        if node.name in scope:
            return scope[node.name]
        if node.name in self.roots:
            return self.roots[node.name]
        for other, roots in ROOTS.items():
            if node.name in roots:
                return self.report(f"keyword `{node.name}` is only available in the `{other}` field", node)
        if node.name in UNSUPPORTED_KEYWORDS:
            return self.report(f"keyword `{node.name}` is not supported by this daemon", node)
        return self.report(f"unknown keyword `{node.name}`; expected one of {_ticks(self.roots)}", node)

    def field_of(self, obj: Type, name: str, node: ast.Expr) -> Type:
        match obj:
            case Struct(fields=fields):
                if name in fields:
                    return fields[name]
                return self.report(
                    f"unknown field `{name}` on {describe(obj)}; expected one of {_ticks(fields)}",
                    node,
                )
            case ListOf() if name == "count":
                return INT
            case OpenMap() | Unknown():
                return ANY
        return self.report(f"cannot read field `{name}` of {describe(obj)}", node)

    def index(self, node: ast.Index, scope: Mapping[str, Type]) -> Type:
        obj = self.infer(node.obj, scope)
        match obj:
            case ListOf(item=item):
                self.expect(node.index, scope, INT, "a list index")
                return item
            case Prim(name="string"):
                self.expect(node.index, scope, INT, "a string index")
                return STRING
            case Struct():
                if isinstance(node.index, ast.StrLit):
                    return self.field_of(obj, node.index.value, node.index)
                self.expect(node.index, scope, STRING, "a map key")
                return ANY
            case OpenMap():
                self.expect(node.index, scope, STRING, "a map key")
                return ANY
            case Unknown():
                self.infer(node.index, scope)
                return ANY
        self.infer(node.index, scope)
        return self.report(f"cannot index {describe(obj)}", node)

    def compare(self, node: ast.Compare, scope: Mapping[str, Type]) -> Type:
        left = self.infer(node.left, scope)
        right = self.infer(node.right, scope)
        if node.op in ("==", "!="):
            if not _compatible(left, right):
                self.report(f"cannot compare {describe(left)} with {describe(right)} using `{node.op}`", node)
            return BOOL
        if STRING in (left, right):
            self.report(f"`{node.op}` is not defined for strings; only `==` and `!=` compare strings", node)
        elif not (_compatible(left, INT) and _compatible(right, INT)):
            self.report(f"`{node.op}` needs two ints, got {describe(left)} and {describe(right)}", node)
        return BOOL

    def items(self, target: Type, what: str, node: ast.Expr) -> Type:
        """The element type of a list operand; reports a non-list."""
        if isinstance(target, ListOf):
            return target.item
        if not isinstance(target, Unknown):
            self.report(f"{what} needs a list, got {describe(target)}", node)
        return ANY

    def infer(self, node: ast.Expr, scope: Mapping[str, Type]) -> Type:
        match node:
            case ast.BoolLit():
                return BOOL
            case ast.IntLit() | ast.TimestampLit():
                return INT
            case ast.StrLit():
                return STRING
            case ast.ListLit(items=items):
                types = [self.infer(item, scope) for item in items]
                for item, t in zip(items[1:], types[1:], strict=True):
                    if not _compatible(types[0], t):
                        self.report(f"list items must all have one type: {describe(types[0])} and {describe(t)}", item)
                        break
                known = [t for t in types if not isinstance(t, Unknown)]
                return ListOf(known[0] if known else ANY)
            case ast.Call(name=name, args=args):
                for arg in args:
                    self.infer(arg, scope)
                return self.report(f"function `{name}` is not supported by this daemon", node)
            case ast.Name():
                return self.name(node, scope)
            case ast.Attribute(obj=obj, name=name):
                return self.field_of(self.infer(obj, scope), name, node)
            case ast.Index():
                return self.index(node, scope)
            case ast.Slice(obj=obj, start=start, end=end):
                target = self.infer(obj, scope)
                for bound in (start, end):
                    if bound is not None:
                        self.expect(bound, scope, INT, "a slice bound")
                if isinstance(target, ListOf | Unknown) or target == STRING:
                    return target
                return self.report(f"cannot slice {describe(target)}; only strings and lists", node)
            case ast.Not(operand=operand):
                self.expect(operand, scope, BOOL, "the operand of `!`")
                return BOOL
            case ast.BoolOp(op=op, left=left, right=right):
                self.expect(left, scope, BOOL, f"the left operand of `{op}`")
                self.expect(right, scope, BOOL, f"the right operand of `{op}`")
                return BOOL
            case ast.Compare():
                return self.compare(node, scope)
            case ast.Membership(element=element, container=container):
                needle = self.infer(element, scope)
                want = self.items(self.infer(container, scope), "the right side of `in`", container)
                if not _compatible(needle, want):
                    self.report(f"cannot look for {describe(needle)} in a list of {describe(want)}", node)
                return BOOL
            case ast.Contains(target=target, value=value):
                want = self.items(self.infer(target, scope), "`.contains`", node)
                needle = self.infer(value, scope)
                if not _compatible(needle, want):
                    self.report(f"cannot look for {describe(needle)} in a list of {describe(want)}", value)
                return BOOL
            case ast.Count(target=target):
                self.items(self.infer(target, scope), "`.count()`", node)
                return INT
            case ast.Quantifier(kind=kind, target=target, var=var, body=body):
                list_type = self.infer(target, scope)
                item_type = self.items(list_type, f"`.{kind}`", node)
                self.expect(body, {**scope, var: item_type}, BOOL, f"the predicate of `.{kind}`")
                return BOOL if kind != "filter" else (list_type if isinstance(list_type, ListOf) else ListOf(ANY))
        assert_never(node)


def check_limits(expr: ast.Expr, field: PolicyField) -> list[PolicyIssue]:
    """The cost limits of the module docstring (computed without recursion)."""
    issues: list[PolicyIssue] = []
    nodes = 0
    stack: list[tuple[ast.Expr, int]] = [(expr, 0)]
    while stack:
        node, quantifiers = stack.pop()
        nodes += 1
        if isinstance(node, ast.ListLit) and len(node.items) > MAX_LIST_ITEMS:
            issues.append(
                PolicyIssue(
                    f"a list literal has more than {MAX_LIST_ITEMS} items", node.pos.line, node.pos.column, field
                )
            )
        elif isinstance(node, ast.StrLit) and len(node.value) > MAX_STRING_CHARS:
            issues.append(
                PolicyIssue(
                    f"a string literal is longer than {MAX_STRING_CHARS} characters",
                    node.pos.line,
                    node.pos.column,
                    field,
                )
            )
        elif isinstance(node, ast.Quantifier):
            if quantifiers + 1 > MAX_QUANTIFIER_NESTING:
                issues.append(
                    PolicyIssue(
                        f"`.any`, `.all` and `.filter` nest more than {MAX_QUANTIFIER_NESTING} deep",
                        node.pos.line,
                        node.pos.column,
                        field,
                    )
                )
                continue
            stack.append((node.target, quantifiers))
            stack.append((node.body, quantifiers + 1))
            continue
        stack.extend((child, quantifiers) for child in ast.children(node))
    if nodes > MAX_NODES:
        issues.append(
            PolicyIssue(f"the expression has more than {MAX_NODES} nodes", expr.pos.line, expr.pos.column, field)
        )
    return issues


def check_expression(expr: ast.Expr, field: PolicyField) -> list[PolicyIssue]:
    """Type-check a parsed expression as the given policy field; it must be a bool."""
    limits = check_limits(expr, field)
    if limits:
        return limits
    checker = _Checker(field)
    try:
        result = checker.infer(expr, {})
    except RecursionError:
        return [PolicyIssue("expression nests too deeply", expr.pos.line, expr.pos.column, field)]
    if not _compatible(result, BOOL):
        checker.report(f"the {field} must be a bool expression, got {describe(result)}", expr)
    return checker.issues


def check_field(text: str | None, field: PolicyField) -> list[PolicyIssue]:
    """Parse and check one field; empty or absent text means "no restriction"."""
    if text is None or not text.strip():
        return []
    try:
        expr = parse_expression(text)
    except PolicySyntaxError as err:
        return [PolicyIssue(err.reason, err.line, err.column, field)]
    return check_expression(expr, field)


def check_policy(condition: str | None, consensus: str | None, time: str | None = None) -> list[PolicyIssue]:
    """All issues in a policy's three expressions, in field then source order; empty means valid."""
    issues = check_field(condition, "condition") + check_field(consensus, "consensus") + check_field(time, "time")
    return sorted(issues, key=lambda i: (("condition", "consensus", "time").index(i.field), i.line, i.column))


__all__ = [
    "MAX_LIST_ITEMS",
    "MAX_NODES",
    "MAX_QUANTIFIER_NESTING",
    "MAX_STRING_CHARS",
    "PolicyField",
    "PolicyIssue",
    "check_expression",
    "check_field",
    "check_limits",
    "check_policy",
]
