"""The types every activity family uses: a catalog entry, what a reader gets and what it returns.

A family module (keys, signing, users, ...) writes one `ActivityType` per activity type it
serves; `strongroom.service.catalog` assembles them. An entry's reader (`ActivityType.prepare`)
validates the request's parameters and resolves what they name, without writing anything; it
returns a `Prepared`: the policy subjects (what policies may read about the request), the
executor (`Prepared.run`, called only after the policy decision) and the per-request root-only
mark. The pipeline renders the executor's result under the entry's `result` key.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, Protocol

from strongroom.errors import ResourceExhausted
from strongroom.hsm import AsyncKeyStore
from strongroom.service.decide import Decider, Subject
from strongroom.service.params import JsonObj
from strongroom.service.webauthn import WebAuthnSettings
from strongroom.store.records import Organization
from strongroom.store.repository import Repository

Resource = Literal[
    "PRIVATE_KEY",
    "WALLET",
    "POLICY",
    "USER",
    "CREDENTIAL",
    "ORGANIZATION",
    "SMART_CONTRACT_INTERFACE",
    "ACTIVITY",
    "WEBHOOK_ENDPOINT",
]
"""What an activity acts on: `activity.resource` in policies."""
Action = Literal["CREATE", "UPDATE", "DELETE", "SIGN", "EXPORT", "IMPORT", "APPROVE", "REJECT"]
"""What an activity does to its resource: `activity.action` in policies."""
RootOnly = Literal["never", "always", "root target"]
"""Whether only the root quorum may approve it (decide.py says why): never; for every request of the
type; or when a request changes a root user ("root target": the reader says so, `Prepared.root_only`)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler gets: in which organization, at what trusted time, for which activity."""

    organization: Organization
    now_ms: int
    activity_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Execution:
    """A handler's outcome: the result object and the extra writes to commit with the activity.

    `rollback` undoes side effects outside the database (token objects) if the commit fails;
    `after_commit` does what may only follow a durable commit (destroying a deleted key's token
    object: were the commit lost, the key would still be on record but gone from the token).
    """

    result: dict[str, Any]
    ops: list[Any]
    rollback: Callable[[], Awaitable[None]] | None = None
    after_commit: Callable[[], Awaitable[None]] | None = None


Executor = Callable[[], Awaitable[Execution]]
"""Carries out a prepared activity (touches the token, builds the writes): after the policy decision only."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated request: what policies may read about it, and how to carry it out.

    Every request parameter is exposed to policies as `activity.params` (snake_case, as Turnkey
    names them); `params` adds or overrides what the handler resolved. A request that signs
    several things has one `Subject` per signature, each decided on its own: the request executes
    only if every subject is allowed.
    """

    run: Executor
    params: dict[str, Any] = field(default_factory=dict)  # `activity.params` additions for policies
    env: dict[str, Any] = field(default_factory=dict)  # other keywords: private_key, eth, ...
    signatures: int = 0  # metered
    subjects: tuple[Subject, ...] = ()  # when empty: one subject made of `params` and `env`

    def policy_subjects(self) -> tuple[Subject, ...]:
        return self.subjects or (Subject("", self.params, self.env),)

    # Only the root quorum may approve it (e.g. it changes a root user's credentials or access type).
    root_only: bool = False


EMAIL_REFUSALS_PER_REQUESTER: Final = 5
EMAIL_REFUSALS_PER_ORGANIZATION: Final = 20
EMAIL_REFUSAL_WINDOW_MS: Final = 3600 * 1000


class EmailRefusals:
    """Per-requester and per-organization budgets of "email already in use" refusals (one hour).

    Such a refusal tells whether another tenant uses an email; see `users` for how it is spent.
    """

    def __init__(
        self,
        per_requester: int = EMAIL_REFUSALS_PER_REQUESTER,
        per_organization: int = EMAIL_REFUSALS_PER_ORGANIZATION,
        window_ms: int = EMAIL_REFUSAL_WINDOW_MS,
    ) -> None:
        self.per_requester = per_requester
        self.per_organization = per_organization
        self.window_ms = window_ms
        self._spent: dict[str, deque[int]] = {}

    def _recent(self, key: str, now_ms: int) -> deque[int]:
        times = self._spent.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now_ms - self.window_ms:
            times.popleft()
        if not times:
            del self._spent[key]
        return times

    def check(self, ctx: Context) -> None:
        requester = len(self._recent(f"user:{ctx.user_id}", ctx.now_ms))
        organization = len(self._recent(f"org:{ctx.organization.id}", ctx.now_ms))
        if requester >= self.per_requester or organization >= self.per_organization:
            limit = (
                f"{self.per_requester} per requester"
                if requester >= self.per_requester
                else f"{self.per_organization} per organization"
            )
            raise ResourceExhausted(
                f'too many "email already in use" refusals: the limit is {limit} an hour; requests that'
                " name an email are refused until then"
            )

    def spend(self, ctx: Context) -> None:
        for key in (f"user:{ctx.user_id}", f"org:{ctx.organization.id}"):
            self._spent.setdefault(key, deque()).append(ctx.now_ms)


@dataclass(frozen=True, slots=True)
class Deps:
    """What readers and executors may use: the store, the token, the policy decider, passkey settings."""

    repo: Repository
    keys: AsyncKeyStore
    decider: Decider
    webauthn: WebAuthnSettings
    email_refusals: EmailRefusals = field(default_factory=EmailRefusals)


class Reader(Protocol):
    """Reads and validates an activity's `parameters` into a `Prepared` (nothing is written)."""

    def __call__(self, deps: Deps, ctx: Context, params: JsonObj, /) -> Awaitable[Prepared]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityType:
    """One activity type Strongroom accepts, and everything the pipeline needs to serve it.

    `path` is the submit endpoint (`/public/v1/submit/<path>`); `intent` and `result` are the keys
    under which the activity's intent and result are recorded (their version suffix is Turnkey's);
    `parameters` is the JSON Schema of the request's `parameters` (the OpenAPI document shows it).
    `prepare` is the reader; it is None only for votes (approve/reject), which the pipeline's
    consensus handles.
    """

    type: str
    path: str
    intent: str
    result: str
    resource: Resource
    action: Action
    prepare: Reader | None
    parameters: Mapping[str, Any] = field(hash=False)  # the JSON Schema of what `prepare` reads
    root_only: RootOnly = "never"
    # Older versions of the type, served at the same path by the same reader (their parameters
    # have the same shape): SDKs still send them. Their intent and result keys carry their version.
    older: tuple[str, ...] = ()

    @property
    def is_vote(self) -> bool:
        return self.prepare is None


