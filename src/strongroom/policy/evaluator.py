"""Evaluate an AST against a request environment.

Values are plain data: `None`, `bool`, `int` (arbitrary precision), `str`, `list`, `dict`.
Timestamps are `int` milliseconds since the Unix epoch; `time.now` is always the `now_ms` argument
(the environment cannot override it).

Semantics (Turnkey §9.2, made strict so that an unexpected input fails closed):

- No short-circuit: `&&` and `||` evaluate both operands, and `.any/.all/.filter` visit every
  element, so a reference to something absent (e.g. `wallet.id` when the request has no wallet)
  is an error even when the other side would decide the result.
- A missing keyword, field or map key is an error, as are type mismatches: `&&`, `||`, `!` and
  predicates need booleans; `<`, `>`, `<=`, `>=` need integers; `==`/`!=` need both sides of the
  same kind (null equals only null and is unequal to anything else); an index must be an integer
  inside the list or string, a slice's bounds must satisfy `0 <= start <= end <= len`.
- `.count` (with or without parentheses) and `.contains`, `in`, `.any/.all/.filter` need a list.

`evaluate` is total: for any AST and any environment it returns a value or raises
`PolicyEvalError`, never another exception (deep recursion is reported as an evaluation error).

Cost is bounded: every evaluated node costs one step, and comparing or searching lists costs one
step per element; past the `Budget` it is given, evaluation stops with `PolicyBudgetExceeded`.
Whether a policy *applies* to a request at all (the namespaces it reads exist) is decided before
evaluation, by `strongroom.policy.namespaces`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from strongroom.policy import ast
from strongroom.policy.errors import PolicyBudgetExceeded, PolicyEvalError

DEFAULT_STEPS = 20_000
"""Steps one evaluation may take when the caller gives no budget."""


class Budget:
    """Evaluation steps left; shared by the evaluations of one decision (mutable)."""

    __slots__ = ("left",)

    def __init__(self, steps: int) -> None:
        self.left = steps

    def __repr__(self) -> str:
        return f"Budget({self.left})"


def type_name(value: object) -> str:
    """The policy-language name of a value's type, for messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return "unsupported value"


def _fail(message: str, node: ast.Expr) -> PolicyEvalError:
    return PolicyEvalError(message, node.pos.line, node.pos.column)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_SCALARS: frozenset[type] = frozenset({str, int, bool})
_LEFT = {"&&": "the left operand of `&&`", "||": "the left operand of `||`"}
_RIGHT = {"&&": "the right operand of `&&`", "||": "the right operand of `||`"}


def _equal(left: object, right: object, node: ast.Expr, ev: _Evaluator) -> bool:
    """Structural equality of two values of the same kind; a kind mismatch is an error."""
    kind = type(left)
    if kind is type(right) and kind in _SCALARS:  # the common case, checked cheaply
        return left == right
    if left is None or right is None:
        return left is None and right is None
    name = type_name(left)
    if name != type_name(right) or name == "unsupported value":
        raise _fail(f"cannot compare {type_name(left)} with {type_name(right)}", node)
    if isinstance(left, list) and isinstance(right, list):
        if len(left) != len(right):
            return False
        ev.charge(len(left), node)
        results = [_equal(a, b, node, ev) for a, b in zip(left, right, strict=True)]
        return all(results)
    if isinstance(left, dict) and isinstance(right, dict):
        if set(left) != set(right):
            return False
        ev.charge(len(left), node)
        results = [_equal(left[k], right[k], node, ev) for k in left]
        return all(results)
    return left == right


