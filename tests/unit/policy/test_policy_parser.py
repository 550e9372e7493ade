"""Lexer and parser: literals, precedence, positions, and syntax errors with line/column."""

from __future__ import annotations

import pytest

from strongroom.errors import InvalidRequest
from strongroom.policy import PolicySyntaxError, parse_expression, to_source
from strongroom.policy import ast as a
from strongroom.policy.lexer import MAX_SOURCE_CHARS


def test_literals() -> None:
    assert parse_expression("true") == a.BoolLit(True)
    assert parse_expression("false") == a.BoolLit(False)
    assert parse_expression("0") == a.IntLit(0)
    assert parse_expression(str(2**256 - 1)) == a.IntLit(2**256 - 1)
    assert parse_expression(str(-(2**127))) == a.IntLit(-(2**127))
    assert parse_expression("'it\\'s a \\\\ path'") == a.StrLit("it's a \\ path")
    assert parse_expression("''") == a.StrLit("")
    assert parse_expression("[1, 2, 3]") == a.ListLit((a.IntLit(1), a.IntLit(2), a.IntLit(3)))
    assert parse_expression("[]") == a.ListLit(())
    assert parse_expression("['a',]") == a.ListLit((a.StrLit("a"),))
    ts = parse_expression("Timestamp('2026-03-01T00:00:00Z')")
    assert ts == a.TimestampLit("2026-03-01T00:00:00Z", 1772323200000)
    assert parse_expression("Timestamp('1970-01-01T00:00:00.123Z')") == a.TimestampLit("1970-01-01T00:00:00.123Z", 123)


def test_precedence_or_below_and_below_comparison() -> None:
    expr = parse_expression("a == 1 || b == 2 && !c")
    assert expr == a.BoolOp(
        "||",
        a.Compare("==", a.Name("a"), a.IntLit(1)),
        a.BoolOp("&&", a.Compare("==", a.Name("b"), a.IntLit(2)), a.Not(a.Name("c"))),
    )


def test_not_applies_to_the_whole_comparison() -> None:
    assert parse_expression("!x in [1]") == a.Not(a.Membership(a.Name("x"), a.ListLit((a.IntLit(1),))))
    assert parse_expression("!!x") == a.Not(a.Not(a.Name("x")))


def test_and_or_are_left_associative() -> None:
    assert parse_expression("a && b && c") == a.BoolOp("&&", a.BoolOp("&&", a.Name("a"), a.Name("b")), a.Name("c"))


def test_postfix_forms() -> None:
    expr = parse_expression("x.y[0]['k'][1..2].any(i, i.count() == i.count)")
    assert expr == a.Quantifier(
        "any",
        a.Slice(
            a.Index(a.Index(a.Attribute(a.Name("x"), "y"), a.IntLit(0)), a.StrLit("k")),
            a.IntLit(1),
            a.IntLit(2),
        ),
        "i",
        a.Compare("==", a.Count(a.Name("i")), a.Attribute(a.Name("i"), "count")),
    )
    assert parse_expression("x[..2]") == a.Slice(a.Name("x"), None, a.IntLit(2))
    assert parse_expression("x[1..]") == a.Slice(a.Name("x"), a.IntLit(1), None)
    assert parse_expression("l.contains('a')") == a.Contains(a.Name("l"), a.StrLit("a"))
    assert parse_expression("l.filter(u, u)") == a.Quantifier("filter", a.Name("l"), "u", a.Name("u"))
    assert parse_expression("CronSpan('0 9 * * 1-5', '8h', 'UTC')") == a.Call(
        "CronSpan", (a.StrLit("0 9 * * 1-5"), a.StrLit("8h"), a.StrLit("UTC"))
    )


def test_positions_point_at_the_identifying_token() -> None:
    expr = parse_expression("activity.type ==\n  'X' && wallet.id")
    assert isinstance(expr, a.BoolOp)
    assert expr.pos == a.Pos(2, 7)
    left = expr.left
    assert isinstance(left, a.Compare)
    assert left.pos == a.Pos(1, 15)
    assert isinstance(left.left, a.Attribute)
    assert left.left.pos == a.Pos(1, 10)
    assert left.right.pos == a.Pos(2, 3)
    assert expr.right.pos == a.Pos(2, 17)


def test_positions_are_ignored_by_equality() -> None:
    assert parse_expression("  x") == parse_expression("x")
    assert parse_expression("  x").pos != parse_expression("x").pos


