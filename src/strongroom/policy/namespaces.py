"""Which namespaces a policy reads, and whether a request has them: "not applicable" versus "failed".

A policy written for one kind of request reads data that other requests do not have: a DENY on
`eth.tx.to` says nothing about a user creation, a DENY on `solana.tx.transfers` nothing about an
Ethereum transaction. Such a policy is **not applicable** to the request (as in Turnkey, where the
pasted example policies that mix chains must keep working). Everything else that goes wrong while
evaluating — a type error, a missing field *inside* a namespace the request has, malformed data,
the step budget exceeded — is an evaluation **failure**, which the authorizer treats as fail-closed
(a DENY denies, an ALLOW does not allow).

The namespaces are paths of fixed depth under the root keywords:

- every root keyword (`private_key`, `wallet`, `eth`, `solana`, ...) is a namespace;
- under `eth` and `solana`, each field is one (`eth.tx`, `eth.eip_712`,
  `eth.eip_7702_authorization`, `solana.tx`);
- under `activity.params`, each parameter is one (`activity.params.sign_with`): an activity that
  takes no such parameter is not what the policy is about.

`namespace_reads` collects, statically, the namespace paths an expression reads (`x.f` and
`x['f']` with a literal key both count); `first_missing` says which of them a request lacks. The
decision is made before evaluation, so it does not depend on the order of the operands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from strongroom.policy import ast

Path = tuple[str, ...]

_SECOND_LEVEL: Final = frozenset({"eth", "solana"})


def _namespace_depth(path: Path) -> int:
    root = path[0]
    if root in _SECOND_LEVEL:
        return 2
    if root == "activity" and len(path) >= 2 and path[1] == "params":
        return 3
    return 1


def _chain(node: ast.Expr, bound: frozenset[str]) -> Path | None:
    """`a.b['c'].d` → ("a", "b", "c", "d") when it starts at an unbound root keyword, else None."""
    names: list[str] = []
    current: ast.Expr = node
    while True:
        if isinstance(current, ast.Attribute):
            names.append(current.name)
            current = current.obj
        elif isinstance(current, ast.Index) and isinstance(current.index, ast.StrLit):
            names.append(current.index.value)
            current = current.obj
        elif isinstance(current, ast.Name):
            if current.name in bound:
                return None
            names.append(current.name)
            return tuple(reversed(names))
        else:
            return None


def referenced_paths(expr: ast.Expr | None) -> frozenset[Path]:
    """Every full attribute path (from a root keyword) that `expr` reads, uncut."""
    if expr is None:
        return frozenset()
    found: set[Path] = set()
    stack: list[tuple[ast.Expr, frozenset[str]]] = [(expr, frozenset())]
    while stack:
        node, bound = stack.pop()
        if isinstance(node, ast.Attribute | ast.Index | ast.Name):
            path = _chain(node, bound)
            if path is not None:
                found.add(path)
        if isinstance(node, ast.Quantifier):
            stack.append((node.target, bound))
            stack.append((node.body, bound | {node.var}))
            continue
        stack.extend((child, bound) for child in ast.children(node))
    return frozenset(found)


def field_names(expr: ast.Expr | None) -> frozenset[str]:
    """Every field name `expr` reads anywhere (`x.f`, `x['f']`), also under a bound variable:
    `solana.tx.instructions.any(i, i.parsed_instruction_data ...)` reads `parsed_instruction_data`."""
    if expr is None:
        return frozenset()
    found: set[str] = set()
    stack: list[ast.Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Attribute):
            found.add(node.name)
        elif isinstance(node, ast.Index) and isinstance(node.index, ast.StrLit):
            found.add(node.index.value)
        stack.extend(ast.children(node))
    return frozenset(found)


def namespace_reads(expr: ast.Expr | None) -> frozenset[Path]:
    """The namespace paths `expr` reads (each cut to its namespace's depth)."""
    return frozenset(path[: _namespace_depth(path)] for path in referenced_paths(expr))


def _present(path: Path, env: Mapping[str, object]) -> bool:
    current: object = env
    for name in path:
        if not isinstance(current, Mapping) or name not in current:
            return False
        current = current[name]
    return True


def first_missing(reads: Iterable[Path], env: Mapping[str, object]) -> Path | None:
    """The first (in sorted order) namespace path in `reads` that `env` does not have, or None."""
    for path in sorted(reads):
        if path[0] == "time":
            continue  # always provided by the evaluator
        if not _present(path, env):
            return path
    return None


__all__ = ["Path", "field_names", "first_missing", "namespace_reads", "referenced_paths"]
