"""The policy decision for one activity: environment, compiled policies, votes → `Decision`.

The pure `strongroom.policy` does the deciding (over the organization's policies compiled and
indexed once, `strongroom.policy.policyset`, cached per organization keyed on the verified rows'
content: see `Decider.policy_set`); this module gathers what it needs:
the `activity` keyword (type, kind, resource, action, params), what the activity's handler
exposes (`private_key`, `eth.tx`, `eth.eip_712`, ...), the approvers and credentials that have
voted so far, the root quorum, and the trusted time.

One built-in allow sits on top of the policies (Turnkey §9.4): a user may manage their *own*
credentials — create or delete their own API keys and passkeys — without any policy, unless a
DENY policy applies. It is narrow: only those four activity types, only when
`activity.params.user_id` is an approver's own id; it never changes the user's access type
(credentials of a kind the access type refuses cannot be added at all).

Every signature has a policy subject: a request that signs several payloads is decided once per
payload (`Subject`), and executes only if every one is allowed (`strongroom.policy.combine`).

Policy evaluation runs on the event loop in slices: after each policy the decision checks the
time, and past `SLICE_SECONDS` it pauses for `PAUSE_SECONDS`, leaving the loop to other requests.
A decision that needs more than one slice holds its organization's lock meanwhile, so one
organization's expensive policies run one slice at a time, at most about a third of the loop's
time, and never block it for more than a slice plus one policy (each policy's evaluation is
bounded by `POLICY_STEPS`, about a millisecond); the step budgets of
`strongroom.policy.authorizer` bound the total. Decisions that fit in one slice, which is all
of them for ordinary policies, never pause.

Root users are protected from the rest of the organization: an activity that changes a root
user's credentials (creates or deletes its API keys or passkeys) or its access type or email
(the dashboard's login handle) is root-quorum-only, like ROOT_ONLY types, whatever the policies
say and even when the root user asks for itself (the built-in self-service allow does not apply):
otherwise a user holding only USER/UPDATE or CREDENTIAL/* could lock the root quorum out, or add
its own key to a root user. The handlers mark such requests (`Prepared.root_only`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from strongroom.errors import InvalidRequest
from strongroom.policy import (
    Decision,
    Effect,
    Outcome,
    Policy,
    PolicyOutcome,
    RootQuorum,
    compile_policy,
)
from strongroom.policy.authorizer import DECISION_STEPS, authorize_set_steps, combine, consensus_can_change, step
from strongroom.policy.errors import PolicyEvalError, PolicySyntaxError
from strongroom.policy.evaluator import Budget, evaluate_bool
from strongroom.policy.namespaces import field_names, first_missing, referenced_paths
from strongroom.policy.policyset import PolicySet
from strongroom.store.records import ApiKey, Authenticator, Organization, PolicyRecord, User
from strongroom.store.repository import Repository

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


SLICE_SECONDS: Final = 0.0003
PAUSE_SECONDS: Final = 0.0005
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])([A-Z])")
BLIND_DIGEST_WARNING: Final = (
    "DENY policies read `eth.tx` or `eth.eip_712`, but an ALLOW policy still permits signing blind digests "
    "(HASH_FUNCTION_NO_OP on a hexadecimal payload): such a DENY can be walked around by hashing locally. "
    "Add Turnkey's recipe as a DENY policy: activity.params.hash_function == 'HASH_FUNCTION_NO_OP' && "
    "activity.params.encoding != 'PAYLOAD_ENCODING_EIP712' && "
    "activity.params.encoding != 'PAYLOAD_ENCODING_EIP7702_AUTHORIZATION'"
)


# Keywords that Turnkey defines and pasted policies use, but that this daemon does not fill yet.
UNFILLED: Final[Mapping[tuple[str, ...], str]] = {}


# Fields inside list elements (read through a bound variable or a position, so no path from a root
# keyword names them) that this daemon does not fill yet: (where they live, field name) → warning.
UNFILLED_FIELDS: Final[Mapping[tuple[tuple[str, ...], str], str]] = {}


def unfilled_warnings(policy: Policy) -> list[str]:
    """A warning for each keyword the policy reads that this daemon does not fill yet."""
    paths = referenced_paths(policy.condition)
    names = field_names(policy.condition)
    out = [
        f"`{'.'.join(prefix)}`: {text}"
        for prefix, text in UNFILLED.items()
        if any(path[: len(prefix)] == prefix for path in paths)
    ]
    out += [
        f"`{'.'.join(where)}[].{name}`: {text}"
        for (where, name), text in UNFILLED_FIELDS.items()
        if name in names and any(path[: len(where)] == where for path in paths)
    ]
    return out


@dataclass(frozen=True, slots=True)
class Subject:
    """One thing a request asks to sign (or, for other activities, the request itself).

    `label` names it in reasons and evaluations (`payloads[2]`; empty for a single subject);
    `params` are added to `activity.params`; `env` holds the other keywords (`private_key`, `eth`).
    """

    label: str
    params: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, Any] = field(default_factory=dict)


def snake_case(name: str) -> str:
    """Turnkey's policy name for a request field: `signWith` → `sign_with`.

    Memoised for short names (a pure function of the name; requests use a small set of field
    names), bounded in count and size so that a client's odd keys cannot grow it.
    """
    try:
        return _SNAKE[name]
    except KeyError:
        pass
    out = _CAMEL.sub(r"_\1", name).lower()
    if len(name) <= 64 and len(_SNAKE) < 4096:
        _SNAKE[name] = out
    return out


_SNAKE: dict[str, str] = {}


def _snake_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {snake_case(str(k)): _snake_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_value(v) for v in value]
    return value


def request_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every request parameter, with keys in snake_case at every level (`activity.params`)."""
    try:
        return {snake_case(str(k)): _snake_value(v) for k, v in params.items()}
    except RecursionError:
        raise InvalidRequest("`parameters` nest too deeply") from None


