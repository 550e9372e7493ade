"""Value types shared by the authorizer and its callers."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum

from strongroom.policy import ast
from strongroom.policy.namespaces import Path, namespace_reads
from strongroom.policy.parser import parse_expression


class Effect(StrEnum):
    ALLOW = "EFFECT_ALLOW"
    DENY = "EFFECT_DENY"


class Outcome(StrEnum):
    """The overall decision for a request."""

    ALLOW = "ALLOW"
    DENY_EXPLICIT = "DENY_EXPLICIT"
    DENY_IMPLICIT = "DENY_IMPLICIT"
    REQUIRES_CONSENSUS = "REQUIRES_CONSENSUS"


class PolicyOutcome(StrEnum):
    """Per-policy result, with Turnkey's `OUTCOME_*` strings (§6)."""

    ALLOW = "OUTCOME_ALLOW"
    DENY_EXPLICIT = "OUTCOME_DENY_EXPLICIT"
    DENY_IMPLICIT = "OUTCOME_DENY_IMPLICIT"
    REQUIRES_CONSENSUS = "OUTCOME_REQUIRES_CONSENSUS"
    ERROR = "OUTCOME_ERROR"
    TIME_INACTIVE = "OUTCOME_TIME_INACTIVE"


@dataclass(frozen=True, slots=True)
class Policy:
    """A stored policy with its expressions parsed; None means "no restriction" for that field.

    `reads` are the namespaces its condition reads (see `strongroom.policy.namespaces`): when a
    request lacks one of them, the policy does not apply to it.
    """

    policy_id: str
    effect: Effect
    condition: ast.Expr | None = None
    consensus: ast.Expr | None = None
    time: ast.Expr | None = None
    reads: frozenset[Path] = frozenset()


@dataclass(frozen=True, slots=True)
class RootQuorum:
    threshold: int
    user_ids: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, threshold: int, user_ids: Collection[str]) -> RootQuorum:
        return cls(threshold, frozenset(user_ids))


@dataclass(frozen=True, slots=True)
class PolicyEvaluation:
    """How one policy evaluated: `outcome` is an `OUTCOME_*` string; `error` is set for OUTCOME_ERROR.

    `not_applicable` names the namespace the request lacks when the policy does not apply
    (outcome `OUTCOME_DENY_IMPLICIT`); `subject` says which element of a batch was evaluated.
    """

    policy_id: str
    outcome: PolicyOutcome
    error: str | None = None
    not_applicable: str | None = None
    subject: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reasons: tuple[str, ...]
    evaluations: tuple[PolicyEvaluation, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW


def _parse_optional(text: str | None) -> ast.Expr | None:
    if text is None or not text.strip():
        return None
    return parse_expression(text)


def compile_policy(
    policy_id: str,
    effect: Effect | str,
    condition: str | None = None,
    consensus: str | None = None,
    time: str | None = None,
) -> Policy:
    """Parse a stored policy's text fields (empty or absent = no restriction).

    Raises `PolicySyntaxError` for unparsable text and `ValueError` for an unknown effect.
    """
    parsed = _parse_optional(condition)
    return Policy(
        policy_id,
        Effect(effect),
        parsed,
        _parse_optional(consensus),
        _parse_optional(time),
        namespace_reads(parsed),
    )


__all__ = [
    "Decision",
    "Effect",
    "Outcome",
    "Policy",
    "PolicyEvaluation",
    "PolicyOutcome",
    "RootQuorum",
    "compile_policy",
]
