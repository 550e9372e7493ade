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
   - then applicability: if the condition reads a namespace the request does not have (`eth.tx`
     on a user creation, `solana.tx` on an Ethereum transaction, an `activity.params` field the
     activity does not take; see `strongroom.policy.namespaces`), the policy does not apply
     (`OUTCOME_DENY_IMPLICIT`, with `not_applicable` naming the namespace), as in Turnkey.
   - then `condition` against the request environment and `consensus` against
     `approvers`/`credentials`. Both are always evaluated. An absent field is `true`.
   - any other evaluation failure (a missing field inside a namespace the request has, a type
     mismatch, malformed data, a non-bool result, the step budget exceeded) in any field gives
     `OUTCOME_ERROR` for that policy.
   Per-policy outcomes: condition and consensus true → `OUTCOME_DENY_EXPLICIT` (DENY) or
   `OUTCOME_ALLOW` (ALLOW); an ALLOW whose condition holds but whose consensus does not (yet) →
   `OUTCOME_REQUIRES_CONSENSUS`; anything else → `OUTCOME_DENY_IMPLICIT` (does not apply).
4. **Deny wins, and a DENY that fails denies.** Any DENY policy with `OUTCOME_DENY_EXPLICIT` or
   `OUTCOME_ERROR` → DENY_EXPLICIT. A DENY that cannot be evaluated on data the request does have
   must not be walked around by making it fail (fail closed).
5. Else any ALLOW policy with `OUTCOME_ALLOW` → ALLOW. An ALLOW that fails never allows.
6. Else any ALLOW policy with `OUTCOME_REQUIRES_CONSENSUS` → REQUIRES_CONSENSUS.
7. Else DENY_IMPLICIT.
8. **Pending root votes.** If the result of 4-7 is not ALLOW but at least one root user (fewer than
   the threshold) has approved, the outcome is REQUIRES_CONSENSUS: further root votes would allow
   through rule 1, which overrides every policy, explicit denies included. The policy result stays
   in `reasons`. Nothing is executed in that state; each new vote re-runs `authorize`.

Cost: each decision has a step `Budget` shared by its policies, and each policy evaluation may take
at most `POLICY_STEPS` (2,000 steps) of it; a policy that runs out fails (rule 4/5).
`authorize_steps` is the same decision as a generator that yields after each policy, so a caller
can interleave other work;
`authorize_set_steps` is the same again over a `PolicySet` (compiled once, indexed by the
activity fields and keys policies test, see `strongroom.policy.policyset`): what the service runs.
Several subjects (the payloads of a batch) are decided one by one and joined by `combine`: the
request is allowed only if every subject is.

`Decision.evaluations` lists every policy's `OUTCOME_*` (empty when rules 1 or 2 decide);
`Decision.reasons` explains the outcome in lowercase sentences (evaluation errors included).
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, NotRequired, TypedDict, Unpack

from strongroom.policy import ast
from strongroom.policy.errors import PolicyEvalError
from strongroom.policy.evaluator import Budget, evaluate_bool
from strongroom.policy.model import (
    Decision,
    Effect,
    Outcome,
    Policy,
    PolicyEvaluation,
    PolicyOutcome,
    RootQuorum,
)
from strongroom.policy.namespaces import first_missing
from strongroom.policy.policyset import POLICY_STEPS, PolicySet

DECISION_STEPS: Final = 400_000
"""Steps all the evaluations of one request may take together (every subject, every policy)."""


def _describe_error(field: str, err: PolicyEvalError) -> str:
    where = f" at line {err.line}, column {err.column}" if err.line else ""
    return f"{field}{where}: {err.reason}"


def _field(
    expr: ast.Expr | None, env: Mapping[str, object], now_ms: int, name: str, errors: list[str], budget: Budget
) -> bool | None:
    """The field's truth value (absent = true), or None after recording an error."""
    if expr is None:
        return True
    try:
        return evaluate_bool(expr, env, now_ms, budget)
    except PolicyEvalError as err:
        errors.append(_describe_error(name, err))
        return None


def evaluate_policy(
    policy: Policy,
    env: Mapping[str, object],
    consensus_env: Mapping[str, object],
    now_ms: int,
    budget: Budget | None = None,
) -> PolicyEvaluation:
    """One policy's `OUTCOME_*` for a request (rule 3 of the module docstring).

    At most `POLICY_STEPS` are taken from `budget` (default: a fresh `POLICY_STEPS` budget).
    """
    if budget is None:
        budget = Budget(POLICY_STEPS)
    mine = Budget(min(POLICY_STEPS, budget.left))
    start = mine.left
    try:
        return _evaluate_policy(policy, env, consensus_env, now_ms, mine)
    finally:
        budget.left -= start - mine.left


