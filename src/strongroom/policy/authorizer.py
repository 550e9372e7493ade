"""The policy decision: a pure function of policies, request, votes and the trusted time.

`authorize` applies these rules, in order (Turnkey §9.4/§9.5, style convention 7):

1. **Root quorum bypass.** If at least `threshold` distinct members of the root quorum are among
   the approvers, the outcome is ALLOW and no policy is evaluated (root can always unbrick the
   organisation). A threshold below 1 is treated as misconfigured and never bypasses (fail closed).
2. **Root-quorum-only activities** (`root_only=True`, e.g. `ACTIVITY_TYPE_UPDATE_ROOT_QUORUM`) are
   never granted by a policy and no policy is evaluated: REQUIRES_CONSENSUS if at least one root
   user has approved (more root votes can complete it), otherwise DENY_IMPLICIT (a request from
   outside the root quorum is refused rather than parked).
3. Every policy is evaluated (no ordering, no early exit), field by field:
   - `time` gate first: if present and false, the policy is skipped entirely, DENY ones included
     (`OUTCOME_TIME_INACTIVE`); the other fields are not evaluated.
   - then `condition` against the request environment and `consensus` against
     `approvers`/`credentials`. Both are always evaluated. An absent field is `true`.
   - any evaluation error (missing keyword or field, type mismatch, non-bool result) in any field
     gives `OUTCOME_ERROR` for that policy.
   Per-policy outcomes: condition and consensus true → `OUTCOME_DENY_EXPLICIT` (DENY) or
   `OUTCOME_ALLOW` (ALLOW); an ALLOW whose condition holds but whose consensus does not (yet) →
   `OUTCOME_REQUIRES_CONSENSUS`; anything else → `OUTCOME_DENY_IMPLICIT` (does not apply).
4. **Deny wins.** Any DENY policy with `OUTCOME_DENY_EXPLICIT` → DENY_EXPLICIT.
5. Else any ALLOW policy with `OUTCOME_ALLOW` → ALLOW.

   A policy that fails to evaluate (`OUTCOME_ERROR`) neither allows nor denies, whatever its
   effect: errors can never grant anything (fail closed), and an error is how Turnkey's engine
   says "this policy does not apply to this request" — with no short-circuiting, a DENY that reads
   `solana.tx` errors on every Ethereum request, and Turnkey's own published examples (a deny on
   `activity.params.hash_function`, a deny on Solana recipients) would otherwise refuse every
   other activity of the organisation. Errors are reported in `evaluations` and `reasons`.
6. Else any ALLOW policy with `OUTCOME_REQUIRES_CONSENSUS` → REQUIRES_CONSENSUS.
7. Else DENY_IMPLICIT.
8. **Pending root votes.** If the result of 4-7 is not ALLOW but at least one root user (fewer than
   the threshold) has approved, the outcome is REQUIRES_CONSENSUS: further root votes would allow
   through rule 1, which overrides every policy, explicit denies included. The policy result stays
   in `reasons`. Nothing is executed in that state; each new vote re-runs `authorize`.

`Decision.evaluations` lists every policy's `OUTCOME_*` (empty when rules 1 or 2 decide);
`Decision.reasons` explains the outcome in lowercase sentences (evaluation errors included).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from strongroom.policy import ast
from strongroom.policy.errors import PolicyEvalError
from strongroom.policy.evaluator import evaluate_bool
from strongroom.policy.model import (
    Decision,
    Effect,
    Outcome,
    Policy,
    PolicyEvaluation,
    PolicyOutcome,
    RootQuorum,
)


def _describe_error(field: str, err: PolicyEvalError) -> str:
    where = f" at line {err.line}, column {err.column}" if err.line else ""
    return f"{field}{where}: {err.reason}"


def _field(expr: ast.Expr | None, env: Mapping[str, object], now_ms: int, name: str, errors: list[str]) -> bool | None:
    """The field's truth value (absent = true), or None after recording an error."""
    if expr is None:
        return True
    try:
        return evaluate_bool(expr, env, now_ms)
    except PolicyEvalError as err:
        errors.append(_describe_error(name, err))
        return None


