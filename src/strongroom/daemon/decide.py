"""The policy decision for one activity: environment, compiled policies, votes → `Decision`.

The pure `strongroom.policy.authorize` does the deciding; this module gathers what it needs:
the `activity` keyword (type, kind, resource, action, params), what the activity's handler
exposes (`private_key`, `eth.tx`, `eth.eip_712`, ...), the approvers and credentials that have
voted so far, the root quorum, and the trusted time.

One built-in allow sits on top of the policies (Turnkey §9.4): a user may manage their *own*
credentials — create or delete their own API keys and passkeys — without any policy, unless a
DENY policy applies. It is narrow: only those four activity types, only when
`activity.params.user_id` is an approver's own id; it never changes the user's access type
(credentials of a kind the access type refuses cannot be added at all).

Root users are protected from the rest of the organization: an activity that changes a root
user's credentials (creates or deletes its API keys or passkeys) or its access type or email
(the dashboard's login handle) is root-quorum-only, like ROOT_ONLY types, whatever the policies
say and even when the root user asks for itself (the built-in self-service allow does not apply):
otherwise a user holding only USER/UPDATE or CREDENTIAL/* could lock the root quorum out, or add
its own key to a root user. The handlers mark such requests (`Prepared.root_only`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from strongroom.policy import (
    Decision,
    Effect,
    Outcome,
    Policy,
    PolicyOutcome,
    RootQuorum,
    authorize,
    compile_policy,
)
from strongroom.policy.errors import PolicySyntaxError
from strongroom.store.records import ApiKey, Authenticator, Organization, PolicyRecord, Repository, User

ROOT_ONLY: Final = frozenset(
    {
        "ACTIVITY_TYPE_UPDATE_ROOT_QUORUM",
        "ACTIVITY_TYPE_SET_ORGANIZATION_FEATURE",
        "ACTIVITY_TYPE_REMOVE_ORGANIZATION_FEATURE",
        "ACTIVITY_TYPE_UPDATE_ORGANIZATION_NAME",
    }
)
_VERSION: Final = re.compile(r"_V\d+$")
# Credential activities a user may submit for themselves (`activity.params.user_id` is theirs).
SELF_SERVICE: Final = frozenset(
    {
        "ACTIVITY_TYPE_CREATE_API_KEYS_V2",
        "ACTIVITY_TYPE_DELETE_API_KEYS",
        "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2",
        "ACTIVITY_TYPE_DELETE_AUTHENTICATORS",
    }
)
SELF_SERVICE_REASON: Final = "built-in: users may manage their own credentials"


def kind_of(activity_type: str) -> str:
    """Version-agnostic kind: ACTIVITY_TYPE_SIGN_TRANSACTION_V2 → SIGN_TRANSACTION."""
    return _VERSION.sub("", activity_type.removeprefix("ACTIVITY_TYPE_"))


@dataclass(frozen=True, slots=True)
class Voter:
    user: User
    credential: ApiKey | Authenticator | None
    approved: bool


def user_env(u: User) -> dict[str, Any]:
    return {"id": u.id, "tags": list(u.tags), "email": u.email or "", "alias": u.name}


_API_KEY_TYPES: Final = {
    "API_KEY_CURVE_P256": "CREDENTIAL_TYPE_API_KEY_P256",
    "API_KEY_CURVE_SECP256K1": "CREDENTIAL_TYPE_API_KEY_SECP256K1",
    "API_KEY_CURVE_ED25519": "CREDENTIAL_TYPE_API_KEY_ED25519",
}


def credential_env(k: ApiKey | Authenticator) -> dict[str, Any]:
    if isinstance(k, Authenticator):
        return {
            "id": k.id,
            "user_id": k.user_id,
            "type": "CREDENTIAL_TYPE_WEBAUTHN_AUTHENTICATOR",
            "credential_id": k.credential_id,
            "public_key": k.public_key,
        }
    return {
        "id": k.id,
        "user_id": k.user_id,
        "type": _API_KEY_TYPES.get(k.curve, "CREDENTIAL_TYPE_API_KEY_P256"),
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
        *,
        root_only: bool = False,
    ) -> Decision:
        """`root_only`: the handler says only the root quorum may approve this request (it targets
        a root user's credentials or access type), on top of the activity types in ROOT_ONLY."""
        root_only = root_only or activity_type in ROOT_ONLY
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
        decision = authorize(
            policies,
            env,
            approvers=[user_env(v.user) for v in approving],
            credentials=[credential_env(v.credential) for v in approving if v.credential is not None],
            root_quorum=RootQuorum.of(org.root_quorum_threshold, org.root_user_ids),
            now_ms=now_ms,
            root_only=root_only,
        )
        denied = any(e.outcome is PolicyOutcome.DENY_EXPLICIT for e in decision.evaluations)
        if (
            not denied
            and not root_only
            and decision.outcome in (Outcome.DENY_IMPLICIT, Outcome.REQUIRES_CONSENSUS)
            and self._self_service(activity_type, params, approving)
        ):
            return Decision(Outcome.ALLOW, (SELF_SERVICE_REASON, *decision.reasons), decision.evaluations)
        return decision

    def _self_service(self, activity_type: str, params: Mapping[str, Any], approving: Sequence[Voter]) -> bool:
        """The built-in allow: an approver manages their own credentials (never overrides a DENY)."""
        target = params.get("user_id")
        if activity_type not in SELF_SERVICE or not isinstance(target, str):
            return False
        return any(v.user.id == target for v in approving)

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
