"""Hypothesis properties: evaluator totality, errors never allow, DENY monotonicity, printer round trip."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strongroom.policy import (
    Effect,
    Outcome,
    Policy,
    PolicyEvalError,
    PolicyOutcome,
    RootQuorum,
    authorize,
    check_expression,
    evaluate,
    parse_expression,
    to_source,
)
from strongroom.policy import ast as a
from strongroom.policy.namespaces import namespace_reads
from strongroom.policy.timegate import parse_timestamp_ms

NAMES = ["activity", "wallet", "approvers", "credentials", "eth", "time", "x", "u"]
FIELDS = ["id", "type", "tags", "to", "count", "now", "tx", "a", "in", "true"]
IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in ("true", "false", "in"))
TIMESTAMPS = ["1970-01-01T00:00:00Z", "2026-03-01T00:00:00Z", "2024-02-29T23:59:59.999Z", "2000-01-01t12:00:00+00:00"]

leaves: st.SearchStrategy[a.Expr] = st.one_of(
    st.builds(a.BoolLit, st.booleans()),
    st.builds(a.IntLit, st.integers(min_value=-(2**127), max_value=2**256 - 1)),
    st.builds(a.StrLit, st.text(max_size=8)),
    st.builds(a.Name, st.sampled_from(NAMES) | IDENT),
    st.sampled_from(TIMESTAMPS).map(lambda t: a.TimestampLit(t, parse_timestamp_ms(t) or 0)),
)


def _extend(inner: st.SearchStrategy[a.Expr]) -> st.SearchStrategy[a.Expr]:
    optional = st.none() | inner
    return st.one_of(
        st.builds(lambda items: a.ListLit(tuple(items)), st.lists(inner, max_size=3)),
        st.builds(lambda args: a.Call("CronSpan", tuple(args)), st.lists(inner, max_size=3)),
        st.builds(a.Attribute, inner, st.sampled_from(FIELDS) | IDENT),
        st.builds(a.Index, inner, inner),
        st.builds(a.Slice, inner, optional, optional),
        st.builds(a.Not, inner),
        st.builds(a.BoolOp, st.sampled_from(a.BOOL_OPERATORS), inner, inner),
        st.builds(a.Compare, st.sampled_from(a.COMPARE_OPERATORS), inner, inner),
        st.builds(a.Membership, inner, inner),
        st.builds(a.Quantifier, st.sampled_from(a.QUANTIFIER_KINDS), inner, st.sampled_from(NAMES) | IDENT, inner),
        st.builds(a.Contains, inner, inner),
        st.builds(a.Count, inner),
    )


exprs = st.recursive(leaves, _extend, max_leaves=24)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6) | st.sampled_from(["u", "a", "0xabc"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS + NAMES), inner, max_size=4),
    max_leaves=20,
)
odd_values = json_values | st.floats(allow_nan=True) | st.tuples(st.integers()) | st.frozensets(st.integers())
envs = st.dictionaries(st.sampled_from(NAMES), odd_values, max_size=6)

_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(exprs, envs, st.integers(min_value=-(2**63), max_value=2**63))
def test_evaluator_is_total(expr: a.Expr, env: dict[str, Any], now_ms: int) -> None:
    message = "evaluated"
    try:
        evaluate(expr, env, now_ms)
    except PolicyEvalError as err:
        message = err.reason
    assert message


@_SETTINGS
@given(exprs)
def test_checker_is_total(expr: a.Expr) -> None:
    for field in ("condition", "consensus", "time"):
        for issue in check_expression(expr, field):
            assert issue.message


@_SETTINGS
@given(exprs)
def test_print_parse_round_trip(expr: a.Expr) -> None:
    assert parse_expression(to_source(expr)) == expr


# Mostly well-formed expressions, so that ALLOW and DENY_EXPLICIT are common, plus random ones.
SENSIBLE = [
    "true",
    "false",
    "x == 1",
    "x == 1 || wallet.id == 'w'",
    "activity.type == 'a' && x != 2",
    "approvers.any(u, u.id == 'u1')",
    "approvers.count() >= 2",
    "approvers.any(u, u.tags.contains('a'))",
    "time.now >= 1000",
    "time.now < Timestamp('2026-03-01T00:00:00Z')",
]
fields = st.none() | st.sampled_from([parse_expression(t) for t in SENSIBLE]) | exprs


def _policy(
    policy_id: str, effect: Effect, condition: a.Expr | None, consensus: a.Expr | None, t: a.Expr | None
) -> Policy:
    return Policy(policy_id, effect, condition, consensus, t, namespace_reads(condition))


policy = st.builds(_policy, st.uuids().map(str), st.sampled_from(Effect), fields, fields, fields)
policies = st.lists(policy, max_size=4, unique_by=lambda p: p.policy_id)
decision_envs = envs | st.fixed_dictionaries(
    {"x": st.sampled_from([1, 2, "1"]), "activity": st.fixed_dictionaries({"type": st.sampled_from(["a", "b"])})},
    optional={"wallet": st.fixed_dictionaries({"id": st.just("w")})},
)
approvers = st.lists(
    st.fixed_dictionaries({"id": st.sampled_from(["r1", "r2", "u1", "u2"]), "tags": st.lists(st.sampled_from("ab"))}),
    max_size=3,
)


@_SETTINGS
@given(policies, decision_envs, approvers, st.booleans(), st.integers(min_value=0, max_value=10**13))
def test_an_evaluation_error_never_yields_allow(
    ps: list[Policy], env: dict[str, Any], voters: list[dict[str, Any]], root_only: bool, now_ms: int
) -> None:
    quorum = RootQuorum.of(2, ["r1", "r2"])
    decision = authorize(ps, env, approvers=voters, root_quorum=quorum, root_only=root_only, now_ms=now_ms)
    root_votes = len({v["id"] for v in voters} & quorum.user_ids)
    if root_votes >= 2:
        assert decision.outcome is Outcome.ALLOW
        return
    by_id = {p.policy_id: p for p in ps}
    errored = [e for e in decision.evaluations if e.outcome is PolicyOutcome.ERROR]
    if decision.outcome is Outcome.ALLOW:
        assert not root_only
        # Some ALLOW policy evaluated cleanly to ALLOW.
        assert any(
            e.outcome is PolicyOutcome.ALLOW and by_id[e.policy_id].effect is Effect.ALLOW for e in decision.evaluations
        )
    # A DENY that fails denies (fail closed), short of root votes that could still bypass it.
    if any(by_id[e.policy_id].effect is Effect.DENY for e in errored):
        assert decision.outcome is (Outcome.REQUIRES_CONSENSUS if root_votes else Outcome.DENY_EXPLICIT)
    # An ALLOW that fails is inert: removing it changes nothing.
    kept = [p for p in ps if not (p.policy_id in {e.policy_id for e in errored} and p.effect is Effect.ALLOW)]
    again = authorize(kept, env, approvers=voters, root_quorum=quorum, root_only=root_only, now_ms=now_ms)
    assert again.outcome is decision.outcome


@_SETTINGS
@given(policies, decision_envs, approvers, st.integers(min_value=0, max_value=10**13))
def test_an_applicable_deny_always_wins(
    ps: list[Policy], env: dict[str, Any], voters: list[dict[str, Any]], now_ms: int
) -> None:
    """Whatever else the policies say, a DENY whose condition and consensus hold denies — only the
    root quorum (which bypasses policies entirely) can still allow."""
    quorum = RootQuorum.of(2, ["r1", "r2"])
    deny = Policy("the-deny", Effect.DENY, parse_expression("true"), None, None)
    decision = authorize([*ps, deny], env, approvers=voters, root_quorum=quorum, now_ms=now_ms)
    root_votes = len({v["id"] for v in voters} & quorum.user_ids)
    if root_votes >= 2:
        assert decision.outcome is Outcome.ALLOW
    elif root_votes == 1:
        assert decision.outcome is Outcome.REQUIRES_CONSENSUS  # one more root vote would bypass policies
    else:
        assert decision.outcome is Outcome.DENY_EXPLICIT


@_SETTINGS
@given(policies, policy, st.integers(min_value=0, max_value=4), decision_envs, approvers, st.booleans())
def test_adding_a_deny_never_turns_a_refusal_into_an_allow(
    ps: list[Policy], extra: Policy, at: int, env: dict[str, Any], voters: list[dict[str, Any]], root_only: bool
) -> None:
    deny = Policy("added-deny", Effect.DENY, extra.condition, extra.consensus, extra.time, extra.reads)
    quorum = RootQuorum.of(2, ["r1", "r2"])
    before = authorize(ps, env, approvers=voters, root_quorum=quorum, root_only=root_only, now_ms=1)
    after = authorize(
        [*ps[:at], deny, *ps[at:]], env, approvers=voters, root_quorum=quorum, root_only=root_only, now_ms=1
    )
    if after.outcome is Outcome.ALLOW:
        assert before.outcome is Outcome.ALLOW
    if before.outcome is not Outcome.ALLOW:
        assert after.outcome is not Outcome.ALLOW


@_SETTINGS
@given(policies, decision_envs, approvers)
def test_removing_a_deny_that_does_not_apply_keeps_an_allow(
    ps: list[Policy], env: dict[str, Any], voters: list[dict[str, Any]]
) -> None:
    quorum = RootQuorum.of(2, ["r1", "r2"])
    decision = authorize(ps, env, approvers=voters, root_quorum=quorum, now_ms=1)
    if decision.outcome is not Outcome.ALLOW:
        return
    by_id = {p.policy_id: p for p in ps}
    for e in decision.evaluations:
        if by_id[e.policy_id].effect is Effect.DENY and e.outcome in (
            PolicyOutcome.DENY_IMPLICIT,
            PolicyOutcome.TIME_INACTIVE,
        ):
            kept = [p for p in ps if p.policy_id != e.policy_id]
            assert authorize(kept, env, approvers=voters, root_quorum=quorum, now_ms=1).outcome is Outcome.ALLOW