_TYPE: Final = re.compile(r"ACTIVITY_TYPE_([A-Z0-9_]+?)(?:_(V[0-9]+))?")


def activity(
    activity_type: str,
    prepare: Reader | None,
    resource: Resource,
    action: Action,
    parameters: Mapping[str, Any],
    *,
    result_version: bool = False,
    root_only: RootOnly = "never",
    older: tuple[str, ...] = (),
) -> ActivityType:
    """A catalog entry named as Turnkey names its types, from the type string.

    `ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8` is served at `create_sub_organization`, its intent
    is `createSubOrganizationIntentV8` and its result `createSubOrganizationResult`, with the
    version too (`...ResultV8`) when `result_version` (Turnkey versions some results, not others).
    """
    found = _TYPE.fullmatch(activity_type)
    if found is None:
        raise ValueError(f"`{activity_type}` is not named as Turnkey names activity types")
    name, version = found.group(1), found.group(2) or ""
    words = name.lower().split("_")
    camel = words[0] + "".join(w.capitalize() for w in words[1:])
    return ActivityType(
        type=activity_type,
        path=name.lower(),
        intent=f"{camel}Intent{version}",
        result=f"{camel}Result{version if result_version else ''}",
        resource=resource,
        action=action,
        prepare=prepare,
        parameters=parameters,
        root_only=root_only,
        older=older,
    )


def older_version(entry: ActivityType, activity_type: str) -> ActivityType:
    """`entry` as its older `activity_type` (same path and reader; that version's intent/result keys)."""
    found, current = _TYPE.fullmatch(activity_type), _TYPE.fullmatch(entry.type)
    if found is None or current is None or found.group(1).lower() != entry.path:
        raise ValueError(f"`{activity_type}` is not an older version of `{entry.type}`")
    version, now = found.group(2) or "", current.group(2) or ""
    intent = (entry.intent.removesuffix(now) if now else entry.intent) + version
    result_versioned = bool(now) and entry.result.endswith(now)
    result = entry.result.removesuffix(now) + version if result_versioned else entry.result
    return replace(entry, type=activity_type, intent=intent, result=result, older=())
