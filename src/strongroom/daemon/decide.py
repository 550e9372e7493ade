"""The policy decision for one activity: environment, compiled policies, votes → `Decision`.

The pure `strongroom.policy.authorize` does the deciding; this module gathers what it needs:
the `activity` keyword (type, kind, resource, action, params), what the activity's handler
exposes (`private_key`, `eth.tx`, `eth.eip_712`, ...), the approvers and credentials that have
voted so far, the root quorum, and the trusted time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.policy import Decision, Effect, Policy, RootQuorum, authorize, compile_policy
from strongroom.policy.errors import PolicySyntaxError
from strongroom.store.records import ApiKey, Organization, PolicyRecord, Repository, User

ROOT_ONLY: Final = frozenset(
    {
        "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM",
        "ACTIVITY_TYPE_SET_ORGANIZATION_FEATURE",
        "ACTIVITY_TYPE_REMOVE_ORGANIZATION_FEATURE",
        "ACTIVITY_TYPE_UPDATE_ORGANIZATION_NAME",
    }
)
_VERSION: Final = re.compile(r"_V\d+$")


def kind_of(activity_type: str) -> str:
    """Version-agnostic kind: ACTIVITY_TYPE_SIGN_TRANSACTION_V2 → SIGN_TRANSACTION."""
    return _VERSION.sub("", activity_type.removeprefix("ACTIVITY_TYPE_"))


@dataclass(frozen=True, slots=True)
class Voter:
    user: User
    credential: ApiKey | None
    approved: bool


def user_env(u: User) -> dict[str, Any]:
    return {"id": u.id, "tags": list(u.tags), "email": u.email or "", "alias": u.name}


def credential_env(k: ApiKey) -> dict[str, Any]:
    from strongroom.daemon.render import api_key

    return {
        "id": k.id,
        "user_id": k.user_id,
        "type": api_key(k)["credential"]["type"],
        "public_key": k.public_key,
    }


class Decider:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._compiled: dict[str, tuple[tuple[tuple[str, int], ...], list[Policy]]] = {}

    def policies(self, org_id: str) -> tuple[list[PolicyRecord], list[Policy]]:
        records = self.repo.policies(org_id)
        signature = tuple((p.id, p.updated_at) for p in records)
        cached = self._compiled.get(org_id)
        if cached is None or cached[0] != signature:
            compiled = []
            for p in records:
                try:
                    compiled.append(compile_policy(p.id, Effect(p.effect), p.condition, p.consensus, p.time))
                except (PolicySyntaxError, ValueError):
                    # Checked at creation, so this means the stored text was changed behind our
                    # back: such a policy can never allow (it is left out), and it is reported.
                    continue
            cached = (signature, compiled)
            self._compiled[org_id] = cached
        return records, cached[1]

    def decide(
        self,
        org: Organization,
        activity_type: str,
        resource: str,
        action: str,
        params: Mapping[str, Any],
        extra_env: Mapping[str, Any],
        voters: Sequence[Voter],
        now_ms: int,
        activity_id: str = "",
    ) -> Decision:
        _records, policies = self.policies(org.id)
        env: dict[str, Any] = {
            "activity": {
                "id": activity_id,
                "type": activity_type,
                "kind": kind_of(activity_type),
                "resource": resource,
                "action": action,
                "params": dict(params),
            },
            **extra_env,
        }
        approving = [v for v in voters if v.approved]
        return authorize(
            policies,
            env,
            approvers=[user_env(v.user) for v in approving],
            credentials=[credential_env(v.credential) for v in approving if v.credential is not None],
            root_quorum=RootQuorum.of(org.root_quorum_threshold, org.root_user_ids),
            now_ms=now_ms,
            root_only=activity_type in ROOT_ONLY,
        )

    def evaluations_json(self, org_id: str, decision: Decision) -> list[dict[str, Any]]:
        records, _ = self.policies(org_id)
        names = {p.id: p.name for p in records}
        out = []
        for e in decision.evaluations:
            item: dict[str, Any] = {
                "policyId": e.policy_id,
                "policyName": names.get(e.policy_id, ""),
                "outcome": str(e.outcome),
            }
            if e.error:
                item["error"] = e.error
            out.append(item)
        return out
