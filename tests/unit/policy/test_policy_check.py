"""Static checks at policy creation: unknown keywords and fields, type errors, positions."""

from __future__ import annotations

import pytest

from strongroom.policy import PolicyIssue, check_field, check_policy


def _one(text: str, field: str = "condition") -> PolicyIssue:
    issues = check_field(text, field)  # type: ignore[arg-type]
    assert len(issues) == 1, issues
    return issues[0]


def test_empty_fields_mean_no_restriction() -> None:
    assert check_policy(None, None, None) == []
    assert check_policy("", "   ", "\n") == []


@pytest.mark.parametrize(
    ("text", "field", "message", "column"),
    [
        (
            "activty.type == 'x'",
            "condition",
            "unknown keyword `activty`; expected one of `activity`, `eth`, `private_key`, `private_keys`, "
            "`solana`, `wallet`, `wallet_account`, `wallets`",
            1,
        ),
        ("approvers.count() >= 1", "condition", "keyword `approvers` is only available in the `consensus` field", 1),
        ("activity.type == 'x'", "consensus", "keyword `activity` is only available in the `condition` field", 1),
        ("time.now > 0", "condition", "keyword `time` is only available in the `time` field", 1),
        ("tron.tx.to == 'x'", "condition", "keyword `tron` is not supported by this daemon", 1),
        (
            "activity.kinds == 'x'",
            "condition",
            "unknown field `kinds` on Activity; expected one of `action`, `kind`, `params`, `resource`, `type`",
            10,
        ),
        ("private_key.name == 'x'", "condition", "unknown field `name` on PrivateKey", 13),
        ("eth.tx.recipient == 'x'", "condition", "unknown field `recipient` on EthereumTransaction", 8),
        ("eth.eip_712.domain.salt == 'x'", "condition", "unknown field `salt` on Eip712Domain", 20),
        ("eth.eip_7702_authorization.to == 'x'", "condition", "unknown field `to` on Eip7702Authorization", 28),
        ("solana.tx.transfers.any(t, t.sender == 'x')", "condition", "unknown field `sender` on SolanaTransfer", 30),
        ("approvers.any(u, u.name == 'x')", "consensus", "unknown field `name` on User", 20),
        ("credentials.any(c, c.kind == 'x')", "consensus", "unknown field `kind` on Credential", 22),
        ("eth.tx.to == 1", "condition", "cannot compare string with int using `==`", 11),
        ("eth.tx.chain_id != '1'", "condition", "cannot compare int with string using `!=`", 17),
        ("activity.type < 'b'", "condition", "`<` is not defined for strings; only `==` and `!=` compare strings", 15),
        ("eth.tx.value >= true", "condition", "`>=` needs two ints, got int and bool", 14),
        ("eth.tx.value && true", "condition", "the left operand of `&&` must be bool, got int", 8),
        ("true || 'x'", "condition", "the right operand of `||` must be bool, got string", 9),
        ("!eth.tx.to", "condition", "the operand of `!` must be bool, got string", 9),
        ("activity.type.count() == 1", "condition", "`.count()` needs a list, got string", 15),
        ("eth.tx.value.any(x, true)", "condition", "`.any` needs a list, got int", 14),
        ("eth.tx.to in 'abc'", "condition", "the right side of `in` needs a list, got string", 14),
        ("eth.tx.to in [1, 2]", "condition", "cannot look for string in a list of int", 11),
        ("['a', 1] == []", "condition", "list items must all have one type: string and int", 7),
        ("private_key.tags.contains(1)", "condition", "cannot look for int in a list of string", 27),
        ("eth.tx.data[0..'2'] == 'x'", "condition", "a slice bound must be int, got string", 16),
        ("eth.tx.value[0] == 1", "condition", "cannot index int", 13),
        ("eth.tx.value.x == 1", "condition", "cannot read field `x` of int", 14),
        ("activity.type", "condition", "the condition must be a bool expression, got string", 10),
        ("approvers.count()", "consensus", "the consensus must be a bool expression, got int", 11),
        ("approvers.filter(u, true)", "consensus", "the consensus must be a bool expression, got list<User>", 11),
        ("approvers.any(u, u.id)", "consensus", "the predicate of `.any` must be bool, got string", 20),
        (
            "CronSpan('0 9 * * 1-5', '8h', 'UTC')",
            "time",
            "function `CronSpan` is not supported by this daemon",
            1,
        ),
        ("time.now >= 'x'", "time", "`>=` is not defined for strings; only `==` and `!=` compare strings", 10),
    ],
)
def test_single_issue(text: str, field: str, message: str, column: int) -> None:
    issue = _one(text, field)
    assert issue.message.startswith(message), issue.message
    assert (issue.line, issue.column, issue.field) == (1, column, field)
    assert issue.message[0].islower() or issue.message[0] == "`"
    assert not issue.message.endswith(".")


@pytest.mark.parametrize(
    "text",
    [
        "activity.params.anything == 'x' && activity.params.n > 2 && activity.params.l.count() == 1",
        "eth.eip_712.message['to']['wallet'] == '0xab' && eth.eip_712.message['amount'] > 5",
        "eth.eip_712.message['items'].any(i, i['to'] == 'x')",
        "eth.tx.contract_call_args['_to'] == '0xab'",
        "eth.tx['to'] == '0xab'",
        "solana.tx.instructions.all(i, i.accounts.any(a, a.signer && a.writable))",
        "solana.tx.spl_transfers.filter(t, t.amount > 10).count == 0",
        "solana.tx.address_table_lookups.any(l, 3 in l.writable_indexes)",
        "wallets.any(w, w.id == 'w') && wallet_account.address == 'x' && private_keys.count() == 1",
        "private_key.imported == false && !private_key.exported",
        "[1, 2][0..1] == [1] && 'abc'[0] == 'a' && 'abc'[1..] == 'bc'",
        "eth.tx.value <= 1000000000000000000 && eth.tx.nonce >= -1",
        "activity.resource in ['AUTH', 'OTP']",
    ],
)
def test_valid_conditions(text: str) -> None:
    assert check_field(text, "condition") == []


def test_bound_variable_shadows_a_keyword() -> None:
    assert check_field("approvers.any(approvers, approvers.id == 'x')", "consensus") == []


def test_issues_do_not_cascade_and_are_ordered_by_field_then_position() -> None:
    issues = check_policy("foo.bar == 1 && activity.x == 'y'", "approvers.count() == 'x'", "time.later")
    assert [(i.field, i.line, i.column) for i in issues] == [
        ("condition", 1, 1),
        ("condition", 1, 26),
        ("consensus", 1, 19),
        ("time", 1, 6),
    ]


def test_syntax_errors_are_issues() -> None:
    (issue,) = check_policy("activity.type == ", None)
    assert issue == PolicyIssue("unexpected end of input; expected a value", 1, 18, "condition")
    (issue,) = check_policy(None, "approvers.any(u,", None)
    assert issue.field == "consensus"
