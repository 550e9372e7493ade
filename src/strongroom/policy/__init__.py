"""Turnkey's policy language and the policy decision. Pure: no I/O, no clock, no asyncio.

Pipeline: `parse_expression` (text -> AST) -> `check_policy` (static checks at policy creation) ->
`evaluate` (AST + request environment + trusted `now_ms`) -> `authorize` (policies -> `Decision`).
`evaluate` and `authorize` over a list walk the AST: the reference. `PolicySet` compiles an
organization's policies once and indexes them; `authorize` over it gives the same decision.
"""

from strongroom.policy.ast import Expr, Pos
from strongroom.policy.authorizer import authorize, evaluate_policy
from strongroom.policy.check import PolicyField, PolicyIssue, check_expression, check_field, check_policy
from strongroom.policy.errors import PolicyEvalError, PolicySyntaxError
from strongroom.policy.evaluator import evaluate, evaluate_bool
from strongroom.policy.model import (
    Decision,
    Effect,
    Outcome,
    Policy,
    PolicyEvaluation,
    PolicyOutcome,
    RootQuorum,
    compile_policy,
)
from strongroom.policy.parser import parse_expression
from strongroom.policy.policyset import PolicySet
from strongroom.policy.printer import to_source

__all__ = [
    "Decision",
    "Effect",
    "Expr",
    "Outcome",
    "Policy",
    "PolicyEvalError",
    "PolicyEvaluation",
    "PolicyField",
    "PolicyIssue",
    "PolicyOutcome",
    "PolicySet",
    "PolicySyntaxError",
    "Pos",
    "RootQuorum",
    "authorize",
    "check_expression",
    "check_field",
    "check_policy",
    "compile_policy",
    "evaluate",
    "evaluate_bool",
    "evaluate_policy",
    "parse_expression",
    "to_source",
]
