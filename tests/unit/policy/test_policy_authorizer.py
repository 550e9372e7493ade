"""The decision table, driven by tests/vectors/policy/cases.json, plus direct checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.policy import (
    Decision,
    Effect,
    Outcome,
    Policy,
    PolicyOutcome,
    RootQuorum,
    authorize,
    check_policy,
    compile_policy,
    parse_expression,
)
from strongroom.policy.authorizer import DecisionArgs, authorize_steps, step

VECTORS = Path(__file__).parents[2] / "vectors" / "policy"
_DOC: dict[str, Any] = json.loads((VECTORS / "cases.json").read_text(encoding="utf-8"))
CASES: list[dict[str, Any]] = _DOC["cases"]


def _policies(case: dict[str, Any]) -> list[Policy]:
    return [compile_policy(p["id"], p["effect"], p["condition"], p["consensus"], p["time"]) for p in case["policies"]]


def _args(case: dict[str, Any]) -> DecisionArgs:
    return DecisionArgs(
        approvers=case["approvers"],
        credentials=case["credentials"],
        root_quorum=RootQuorum.of(case["root_quorum"]["threshold"], case["root_quorum"]["user_ids"]),
        approved_user_ids=case.get("approved_user_ids"),
        root_only=case["root_only"],
        now_ms=case["now_ms"],
    )


def _run(case: dict[str, Any]) -> Decision:
    return authorize(_policies(case), case["env"], **_args(case))


def test_corpus_has_provenance() -> None:
    assert _DOC["source"]
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_decision_table(case: dict[str, Any]) -> None:
    decision = _run(case)
    assert decision.outcome == Outcome(case["expected"]), decision.reasons
    assert {e.policy_id: str(e.outcome) for e in decision.evaluations} == case["evaluations"]
    assert decision.reasons
    assert decision.allowed == (decision.outcome is Outcome.ALLOW)
    for e in decision.evaluations:
        assert (e.error is not None) == (e.outcome is PolicyOutcome.ERROR)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_policies_that_should_check_clean_do(case: dict[str, Any]) -> None:
    # Everything in the corpus passes the static checker except the deliberate type errors.
    deliberate = {"allow-type", "allow-order", "deny-badtime", "allow-or", "deny-typo", "deny-order"}
    for p in case["policies"]:
        issues = check_policy(p["condition"], p["consensus"], p["time"])
        assert bool(issues) == (p["id"] in deliberate), issues


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_stepping_yields_once_per_policy_then_the_same_decision(case: dict[str, Any]) -> None:
    policies = _policies(case)
    steps = authorize_steps(policies, case["env"], **_args(case))
    pauses = 0
    while (decision := step(steps)) is None:
        pauses += 1
    assert decision == _run(case)
    assert pauses == (len(policies) if decision.evaluations else 0)


def test_error_reason_names_the_policy_field_and_position() -> None:
    deny = compile_policy("deny-typo", Effect.DENY, "activity.action == 'SIGN' && activity.nme == 'w-1'")
    decision = authorize(
        [deny],
        {"activity": {"action": "SIGN"}},
        approvers=[{"id": "u"}],
        root_quorum=RootQuorum.of(1, ["root"]),
        now_ms=0,
    )
    assert decision.outcome is Outcome.DENY_EXPLICIT  # a deny that fails denies (fail closed)
    reason = decision.reasons[-1]
    assert "deny-typo" in reason
    assert "condition at line 1, column 39: missing field `nme`" in reason
    assert decision.evaluations[0].outcome == "OUTCOME_ERROR"


def test_a_policy_reading_a_namespace_the_request_lacks_is_not_applicable() -> None:
    deny = compile_policy("deny-wallet", Effect.DENY, "activity.action == 'SIGN' && wallet.id == 'w-1'")
    decision = authorize(
        [deny],
        {"activity": {"action": "SIGN"}},
        approvers=[{"id": "u"}],
        root_quorum=RootQuorum.of(1, ["root"]),
        now_ms=0,
    )
    assert decision.outcome is Outcome.DENY_IMPLICIT  # nothing allows, nothing denies
    (evaluation,) = decision.evaluations
    assert evaluation.outcome == "OUTCOME_DENY_IMPLICIT"
    assert evaluation.not_applicable == "the request has no `wallet`"


def test_policies_are_all_evaluated_in_order() -> None:
    policies = [compile_policy(f"p{i}", Effect.ALLOW, f"activity.n == {i}") for i in range(5)]
    decision = authorize(
        policies,
        {"activity": {"n": 3}},
        approvers=[],
        root_quorum=RootQuorum.of(1, []),
        now_ms=0,
    )
    assert decision.outcome is Outcome.ALLOW
    assert [(e.policy_id, e.outcome) for e in decision.evaluations] == [
        ("p0", "OUTCOME_DENY_IMPLICIT"),
        ("p1", "OUTCOME_DENY_IMPLICIT"),
        ("p2", "OUTCOME_DENY_IMPLICIT"),
        ("p3", "OUTCOME_ALLOW"),
        ("p4", "OUTCOME_DENY_IMPLICIT"),
    ]


def test_duplicate_root_votes_count_once() -> None:
    decision = authorize(
        [],
        {},
        approvers=[{"id": "r1"}, {"id": "r1"}],
        root_quorum=RootQuorum.of(2, ["r1", "r2"]),
        now_ms=0,
    )
    assert decision.outcome is Outcome.REQUIRES_CONSENSUS
    assert decision.reasons[0] == "root quorum needs 1 more root vote(s)"


def test_policy_built_from_ast_directly() -> None:
    policy = Policy("p", Effect.ALLOW, parse_expression("true"), None, None)
    decision = authorize([policy], {}, approvers=[], root_quorum=RootQuorum.of(1, []), now_ms=0)
    assert decision.outcome is Outcome.ALLOW


def test_compile_policy_rejects_unknown_effect() -> None:
    with pytest.raises(ValueError, match="EFFECT_MAYBE"):
        compile_policy("p", "EFFECT_MAYBE", "true")
