"""Evaluator semantics: values, operators, no short-circuit, strict types."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.policy import PolicyEvalError, evaluate, evaluate_bool, parse_expression
from strongroom.policy import ast as a

ENV: dict[str, Any] = {
    "activity": {"type": "ACTIVITY_TYPE_SIGN_TRANSACTION_V2", "action": "SIGN", "params": {"type": "T"}},
    "eth": {
        "tx": {
            "to": "0xabc",
            "data": "0xa9059cbb0000",
            "value": 2**255,
            "chain_id": 1,
            "contract_call_args": {"to": "0x1", "nested": {"amounts": [1, 2, 3]}},
        }
    },
    "private_key": {"id": "pk", "tags": ["hot", "eth"], "label": "", "imported": False, "exported": False},
    "nothing": None,
    "approvers": [{"id": "a", "tags": ["x"]}, {"id": "b", "tags": []}, {"id": "c", "tags": ["x", "y"]}],
}


def ev(text: str, env: dict[str, Any] | None = None, now_ms: int = 1000) -> object:
    return evaluate(parse_expression(text), ENV if env is None else env, now_ms)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3 && 1 != 2", True),
        ("true || false", True),
        ("!(true && false)", True),
        ("'a' == 'a' && 'a' != 'b'", True),
        ("[1, 2] == [1, 2] && [1] != [1, 2]", True),
        ("eth.tx.value == 57896044618658097711785492504343953926634992332820282019728792003956564819968", True),
        ("eth.tx.value > 115792089237316195423570985008687907853269984665640564039457584007913129639935", False),
        ("-170141183460469231731687303715884105728 < 0", True),
        ("eth.tx.data[0..10]", "0xa9059cbb"),
        ("eth.tx.data[2..]", "a9059cbb0000"),
        ("eth.tx.data[..2]", "0x"),
        ("eth.tx.to[0]", "0"),
        ("private_key.tags[1]", "eth"),
        ("private_key.tags[0..1]", ["hot"]),
        ("eth.tx.contract_call_args['to']", "0x1"),
        ("eth.tx.contract_call_args['nested']['amounts'].count()", 3),
        ("eth.tx.contract_call_args.nested.amounts.count", 3),
        ("eth.tx.contract_call_args['nested']['amounts'].all(x, x > 0)", True),
        ("'eth' in private_key.tags && private_key.tags.contains('hot')", True),
        ("'cold' in private_key.tags", False),
        ("approvers.filter(u, u.tags.contains('x')).count() >= 2", True),
        ("approvers.filter(u, 'y' in u.tags)", [{"id": "c", "tags": ["x", "y"]}]),
        ("approvers.any(u, u.id == 'b') && !approvers.all(u, u.id == 'b')", True),
        ("[].all(x, x == 1) && ![].any(x, x == 1)", True),
        ("activity.params.type == 'T'", True),
        ("time.now", 1000),
        ("time.now >= Timestamp('1970-01-01T00:00:01Z')", True),
        ("nothing == nothing", True),
        ("eth.tx.to != nothing", True),
        ("[1, 2, 3].filter(x, x > 1)", [2, 3]),
        ("approvers.any(approvers, approvers.id == 'a')", True),
        ("[[1], [2, 3]].any(l, l.count == 2)", True),
    ],
)
def test_values(text: str, expected: object) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wallet.id == 'w' || true", "missing keyword `wallet`: the request does not provide it"),
        ("true || wallet.id == 'w'", "missing keyword `wallet`"),
        ("false && activity.params.hash_function == 'x'", "missing field `hash_function`"),
        ("approvers.any(u, u.id == 'a' || u.email == 'x')", "missing field `email`"),
        ("eth.tx.contract_call_args['from'] == 'x'", "missing key `from`"),
        ("eth.tx.to == 1", "cannot compare string with int"),
        ("true == 1", "cannot compare bool with int"),
        ("[1] == ['1']", "cannot compare int with string"),
        ("'a' < 'b'", "`<` needs two ints, got string and string"),
        ("1 && true", "the left operand of `&&` must be a bool, got int"),
        ("true || 'x'", "the right operand of `||` must be a bool, got string"),
        ("!1", "the operand of `!` must be a bool, got int"),
        ("eth.tx.data[0..100]", "slice out of range for a string of length 14"),
        ("eth.tx.data[3..2]", "slice out of range"),
        ("eth.tx.data[-1..2]", "slice out of range"),
        ("eth.tx.data['a'..2]", "a slice bound must be an int, got string"),
        ("eth.tx.value[0..1]", "cannot slice int"),
        ("private_key.tags[2]", "index out of range for a list of length 2"),
        ("private_key.tags[-1]", "index out of range"),
        ("private_key.tags['a']", "an index must be an int, got string"),
        ("eth.tx.contract_call_args[0]", "a map key must be a string, got int"),
        ("eth.tx.value[0]", "cannot index int"),
        ("eth.tx.to.x", "cannot read field `x` of string"),
        ("nothing.x", "cannot read field `x` of null"),
        ("private_key.tags.x", "cannot read field `x` of list"),
        ("eth.tx.to.count()", "`.count()` needs a list, got string"),
        ("eth.tx.to.contains('a')", "`.contains` needs a list, got string"),
        ("'a' in eth.tx.to", "`in` needs a list, got string"),
        ("eth.tx.to.any(x, true)", "`.any` needs a list, got string"),
        ("[1, 2].any(x, x)", "the predicate of `.any` must be a bool, got int"),
        ("[1, 'a'].any(x, x == 1)", "cannot compare string with int"),
        ("CronSpan('* * * * *', '1h', 'UTC')", "function `CronSpan` is not supported"),
        ("1 in [1, 'a']", "cannot compare int with string"),
    ],
)
def test_errors(text: str, message: str) -> None:
    with pytest.raises(PolicyEvalError) as info:
        ev(text)
    assert info.value.reason.startswith(message), info.value.reason
    assert info.value.line == 1
    assert info.value.column >= 1


def test_error_position_points_at_the_failing_node() -> None:
    with pytest.raises(PolicyEvalError) as info:
        ev("activity.action == 'SIGN' &&\n   wallet.id == 'w'")
    assert (info.value.line, info.value.column) == (2, 4)


def test_time_now_is_the_argument_not_the_environment() -> None:
    env = dict(ENV, time={"now": 5})
    assert ev("time.now", env, now_ms=7) == 7


def test_evaluate_bool_rejects_non_bool() -> None:
    assert evaluate_bool(parse_expression("1 == 1"), {}, 0) is True
    with pytest.raises(PolicyEvalError, match="must evaluate to a bool, got int"):
        evaluate_bool(parse_expression("1"), {}, 0)


def test_unsupported_values_are_errors() -> None:
    env: dict[str, Any] = {"x": {"f": 1.5, "t": (1, 2), "s": {1}}}
    for text in ("x.f == 1", "x.f < 2", "x.t.count()", "x.s == x.s", "x.f[0]"):
        with pytest.raises(PolicyEvalError):
            evaluate(parse_expression(text), env, 0)


def test_deeply_nested_values_are_an_evaluation_error() -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(PolicyEvalError, match="nests too deeply"):
        evaluate(parse_expression("x == x"), {"x": deep}, 0)


def test_deep_synthetic_ast_is_an_evaluation_error() -> None:
    expr: a.Expr = a.BoolLit(True)
    for _ in range(5000):
        expr = a.Not(expr)
    with pytest.raises(PolicyEvalError):
        evaluate(expr, {}, 0)


def test_maps_compare_structurally() -> None:
    env = {"x": {"a": [1, {"b": "c"}]}, "y": {"a": [1, {"b": "c"}]}, "z": {"a": [1]}}
    assert evaluate(parse_expression("x == y && x != z"), env, 0) is True