class _Slicer:
    """Pauses a decision whenever it has run for a slice; holds the organization's lock meanwhile."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock
        self.held = False
        self.deadline = time.perf_counter() + SLICE_SECONDS

    async def drive(self, steps: Generator[None, None, Decision]) -> Decision:
        if not self.held and self.lock.locked():
            # Another of this organization's decisions is already running in slices: queue behind
            # it, so that an organization never has more than one slice per loop turn.
            await self.lock.acquire()
            self.held = True
            self.deadline = time.perf_counter() + SLICE_SECONDS
        while (decision := step(steps)) is None:
            if time.perf_counter() > self.deadline:
                if not self.held:
                    await self.lock.acquire()
                    self.held = True
                await asyncio.sleep(PAUSE_SECONDS)
                self.deadline = time.perf_counter() + SLICE_SECONDS
        return decision

    def release(self) -> None:
        if self.held:
            self.lock.release()
            self.held = False


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


def private_key_probe(
    key_id: str, tags: Sequence[str], label: str, *, imported: bool = False, exported: bool = False
) -> dict[str, Any]:
    return {"id": key_id, "tags": list(tags), "label": label, "imported": imported, "exported": exported}


def _holds(policy: Policy, env: Mapping[str, Any], budget: Budget) -> bool:
    """Whether a policy's condition is true for `env` (absent = true; failure or not applicable = false)."""
    if policy.condition is None:
        return True
    if first_missing(policy.reads, env) is not None:
        return False
    try:
        return evaluate_bool(policy.condition, env, 0, budget)
    except PolicyEvalError:
        return False


