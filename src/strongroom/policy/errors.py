"""Errors raised by the policy package.

`PolicySyntaxError` is an `InvalidRequest` (HTTP 400): it is raised when a client submits a policy
whose text does not parse. `PolicyEvalError` never leaves the authorizer, which turns it into an
`OUTCOME_ERROR` evaluation (or, for its subclass `PolicyNotApplicable`, a policy that does not
apply); it is public so callers of `evaluate` can catch it.
"""

from __future__ import annotations

from strongroom.errors import Grpc, InvalidRequest, StrongroomError


class PolicySyntaxError(InvalidRequest):
    """The policy text does not parse. `line` and `column` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, column {column})")
        self.reason = message
        self.line = line
        self.column = column


class PolicyEvalError(StrongroomError):
    """Evaluation failed: a missing keyword or field, a type mismatch, an index out of range.

    `line`/`column` point at the sub-expression that failed (0 when the node has no position).
    """

    grpc = Grpc.INVALID_ARGUMENT

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.reason = message
        self.line = line
        self.column = column


class PolicyNotApplicable(PolicyEvalError):
    """The expression reads a namespace this request does not have (`eth.tx` on a user creation,
    `solana.tx` on an Ethereum transaction, an `activity.params` field the activity does not take).

    The policy is then *not applicable*, as in Turnkey: it neither allows nor denies.
    """


class PolicyBudgetExceeded(PolicyEvalError):
    """The evaluation took more steps than its budget allows (an evaluation failure)."""


__all__ = ["PolicyBudgetExceeded", "PolicyEvalError", "PolicyNotApplicable", "PolicySyntaxError"]
