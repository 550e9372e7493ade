"""Differential: the compiled and indexed decision (`PolicySet`) against the reference tree walk.

The reference is `evaluator.evaluate` / `authorizer.authorize_steps` over a list of policies; the
compiled path is `compiled.Compiled` / `authorizer.authorize_set_steps` over a `PolicySet`. For
random expressions, policies, requests, votes and budgets, both must give the same value or the
same error (message and position), the same `Decision` (outcome, reasons, every policy's
evaluation in order) and leave the same budget behind. Policies are drawn both from the random
expression generator of `test_policy_properties` and from indexable shapes (conjunctions with
`activity.type == '…'`, `private_key.tags.contains('…')`, ...) over values of every kind, so that
the index's key look-ups, its certificates and their requirements are exercised where they hold
and where they do not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_policy_properties import approvers, envs, exprs, fields, json_values

from strongroom.policy import (
    Decision,
    Effect,
    Outcome,
    Policy,
    PolicyEvalError,
    PolicyOutcome,
    RootQuorum,
    authorize,
    compile_policy,
    evaluate,
    parse_expression,
)
from strongroom.policy import ast as a
from strongroom.policy.authorizer import POLICY_STEPS, authorize_set_steps, authorize_steps, run_steps
from strongroom.policy.compiled import Compiled
from strongroom.policy.evaluator import Budget
from strongroom.policy.namespaces import namespace_reads
from strongroom.policy.policyset import PolicySet, certificate

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _run(fn: Any) -> tuple[str, Any]:
    try:
        return ("value", fn())
    except PolicyEvalError as err:
        return (type(err).__name__, (err.reason, err.line, err.column))


budgets = st.integers(min_value=0, max_value=60) | st.integers(min_value=0, max_value=3 * POLICY_STEPS)


@_SETTINGS
@given(exprs, envs, st.integers(min_value=-(2**63), max_value=2**63), budgets)
def test_compiled_expression_matches_the_reference(expr: a.Expr, env: dict[str, Any], now_ms: int, steps: int) -> None:
    compiled = Compiled(expr)
    ref_budget, new_budget = Budget(steps), Budget(steps)
    expected = _run(lambda: evaluate(expr, env, now_ms, ref_budget))
    got = _run(lambda: compiled.evaluate(env, now_ms, new_budget))
    assert got == expected
    assert new_budget.left == ref_budget.left


# -- indexable policies over requests of every shape ----------------------------------------------

LITERALS = ["a", "b", "c"]
PATHS = ["activity.type", "activity.resource", "activity.params.x", "private_key.id", "x"]
LISTS = ["private_key.tags", "activity.params.list"]


@st.composite
def conjunct(draw: st.DrawFn) -> str:
    lit = repr(draw(st.sampled_from(LITERALS)))
    path = draw(st.sampled_from(PATHS))
    lst = draw(st.sampled_from(LISTS))
    return draw(
        st.sampled_from(
            [
                f"{path} == {lit}",
                f"{lit} == {path}",
                f"{path} != {lit}",
                f"{lst}.contains({lit})",
                f"{lit} in {lst}",
                f"{path} in ['a', 'b']",
                f"{path} in []",
                f"{path} == 1",
                f"{path} >= 2",
                f"{lst}.count() > 1",
                f"!{path}",
                f"{path}",
                f"({path} == {lit} || {path} == 'z')",
                f"activity.params['x'] == {lit}",
                "true",
                "x == y",
                f"{lst}.any(t, t == {lit})",
                f"Timestamp('2026-03-01T00:00:00Z') < {path}",
            ]
        )
    )


@st.composite
def key(draw: st.DrawFn) -> str:
    lit = repr(draw(st.sampled_from(LITERALS)))
    return draw(
        st.sampled_from(
            [
                f"{draw(st.sampled_from(PATHS))} == {lit}",
                f"{lit} == {draw(st.sampled_from(PATHS))}",
                f"{draw(st.sampled_from(LISTS))}.contains({lit})",
                f"{lit} in {draw(st.sampled_from(LISTS))}",
            ]
        )
    )


conditions = st.builds(lambda k, rest: " && ".join([k, *rest]), key(), st.lists(conjunct(), max_size=3)).flatmap(
    lambda text: st.sampled_from([text, f"({text}) && true", f"true && {text}"])
)
consensuses = st.none() | st.sampled_from(
    [
        "approvers.any(u, u.id == 'u1')",
        "approvers.count() >= 2",
        "approvers.filter(u, u.tags.contains('a')).count() >= 1",
        "approvers.any(u, u.nope == 1)",
        "credentials.count() == 0",
        "time.now > 5",
        "approvers.all(u, approvers.all(v, approvers.all(w, u.tags == w.tags)))",
    ]
)
times = st.none() | st.sampled_from(["time.now >= 1000", "time.now < 10", "time.now == 'x'"])


@st.composite
def indexable_policy(draw: st.DrawFn, n: int) -> Policy:
    return compile_policy(
        f"p{n}",
        draw(st.sampled_from(Effect)),
        draw(conditions),
        draw(consensuses),
        draw(st.none() | st.none() | times),
    )


@st.composite
def random_policy(draw: st.DrawFn, n: int) -> Policy:
    condition = draw(fields)
    return Policy(
        f"p{n}", draw(st.sampled_from(Effect)), condition, draw(fields), draw(fields), namespace_reads(condition)
    )


@st.composite
def policy_lists(draw: st.DrawFn) -> list[Policy]:
    count = draw(st.integers(min_value=0, max_value=12))
    out = [draw(indexable_policy(n) | indexable_policy(n) | random_policy(n)) for n in range(count)]
    if out and draw(st.booleans()):  # copies of a policy: shared conditions, memoised results
        twin = draw(st.sampled_from(out))
        out += [replace(twin, policy_id=f"{twin.policy_id}-copy{k}") for k in range(draw(st.integers(1, 3)))]
    return out


strings = st.sampled_from(["a", "b", "c", "z"])
scalars = strings | strings | st.sampled_from(["a", "b", "c", "z", None, 1, 2, True, False, [], {}])
tag_lists = st.lists(strings | strings | st.sampled_from([None, 1]), max_size=3) | scalars


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly complete requests with string values (so that keys are false), sometimes not."""
    full = draw(st.integers(min_value=0, max_value=3)) > 0
    fields = {"type": scalars, "resource": scalars}
    params = (
        st.fixed_dictionaries({"x": scalars, "list": tag_lists})
        if full
        else st.fixed_dictionaries({}, optional={"x": scalars, "list": tag_lists})
    )
    activity = draw(
        st.fixed_dictionaries({**fields, "params": params})
        if full
        else st.fixed_dictionaries({}, optional={**fields, "params": params | scalars})
    )
    env: dict[str, Any] = {"activity": activity}
    if full or draw(st.booleans()):
        env["private_key"] = draw(st.fixed_dictionaries({"id": scalars, "tags": tag_lists}) if full else scalars)
    if full or draw(st.booleans()):
        env["x"] = draw(scalars if full else json_values)
    if draw(st.booleans()):
        env["y"] = draw(scalars)
    return env


