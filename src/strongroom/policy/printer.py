"""AST -> policy source text that parses back to an equal AST.

Compound operands are parenthesised, so the output does not depend on precedence subtleties.
"""

from __future__ import annotations

from strongroom.policy import ast

_ATOMIC = (
    ast.BoolLit,
    ast.IntLit,
    ast.StrLit,
    ast.ListLit,
    ast.TimestampLit,
    ast.Call,
    ast.Name,
    ast.Attribute,
    ast.Index,
    ast.Slice,
    ast.Quantifier,
    ast.Contains,
    ast.Count,
)


def quote(value: str) -> str:
    """A single-quoted string literal for `value`."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _operand(node: ast.Expr) -> str:
    text = to_source(node)
    if isinstance(node, _ATOMIC) and not (isinstance(node, ast.IntLit) and node.value < 0):
        return text
    return f"({text})"


def to_source(node: ast.Expr) -> str:
    """Render `node` as policy source."""
    match node:
        case ast.BoolLit(value=value):
            return "true" if value else "false"
        case ast.IntLit(value=value):
            return str(value)
        case ast.StrLit(value=value):
            return quote(value)
        case ast.ListLit(items=items):
            return "[" + ", ".join(to_source(item) for item in items) + "]"
        case ast.TimestampLit(text=text):
            return f"Timestamp({quote(text)})"
        case ast.Call(name=name, args=args):
            return f"{name}(" + ", ".join(to_source(arg) for arg in args) + ")"
        case ast.Name(name=name):
            return name
        case ast.Attribute(obj=obj, name=name):
            return f"{_operand(obj)}.{name}"
        case ast.Index(obj=obj, index=index):
            return f"{_operand(obj)}[{to_source(index)}]"
        case ast.Slice(obj=obj, start=start, end=end):
            lo = "" if start is None else to_source(start)
            hi = "" if end is None else to_source(end)
            return f"{_operand(obj)}[{lo}..{hi}]"
        case ast.Not(operand=operand):
            return f"!{_operand(operand)}"
        case ast.BoolOp(op=op, left=left, right=right) | ast.Compare(op=op, left=left, right=right):
            return f"{_operand(left)} {op} {_operand(right)}"
        case ast.Membership(element=element, container=container):
            return f"{_operand(element)} in {_operand(container)}"
        case ast.Quantifier(kind=kind, target=target, var=var, body=body):
            return f"{_operand(target)}.{kind}({var}, {to_source(body)})"
        case ast.Contains(target=target, value=value):
            return f"{_operand(target)}.contains({to_source(value)})"
        case ast.Count(target=target):
            return f"{_operand(target)}.count()"


__all__ = ["quote", "to_source"]
