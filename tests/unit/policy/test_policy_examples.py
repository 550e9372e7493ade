"""Every example policy of turnkey-api.md §9.6 parses, checks clean and evaluates as expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.policy import (
    PolicyOutcome,
    check_policy,
    compile_policy,
    evaluate_policy,
    parse_expression,
    to_source,
)

VECTORS = Path(__file__).parents[2] / "vectors" / "policy"
_DOC: dict[str, Any] = json.loads((VECTORS / "turnkey_examples.json").read_text(encoding="utf-8"))
EXAMPLES: list[dict[str, Any]] = _DOC["examples"]
_IDS = [f"{e['number']}-{e['name']}" for e in EXAMPLES]
CASES = [(e, c) for e in EXAMPLES for c in e["cases"]]
_CASE_IDS = [f"{e['number']}-{i}-{c['outcome']}" for e in EXAMPLES for i, c in enumerate(e["cases"])]


def test_corpus_has_provenance_and_all_examples() -> None:
    assert _DOC["source"]
    assert [e["number"] for e in EXAMPLES] == list(range(1, 18))


@pytest.mark.parametrize("example", EXAMPLES, ids=_IDS)
def test_example_checks_clean(example: dict[str, Any]) -> None:
    assert check_policy(example["condition"], example["consensus"], example["time"]) == []


@pytest.mark.parametrize("example", EXAMPLES, ids=_IDS)
def test_example_round_trips_through_the_printer(example: dict[str, Any]) -> None:
    for text in (example["condition"], example["consensus"], example["time"]):
        if text:
            expr = parse_expression(text)
            assert parse_expression(to_source(expr)) == expr


@pytest.mark.parametrize("example", EXAMPLES, ids=_IDS)
def test_example_covers_match_and_non_match(example: dict[str, Any]) -> None:
    outcomes = {c["outcome"] for c in example["cases"]}
    assert outcomes & {"OUTCOME_ALLOW", "OUTCOME_DENY_EXPLICIT"}
    assert outcomes - {"OUTCOME_ALLOW", "OUTCOME_DENY_EXPLICIT"}


@pytest.mark.parametrize(("example", "case"), CASES, ids=_CASE_IDS)
def test_example_evaluates(example: dict[str, Any], case: dict[str, Any]) -> None:
    policy = compile_policy("p", example["effect"], example["condition"], example["consensus"], example["time"])
    consensus_env = {"approvers": case["approvers"], "credentials": case["credentials"]}
    result = evaluate_policy(policy, case["env"], consensus_env, case["now_ms"])
    assert result.outcome == PolicyOutcome(case["outcome"]), result.error
    assert (result.error is not None) == (result.outcome is PolicyOutcome.ERROR)
    assert (result.not_applicable is not None) == ("not applicable" in case.get("note", ""))