def _decide(policies: list[Policy] | PolicySet, env: dict[str, Any], budget: Budget, **args: Any) -> Decision:
    if isinstance(policies, PolicySet):
        return run_steps(authorize_set_steps(policies, env, budget=budget, **args))
    return run_steps(authorize_steps(policies, env, budget=budget, **args))


@_SETTINGS
@given(
    policy_lists(),
    st.lists(requests(), min_size=1, max_size=3),
    st.lists(approvers, min_size=1, max_size=2),
    st.sampled_from([0, 100, 30_000, 400_000]) | st.integers(min_value=0, max_value=30_000),
    st.integers(min_value=0, max_value=2000),
    st.booleans(),
)
def test_policy_set_decides_as_the_reference(
    policies: list[Policy],
    subjects: list[dict[str, Any]],
    votes: list[list[dict[str, Any]]],
    steps: int,
    now_ms: int,
    labelled: bool,
) -> None:
    """Several subjects share one budget (a batch); the set is reused across decisions (its memos)."""
    policy_set = PolicySet(policies)
    quorum = RootQuorum.of(2, ["r1", "r2"])
    for voters in votes:
        ref_budget, new_budget = Budget(steps), Budget(steps)
        for n, env in enumerate(subjects):
            args: dict[str, Any] = {"approvers": voters, "root_quorum": quorum, "now_ms": now_ms}
            if labelled:
                args["subject"] = f"payloads[{n}]"
            expected = _decide(policies, env, ref_budget, **args)
            got = _decide(policy_set, env, new_budget, **args)
            assert got == expected
            assert new_budget.left == ref_budget.left


