"""Expressions compiled once into closures, with exactly the semantics of `strongroom.policy.evaluator`.

`evaluator.evaluate` walks the AST for every request: a dictionary dispatch and a method call per
node. `compile_expr` does that walk once, when a policy is loaded, and returns a tree of closures
that each evaluate one node. Every closure is a line-by-line transcription of the reference
evaluator's handler for its node kind, so that the two agree on everything observable:

- the value, for any environment;
- the error, its message and position (the first failing node in the same evaluation order: no
  short-circuit, left operand before right, every element of a quantifier's list);
- the steps taken from the `Budget`: one per evaluated node, one per compared or searched list
  element, charged at the same moments, so that a policy that exceeds its budget fails at the
  same node with the same message and leaves the same budget behind.

`tests/unit/policy/test_policy_compiled.py` checks this against the reference on random
expressions and environments (hypothesis). The reference evaluator stays the specification, and
the slow path the tests compare with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from strongroom.policy import ast
from strongroom.policy.errors import PolicyBudgetExceeded, PolicyEvalError
from strongroom.policy.evaluator import DEFAULT_STEPS, Budget, _equal, _is_int, type_name

_OVER: Final = "evaluation budget exceeded: the policy does too much work for one request"
_LEFT: Final = {"&&": "the left operand of `&&`", "||": "the left operand of `||`"}
_RIGHT: Final = {"&&": "the right operand of `&&`", "||": "the right operand of `||`"}

Scope = Mapping[str, object]


class Ctx:
    """One evaluation's state: the environment, `time`, and the steps left (mutable)."""

    __slots__ = ("env", "left", "time")

    def __init__(self, env: Mapping[str, object], now_ms: int, steps: int) -> None:
        self.env = env
        self.time: dict[str, object] = {"now": now_ms}
        self.left = steps

    def charge(self, steps: int, node: ast.Expr) -> None:
        """As `evaluator._Evaluator.charge` (called by the shared `_equal`)."""
        self.left -= steps
        if self.left < 0:
            raise PolicyBudgetExceeded(_OVER, node.pos.line, node.pos.column)


Fn = Callable[[Ctx, Scope], object]


def _fail(message: str, node: ast.Expr) -> PolicyEvalError:
    return PolicyEvalError(message, node.pos.line, node.pos.column)


def _over(node: ast.Expr) -> PolicyBudgetExceeded:
    return PolicyBudgetExceeded(_OVER, node.pos.line, node.pos.column)


def _as_bool(fn: Fn, node: ast.Expr, what: str) -> Callable[[Ctx, Scope], bool]:
    """`_Evaluator.boolean`: the operand's value, which must be a bool (the error points at the operand)."""

    def run(c: Ctx, scope: Scope) -> bool:
        value = fn(c, scope)
        if not isinstance(value, bool):
            raise _fail(f"{what} must be a bool, got {type_name(value)}", node)
        return value

    return run


def _as_int(fn: Fn, node: ast.Expr, what: str) -> Callable[[Ctx, Scope], int]:
    def run(c: Ctx, scope: Scope) -> int:
        value = fn(c, scope)
        if not _is_int(value):
            raise _fail(f"{what} must be an int, got {type_name(value)}", node)
        assert isinstance(value, int)
        return value

    return run


def _as_list(fn: Fn, node: ast.Expr, what: str) -> Callable[[Ctx, Scope], list[object]]:
    def run(c: Ctx, scope: Scope) -> list[object]:
        value = fn(c, scope)
        if not isinstance(value, list):
            raise _fail(f"{what} needs a list, got {type_name(value)}", node)
        return value

    return run