def _evaluate_policy(
    policy: Policy, env: Mapping[str, object], consensus_env: Mapping[str, object], now_ms: int, budget: Budget
) -> PolicyEvaluation:
    errors: list[str] = []
    active = _field(policy.time, {}, now_ms, "time", errors, budget)
    if active is False:
        return PolicyEvaluation(policy.policy_id, PolicyOutcome.TIME_INACTIVE)
    missing = first_missing(policy.reads, env)
    if missing is not None and not errors:
        return PolicyEvaluation(
            policy.policy_id,
            PolicyOutcome.DENY_IMPLICIT,
            not_applicable=f"the request has no `{'.'.join(missing)}`",
        )
    condition = _field(policy.condition, env, now_ms, "condition", errors, budget)
    consensus = _field(policy.consensus, consensus_env, now_ms, "consensus", errors, budget)
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
                denials.append(f"deny policy `{pid}` failed to evaluate, so it denies ({result.error})")
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


class DecisionArgs(TypedDict):
    """The keyword arguments of `authorize` and `authorize_steps`: who has approved, and when.

    `approvers` and `credentials` (default none) are the users and credentials that have approved
    so far (the requester included); `approved_user_ids` defaults to the `id` of each approver.
    `root_only` marks a root-quorum-only activity (rule 2). `budget` is the decision's step budget
    (default: a fresh `DECISION_STEPS`), shared when several subjects are decided; `subject`
    labels the evaluations (default: none).
    """

    approvers: Sequence[Mapping[str, object]]
    root_quorum: RootQuorum
    now_ms: int
    credentials: NotRequired[Sequence[Mapping[str, object]]]
    approved_user_ids: NotRequired[Collection[str] | None]
    root_only: NotRequired[bool]
    budget: NotRequired[Budget | None]
    subject: NotRequired[str]


@dataclass(frozen=True, slots=True)
class _Votes:
    """What rules 1, 2 and 8 need, once the votes are counted."""

    root_votes: int
    threshold: int
    missing: str


def _root_rules(args: DecisionArgs) -> Decision | _Votes:
    """Rules 1 and 2: a decision made by the root quorum alone, or the vote count for rule 8."""
    approvers, root_quorum = args["approvers"], args["root_quorum"]
    approved_user_ids = args.get("approved_user_ids")
    if approved_user_ids is None:
        approved_user_ids = [str(a["id"]) for a in approvers if isinstance(a.get("id"), str)]
    root_votes = len(root_quorum.user_ids & frozenset(approved_user_ids))
    threshold = root_quorum.threshold
    if threshold >= 1 and root_votes >= threshold:
        return Decision(Outcome.ALLOW, (f"root quorum approved ({root_votes} of {threshold} root votes)",))
    missing = f"root quorum needs {threshold - root_votes} more root vote(s)" if threshold >= 1 else ""

    if args.get("root_only", False):
        if root_votes > 0 and threshold >= 1:
            return Decision(Outcome.REQUIRES_CONSENSUS, (f"root-quorum-only activity: {missing}",))
        return Decision(Outcome.DENY_IMPLICIT, ("root-quorum-only activity: only the root quorum may approve it",))
    return _Votes(root_votes, threshold, missing)


def _consensus_env(args: DecisionArgs) -> dict[str, object]:
    return {
        "approvers": [dict(a) for a in args["approvers"]],
        "credentials": [dict(c) for c in args.get("credentials", ())],
    }


def _decision(
    votes: _Votes, results: Sequence[tuple[Policy, PolicyEvaluation]], evaluations: tuple[PolicyEvaluation, ...]
) -> Decision:
    """Rules 4-8 over the policies' evaluations."""
    outcome, reasons = _policy_decision(results)
    if outcome is not Outcome.ALLOW and votes.root_votes > 0 and votes.threshold >= 1:
        return Decision(Outcome.REQUIRES_CONSENSUS, (votes.missing, *reasons), evaluations)
    return Decision(outcome, tuple(reasons), evaluations)


def authorize_steps(
    policies: Sequence[Policy], env: Mapping[str, object], **args: Unpack[DecisionArgs]
) -> Generator[None, None, Decision]:
    """`authorize` as a generator that yields after each policy; its return value is the decision.

    The reference: every policy's AST is walked. `authorize_set_steps` decides the same with the
    policies compiled and indexed once.
    """
    votes = _root_rules(args)
    if isinstance(votes, Decision):
        return votes
    budget = args.get("budget")
    if budget is None:
        budget = Budget(DECISION_STEPS)
    consensus_env = _consensus_env(args)
    now_ms = args["now_ms"]
    subject = args.get("subject", "")
    results: list[tuple[Policy, PolicyEvaluation]] = []
    for p in policies:
        evaluation = evaluate_policy(p, env, consensus_env, now_ms, budget)
        if subject:
            evaluation = replace(evaluation, subject=subject)
        results.append((p, evaluation))
        yield
    return _decision(votes, results, tuple(r for _, r in results))