@pytest.mark.parametrize(
    ("source", "message", "line", "column"),
    [
        ("", "empty expression", 1, 1),
        ("a ==", "unexpected end of input; expected a value", 1, 5),
        ("a == b == c", "comparisons cannot be chained; add parentheses before `==`", 1, 8),
        ("a & b", "unexpected character `&`; did you mean `&&`?", 1, 3),
        ("a = b", "unexpected character `=`; did you mean `==`?", 1, 3),
        ("'abc", "unterminated string", 1, 1),
        ("x == 'a\\nb'", "unknown escape `\\n` in string; only `\\'` and `\\\\` are allowed", 1, 8),
        ('x == "a"', "strings must use single quotes", 1, 6),
        ("x.foo(1)", "unknown method `foo`; expected one of `any`, `all`, `filter`, `contains`, `count`", 1, 3),
        ("Now()", "unknown function `Now`; expected one of `Timestamp`, `CronSpan`", 1, 1),
        ("x.any(1, true)", "`.any` expects a variable name as its first argument", 1, 7),
        ("x.any(u true)", "expected `,` after the variable of `.any`, found `true`", 1, 9),
        ("x.contains()", "`.contains` takes exactly 1 argument, got 0", 1, 3),
        ("x.count(1)", "`.count()` takes no arguments, got 1", 1, 3),
        ("(a && b", "expected `)` to close the parenthesis, found end of input", 1, 8),
        ("[1, 2", "expected `]` to close the list, found end of input", 1, 6),
        ("x[]", "expected an index, a key or a `start..end` range inside `[]`", 1, 3),
        ("x[1", "expected `]` to close the index, found end of input", 1, 4),
        ("a b", "unexpected `b` after the end of the expression", 1, 3),
        ("a\n  && ?", "unexpected character `?`", 2, 6),
        ("x.", "expected a field or method name after `.`, found end of input", 1, 3),
        ("-x", "`-` may only precede an integer literal", 1, 1),
        ("12ab", "invalid number `12a`", 1, 1),
        (str(2**256), "integer literal out of range: at most 2^256 - 1", 1, 1),
        (str(-(2**127) - 1), "integer literal out of range: at least -2^127", 1, 1),
        ("1" * 100, "integer literal out of range", 1, 1),
        ("Timestamp('2026-02-30T00:00:00Z')", "invalid timestamp `2026-02-30T00:00:00Z`", 1, 11),
        ("Timestamp('2026-03-01T00:00:00+01:00')", "invalid timestamp", 1, 11),
        ("Timestamp(1)", "`Timestamp` takes exactly 1 string literal", 1, 1),
        ("'a\nb' ==\n  @", "unexpected character `@`", 3, 3),
    ],
)
def test_syntax_errors(source: str, message: str, line: int, column: int) -> None:
    with pytest.raises(PolicySyntaxError) as info:
        parse_expression(source)
    err = info.value
    assert err.reason.startswith(message)
    assert (err.line, err.column) == (line, column)
    assert err.reason[0].islower() or err.reason[0] in "`'-"
    assert not err.reason.endswith(".")
    assert f"(line {line}, column {column})" in str(err)


def test_syntax_error_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        parse_expression("&&")


def test_limits() -> None:
    with pytest.raises(PolicySyntaxError, match="too long"):
        parse_expression("x" * (MAX_SOURCE_CHARS + 1))
    with pytest.raises(PolicySyntaxError, match="nests too deeply"):
        parse_expression("(" * 100 + "x" + ")" * 100)
    with pytest.raises(PolicySyntaxError, match="nests too deeply"):
        parse_expression("!" * 100 + "x")
    with pytest.raises(PolicySyntaxError, match="nests too deeply"):
        parse_expression(" && ".join(["x"] * 300))
    # A long allowlist is flat, not deep.
    many = ", ".join(f"'0x{i:040x}'" for i in range(500))
    assert isinstance(parse_expression(f"eth.tx.to in [{many}]"), a.Membership)


def test_printer_quotes_and_parenthesises() -> None:
    assert to_source(a.StrLit("it's \\")) == "'it\\'s \\\\'"
    expr = parse_expression("!(a || b) && (c == -1)")
    assert to_source(expr) == "(!(a || b)) && (c == (-1))"
    assert parse_expression(to_source(expr)) == expr