def evaluate_policy(
    policy: Policy,
    env: Mapping[str, object],
    consensus_env: Mapping[str, object],
    now_ms: int,
) -> PolicyEvaluation:
    """One policy's `OUTCOME_*` for a request (rule 3 of the module docstring)."""
    errors: list[str] = []
    active = _field(policy.time, {}, now_ms, "time", errors)
    if active is False:
        return PolicyEvaluation(policy.policy_id, PolicyOutcome.TIME_INACTIVE)
    condition = _field(policy.condition, env, now_ms, "condition", errors)
    consensus = _field(policy.consensus, consensus_env, now_ms, "consensus", errors)
    if errors or condition is None or consensus is None:
        return PolicyEvaluation(policy.policy_id, PolicyOutcome.ERROR, "; ".join(errors))
    if condition and consensus:
        outcome = PolicyOutcome.ALLOW if policy.effect is Effect.ALLOW else PolicyOutcome.DENY_EXPLICIT
    elif condition and policy.effect is Effect.ALLOW:
        outcome = PolicyOutcome.REQUIRES_CONSENSUS
    else:
        outcome = PolicyOutcome.DENY_IMPLICIT
    return PolicyEvaluation(policy.policy_id, outcome)


def _policy_decision(evaluations: Sequence[tuple[Policy, PolicyEvaluation]]) -> tuple[Outcome, list[str]]:
    """Rules 4-7."""
    denials: list[str] = []
    allows: list[str] = []
    pending: list[str] = []
    failed: list[str] = []
    for policy, result in evaluations:
        pid = policy.policy_id
        if policy.effect is Effect.DENY:
            if result.outcome is PolicyOutcome.DENY_EXPLICIT:
                denials.append(f"policy `{pid}` denies the activity")
            elif result.outcome is PolicyOutcome.ERROR:
                failed.append(f"deny policy `{pid}` does not apply: it failed to evaluate ({result.error})")
        elif result.outcome is PolicyOutcome.ALLOW:
            allows.append(f"policy `{pid}` allows the activity")
        elif result.outcome is PolicyOutcome.REQUIRES_CONSENSUS:
            pending.append(f"policy `{pid}` matches but its consensus is not met yet")
        elif result.outcome is PolicyOutcome.ERROR:
            failed.append(f"allow policy `{pid}` does not allow: it failed to evaluate ({result.error})")
    if denials:
        return Outcome.DENY_EXPLICIT, denials + failed
    if allows:
        return Outcome.ALLOW, allows + failed
    if pending:
        return Outcome.REQUIRES_CONSENSUS, pending + failed
    return Outcome.DENY_IMPLICIT, ["no policy allows the activity", *failed]


def authorize(
    policies: Sequence[Policy],
    env: Mapping[str, object],
    *,
    approvers: Sequence[Mapping[str, object]],
    root_quorum: RootQuorum,
    now_ms: int,
    credentials: Sequence[Mapping[str, object]] = (),
    approved_user_ids: Collection[str] | None = None,
    root_only: bool = False,
) -> Decision:
    """Decide a request; see the module docstring for the rules.

    `env` holds the condition keywords (`activity`, `private_key`, `eth`, ...); `approvers` and
    `credentials` are the users and credentials that have approved so far (the requester
    included); `approved_user_ids` defaults to the `id` of each approver. Values must be plain
    JSON-like data (`None`, `bool`, `int`, `str`, `list`, `dict`); anything else (tuples, floats)
    is an evaluation error wherever a policy reads it.
    """
    if approved_user_ids is None:
        approved_user_ids = [str(a["id"]) for a in approvers if isinstance(a.get("id"), str)]
    root_votes = len(root_quorum.user_ids & frozenset(approved_user_ids))
    threshold = root_quorum.threshold
    if threshold >= 1 and root_votes >= threshold:
        return Decision(Outcome.ALLOW, (f"root quorum approved ({root_votes} of {threshold} root votes)",))
    missing = f"root quorum needs {threshold - root_votes} more root vote(s)" if threshold >= 1 else ""

    if root_only:
        if root_votes > 0 and threshold >= 1:
            return Decision(Outcome.REQUIRES_CONSENSUS, (f"root-quorum-only activity: {missing}",))
        return Decision(Outcome.DENY_IMPLICIT, ("root-quorum-only activity: only the root quorum may approve it",))

    consensus_env: dict[str, object] = {
        "approvers": [dict(a) for a in approvers],
        "credentials": [dict(c) for c in credentials],
    }
    results = [(p, evaluate_policy(p, env, consensus_env, now_ms)) for p in policies]
    outcome, reasons = _policy_decision(results)
    evaluations = tuple(r for _, r in results)
    if outcome is not Outcome.ALLOW and root_votes > 0 and threshold >= 1:
        return Decision(Outcome.REQUIRES_CONSENSUS, (missing, *reasons), evaluations)
    return Decision(outcome, tuple(reasons), evaluations)


__all__ = ["authorize", "evaluate_policy"]
