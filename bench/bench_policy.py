"""Policy evaluation cost for an organization at its policy limit (100 policies), run by hand.

Builds 100 policies from Turnkey's published example shapes (allow and deny, conditions on
activity fields, private-key tags, eth.tx fields, consensus over approvers' tags) and times one
decision for a signing request as the daemon makes it: `authorize` over the organization's
`PolicySet` (compiled and indexed once, cached by the service), the requests rotating over 20
private keys and recipients. For comparison it times the reference tree walk over the same
policies, the same decision with a new set of approvers every time (the consensus memo never
hits), and a decision with no policies (root-quorum rules only). Every compiled decision is
checked equal to the reference's. Prints µs of CPU time per decision (median of 15 batches of
200: process time, so that other processes on a shared machine do not inflate it) and, last,

    policies_100_ms=<compiled decision with 100 policies minus the decision with none, in ms>

    .venv/bin/python bench/bench_policy.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from strongroom.policy import Effect, Policy, RootQuorum, authorize, compile_policy
from strongroom.policy.policyset import PolicySet

TEMPLATES = [
    (Effect.ALLOW, "activity.resource == 'PRIVATE_KEY' && activity.action == 'SIGN' && private_key.id == 'k-{i}'",
     "approvers.any(user, user.id == 'u-{i}')"),
    (Effect.ALLOW, "eth.tx.to == '0x{i:040x}' && eth.tx.chain_id == 1 && eth.tx.value < 1000000000000000000",
     "approvers.filter(user, user.tags.contains('t-{i}')).count() >= 2"),
    (Effect.DENY, "activity.type == 'ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2' && activity.params.hash_function == 'HASH_FUNCTION_NO_OP' && activity.params.encoding != 'PAYLOAD_ENCODING_EIP712'", ""),
    (Effect.ALLOW, "activity.kind == 'SIGN_TRANSACTION' && eth.tx.data[0..10] == '0xa9059cbb'", "approvers.count() >= 2"),
    (Effect.DENY, "private_key.tags.contains('frozen-{i}')", ""),
]  # fmt: skip
NOW_MS = 1_800_000_000_000
ROUNDS = 200
BATCHES = 15


def request(n: int) -> dict[str, Any]:
    return {
        "activity": {
            "type": "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
            "kind": "SIGN_TRANSACTION",
            "resource": "PRIVATE_KEY",
            "action": "SIGN",
            "params": {"type": "TRANSACTION_TYPE_ETHEREUM"},
        },
        "private_key": {"id": f"k-{n % 20}", "tags": ["hot"], "label": "hot", "imported": False, "exported": False},
        "eth": {
            "tx": {
                "from": "0x" + "11" * 20, "to": f"0x{n % 20:040x}", "value": 10**17, "chain_id": 1, "nonce": 3,
                "data": "0xa9059cbb" + "00" * 64, "gas": 60000, "gas_price": None, "max_fee_per_gas": 10**10,
                "max_priority_fee_per_gas": 10**9, "max_fee_per_blob_gas": None, "type": "TYPE_2",
            }
        },
    }  # fmt: skip


def median_us(fn: Callable[[int], object]) -> float:
    """CPU time of this process per call (other processes on a shared machine do not count)."""
    runs = []
    for _ in range(BATCHES):
        t0 = time.process_time()
        for n in range(ROUNDS):
            fn(n)
        runs.append((time.process_time() - t0) / ROUNDS * 1e6)
    return statistics.median(runs)


def main() -> None:
    policies: list[Policy] = []
    for i in range(100):
        effect, condition, consensus = TEMPLATES[i % len(TEMPLATES)]
        policies.append(compile_policy(f"p{i}", effect, condition.format(i=i), consensus.format(i=i) or None))
    t0 = time.perf_counter()
    policy_set = PolicySet(policies)
    build_ms = (time.perf_counter() - t0) * 1e3
    envs = [request(n) for n in range(20)]
    approvers = [{"id": "u-0", "tags": ["t-1"], "email": "", "alias": "a"}]
    quorum = RootQuorum.of(1, ["root"])

    def decide(subject: list[Policy] | PolicySet, n: int, voters: list[dict[str, Any]] = approvers) -> Any:
        return authorize(subject, envs[n % 20], approvers=voters, root_quorum=quorum, now_ms=NOW_MS)

    for n in range(40):  # the compiled decisions are the reference's
        assert decide(policy_set, n) == decide(policies, n)
        fresh = [{**approvers[0], "alias": f"a{n}"}]
        assert decide(policy_set, n, fresh) == decide(policies, n, fresh)

    reference = median_us(lambda n: decide(policies, n))
    compiled = median_us(lambda n: decide(policy_set, n))
    cold = median_us(lambda n: decide(policy_set, n, [{**approvers[0], "alias": f"a{time.perf_counter_ns()}"}]))
    none = median_us(lambda n: decide([], n))
    print(f"policies=100 build_ms={build_ms:.1f} indexed={len(policy_set.filed)}")
    print(f"policies=100 reference us_per_decision={reference:.0f}")
    print(f"policies=100 compiled us_per_decision={compiled:.1f} (new approvers every time: {cold:.0f})")
    print(f"policies=0 us_per_decision={none:.1f}")
    print(f"policies_100_ms={(compiled - none) / 1000:.3f}")


if __name__ == "__main__":
    main()