def authorize_set_steps(
    policies: PolicySet, env: Mapping[str, object], **args: Unpack[DecisionArgs]
) -> Generator[None, None, Decision]:
    """`authorize_steps(policies.policies, env, **args)`, compiled and indexed (`strongroom.policy.policyset`).

    The same decision, reasons, evaluations and budget left; it yields after each policy it
    actually evaluates (the policies the index rules out are settled in bulk).
    """
    votes = _root_rules(args)
    if isinstance(votes, Decision):
        return votes
    budget = args.get("budget")
    if budget is None:
        budget = Budget(DECISION_STEPS)
    evaluations, results = yield from policies.steps(
        env, _consensus_env(args), args["now_ms"], budget, args.get("subject", "")
    )
    return _decision(votes, results, tuple(evaluations))


def step(steps: Generator[None, None, Decision]) -> Decision | None:
    """Advance an `authorize_steps` generator by one policy: its decision once it has one, else None.

    The one way to drive a decision: `run_steps` calls it in a loop, a caller that interleaves
    other work (the event loop's slicing) calls it between its own checks.
    """
    try:
        next(steps)
    except StopIteration as done:
        decision: Decision = done.value
        return decision
    return None


def run_steps(steps: Generator[None, None, Decision]) -> Decision:
    """Drive an `authorize_steps` generator to its decision."""
    while (decision := step(steps)) is None:
        pass
    return decision


def authorize(
    policies: Sequence[Policy] | PolicySet, env: Mapping[str, object], **args: Unpack[DecisionArgs]
) -> Decision:
    """Decide a request; see the module docstring for the rules and `DecisionArgs` for `args`.

    `policies` is a list (the reference evaluation) or a `PolicySet` (compiled and indexed, same
    decision). `env` holds the condition keywords (`activity`, `private_key`, `eth`, ...). Values must be plain
    JSON-like data (`None`, `bool`, `int`, `str`, `list`, `dict`); anything else (tuples, floats)
    is an evaluation error wherever a policy reads it.
    """
    if isinstance(policies, PolicySet):
        return run_steps(authorize_set_steps(policies, env, **args))
    return run_steps(authorize_steps(policies, env, **args))


_SEVERITY: Final = {
    Outcome.DENY_EXPLICIT: 3,
    Outcome.DENY_IMPLICIT: 2,
    Outcome.REQUIRES_CONSENSUS: 1,
    Outcome.ALLOW: 0,
}


def combine(decisions: Sequence[tuple[str, Decision]]) -> Decision:
    """One decision for a request with several subjects (the payloads of a batch).

    The request is allowed only if every subject is: the outcome is the most restrictive of the
    subjects' (explicit deny, then implicit deny, then consensus needed). Reasons name the subjects
    that decided it; evaluations keep every subject's, each labelled with its subject.
    """
    if len(decisions) == 1:
        return decisions[0][1]
    outcome = max((d.outcome for _, d in decisions), key=_SEVERITY.__getitem__)
    reasons: list[str] = []
    for label, d in decisions:
        if d.outcome is outcome:
            reasons.extend(f"{label}: {r}" for r in d.reasons)
    evaluations = tuple(e for _, d in decisions for e in d.evaluations)
    return Decision(outcome, tuple(reasons), evaluations)


def consensus_can_change(
    consensus: ast.Expr,
    approvers: Sequence[Mapping[str, object]],
    credentials: Sequence[Mapping[str, object]],
    voter: tuple[Mapping[str, object], Sequence[Mapping[str, object]]],
    others: Sequence[tuple[Mapping[str, object], Sequence[Mapping[str, object]]]],
    now_ms: int,
    budget: Budget,
) -> bool:
    """Whether `voter`'s approval can change a consensus expression's value.

    Looks along one chain of possible futures: the approvals so far, then the other users joining
    one at a time; at each step it compares the expression with and without the voter. A count
    (`approvers.count() >= 3`) is changed by any voter once enough others have voted; a name or a
    tag only by that user. Evaluation failures count as "no change".
    """
    users = [dict(a) for a in approvers]
    creds = [dict(c) for c in credentials]
    voter_user, voter_creds = voter
    for k in range(len(others) + 1):
        if k:
            extra_user, extra_creds = others[k - 1]
            users.append(dict(extra_user))
            creds.extend(dict(c) for c in extra_creds)
        try:
            without = evaluate_bool(consensus, {"approvers": users, "credentials": creds}, now_ms, budget)
            with_voter = evaluate_bool(
                consensus,
                {
                    "approvers": [*users, dict(voter_user)],
                    "credentials": [*creds, *(dict(c) for c in voter_creds)],
                },
                now_ms,
                budget,
            )
        except PolicyEvalError:
            if budget.left <= 0:
                return False
            continue
        if without != with_voter:
            return True
    return False


__all__ = [
    "DECISION_STEPS",
    "POLICY_STEPS",
    "DecisionArgs",
    "authorize",
    "authorize_set_steps",
    "authorize_steps",
    "combine",
    "consensus_can_change",
    "evaluate_policy",
    "run_steps",
    "step",
]
