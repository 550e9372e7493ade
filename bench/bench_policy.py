"""Policy evaluation cost for an organization at its policy limit (100 policies), run by hand.

Builds 100 policies from Turnkey's published example shapes (allow and deny, conditions on
activity fields, private-key tags, eth.tx fields, consensus over approvers' tags), then times
`Decider.decide` as the pipeline calls it for a signing request, the compiled policies cached
as they are in the daemon. Prints µs per decision (median of 7 batches).

    .venv/bin/python bench/bench_policy.py
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from strongroom.policy import Effect, RootQuorum, authorize, compile_policy

TEMPLATES = [
    (Effect.ALLOW, "activity.resource == 'PRIVATE_KEY' && activity.action == 'SIGN' && private_key.id == 'k-{i}'",
     "approvers.any(user, user.id == 'u-{i}')"),
    (Effect.ALLOW, "eth.tx.to == '0x{i:040x}' && eth.tx.chain_id == 1 && eth.tx.value < 1000000000000000000",
     "approvers.filter(user, user.tags.contains('t-{i}')).count() >= 2"),
    (Effect.DENY, "activity.type == 'ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2' && activity.params.hash_function == 'HASH_FUNCTION_NO_OP' && activity.params.encoding != 'PAYLOAD_ENCODING_EIP712'", ""),
    (Effect.ALLOW, "activity.kind == 'SIGN_TRANSACTION' && eth.tx.data[0..10] == '0xa9059cbb'", "approvers.count() >= 2"),
    (Effect.DENY, "private_key.tags.contains('frozen-{i}')", ""),
]  # fmt: skip


def main() -> None:
    policies = []
    for i in range(100):
        effect, condition, consensus = TEMPLATES[i % len(TEMPLATES)]
        policies.append(compile_policy(f"p{i}", effect, condition.format(i=i), consensus.format(i=i) or None))
    env: dict[str, Any] = {
        "activity": {
            "type": "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
            "kind": "SIGN_TRANSACTION",
            "resource": "PRIVATE_KEY",
            "action": "SIGN",
            "params": {"type": "TRANSACTION_TYPE_ETHEREUM"},
        },
        "private_key": {"id": "k-0", "tags": ["hot"], "label": "hot", "imported": False, "exported": False},
        "eth": {
            "tx": {
                "from": "0x" + "11" * 20, "to": "0x" + "00" * 20, "value": 10**17, "chain_id": 1, "nonce": 3,
                "data": "0xa9059cbb" + "00" * 64, "gas": 60000, "gas_price": None, "max_fee_per_gas": 10**10,
                "max_priority_fee_per_gas": 10**9, "max_fee_per_blob_gas": None, "type": "TYPE_2",
            }
        },
    }  # fmt: skip
    approvers = [{"id": "u-0", "tags": ["t-1"], "email": "", "alias": "a"}]
    quorum = RootQuorum.of(1, ["root"])
    n = 200
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            decision = authorize(policies, env, approvers=approvers, root_quorum=quorum, now_ms=1_800_000_000_000)
        runs.append((time.perf_counter() - t0) / n * 1e6)
    print(f"policies=100 decision={decision.outcome.value} us_per_decision={statistics.median(runs):.0f}")
    baseline = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            authorize([], env, approvers=approvers, root_quorum=quorum, now_ms=1_800_000_000_000)
        baseline.append((time.perf_counter() - t0) / n * 1e6)
    print(f"policies=0 us_per_decision={statistics.median(baseline):.1f}")


if __name__ == "__main__":
    main()