class Decider:
    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._compiled: dict[str, tuple[tuple[PolicyRecord, ...], list[Policy], PolicySet]] = {}
        self._effects: dict[str, Effect] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def policy_set(self, org_id: str) -> tuple[list[PolicyRecord], list[Policy], PolicySet]:
        """The organization's policy records, parsed, and compiled into a `PolicySet`.

        The records are read from the store on every call, so every call goes through the
        notary's check (`Policies.policies` returns only rows the token vouched for, re-verified
        whenever the notarised version moves, e.g. after another replica's write; on a shared
        database every read is a query). The compiled set is a pure function of the records'
        content, and it is cached keyed on that whole content (every column of every row, in
        order), never on a timestamp or a version: a hit means the set was compiled from exactly
        the rows just verified. Any policy change, by this process or another replica, changes
        the key and recompiles.
        """
        records = self.repo.policies.policies(org_id)
        key = tuple(records)
        cached = self._compiled.get(org_id)
        if cached is None or cached[0] != key:
            compiled = []
            for p in records:
                try:
                    compiled.append(compile_policy(p.id, Effect(p.effect), p.condition, p.consensus, p.time))
                except (PolicySyntaxError, ValueError):
                    # Checked at creation, so this means the stored text was changed behind our
                    # back: such a policy can never allow (it is left out), and it is reported.
                    continue
            cached = (key, compiled, PolicySet(compiled))
            self._compiled[org_id] = cached
            self._effects.update((p.policy_id, p.effect) for p in compiled)
        return records, cached[1], cached[2]

    def policies(self, org_id: str) -> tuple[list[PolicyRecord], list[Policy]]:
        records, policies, _set = self.policy_set(org_id)
        return records, policies

    def busy(self, org_id: str) -> bool:
        """Whether one of the organization's decisions is running in slices right now."""
        lock = self._locks.get(org_id)
        return lock is not None and lock.locked()

    def _lock(self, org_id: str) -> asyncio.Lock:
        lock = self._locks.get(org_id)
        if lock is None:
            lock = self._locks[org_id] = asyncio.Lock()
        return lock

    @staticmethod
    def activity_env(
        activity_type: str, resource: str, action: str, params: Mapping[str, Any], activity_id: str
    ) -> dict[str, Any]:
        return {
            "id": activity_id,
            "type": activity_type,
            "kind": kind_of(activity_type),
            "resource": resource,
            "action": action,
            "params": dict(params),
        }

    async def decide(
        self,
        org: Organization,
        activity_type: str,
        resource: str,
        action: str,
        params: Mapping[str, Any],
        subjects: Sequence[Subject],
        voters: Sequence[Voter],
        now_ms: int,
        activity_id: str = "",
        *,
        root_only: bool = False,
    ) -> Decision:
        """Decide a request: each subject on its own, joined so that every one must be allowed.

        `root_only`: the handler says only the root quorum may approve this request (it targets
        a root user's credentials or access type), on top of the activity types in ROOT_ONLY.
        """
        root_only = root_only or activity_type in ROOT_ONLY
        _records, _policies, policy_set = self.policy_set(org.id)
        base = request_params(params)
        approving = [v for v in voters if v.approved]
        approvers = [user_env(v.user) for v in approving]
        credentials = [credential_env(v.credential) for v in approving if v.credential is not None]
        quorum = RootQuorum.of(org.root_quorum_threshold, org.root_user_ids)
        budget = Budget(DECISION_STEPS)
        slicer = _Slicer(self._lock(org.id))
        decisions: list[tuple[str, Decision]] = []
        merged: dict[str, Any] = base
        try:
            for subject in subjects or (Subject(""),):
                merged = {**base, **subject.params}
                env = {
                    "activity": self.activity_env(activity_type, resource, action, merged, activity_id),
                    **subject.env,
                }
                steps = authorize_set_steps(
                    policy_set,
                    env,
                    approvers=approvers,
                    credentials=credentials,
                    root_quorum=quorum,
                    now_ms=now_ms,
                    root_only=root_only,
                    budget=budget,
                    subject=subject.label,
                )
                decisions.append((subject.label or "request", await slicer.drive(steps)))
        finally:
            slicer.release()
        decision = combine(decisions)
        denied = any(
            e.outcome is PolicyOutcome.DENY_EXPLICIT
            or (e.outcome is PolicyOutcome.ERROR and self._effects.get(e.policy_id) is Effect.DENY)
            for e in decision.evaluations
        )
        if (
            not denied
            and not root_only
            and decision.outcome in (Outcome.DENY_IMPLICIT, Outcome.REQUIRES_CONSENSUS)
            and self._self_service(activity_type, merged, approving)
        ):
            return Decision(Outcome.ALLOW, (SELF_SERVICE_REASON, *decision.reasons), decision.evaluations)
        return decision

    async def vote_can_matter(
        self, org: Organization, current: Decision, voters: Sequence[Voter], voter: Voter, now_ms: int
    ) -> bool:
        """Whether `voter`'s approval can change the consensus of a policy that applies to the activity.

        Turnkey lets any user named in an applicable consensus approve. "Named" is checked by its
        effect: along the chain of the other users joining one by one, does adding this voter
        ever change the consensus expression? That covers names, tags and counts (a 3-of-5).
        """
        _records, policies = self.policies(org.id)
        applicable = {
            e.policy_id
            for e in current.evaluations
            if e.outcome in (PolicyOutcome.REQUIRES_CONSENSUS, PolicyOutcome.DENY_IMPLICIT) and e.not_applicable is None
        }
        approving = [v for v in voters if v.approved]
        voted = {v.user.id for v in voters} | {voter.user.id}
        others = [
            (user_env(u), [credential_env(c) for c in self._credentials(u)])
            for u in self.repo.users.users(org.id)
            if u.id not in voted
        ]
        mine = (user_env(voter.user), [credential_env(voter.credential)] if voter.credential is not None else [])
        budget = Budget(DECISION_STEPS)
        for policy in policies:
            if policy.policy_id not in applicable or policy.consensus is None:
                continue
            if consensus_can_change(
                policy.consensus,
                [user_env(v.user) for v in approving],
                [credential_env(v.credential) for v in approving if v.credential is not None],
                mine,
                others,
                now_ms,
                budget,
            ):
                return True
            await asyncio.sleep(0)
        return False

    def _credentials(self, user: User) -> Sequence[ApiKey | Authenticator]:
        keys = self.repo.users.api_keys_of_user(user.id)
        if keys:
            return keys[:1]
        return self.repo.users.authenticators_of_user(user.id)[:1]

    def creation_warnings(self, org: Organization, records: Sequence[PolicyRecord]) -> tuple[str, ...]:
        """Warnings for policies being created or updated: unfilled keywords, blind digests left open."""
        new = [compile_policy(r.id, Effect(r.effect), r.condition, r.consensus, r.time) for r in records]
        out = [f"policy `{r.name}`: {w}" for r, p in zip(records, new, strict=True) for w in unfilled_warnings(p)]
        replaced = {r.id for r in records}
        _records, existing = self.policies(org.id)
        out += self.blind_digest_warnings(org, [*(p for p in existing if p.policy_id not in replaced), *new])
        return tuple(out)

    def blind_digest_warnings(self, org: Organization, policies: Sequence[Policy] | None = None) -> tuple[str, ...]:
        """Warn when DENY policies read `eth.tx`/`eth.eip_712` while an ALLOW still permits blind digests.

        A blind digest (`HASH_FUNCTION_NO_OP` over a hexadecimal payload) is signed without any
        preimage for a policy to read, so a DENY on a transaction's fields can be walked around
        by hashing the transaction locally. Each ALLOW condition is tried against a blind-digest
        request for each of the organization's keys (up to 20, or a key with no tags); the warning
        stands unless some DENY condition refuses every such request that an ALLOW permits.
        """
        if policies is None:
            _records, policies = self.policies(org.id)
        denies_fields = any(
            p.effect is Effect.DENY and any(path[:2] in (("eth", "tx"), ("eth", "eip_712")) for path in p.reads)
            for p in policies
        )
        if not denies_fields:
            return ()
        keys = [private_key_probe(k.id, k.tags, k.name) for k in self.repo.private_keys.private_keys(org.id)[:20]]
        for key in keys or [private_key_probe("", (), "")]:
            for activity_type in ("ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS"):
                params = {
                    "sign_with": key["id"],
                    "payload": "00" * 32,
                    "payloads": ["00" * 32],
                    "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
                    "hash_function": "HASH_FUNCTION_NO_OP",
                }
                env = {
                    "activity": self.activity_env(activity_type, "PRIVATE_KEY", "SIGN", params, ""),
                    "private_key": key,
                }
                budget = Budget(DECISION_STEPS)
                allowed = any(
                    p.effect is Effect.ALLOW and _holds(p, env, budget) for p in policies if p.condition is not None
                ) or any(p.effect is Effect.ALLOW and p.condition is None for p in policies)
                denied = any(p.effect is Effect.DENY and _holds(p, env, budget) for p in policies)
                if allowed and not denied:
                    return (BLIND_DIGEST_WARNING,)
        return ()

    def _self_service(self, activity_type: str, params: Mapping[str, Any], approving: Sequence[Voter]) -> bool:
        """The built-in allow: an approver manages their own credentials (never overrides a DENY)."""
        target = params.get("user_id")
        if activity_type not in SELF_SERVICE or not isinstance(target, str):
            return False
        return any(v.user.id == target for v in approving)

    def evaluations_json(self, org_id: str, decision: Decision) -> list[dict[str, Any]]:
        """The decision's evaluations as Turnkey shows them, with each policy's name.

        The names come from the records the organization's policy set was last compiled from
        (by the decision itself, just before), so the policies are not read and checked again.
        """
        if not decision.evaluations:
            return []
        cached = self._compiled.get(org_id)
        records = cached[0] if cached is not None else tuple(self.policies(org_id)[0])
        names = {p.id: p.name for p in records}
        out = []
        for e in decision.evaluations:
            item: dict[str, Any] = {
                "policyId": e.policy_id,
                "policyName": names.get(e.policy_id, ""),
                "outcome": str(e.outcome),
            }
            if e.subject:
                item["subject"] = e.subject
            if e.error:
                item["error"] = e.error
            if e.not_applicable:
                item["notApplicable"] = e.not_applicable
            out.append(item)
        return out
