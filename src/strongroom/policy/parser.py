"""Tokens -> AST, by recursive descent.

Grammar (lowest precedence first)::

    expr       := and ('||' and)*
    and        := unary ('&&' unary)*
    unary      := '!' unary | comparison
    comparison := postfix (('==' | '!=' | '<' | '>' | '<=' | '>=' | 'in') postfix)?
    postfix    := primary ( '.' IDENT | '.' METHOD '(' args ')' | '[' expr ']' | '[' expr? '..' expr? ']' )*
    primary    := 'true' | 'false' | INT | '-' INT | STRING | '[' (expr (',' expr)* ','?)? ']'
                | IDENT | FUNCTION '(' args ')' | '(' expr ')'

`!` and the comparisons share one level: `!a == b` reads as `!(a == b)`, and comparisons do not
chain (`a == b == c` is a syntax error). Methods are `any`, `all`, `filter` (two arguments, the
first a variable name), `contains` (one), `count` (none; `.count` without parentheses parses as a
field access that the evaluator resolves to the element count on lists). Functions are `Timestamp`
(one string literal, validated here) and `CronSpan` (parsed; the checker reports it unsupported).
Integer literals must fit u256 (positive) or i128 (negative).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, cast

from strongroom.policy import ast
from strongroom.policy.errors import PolicySyntaxError
from strongroom.policy.lexer import Token, tokenize
from strongroom.policy.timegate import parse_timestamp_ms

MAX_NESTING: Final = 40
MAX_DEPTH: Final = 128
UINT256_MAX: Final = 2**256 - 1
INT128_MIN: Final = -(2**127)
METHODS: Final = ("any", "all", "filter", "contains", "count")
FUNCTIONS: Final = ("Timestamp", "CronSpan")
_COMPARE_OPS: Final = frozenset(ast.COMPARE_OPERATORS)


def _describe(token: Token) -> str:
    if token.kind == "eof":
        return "end of input"
    if token.kind == "str":
        return "a string"
    if token.kind == "int":
        return f"`{token.text}`"
    return f"`{token.text}`"


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.i = 0
        self.nesting = 0

    # -- token helpers -------------------------------------------------------------------------
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        if token.kind != "eof":
            self.i += 1
        return token

    def at_op(self, text: str) -> bool:
        token = self.peek()
        return token.kind == "op" and token.text == text

    def expect_op(self, text: str, context: str) -> Token:
        token = self.peek()
        if token.kind != "op" or token.text != text:
            raise self.error(f"expected `{text}` {context}, found {_describe(token)}", token)
        return self.advance()

    @staticmethod
    def error(message: str, token: Token) -> PolicySyntaxError:
        return PolicySyntaxError(message, token.line, token.column)

    @staticmethod
    def pos(token: Token) -> ast.Pos:
        return ast.Pos(token.line, token.column)

    def enter(self, token: Token) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise self.error(f"expression nests too deeply (more than {MAX_NESTING} levels)", token)

    def leave(self) -> None:
        self.nesting -= 1

    # -- grammar -------------------------------------------------------------------------------
    def parse(self) -> ast.Expr:
        if self.peek().kind == "eof":
            raise self.error("empty expression", self.peek())
        expr = self.expr()
        token = self.peek()
        if token.kind != "eof":
            raise self.error(f"unexpected {_describe(token)} after the end of the expression", token)
        return expr

    def expr(self) -> ast.Expr:
        return self.bool_chain("||", self.conjunction)

    def conjunction(self) -> ast.Expr:
        return self.bool_chain("&&", self.unary)

    def bool_chain(self, op: ast.BoolOperator, operand: Callable[[], ast.Expr]) -> ast.Expr:
        """`operand (op operand)*`, left-associative: the `expr` and `and` rules."""
        left = operand()
        while self.at_op(op):
            token = self.advance()
            right = operand()
            left = ast.BoolOp(op, left, right, self.pos(token))
        return left

    def unary(self) -> ast.Expr:
        if self.at_op("!"):
            op = self.advance()
            self.enter(op)
            operand = self.unary()
            self.leave()
            return ast.Not(operand, self.pos(op))
        return self.comparison()

    def comparison(self) -> ast.Expr:
        left = self.postfix()
        token = self.peek()
        result: ast.Expr
        if token.kind == "op" and token.text in _COMPARE_OPS:
            self.advance()
            right = self.postfix()
            result = ast.Compare(token.text, left, right, self.pos(token))
        elif token.kind == "keyword" and token.text == "in":
            self.advance()
            right = self.postfix()
            result = ast.Membership(left, right, self.pos(token))
        else:
            return left
        after = self.peek()
        if (after.kind == "op" and after.text in _COMPARE_OPS) or (after.kind == "keyword" and after.text == "in"):
            raise self.error(f"comparisons cannot be chained; add parentheses before `{after.text}`", after)
        return result

    def postfix(self) -> ast.Expr:
        expr = self.primary()
        while True:
            if self.at_op("."):
                self.advance()
                name = self.peek()
                if name.kind not in ("ident", "keyword"):
                    raise self.error(f"expected a field or method name after `.`, found {_describe(name)}", name)
                self.advance()
                if self.at_op("("):
                    expr = self.method(expr, name)
                else:
                    expr = ast.Attribute(expr, name.text, self.pos(name))
            elif self.at_op("["):
                expr = self.subscript(expr)
            else:
                return expr

    def subscript(self, obj: ast.Expr) -> ast.Expr:
        bracket = self.advance()
        self.enter(bracket)
        start: ast.Expr | None = None
        if not self.at_op(".."):
            if self.at_op("]"):
                raise self.error("expected an index, a key or a `start..end` range inside `[]`", self.peek())
            start = self.expr()
        if self.at_op(".."):
            self.advance()
            end = None if self.at_op("]") else self.expr()
            self.expect_op("]", "to close the slice")
            self.leave()
            return ast.Slice(obj, start, end, self.pos(bracket))
        self.expect_op("]", "to close the index")
        self.leave()
        assert start is not None
        return ast.Index(obj, start, self.pos(bracket))

    def arguments(self, what: str) -> list[ast.Expr]:
        open_paren = self.expect_op("(", f"after {what}")
        self.enter(open_paren)
        args: list[ast.Expr] = []
        if not self.at_op(")"):
            args.append(self.expr())
            while self.at_op(","):
                self.advance()
                args.append(self.expr())
        self.expect_op(")", f"to close the arguments of {what}")
        self.leave()
        return args

    def method(self, target: ast.Expr, name: Token) -> ast.Expr:
        method = name.text
        pos = self.pos(name)
        if method not in METHODS:
            raise self.error(
                f"unknown method `{method}`; expected one of {', '.join(f'`{m}`' for m in METHODS)}",
                name,
            )
        if method in ("any", "all", "filter"):
            open_paren = self.expect_op("(", f"after `.{method}`")
            self.enter(open_paren)
            var = self.peek()
            if var.kind != "ident":
                raise self.error(f"`.{method}` expects a variable name as its first argument", var)
            self.advance()
            self.expect_op(",", f"after the variable of `.{method}`")
            body = self.expr()
            self.expect_op(")", f"to close `.{method}(...)`")
            self.leave()
            kind = cast(ast.QuantifierKind, method)
            return ast.Quantifier(kind, target, var.text, body, pos)
        args = self.arguments(f"`.{method}`")
        if method == "contains":
            if len(args) != 1:
                raise self.error(f"`.contains` takes exactly 1 argument, got {len(args)}", name)
            return ast.Contains(target, args[0], pos)
        if args:
            raise self.error(f"`.count()` takes no arguments, got {len(args)}", name)
        return ast.Count(target, pos)

    def primary(self) -> ast.Expr:
        token = self.peek()
        pos = self.pos(token)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.advance()
            return ast.BoolLit(token.text == "true", pos)
        if token.kind == "int":
            self.advance()
            value = int(token.text)
            if value > UINT256_MAX:
                raise self.error("integer literal out of range: at most 2^256 - 1", token)
            return ast.IntLit(value, pos)
        if token.kind == "op" and token.text == "-":
            self.advance()
            digits = self.peek()
            if digits.kind != "int":
                raise self.error("`-` may only precede an integer literal", token)
            self.advance()
            value = -int(digits.text)
            if value < INT128_MIN:
                raise self.error("integer literal out of range: at least -2^127", token)
            return ast.IntLit(value, pos)
        if token.kind == "str":
            self.advance()
            return ast.StrLit(token.text, pos)
        if token.kind == "op" and token.text == "[":
            self.advance()
            self.enter(token)
            items: list[ast.Expr] = []
            while not self.at_op("]"):
                items.append(self.expr())
                if not self.at_op(","):
                    break
                self.advance()
            self.expect_op("]", "to close the list")
            self.leave()
            return ast.ListLit(tuple(items), pos)
        if token.kind == "op" and token.text == "(":
            self.advance()
            self.enter(token)
            inner = self.expr()
            self.expect_op(")", "to close the parenthesis")
            self.leave()
            return inner
        if token.kind == "ident":
            self.advance()
            if self.at_op("("):
                return self.function(token)
            return ast.Name(token.text, pos)
        if token.kind == "eof":
            raise self.error("unexpected end of input; expected a value", token)
        raise self.error(f"expected a value, found {_describe(token)}", token)

    def function(self, name: Token) -> ast.Expr:
        pos = self.pos(name)
        if name.text not in FUNCTIONS:
            raise self.error(
                f"unknown function `{name.text}`; expected one of {', '.join(f'`{f}`' for f in FUNCTIONS)}",
                name,
            )
        first = self.peek(1)
        args = self.arguments(f"`{name.text}`")
        if name.text == "Timestamp":
            if len(args) != 1 or not isinstance(args[0], ast.StrLit):
                raise self.error("`Timestamp` takes exactly 1 string literal", name)
            ms = parse_timestamp_ms(args[0].value)
            if ms is None:
                raise self.error(
                    f"invalid timestamp `{args[0].value[:64]}`: expected RFC 3339 with a zero UTC offset, "
                    "e.g. `2026-03-01T00:00:00Z`",
                    first,
                )
            return ast.TimestampLit(args[0].value, ms, pos)
        return ast.Call(name.text, tuple(args), pos)


def parse_expression(text: str) -> ast.Expr:
    """Parse one policy expression; raise `PolicySyntaxError` with a 1-based line and column."""
    expr = _Parser(text).parse()
    if ast.depth(expr) > MAX_DEPTH:
        raise PolicySyntaxError(f"expression nests too deeply (more than {MAX_DEPTH} levels)", 1, 1)
    return expr


__all__ = ["FUNCTIONS", "INT128_MIN", "MAX_DEPTH", "METHODS", "UINT256_MAX", "parse_expression"]