class _Evaluator:
    def __init__(self, env: Mapping[str, object], now_ms: int, steps: int) -> None:
        self.env = env
        self.time: dict[str, object] = {"now": now_ms}
        self.left = steps

    def charge(self, steps: int, node: ast.Expr) -> None:
        self.left -= steps
        if self.left < 0:
            raise PolicyBudgetExceeded(
                "evaluation budget exceeded: the policy does too much work for one request",
                node.pos.line,
                node.pos.column,
            )

    def boolean(self, node: ast.Expr, scope: Mapping[str, object], what: str) -> bool:
        value = self.eval(node, scope)
        if not isinstance(value, bool):
            raise _fail(f"{what} must be a bool, got {type_name(value)}", node)
        return value

    def integer(self, node: ast.Expr, scope: Mapping[str, object], what: str) -> int:
        value = self.eval(node, scope)
        if not _is_int(value):
            raise _fail(f"{what} must be an int, got {type_name(value)}", node)
        assert isinstance(value, int)
        return value

    def sequence(self, node: ast.Expr, scope: Mapping[str, object], what: str) -> list[object]:
        value = self.eval(node, scope)
        if not isinstance(value, list):
            raise _fail(f"{what} needs a list, got {type_name(value)}", node)
        return value

    def lookup(self, node: ast.Name, scope: Mapping[str, object]) -> object:
        name = node.name
        if name in scope:
            return scope[name]
        if name == "time":
            return self.time
        if name in self.env:
            return self.env[name]
        raise _fail(f"missing keyword `{name}`: the request does not provide it", node)

    def eval(self, node: ast.Expr, scope: Mapping[str, object]) -> object:
        # A table keyed by node type: a `match` over class patterns tries each case in turn,
        # which made evaluation of an organization's 100 policies cost milliseconds.
        self.left -= 1
        if self.left < 0:
            self.charge(0, node)
        handler = _DISPATCH.get(type(node))
        if handler is None:  # pragma: no cover - every node kind has a handler
            raise _fail("unsupported expression", node)
        return handler(self, node, scope)

    def _literal(self, node: Any, _scope: Mapping[str, object]) -> object:
        return node.value

    def _timestamp(self, node: Any, _scope: Mapping[str, object]) -> object:
        return node.ms

    def _list(self, node: Any, scope: Mapping[str, object]) -> object:
        return [self.eval(item, scope) for item in node.items]

    def _call(self, node: Any, _scope: Mapping[str, object]) -> object:
        raise _fail(f"function `{node.name}` is not supported", node)

    def _attribute(self, node: Any, scope: Mapping[str, object]) -> object:
        obj = self.eval(node.obj, scope)
        if type(obj) is dict and node.name in obj:  # the common case, without a call
            return obj[node.name]
        return self.attribute(obj, node.name, node)

    def _index(self, node: Any, scope: Mapping[str, object]) -> object:
        return self.index(self.eval(node.obj, scope), self.eval(node.index, scope), node)

    def _not(self, node: Any, scope: Mapping[str, object]) -> object:
        return not self.boolean(node.operand, scope, "the operand of `!`")

    def _boolop(self, node: Any, scope: Mapping[str, object]) -> object:
        op = node.op
        lhs = self.boolean(node.left, scope, _LEFT[op])
        rhs = self.boolean(node.right, scope, _RIGHT[op])
        return (lhs and rhs) if op == "&&" else (lhs or rhs)

    def _membership(self, node: Any, scope: Mapping[str, object]) -> object:
        item = self.eval(node.element, scope)
        values = self.sequence(node.container, scope, "`in`")
        self.charge(len(values), node)
        results = [_equal(item, value, node, self) for value in values]
        return any(results)

    def _contains(self, node: Any, scope: Mapping[str, object]) -> object:
        values = self.sequence(node.target, scope, "`.contains`")
        item = self.eval(node.value, scope)
        self.charge(len(values), node)
        results = [_equal(item, value, node, self) for value in values]
        return any(results)

    def _count(self, node: Any, scope: Mapping[str, object]) -> object:
        return len(self.sequence(node.target, scope, "`.count()`"))

    def attribute(self, obj: object, name: str, node: ast.Attribute) -> object:
        if isinstance(obj, dict):
            if name in obj:
                return obj[name]
            raise _fail(f"missing field `{name}`", node)
        if isinstance(obj, list) and name == "count":
            return len(obj)
        raise _fail(f"cannot read field `{name}` of {type_name(obj)}", node)

    def index(self, obj: object, key: object, node: ast.Index) -> object:
        if isinstance(obj, dict):
            if not isinstance(key, str):
                raise _fail(f"a map key must be a string, got {type_name(key)}", node)
            if key in obj:
                return obj[key]
            raise _fail(f"missing key `{key[:64]}`", node)
        if isinstance(obj, list | str):
            if not _is_int(key):
                raise _fail(f"an index must be an int, got {type_name(key)}", node)
            assert isinstance(key, int)
            if not 0 <= key < len(obj):
                raise _fail(f"index out of range for a {type_name(obj)} of length {len(obj)}", node)
            return obj[key]
        raise _fail(f"cannot index {type_name(obj)}", node)

    def slice(self, node: ast.Slice, scope: Mapping[str, object]) -> object:
        obj = self.eval(node.obj, scope)
        start = 0 if node.start is None else self.integer(node.start, scope, "a slice bound")
        end = None if node.end is None else self.integer(node.end, scope, "a slice bound")
        if not isinstance(obj, list | str):
            raise _fail(f"cannot slice {type_name(obj)}", node)
        stop = len(obj) if end is None else end
        if not 0 <= start <= stop <= len(obj):
            raise _fail(f"slice out of range for a {type_name(obj)} of length {len(obj)}", node)
        return obj[start:stop]

    def compare(self, node: ast.Compare, scope: Mapping[str, object]) -> bool:
        left = self.eval(node.left, scope)
        right = self.eval(node.right, scope)
        op = node.op
        if op == "==":
            return _equal(left, right, node, self)
        if op == "!=":
            return not _equal(left, right, node, self)
        if not (_is_int(left) and _is_int(right)):
            raise _fail(f"`{op}` needs two ints, got {type_name(left)} and {type_name(right)}", node)
        assert isinstance(left, int)
        assert isinstance(right, int)
        if op == "<":
            return left < right
        if op == ">":
            return left > right
        if op == "<=":
            return left <= right
        return left >= right

    def quantifier(self, node: ast.Quantifier, scope: Mapping[str, object]) -> object:
        items = self.sequence(node.target, scope, f"`.{node.kind}`")
        results: list[bool] = []
        for item in items:
            inner = {**scope, node.var: item}
            results.append(self.boolean(node.body, inner, f"the predicate of `.{node.kind}`"))
        if node.kind == "any":
            return any(results)
        if node.kind == "all":
            return all(results)
        return [item for item, keep in zip(items, results, strict=True) if keep]


