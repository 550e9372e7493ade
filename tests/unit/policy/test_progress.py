"""`strongroom.policy.progress`: what a consensus expression still needs, in words."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.policy import parse_expression
from strongroom.policy.progress import progress

ALICE = {"id": "u-alice", "tags": ["ops"], "email": "", "alias": "alice"}
BOB = {"id": "u-bob", "tags": ["dev"], "email": "", "alias": "bob"}


def describe(consensus: str, approvers: list[dict[str, Any]]) -> list[str]:
    return [p["description"] for p in progress(parse_expression(consensus), approvers, [], 0)]


@pytest.mark.parametrize(
    ("consensus", "approvers", "said"),
    [
        ("approvers.count() >= 2", [ALICE], ["needs 2 approvals from any users, has 1"]),
        ("approvers.count > 1", [ALICE, BOB], ["needs 2 approvals from any users, has 2"]),
        (
            "approvers.filter(user, user.tags.contains('ops')).count() >= 2",
            [ALICE, BOB],
            ["needs 2 approvals from users tagged ops, has 1"],
        ),
        (
            "approvers.filter(u, 'dev' in u.tags).count() >= 1",
            [ALICE],
            ["needs 1 approval from users tagged dev, has 0"],
        ),
        ("approvers.any(user, user.id == 'u-bob')", [ALICE], ["needs 1 approval from user u-bob, has 0"]),
        (
            "approvers.any(user, user.id == 'u-bob') && approvers.count() >= 3",
            [ALICE, BOB],
            ["needs 1 approval from user u-bob, has 1", "needs 3 approvals from any users, has 2"],
        ),
        (
            "approvers.filter(u, u.alias == 'bob').count() >= 1",
            [BOB],
            ["needs 1 approval from approvers where u.alias == 'bob', has 1"],
        ),
        ("approvers.all(u, u.alias != 'eve')", [ALICE], ["met: approvers.all(u, u.alias != 'eve')"]),
        ("credentials.count() >= 1", [ALICE], ["not met yet: credentials.count() >= 1"]),
    ],
)
def test_progress_says_what_is_missing(consensus: str, approvers: list[dict[str, Any]], said: list[str]) -> None:
    assert describe(consensus, approvers) == said


def test_counts_and_met_are_given_for_counted_parts() -> None:
    (part,) = progress(parse_expression("approvers.count() >= 2"), [ALICE, BOB], [], 0)
    assert (part["needed"], part["has"], part["met"]) == (2, 2, True)
    assert part["expression"] == "approvers.count() >= 2"


def test_a_known_tag_id_is_shown_with_its_name() -> None:
    tagged = {**ALICE, "tags": ["t-1"]}
    consensus = parse_expression("approvers.filter(u, u.tags.contains('t-1')).count() >= 2")
    (part,) = progress(consensus, [tagged], [], 0, {"t-1": "treasury"})
    assert part["description"] == "needs 2 approvals from users tagged treasury (t-1), has 1"


def test_a_known_user_id_is_shown_with_its_name() -> None:
    consensus = parse_expression("approvers.any(u, u.id == 'u-bob')")
    (part,) = progress(consensus, [ALICE], [], 0, user_names={"u-bob": "bob"})
    assert part["description"] == "needs 1 approval from user bob (u-bob), has 0"
