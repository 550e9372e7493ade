"""How far a consensus expression is from being met, in words people can act on.

`progress(consensus, approvers, credentials, now_ms)` splits a consensus expression at its `&&`
and describes each part. The shapes policies use for approvals are recognised:

- `approvers.count() >= N` (or `>`, `==`, `.count` without parentheses): "N approvals from any users";
- `approvers.filter(u, BODY).count() >= N`: "N approvals from users tagged X" when BODY is
  `u.tags.contains('X')` or `'X' in u.tags` (with the tag's name when `tag_names` knows X),
  "from user NAME (ID)" when BODY is `u.id == 'ID'`, else "from approvers where BODY";
- `approvers.any(u, BODY)`: one approval from the users BODY selects;

and `has` is the number of approvers (the requester included) that count towards it, evaluated
with the same evaluator the decision uses. Any other part is shown as its source with whether it
holds now. Pure: the approvers and credentials are given, as `authorize` takes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.policy import ast
from strongroom.policy.errors import PolicyEvalError
from strongroom.policy.evaluator import evaluate
from strongroom.policy.printer import to_source


@dataclass(frozen=True, slots=True)
class _Names:
    tags: Mapping[str, str]
    users: Mapping[str, str]


_COUNTED: Final = {">=": 0, ">": 1, "==": 0}
"""How a comparison of a count with N turns into "needs at least N + this"."""


def _parts(expr: ast.Expr) -> list[ast.Expr]:
    if isinstance(expr, ast.BoolOp) and expr.op == "&&":
        return [*_parts(expr.left), *_parts(expr.right)]
    return [expr]


def _counted(node: ast.Expr) -> ast.Expr | None:
    """The list `node` counts (`L.count()` or `L.count`), else None."""
    if isinstance(node, ast.Count):
        return node.target
    if isinstance(node, ast.Attribute) and node.name == "count":
        return node.obj
    return None


def _who(target: ast.Expr, names: _Names) -> str | None:
    """Whose approvals a list of approvers names, or None if it is not a list of approvers."""
    if isinstance(target, ast.Name) and target.name == "approvers":
        return "any users"
    if not (isinstance(target, ast.Quantifier) and target.kind == "filter"):
        return None
    if not (isinstance(target.target, ast.Name) and target.target.name == "approvers"):
        return None
    return _selected(target.var, target.body, names)


def _is_field(node: ast.Expr, var: str, name: str) -> bool:
    return isinstance(node, ast.Attribute) and node.name == name and node.obj == ast.Name(var)


def _named(what: str, known: Mapping[str, str], value: str) -> str:
    name = known.get(value)
    return f"{what} {name} ({value})" if name and name != value else f"{what} {value}"


def _selected(var: str, body: ast.Expr, names: _Names) -> str:
    match body:
        case ast.Contains(target=target, value=ast.StrLit(value=tag)) if _is_field(target, var, "tags"):
            return _named("users tagged", names.tags, tag)
        case ast.Membership(element=ast.StrLit(value=tag), container=container) if _is_field(container, var, "tags"):
            return _named("users tagged", names.tags, tag)
        case ast.Compare(op="==", left=left, right=ast.StrLit(value=user_id)) if _is_field(left, var, "id"):
            return _named("user", names.users, user_id)
    return f"approvers where {to_source(body)}"


def _count(expr: ast.Expr, env: Mapping[str, object], now_ms: int) -> int | None:
    try:
        value = evaluate(expr, env, now_ms)
    except PolicyEvalError:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _describe(part: ast.Expr, env: Mapping[str, object], now_ms: int, names: _Names) -> dict[str, Any]:
    needed: int | None = None
    who: str | None = None
    counted: ast.Expr | None = None
    if isinstance(part, ast.Compare) and part.op in _COUNTED and isinstance(part.right, ast.IntLit):
        target = _counted(part.left)
        if target is not None and (who := _who(target, names)) is not None:
            needed, counted = part.right.value + _COUNTED[part.op], part.left
    elif isinstance(part, ast.Quantifier) and part.kind == "any" and part.target == ast.Name("approvers"):
        who = _selected(part.var, part.body, names)
        needed, counted = 1, ast.Count(ast.Quantifier("filter", part.target, part.var, part.body))
    text = to_source(part)
    if needed is not None and counted is not None and who is not None:
        has = _count(counted, env, now_ms)
        if has is not None:
            noun = "approval" if needed == 1 else "approvals"
            return {
                "expression": text,
                "needed": needed,
                "has": has,
                "met": has >= needed,
                "description": f"needs {needed} {noun} from {who}, has {has}",
            }
    try:
        met = evaluate(part, env, now_ms) is True
    except PolicyEvalError:
        met = False
    return {"expression": text, "met": met, "description": f"{'met' if met else 'not met yet'}: {text}"}


def progress(
    consensus: ast.Expr,
    approvers: Sequence[Mapping[str, object]],
    credentials: Sequence[Mapping[str, object]],
    now_ms: int,
    tag_names: Mapping[str, str] | None = None,
    user_names: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One entry per `&&` part of `consensus`: `expression`, `met`, `description`, and for a
    count of approvals `needed` and `has` (see the module docstring). `tag_names` and
    `user_names` map user tag ids and user ids to their names, so that the description names
    the tag or the user people know."""
    env = {"approvers": list(approvers), "credentials": list(credentials)}
    names = _Names(tag_names or {}, user_names or {})
    return [_describe(part, env, now_ms, names) for part in _parts(consensus)]


__all__ = ["progress"]