_DISPATCH: dict[type, Callable[[_Evaluator, Any, Mapping[str, object]], object]] = {
    ast.BoolLit: _Evaluator._literal,
    ast.IntLit: _Evaluator._literal,
    ast.StrLit: _Evaluator._literal,
    ast.TimestampLit: _Evaluator._timestamp,
    ast.ListLit: _Evaluator._list,
    ast.Call: _Evaluator._call,
    ast.Name: _Evaluator.lookup,
    ast.Attribute: _Evaluator._attribute,
    ast.Index: _Evaluator._index,
    ast.Slice: _Evaluator.slice,
    ast.Not: _Evaluator._not,
    ast.BoolOp: _Evaluator._boolop,
    ast.Compare: _Evaluator.compare,
    ast.Membership: _Evaluator._membership,
    ast.Contains: _Evaluator._contains,
    ast.Count: _Evaluator._count,
    ast.Quantifier: _Evaluator.quantifier,
}


def evaluate(expr: ast.Expr, env: Mapping[str, object], now_ms: int, budget: Budget | None = None) -> object:
    """Evaluate `expr`; `time.now` is `now_ms`. Raise `PolicyEvalError` on any failure.

    The steps taken are deducted from `budget` (a fresh `DEFAULT_STEPS` one when None), also when
    evaluation fails.
    """
    if budget is None:
        budget = Budget(DEFAULT_STEPS)
    evaluator = _Evaluator(env, now_ms, budget.left)
    try:
        return evaluator.eval(expr, {})
    except RecursionError as err:
        raise PolicyEvalError("expression or value nests too deeply") from err
    finally:
        budget.left = max(evaluator.left, 0)


def evaluate_bool(expr: ast.Expr, env: Mapping[str, object], now_ms: int, budget: Budget | None = None) -> bool:
    """Evaluate `expr`, which must produce a bool."""
    value = evaluate(expr, env, now_ms, budget)
    if not isinstance(value, bool):
        raise _fail(f"the expression must evaluate to a bool, got {type_name(value)}", expr)
    return value


__all__ = ["DEFAULT_STEPS", "Budget", "evaluate", "evaluate_bool", "type_name"]