def _literal(node: ast.Expr, value: object) -> Fn:
    def run(c: Ctx, _scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        return value

    return run


def _name(node: ast.Name) -> Fn:
    name = node.name

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        if name in scope:
            return scope[name]
        if name == "time":
            return c.time
        env = c.env
        if name in env:
            return env[name]
        raise _fail(f"missing keyword `{name}`: the request does not provide it", node)

    return run


def _attribute(node: ast.Attribute) -> Fn:
    obj_fn = compile_expr(node.obj)
    name = node.name

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        obj = obj_fn(c, scope)
        if type(obj) is dict and name in obj:
            return obj[name]
        if isinstance(obj, dict):
            if name in obj:
                return obj[name]
            raise _fail(f"missing field `{name}`", node)
        if isinstance(obj, list) and name == "count":
            return len(obj)
        raise _fail(f"cannot read field `{name}` of {type_name(obj)}", node)

    return run


def _index(node: ast.Index) -> Fn:
    obj_fn = compile_expr(node.obj)
    key_fn = compile_expr(node.index)

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        obj = obj_fn(c, scope)
        key = key_fn(c, scope)
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

    return run


def _slice(node: ast.Slice) -> Fn:
    obj_fn = compile_expr(node.obj)
    start_fn = None if node.start is None else _as_int(compile_expr(node.start), node.start, "a slice bound")
    end_fn = None if node.end is None else _as_int(compile_expr(node.end), node.end, "a slice bound")

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        obj = obj_fn(c, scope)
        start = 0 if start_fn is None else start_fn(c, scope)
        end = None if end_fn is None else end_fn(c, scope)
        if not isinstance(obj, list | str):
            raise _fail(f"cannot slice {type_name(obj)}", node)
        stop = len(obj) if end is None else end
        if not 0 <= start <= stop <= len(obj):
            raise _fail(f"slice out of range for a {type_name(obj)} of length {len(obj)}", node)
        return obj[start:stop]

    return run


def _not(node: ast.Not) -> Fn:
    operand = _as_bool(compile_expr(node.operand), node.operand, "the operand of `!`")

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        return not operand(c, scope)

    return run


def _boolop(node: ast.BoolOp) -> Fn:
    lhs = _as_bool(compile_expr(node.left), node.left, _LEFT[node.op])
    rhs = _as_bool(compile_expr(node.right), node.right, _RIGHT[node.op])
    conjunction = node.op == "&&"

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        left = lhs(c, scope)
        right = rhs(c, scope)
        return (left and right) if conjunction else (left or right)

    return run


def _compare(node: ast.Compare) -> Fn:
    left_fn = compile_expr(node.left)
    right_fn = compile_expr(node.right)
    op = node.op

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        left = left_fn(c, scope)
        right = right_fn(c, scope)
        if op == "==":
            return _equal(left, right, node, c)  # type: ignore[arg-type]
        if op == "!=":
            return not _equal(left, right, node, c)  # type: ignore[arg-type]
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

    return run


def _membership(node: ast.Membership) -> Fn:
    element_fn = compile_expr(node.element)
    container_fn = _as_list(compile_expr(node.container), node.container, "`in`")

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        item = element_fn(c, scope)
        values = container_fn(c, scope)
        c.charge(len(values), node)
        results = [_equal(item, value, node, c) for value in values]  # type: ignore[arg-type]
        return any(results)

    return run


def _contains(node: ast.Contains) -> Fn:
    target_fn = _as_list(compile_expr(node.target), node.target, "`.contains`")
    value_fn = compile_expr(node.value)

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        values = target_fn(c, scope)
        item = value_fn(c, scope)
        c.charge(len(values), node)
        results = [_equal(item, value, node, c) for value in values]  # type: ignore[arg-type]
        return any(results)

    return run


def _count(node: ast.Count) -> Fn:
    target_fn = _as_list(compile_expr(node.target), node.target, "`.count()`")

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        return len(target_fn(c, scope))

    return run


def _quantifier(node: ast.Quantifier) -> Fn:
    target_fn = _as_list(compile_expr(node.target), node.target, f"`.{node.kind}`")
    body_fn = _as_bool(compile_expr(node.body), node.body, f"the predicate of `.{node.kind}`")
    var, kind = node.var, node.kind

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        items = target_fn(c, scope)
        results: list[bool] = []
        for item in items:
            results.append(body_fn(c, {**scope, var: item}))
        if kind == "any":
            return any(results)
        if kind == "all":
            return all(results)
        return [item for item, keep in zip(items, results, strict=True) if keep]

    return run


def _call(node: ast.Call) -> Fn:
    message = f"function `{node.name}` is not supported"

    def run(c: Ctx, _scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        raise _fail(message, node)

    return run


def _list(node: ast.ListLit) -> Fn:
    items = tuple(compile_expr(item) for item in node.items)

    def run(c: Ctx, scope: Scope) -> object:
        c.left -= 1
        if c.left < 0:
            raise _over(node)
        return [fn(c, scope) for fn in items]

    return run


def compile_expr(node: ast.Expr) -> Fn:
    """The closure that evaluates `node` (see the module docstring)."""
    match node:
        case ast.BoolLit() | ast.IntLit() | ast.StrLit():
            return _literal(node, node.value)
        case ast.TimestampLit():
            return _literal(node, node.ms)
        case ast.ListLit():
            return _list(node)
        case ast.Call():
            return _call(node)
        case ast.Name():
            return _name(node)
        case ast.Attribute():
            return _attribute(node)
        case ast.Index():
            return _index(node)
        case ast.Slice():
            return _slice(node)
        case ast.Not():
            return _not(node)
        case ast.BoolOp():
            return _boolop(node)
        case ast.Compare():
            return _compare(node)
        case ast.Membership():
            return _membership(node)
        case ast.Contains():
            return _contains(node)
        case ast.Count():
            return _count(node)
        case ast.Quantifier():
            return _quantifier(node)


class Compiled:
    """An expression compiled once: `evaluate` and `evaluate_bool` as in `strongroom.policy.evaluator`."""

    __slots__ = ("expr", "fn")

    def __init__(self, expr: ast.Expr) -> None:
        self.expr = expr
        self.fn = compile_expr(expr)

    def evaluate(self, env: Mapping[str, object], now_ms: int, budget: Budget | None = None) -> object:
        """`evaluator.evaluate(self.expr, env, now_ms, budget)`, without walking the AST."""
        if budget is None:
            budget = Budget(DEFAULT_STEPS)
        c = Ctx(env, now_ms, budget.left)
        try:
            return self.fn(c, {})
        except RecursionError as err:
            raise PolicyEvalError("expression or value nests too deeply") from err
        finally:
            budget.left = max(c.left, 0)

    def evaluate_bool(self, env: Mapping[str, object], now_ms: int, budget: Budget | None = None) -> bool:
        """`evaluator.evaluate_bool(self.expr, env, now_ms, budget)`."""
        value = self.evaluate(env, now_ms, budget)
        if not isinstance(value, bool):
            raise _fail(f"the expression must evaluate to a bool, got {type_name(value)}", self.expr)
        return value


__all__ = ["Compiled", "Ctx", "compile_expr"]