def test_the_index_leaves_out_policies_whose_key_is_false() -> None:
    """The bench's shape: the index must actually skip, and report what the reference reports."""
    policies = [
        compile_policy(f"p{i}", Effect.DENY, f"activity.type == 'T{i}' && activity.params.n != 'x'", None)
        for i in range(50)
    ]
    policies.append(compile_policy("tags", Effect.DENY, "private_key.tags.contains('frozen')", None))
    policies.append(compile_policy("ok", Effect.ALLOW, "activity.type == 'T7'", "approvers.count() >= 1"))
    policy_set = PolicySet(policies)
    assert all(certificate(p) is not None for p in policies)
    env = {"activity": {"type": "T7", "params": {"n": "y"}}, "private_key": {"tags": ["hot"]}}
    args: dict[str, Any] = {"approvers": [{"id": "u"}], "root_quorum": RootQuorum.of(1, ["r"]), "now_ms": 0}
    steps = authorize_set_steps(policy_set, env, **args)
    evaluated = 0
    while True:
        try:
            next(steps)
            evaluated += 1
        except StopIteration as done:
            decision = done.value
            break
    assert evaluated == 2  # p7 and "ok": the 49 other types and the missing tag are proven false
    assert decision == authorize(policies, env, **args)
    assert decision.outcome is Outcome.DENY_EXPLICIT  # p7 applies and denies
    outcomes = [e.outcome for e in decision.evaluations]
    assert outcomes.count(PolicyOutcome.DENY_IMPLICIT) == 50


def test_a_false_key_does_not_hide_a_failing_deny() -> None:
    """`activity.params.n` holds an int: the DENY fails (fail closed) although its key is false."""
    policies = [compile_policy("d", Effect.DENY, "activity.type == 'T1' && activity.params.n != 'x'", None)]
    policies.append(compile_policy("ok", Effect.ALLOW, "true", None))
    env = {"activity": {"type": "T2", "params": {"n": 5}}}
    args: dict[str, Any] = {"approvers": [], "root_quorum": RootQuorum.of(1, ["r"]), "now_ms": 0}
    decision = authorize(PolicySet(policies), env, **args)
    assert decision == authorize(policies, env, **args)
    assert decision.evaluations[0].outcome is PolicyOutcome.ERROR
    assert not decision.allowed


def test_the_budget_still_fails_a_policy_closed() -> None:
    """A consensus that exceeds `POLICY_STEPS` fails, at the same node, in both paths."""
    heavy = "approvers.all(u, approvers.all(v, approvers.all(w, u.tags == w.tags)))"
    policies = [compile_policy("d", Effect.DENY, "activity.type == 'nope'", heavy)]
    policies.append(compile_policy("ok", Effect.ALLOW, "true", None))
    voters = [{"id": f"u{i}", "tags": ["a"] * 3} for i in range(14)]
    args: dict[str, Any] = {"approvers": voters, "root_quorum": RootQuorum.of(1, ["r"]), "now_ms": 0}
    env = {"activity": {"type": "T"}}
    decision = authorize(PolicySet(policies), env, **args)
    assert decision == authorize(policies, env, **args)
    assert decision.evaluations[0].outcome is PolicyOutcome.ERROR
    assert "budget exceeded" in (decision.evaluations[0].error or "")
    assert not decision.allowed


def test_identical_conditions_share_one_compiled_expression() -> None:
    text = "activity.type == 'T' && x.y == 1"
    policies = [compile_policy(f"p{i}", Effect.ALLOW, text, None) for i in range(3)]
    policy_set = PolicySet(policies)
    assert len({id(c.condition) for c in policy_set.compiled}) == 1
    assert parse_expression(text) == policies[0].condition


def test_a_shared_result_is_not_reused_past_the_budget() -> None:
    """Three policies share one condition; the second and third have too few steps left for it."""
    text = "activity.type == 'T' && activity.resource == 'R'"  # 9 steps
    policies = [compile_policy(f"p{i}", Effect.DENY, text, "approvers.count() >= 0") for i in range(3)]
    policy_set = PolicySet(policies)
    args: dict[str, Any] = {"approvers": [{"id": "u"}], "root_quorum": RootQuorum.of(1, ["r"]), "now_ms": 0}
    env = {"activity": {"type": "T", "resource": "R"}}
    warm = authorize(policy_set, env, **args)  # fills the memos
    assert [e.outcome for e in warm.evaluations] == [PolicyOutcome.DENY_EXPLICIT] * 3
    for steps in range(0, 45):
        ref_budget, new_budget = Budget(steps), Budget(steps)
        expected = _decide(policies, env, ref_budget, **args)
        assert _decide(policy_set, env, new_budget, **args) == expected
        assert new_budget.left == ref_budget.left
