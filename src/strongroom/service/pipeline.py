"""The activity pipeline: every guard, then the policy decision, then execution and a durable record.

Order: stamp → body → organization → credential → type → trusted time → timestamp window →
idempotency → store writable → prepare (validate, resolve keys, parse transactions) → policy
decision → quota → execute → commit (activity + audit entry + usage, one transaction) → respond.
Nothing reaches the token before every guard and the policy have passed; validation errors are
answered as errors and change nothing.

A request the policies allow only with more approvals is recorded as CONSENSUS_NEEDED and
executes, exactly once, when a vote (APPROVE_ACTIVITY) completes its consensus; a REJECT_ACTIVITY
vote ends it. Votes are accepted for 24 hours after the activity was created; then the activity
is rejected as expired (`service/expiry.py`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any, Final

import orjson
import structlog

from strongroom.clock import Clock
from strongroom.errors import (
    Conflict,
    ErrorCode,
    HsmError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    StrongroomError,
    Unauthenticated,
    Unavailable,
)
from strongroom.hsm import AsyncKeyStore
from strongroom.logs import get_logger
from strongroom.policy import Decision, Outcome
from strongroom.service import auth, decoded, expiry, render, webhooks
from strongroom.service.activities import votes
from strongroom.service.activities.base import ActivityType, Context, Deps, Execution, Prepared
from strongroom.service.auth import Principal
from strongroom.service.catalog import Catalog
from strongroom.service.decide import Decider, Voter
from strongroom.service.metering import Meter
from strongroom.service.metrics import Metrics
from strongroom.service.params import JsonObj, obj, req_str
from strongroom.service.webauthn import SCHEME_WEBAUTHN, WebAuthnSettings, verify_assertion
from strongroom.store.notary import TamperedState
from strongroom.store.records import Activity, Organization
from strongroom.store.repository import Repository
from strongroom.strictjson import StrictJsonError, is_ascii_digits, loads

log = get_logger("strongroom.activity")

STATUS_COMPLETED: Final = "ACTIVITY_STATUS_COMPLETED"
STATUS_FAILED: Final = "ACTIVITY_STATUS_FAILED"
STATUS_CONSENSUS: Final = "ACTIVITY_STATUS_CONSENSUS_NEEDED"
STATUS_REJECTED: Final = "ACTIVITY_STATUS_REJECTED"
VOTE_WINDOW_MS: Final = expiry.VOTE_WINDOW_MS
APPROVE: Final = votes.APPROVE.type
REJECT: Final = votes.REJECT.type
NO_FINGERPRINT: Final = (
    "No activity found with fingerprint. Consensus activities must target an existing activity by fingerprint"
)


@dataclass(frozen=True, slots=True)
class Submission:
    """One stamped request to record: who sent it, where, its parameters and its exact bytes."""

    principal: Principal
    org: Organization
    params: JsonObj
    body: bytes
    fingerprint: str
    now_ms: int

    def activity(
        self,
        entry: ActivityType,
        activity_id: str,
        status: str,
        ballots: list[dict[str, Any]],
        evaluations: list[dict[str, Any]] | None = None,
    ) -> Activity:
        """The activity this request records: of the entry's type, its parameters under the entry's intent."""
        return Activity(
            id=activity_id,
            organization_id=self.org.id,
            type=entry.type,
            status=status,
            fingerprint=self.fingerprint,
            user_id=self.principal.user.id,
            intent={entry.intent: dict(self.params)},
            result={},
            failure=None,
            votes=ballots,
            created_at=self.now_ms,
            updated_at=self.now_ms,
            policy_evaluations=[] if evaluations is None else evaluations,
        )


class _HeldLock:
    """An activity's in-process consensus lock, and how many coroutines hold or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _check_storable(activity: Activity) -> None:
    """What the commit will encode from the request, encoded once before the token is touched.

    The strict reader already bounds what a request can hold; this keeps "the commit cannot
    fail on the request's own content" true whatever a handler puts in the intent.
    """
    try:
        orjson.dumps(activity.intent)
    except TypeError as err:
        raise InvalidRequest("bad request body: the parameters cannot be stored") from err


_ID_POOL_BYTES: Final = 16 * 256
_id_pool = bytearray()
_id_lock = threading.Lock()


def _forget_ids() -> None:
    global _id_lock  # noqa: PLW0603 - a lock held by another thread at fork time is never released
    _id_lock = threading.Lock()
    _id_pool.clear()  # a forked child must not hand out the ids its parent will also hand out


os.register_at_fork(after_in_child=_forget_ids)


def new_ids(n: int) -> list[str]:
    """`n` random (version 4) UUIDs, from a pool filled by one `urandom` call per 256 ids.

    `urandom` is a syscall that releases the GIL: on the event loop, while the PKCS#11 threads
    and the writer hold the GIL, each call could wait up to a switch interval to get it back
    (py-spy showed ~10 % of the loop's samples there). Ids are identifiers, not secrets; the
    pool is emptied in a forked child, so two processes never share ids.
    """
    need = 16 * n
    with _id_lock:  # a pipeline per event loop, and tests run several: never hand out bytes twice
        if len(_id_pool) < need:
            _id_pool.extend(os.urandom(max(_ID_POOL_BYTES, need)))
        raw = _id_pool[-need:]
        del _id_pool[-need:]
    return [_uuid4(raw[i : i + 16]) for i in range(0, need, 16)]


def _uuid4(raw: bytearray) -> str:
    """The version-4 UUID (RFC 9562) made of these 16 random bytes, as `uuid.UUID(bytes=raw, version=4)`."""
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


RECENT_CAPACITY: Final = 500_000
"""Fingerprints held in memory at most (~230 bytes each: ~115 MB). A window of 66 minutes fills
it at ~125 requests/s sustained; beyond that, the oldest are dropped and, while they could still
come back, every request's fingerprint is looked up in the database (an indexed read, ~25 µs)."""


class RecentFingerprints:
    """Fingerprints of the activities recorded in the last `window_ms`.

    Only these can come back: a body whose first submission is older than the timestamp window
    (max age + max future skew) fails the timestamp check before idempotency is consulted. So
    an identical submission is found in memory, without a database read; the set is reloaded
    from the database at start-up, so it holds across restarts. Another replica's activities
    are not in it: there the database's unique fingerprint decides (see `Pipeline.submit`).
    """

    def __init__(self, window_ms: int, capacity: int = RECENT_CAPACITY) -> None:
        self.window_ms: Final = window_ms
        self.capacity: Final = capacity
        self._seen: OrderedDict[str, int] = OrderedDict()
        # Until when a fingerprint dropped for room (more than `capacity` in the window) may still
        # come back: meanwhile one not held here may have been seen, so the database is asked.
        self._dropped_until: int | None = None

    def add(self, fingerprint: str, at_ms: int) -> None:
        self._seen[fingerprint] = at_ms
        self._seen.move_to_end(fingerprint)
        if len(self._seen) > self.capacity:
            _, dropped_at = self._seen.popitem(last=False)
            self._dropped_until = max(self._dropped_until or 0, dropped_at + self.window_ms)

    def reload(self, newest_first: Sequence[tuple[str, int]], now_ms: int) -> None:
        """At start-up: the window's newest `capacity` fingerprints from the database, asked for
        with one more, which says that older ones were left there (`maybe_seen` then asks it)."""
        for fingerprint, at_ms in reversed(newest_first[: self.capacity]):
            self.add(fingerprint, at_ms)
        if len(newest_first) > self.capacity:
            self._dropped_until = now_ms + self.window_ms

    def prune(self, now_ms: int) -> None:
        horizon = now_ms - self.window_ms
        while self._seen:
            fingerprint, at_ms = next(iter(self._seen.items()))
            if at_ms >= horizon:
                break
            del self._seen[fingerprint]
        if self._dropped_until is not None and now_ms > self._dropped_until:
            self._dropped_until = None

    def maybe_seen(self, fingerprint: str) -> bool:
        """False only for a fingerprint certainly not recorded in the window by this process."""
        return fingerprint in self._seen or self._dropped_until is not None

    def __contains__(self, fingerprint: str) -> bool:
        return fingerprint in self._seen

    def __len__(self) -> int:
        return len(self._seen)


INVITE_ACTIVITY: Final = "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2"


def _check_invite_use(data: JsonObj, principal: auth.Principal, *, read: bool) -> None:
    """A passkey invite's key registers a passkey for its own user, and does nothing else."""
    params = data.get("parameters")
    target = params.get("userId") if isinstance(params, dict) else None
    if read or data.get("type") != INVITE_ACTIVITY or target != principal.user.id:
        raise PermissionDenied(
            "request not authorized: a passkey invite only registers a passkey for its own user"
            f" ({INVITE_ACTIVITY} with userId `{principal.user.id}`)",
            code=ErrorCode.REQUEST_NOT_AUTHORIZED,
        )


class Pipeline:
    def __init__(
        self,
        repo: Repository,
        clock: Clock,
        catalog: Catalog,
        *,
        keys: AsyncKeyStore,
        webauthn: WebAuthnSettings,
        max_age_ms: int,
        max_future_ms: int,
        max_pending: int = 100,
    ) -> None:
        self.repo: Final = repo
        self.max_pending: Final = max_pending
        self._parking: dict[str, int] = {}  # per organization: CONSENSUS_NEEDED records being written
        self.clock: Final = clock
        self.max_age_ms: Final = max_age_ms
        self.max_future_ms: Final = max_future_ms
        self.catalog: Final = catalog  # what is served: the pipeline dispatches from it only
        self._inflight: dict[str, asyncio.Future[Activity]] = {}
        self._vote_locks: dict[str, _HeldLock] = {}
        self.recent: Final = RecentFingerprints(max_age_ms + max_future_ms + 60_000)
        self.meter: Final = Meter(repo)
        self.decider: Final = Decider(repo)
        self.metrics: Metrics | None = None
        # Why activities are refused for the whole daemon (start-up verification failed), or None.
        self.stopped: str | None = None
        self.webauthn: WebAuthnSettings | None = webauthn  # None: passkey stamps are refused
        self.deps: Final = Deps(repo, keys, self.decider, webauthn)  # what readers and executors use
        # What people see of an activity (and webhooks carry); a waiting one as it was stamped.
        self.views: Final = decoded.Views(self.deps, self._stamped_parameters)
        self.outbox: Final = webhooks.Outbox(repo, self.views.view)  # webhook events, committed with the change
        self.expiry: Final = expiry.Expiry(repo, clock, self.consensus_lock, self.outbox)  # the end of vote windows
        now = clock.now_ms()
        self.recent.reload(
            repo.activities.recent_fingerprints(now - self.recent.window_ms, limit=self.recent.capacity + 1), now
        )

    def submit_types(self) -> dict[str, str]:
        """Each activity endpoint and the one `type` it accepts (for the OpenAPI document)."""
        return self.catalog.submit_types()

    # -- envelope --------------------------------------------------------------------------------
    def check_timestamp(self, envelope: JsonObj, now_ms: int) -> int:
        raw = envelope.get("timestampMs")
        if raw is None:
            raise InvalidRequest("missing field `timestampMs`", code=ErrorCode.INVALID_TIME)
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise InvalidRequest("`timestampMs` must be a string of decimal milliseconds", code=ErrorCode.INVALID_TIME)
        text = str(raw)
        if not is_ascii_digits(text) or len(text) > 16:
            raise InvalidRequest("`timestampMs` must be a string of decimal milliseconds", code=ErrorCode.INVALID_TIME)
        ts = int(text)
        if ts < now_ms - self.max_age_ms:
            raise InvalidRequest(
                f"`timestampMs` is too old: requests must be less than {self.max_age_ms // 1000} s old",
                code=ErrorCode.INVALID_TIME,
            )
        if ts > now_ms + self.max_future_ms:
            raise InvalidRequest(
                f"`timestampMs` is too far in the future: at most {self.max_future_ms // 1000} s ahead is accepted",
                code=ErrorCode.INVALID_TIME,
            )
        return ts

    def organization(self, org_id: str) -> Organization:
        try:
            uuid.UUID(org_id)
        except ValueError as err:
            raise InvalidRequest("malformed organization ID provided", code=ErrorCode.INVALID_ORGANIZATION_ID) from err
        org = self.repo.organizations.organization(org_id)
        if org is None:
            raise NotFound("no organization found with the given ID", code=ErrorCode.ORGANIZATION_NOT_FOUND)
        return org

    @staticmethod
    def parse_body(body: bytes) -> JsonObj:
        """Strict JSON (see `strictjson`): UTF-8, bounded depth and integers, no duplicate keys."""
        try:
            data = loads(body)
        except StrictJsonError as err:
            raise InvalidRequest(f"bad request body: {err.reason}") from err
        return obj(data, "body")

    # -- authentication -------------------------------------------------------------------------------
    async def authenticate(
        self, headers: Mapping[str, str], body: bytes, *, read: bool
    ) -> tuple[JsonObj, Organization, Principal, int]:
        """Stamp (verified over the raw bytes first), body, organization, credential (see `auth`).

        `read` (queries) lets a parent organization's credential resolve in a sub-organization.
        A passkey's new signature counter is committed before the request goes on.
        """
        stamp = auth.parse_stamp(headers)
        auth.verify_stamp(stamp, body)
        data = self.parse_body(body)
        org, principal, now_ms = await self._credential(stamp, body, req_str(data, "organizationId"), data, read=read)
        return data, org, principal, now_ms

    async def authenticate_for(
        self, headers: Mapping[str, str], body: bytes, org_id: str, *, read: bool
    ) -> tuple[Organization, Principal, int]:
        """As `authenticate`, for a body that is not one envelope (a JSON-RPC batch): the caller
        read `org_id` from it. The stamp is verified over the exact bytes first. A passkey invite's
        key is refused here: it only ever registers its user's passkey, which is not a JSON-RPC call."""
        stamp = auth.parse_stamp(headers)
        auth.verify_stamp(stamp, body)
        return await self._credential(stamp, body, org_id, {}, read=read)

    async def _credential(
        self, stamp: auth.Stamp, body: bytes, org_id: str, data: JsonObj, *, read: bool
    ) -> tuple[Organization, Principal, int]:
        org = self.organization(org_id)
        now_ms = self.clock.now_ms()
        principal = auth.resolve(self.repo, stamp, org, now_ms, read=read, webauthn=self.webauthn, body=body)
        if auth.is_invite(principal.credential):
            _check_invite_use(data, principal, read=read)
        if principal.ops:
            await self.repo.write(list(principal.ops))
        return org, principal, now_ms

    # -- submit ---------------------------------------------------------------------------------------
    async def submit(self, path: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        entry = self.catalog.by_path.get(path)
        if entry is None:
            raise NotFound(f"unknown activity endpoint `{path[:64]}`")
        if self.stopped is not None:
            raise Unavailable(f"signing is stopped: {self.stopped}")
        with self.repo.request_scope():  # on PostgreSQL: `org_state` read once, every row still checked
            envelope, org, principal, now_ms = await self.authenticate(headers, body, read=False)
            return await self._audited(
                entry, org, principal, self._submit(entry, envelope, body, org, principal, now_ms)
            )

    async def _audited(
        self, entry: ActivityType, org: Organization, principal: Principal, work: Awaitable[dict[str, Any]]
    ) -> dict[str, Any]:
        """`work`, with its refusal recorded in the audit log (a concurrent duplicate is not a refusal)."""
        try:
            return await work
        except StrongroomError as err:
            if not isinstance(err, Conflict):
                await self._audit_refusal(entry.type, org, principal, err)
            raise

    async def _submit(
        self,
        entry: ActivityType,
        envelope: JsonObj,
        body: bytes,
        org: Organization,
        principal: Principal,
        now_ms: int,
    ) -> dict[str, Any]:
        activity_type = req_str(envelope, "type", max_len=128)
        if activity_type != entry.type:
            if activity_type not in entry.older:
                raise InvalidRequest(f"unsupported activity type `{activity_type}` here; expected `{entry.type}`")
            entry = self.catalog.by_type[activity_type]  # an older version SDKs still send
        self.check_timestamp(envelope, now_ms)
        params = obj(envelope.get("parameters"), "parameters")
        return await self._record(entry, params, body, org, principal, now_ms, park=True)

    async def submit_as(
        self,
        activity_type: str,
        params: JsonObj,
        body: bytes,
        org: Organization,
        principal: Principal,
        now_ms: int,
        *,
        part: int | None = None,
    ) -> dict[str, Any]:
        """An activity for a request authenticated (and its timestamp checked) by another transport.

        `body` is that request's exact stamped bytes (the Ethereum JSON-RPC signer's call): it is
        recorded as the activity's evidence and fingerprint, as a Turnkey envelope is. It is not an
        envelope, and a vote re-reads a pending activity's parameters from the envelope, so the
        request must be decided at once: one that needs approvals is refused, not parked.
        `part` is the call's position when `body` carries several (a JSON-RPC batch): each call is
        its own activity, fingerprinted by the body and its position.
        """
        entry = self.catalog.by_type[activity_type]
        if self.stopped is not None:
            raise Unavailable(f"signing is stopped: {self.stopped}")
        with self.repo.request_scope():
            return await self._audited(
                entry, org, principal, self._record(entry, params, body, org, principal, now_ms, park=False, part=part)
            )

    async def _record(
        self,
        entry: ActivityType,
        params: JsonObj,
        body: bytes,
        org: Organization,
        principal: Principal,
        now_ms: int,
        *,
        park: bool,
        part: int | None = None,
    ) -> dict[str, Any]:
        fingerprint = hashlib.sha256(body if part is None else body + b"\n#%d" % part).hexdigest()
        if self.recent.maybe_seen(fingerprint):
            existing = self.repo.activities.activity_by_fingerprint(fingerprint)
            if existing is not None:
                return {"activity": render.activity(self._answer_for(existing))}
        pending = self._inflight.get(fingerprint)
        if pending is not None:
            return {"activity": render.activity(self._answer_for(await asyncio.shield(pending)))}
        fut: asyncio.Future[Activity] = asyncio.get_running_loop().create_future()
        self._inflight[fingerprint] = fut
        try:
            failure = self.repo.db.failure
            if failure is not None:
                raise Unavailable(f"signing is stopped because {failure}")
            if self.stopped is not None:
                raise Unavailable(f"signing is stopped: {self.stopped}")
            try:
                request = Submission(principal, org, params, body, fingerprint, now_ms)
                if entry.is_vote:
                    recorded, answer = await self._vote(entry, request)
                else:
                    recorded = answer = await self._new(entry, request, park=park)
            except Conflict:
                # Another process recorded the same body first: its activity is the answer; any
                # signature computed here was never released.
                found = self.repo.activities.activity_by_fingerprint(fingerprint)
                if found is None:
                    raise
                recorded, answer = found, self._answer_for(found)
        except BaseException as err:
            fut.set_exception(err)
            fut.exception()  # mark retrieved: waiters get it through shield
            raise
        else:
            fut.set_result(recorded)
            if self.metrics is not None:
                self.metrics.activity(org.id, answer.type, answer.status)
            self.recent.add(fingerprint, recorded.created_at)
            self.recent.prune(now_ms)
        finally:
            del self._inflight[fingerprint]
        return {"activity": render.activity(answer)}

    def _answer_for(self, activity: Activity) -> Activity:
        """A vote's answer is its target activity, as it is now (Turnkey's approve response)."""
        if activity.type in (APPROVE, REJECT):
            intent: dict[str, Any] = next(iter(activity.intent.values()), {})
            target = self.repo.activities.activity_by_fingerprint(str(intent.get("fingerprint", "")))
            if target is not None:
                return target
        return activity

    # -- a new activity ------------------------------------------------------------------------------
    def _vote_record(
        self, principal: Principal, activity_id: str, body: bytes, approved: bool, now_ms: int
    ) -> dict[str, Any]:
        (vote_id,) = new_ids(1)
        return {
            "id": vote_id,
            "userId": principal.user.id,
            "user": render.user(
                principal.user,
                self.repo.users.api_keys_of_user(principal.user.id),
                self.repo.users.authenticators_of_user(principal.user.id),
            ),
            "activityId": activity_id,
            "selection": "VOTE_SELECTION_APPROVED" if approved else "VOTE_SELECTION_REJECTED",
            "message": body.decode("utf-8", errors="replace"),
            "publicKey": principal.public_key,
            "signature": principal.stamp.signature,
            "scheme": principal.scheme,
            "createdAt": render.timestamp(now_ms),
        }

    def _stamped_parameters(self, activity: Activity) -> JsonObj:
        """The parameters of `activity`'s own stamped request (`_authentic`), which an approval executes."""
        org = self.organization(activity.organization_id)
        return obj(self._authentic(activity.fingerprint, org, activity.user_id).get("parameters"), "parameters")

    def _authentic(self, fingerprint: str, org: Organization, user_id: str | None) -> JsonObj:
        """The recorded request with this fingerprint, proven by its own stamp; its parsed envelope.

        The database is untrusted: a pending activity's intent and its votes are not taken from
        their stored JSON but re-derived from the exact request bytes each one was recorded with,
        whose SHA-256 is the fingerprint and whose stamp must verify against a (notarised)
        credential of the user who sent it, in this organization. An intent edited after it was
        submitted, or a vote written into the database, is refused.
        """
        stored = self.repo.activities.stored_request(fingerprint)
        what = f"the request recorded for fingerprint `{fingerprint[:64]}`"
        if stored is None:
            raise TamperedState(f"{what} is missing: the activity was changed outside an authorised activity")
        body, header, stored_user, stored_org = stored
        if hashlib.sha256(body).hexdigest() != fingerprint or stored_org != org.id or stored_user != user_id:
            raise TamperedState(f"{what} does not match it: it was changed outside an authorised activity")
        try:
            stamp = auth.parse_stamp(
                {"X-Stamp-WebAuthn": header} if header.lstrip().startswith("{") else {"X-Stamp": header}
            )
            auth.verify_stamp(stamp, body)
            if stamp.assertion is not None:
                authenticator = self.repo.users.authenticator_by_credential_id(org.id, stamp.assertion.credential_id)
                if authenticator is None or authenticator.user_id != user_id or self.webauthn is None:
                    raise Unauthenticated("the passkey that stamped it is not this user's")
                verify_assertion(self.webauthn, authenticator, stamp.assertion, body, check_counter=False)
            else:
                key = self.repo.users.api_key_in_org(org.id, stamp.public_key)
                if key is None or key.user_id != user_id:
                    raise Unauthenticated("the API key that stamped it is not this user's")
        except StrongroomError as err:
            if isinstance(err, TamperedState):
                raise
            raise TamperedState(f"{what} does not carry its sender's stamp ({err.message})") from None
        return self.parse_body(body)

    def _voters(self, org: Organization, target: Activity) -> list[Voter]:
        """The votes recorded on `target`, each proven by the stamp of the request that cast it."""
        out = []
        for v in target.votes:
            user_id = str(v.get("userId"))
            message = str(v.get("message", "")).encode()
            fingerprint = hashlib.sha256(message).hexdigest()
            envelope = self._authentic(fingerprint, org, user_id)
            if fingerprint == target.fingerprint:
                approved = True  # the submitter's own request is vote 1
            else:
                vote_type = envelope.get("type")
                parameters = envelope.get("parameters")
                if (
                    vote_type not in (APPROVE, REJECT)
                    or not isinstance(parameters, dict)
                    or (parameters.get("fingerprint") != target.fingerprint)
                ):
                    raise TamperedState(f"a vote recorded on activity `{target.id}` is not a vote on it")
                approved = vote_type == APPROVE
            user = self.repo.users.user(user_id)
            if user is None or user.organization_id != org.id:
                continue  # a deleted voter no longer counts
            public_key = str(v.get("publicKey", ""))
            credential = (
                self.repo.users.authenticator_by_public_key(org.id, public_key)
                if v.get("scheme") == SCHEME_WEBAUTHN
                else self.repo.users.api_key_in_org(org.id, public_key)
            )
            out.append(Voter(user, credential, approved))
        return out

    async def _decide(
        self,
        entry: ActivityType,
        org: Organization,
        request_params: JsonObj,
        prepared: Prepared,
        voters: list[Voter],
        now_ms: int,
        activity_id: str,
    ) -> Decision:
        decision = await self.decider.decide(
            org,
            entry.type,
            entry.resource,
            entry.action,
            request_params,
            prepared.policy_subjects(),
            voters,
            now_ms,
            activity_id,
            root_only=prepared.root_only or entry.root_only == "always",
        )
        if self.metrics is not None:
            self.metrics.decision(decision.outcome.value)
        return decision

    async def _prepare(self, entry: ActivityType, ctx: Context, params: JsonObj) -> Prepared:
        """The entry's reader on these parameters (votes have none: they are refused here)."""
        if entry.prepare is None:
            raise InvalidRequest(f"unsupported activity type `{entry.type}`")
        prepared = await entry.prepare(self.deps, ctx, params)
        if prepared.root_only and entry.root_only == "never":  # pragma: no cover - a catalog mistake
            raise AssertionError(f"`{entry.type}` is marked root-only by its reader, never by the catalog")
        return prepared

    async def _new(self, entry: ActivityType, request: Submission, *, park: bool = True) -> Activity:
        principal, org, params, now_ms = request.principal, request.org, request.params, request.now_ms
        (activity_id,) = new_ids(1)
        structlog.contextvars.bind_contextvars(activity_id=activity_id, activity_type=entry.type)
        ctx = Context(org, now_ms, activity_id, principal.user.id)
        prepared = await self._prepare(entry, ctx, params)
        vote = self._vote_record(principal, activity_id, request.body, True, now_ms)
        voters = [Voter(principal.user, principal.credential, True)]
        decision = await self._decide(entry, org, params, prepared, voters, now_ms, activity_id)
        evaluations = self.decider.evaluations_json(org.id, decision)
        if decision.outcome is Outcome.DENY_EXPLICIT:
            raise PermissionDenied("policy engine denied request explicitly", code=ErrorCode.FORBIDDEN)
        if decision.outcome is Outcome.DENY_IMPLICIT:
            why = "no policy allows this activity"
            if prepared.root_only:
                why = "only the root quorum may change a root user's credentials, access type or email"
            raise PermissionDenied(f"policy engine denied request implicitly: {why}", code=ErrorCode.FORBIDDEN)
        activity = request.activity(entry, activity_id, STATUS_CONSENSUS, [vote], evaluations)
        _check_storable(activity)
        if decision.outcome is Outcome.REQUIRES_CONSENSUS and not park:
            raise PermissionDenied(
                "this request needs approvals (consensus): submit it as an activity to the Turnkey API instead",
                code=ErrorCode.FORBIDDEN,
            )
        if decision.outcome is Outcome.REQUIRES_CONSENSUS:
            self._check_pending_cap(org.id, now_ms)
            self._parking[org.id] = self._parking.get(org.id, 0) + 1
            try:
                await self.repo.write(
                    [
                        *self.repo.activities.insert_activity(
                            activity, request.body, principal.stamp.header, principal.public_key
                        ),
                        # Its parameters are the ones just stamped and checked (not yet stored).
                        *self.outbox.ops(webhooks.CONSENSUS_NEEDED, activity, now_ms, stamped=params),
                    ]
                )
            finally:
                left = self._parking.pop(org.id) - 1
                if left:
                    self._parking[org.id] = left
            structlog.contextvars.bind_contextvars(activity_status=STATUS_CONSENSUS, organization_id=org.id)
            return activity
        # A passkey invite is spent by the activity it stamps, in its transaction, and only if it is
        # still there: of two redemptions racing past authentication, one conflicts and writes nothing.
        invite = auth.is_invite(principal.credential)
        spent = self.repo.users.consume_api_key(org.id, principal.credential.id) if invite else []
        return await self._execute(
            entry, org, prepared, activity, now_ms, new=(request.body, principal), extra_ops=spent
        )

    def _check_pending_cap(self, org_id: str, now_ms: int) -> None:
        """At most `max_pending` activities of an organization wait for votes at once.

        Counted: CONSENSUS_NEEDED activities still inside the 24-hour vote window (older ones can
        no longer complete), plus those being recorded right now in this process. A vote that
        completes, rejects or fails an activity frees its slot.
        """
        pending = self.repo.activities.pending_count(org_id, STATUS_CONSENSUS, now_ms - VOTE_WINDOW_MS)
        if pending + self._parking.get(org_id, 0) >= self.max_pending:
            raise ResourceExhausted(
                f"organization has reached its limit of {self.max_pending} activities awaiting consensus"
                " (ACTIVITY_STATUS_CONSENSUS_NEEDED): approve or reject pending activities first"
            )

    async def _execute(
        self,
        entry: ActivityType,
        org: Organization,
        prepared: Prepared,
        activity: Activity,
        now_ms: int,
        *,
        new: tuple[bytes, Principal] | None = None,
        extra_ops: list[Any] | None = None,
    ) -> Activity:
        """Carry out an allowed activity and commit it: inserted if `new`, else updated from CONSENSUS_NEEDED.

        Everything between the reservation and the commit runs under `Meter.attempt`: if building
        the commit or the commit itself fails, the reservation is released and what the handler
        made in the token is destroyed (`Execution.rollback`).
        """
        failure: dict[str, Any] | None = None
        execution: Execution | None = None
        async with self.meter.attempt(org.id, prepared.signatures, now_ms) as attempt:
            started = time.perf_counter()
            try:
                execution = await prepared.run()
            except HsmError as err:
                # Accepted but could not be carried out: recorded as FAILED. The log gets the token's
                # own words too (hsm/errors.py: the PKCS#11 failure's class and the object's label,
                # never key material), which is what tells a flaky token from a wrong request.
                log.error(
                    "activity_failed",
                    activity_id=activity.id,
                    type=entry.type,
                    error=type(err).__name__,
                    detail=err.message,
                )
                failure = {"code": int(err.grpc), "message": err.message, "details": []}
            else:
                attempt.rollback = execution.rollback
            executed = time.perf_counter()
            done = replace(
                activity,
                status=STATUS_COMPLETED if failure is None else STATUS_FAILED,
                result={} if execution is None else {entry.result: execution.result},
                failure=failure,
                updated_at=self.clock.now_ms(),
            )
            ops = list(extra_ops or [])
            if execution is not None:
                ops += execution.ops
                ops += attempt.usage_ops()  # signatures are charged only for work that was done
            if new is not None:
                body, principal = new
                ops += self.repo.activities.insert_activity(done, body, principal.stamp.header, principal.public_key)
            else:
                ops += self.repo.activities.update_activity(done, expected_status=STATUS_CONSENSUS)
                ops += self.outbox.outcome_ops(done, done.updated_at)  # the end of a wait for approvals
            await self.repo.write(ops)
        if execution is not None and execution.after_commit is not None:
            try:
                await execution.after_commit()
            except Exception as err:  # noqa: BLE001 - committed; what is left is reported, not undone
                log.error("after_commit_failed", activity_id=activity.id, type=entry.type, error=type(err).__name__)
        # The request line (api middleware) carries these: one log line per request.
        structlog.contextvars.bind_contextvars(
            activity_status=done.status,
            organization_id=org.id,
            execute_ms=round((executed - started) * 1000, 2),
            commit_ms=round((time.perf_counter() - executed) * 1000, 2),
        )
        return done

    async def explain(self, org: Organization, principal: Principal, request: JsonObj) -> dict[str, Any]:
        activity_type = req_str(request, "type", max_len=128)
        entry = self.catalog.by_type.get(activity_type)
        if entry is None or entry.is_vote:
            raise InvalidRequest(f"unsupported activity type `{activity_type}`")
        params = obj(request.get("parameters"), "parameters")
        now_ms = self.clock.now_ms()
        prepared = await self._prepare(entry, Context(org, now_ms, "", principal.user.id), params)
        decision = await self._decide(
            entry, org, params, prepared, [Voter(principal.user, principal.credential, True)], now_ms, ""
        )
        return {
            "decision": decision.outcome.value,
            "reasons": list(decision.reasons),
            "policyEvaluations": self.decider.evaluations_json(org.id, decision),
            "warnings": list(self.decider.blind_digest_warnings(org)),
        }

    # -- votes ----------------------------------------------------------------------------------------
    async def _vote(self, vote: ActivityType, request: Submission) -> tuple[Activity, Activity]:
        """Record an approve/reject vote; returns (the vote's own activity, the target as it is now)."""
        principal, org, params, body, now_ms = (
            request.principal,
            request.org,
            request.params,
            request.body,
            request.now_ms,
        )
        target_fp = req_str(params, "fingerprint", "parameters.", max_len=128)
        target = self.repo.activities.activity_by_fingerprint(target_fp)
        if target is None or target.organization_id != org.id:
            raise NotFound(NO_FINGERPRINT)
        # The decision and the execution happen once, on one replica, from the status read under
        # the lock (an expiry holds it too: a vote racing the end of the window has one outcome).
        async with self.consensus_lock(target.id):
            target = self.repo.activities.activity(org.id, target.id)
            assert target is not None
            if expiry.is_expired(target):
                raise expiry.late_vote(target)
            if target.status != STATUS_CONSENSUS:
                raise InvalidRequest(f"activity `{target.id}` is {target.status}: it is not waiting for votes")
            if expiry.overdue(target, now_ms):
                # The duty has not reached it yet: it is expired now, then the vote is refused.
                await self.expiry.expire_locked(target, now_ms)
                raise expiry.late_vote(target)
            if any(v.get("userId") == principal.user.id for v in target.votes):
                raise InvalidRequest("this user has already voted on this activity")
            entry = self.catalog.by_type.get(target.type)
            if entry is None or entry.is_vote:  # pragma: no cover - only catalogued types are ever recorded
                raise InvalidRequest(f"activity type `{target.type}` cannot be voted on")
            ctx = Context(org, target.created_at, target.id, str(target.user_id))
            # What is executed is what was stamped, not what the database says it was.
            intent_params = obj(
                self._authentic(target.fingerprint, org, target.user_id).get("parameters"), "parameters"
            )
            prepared = await self._prepare(entry, ctx, intent_params)
            voters = self._voters(org, target)
            before = await self._decide(entry, org, intent_params, prepared, voters, now_ms, target.id)
            approved = vote.action == "APPROVE"
            me = Voter(principal.user, principal.credential, True)
            with_me = await self._decide(entry, org, intent_params, prepared, [*voters, me], now_ms, target.id)
            if (
                principal.user.id not in org.root_user_ids
                and (with_me.outcome, with_me.evaluations) == (before.outcome, before.evaluations)
                and not await self.decider.vote_can_matter(org, before, voters, me, now_ms)
            ):
                raise PermissionDenied("this user's vote cannot change the outcome: not an approver of this activity")
            record = self._vote_record(principal, target.id, body, approved, now_ms)
            (vote_activity_id,) = new_ids(1)
            vote_activity = request.activity(vote, vote_activity_id, STATUS_COMPLETED, [])
            vote_ops = self.repo.activities.insert_activity(
                vote_activity, body, principal.stamp.header, principal.public_key
            )
            voted = replace(target, votes=[*target.votes, record], updated_at=now_ms)
            if not approved:
                rejected = replace(voted, status=STATUS_REJECTED)
                await self.repo.write(
                    [
                        *vote_ops,
                        *self.outbox.ops(webhooks.VOTE_CAST, voted, now_ms),
                        *self.repo.activities.update_activity(rejected, expected_status=STATUS_CONSENSUS),
                        *self.outbox.outcome_ops(rejected, now_ms),
                    ]
                )
                return vote_activity, rejected
            decision = with_me
            voted = replace(voted, policy_evaluations=self.decider.evaluations_json(org.id, decision))
            vote_ops += self.outbox.ops(webhooks.VOTE_CAST, voted, now_ms)
            if decision.outcome is Outcome.ALLOW:
                done = await self._execute(entry, org, prepared, voted, now_ms, extra_ops=vote_ops)
                return vote_activity, done
            if decision.outcome is Outcome.REQUIRES_CONSENSUS:
                await self.repo.write(
                    [*vote_ops, *self.repo.activities.update_activity(voted, expected_status=STATUS_CONSENSUS)]
                )
                return vote_activity, voted
            denied = replace(
                voted,
                status=STATUS_FAILED,
                failure={"code": 7, "message": "policy engine denied request explicitly", "details": []},
            )
            await self.repo.write(
                [
                    *vote_ops,
                    *self.repo.activities.update_activity(denied, expected_status=STATUS_CONSENSUS),
                    *self.outbox.outcome_ops(denied, now_ms),
                ]
            )
            return vote_activity, denied

    @asynccontextmanager
    async def consensus_lock(self, activity_id: str) -> AsyncIterator[None]:
        """Held while a vote decides and executes an activity, or an expiry ends it: the
        in-process lock, then the cross-replica one (`db.exclusive`, a no-op on SQLite)."""
        held = self._vote_locks.get(activity_id)
        if held is None:
            held = self._vote_locks[activity_id] = _HeldLock()
        held.users += 1
        try:
            async with held.lock, self.repo.db.exclusive(f"activity:{activity_id}"):
                yield
        finally:
            held.users -= 1
            if held.users == 0:
                del self._vote_locks[activity_id]

    async def _audit_refusal(self, what: str, org: Organization, principal: Principal, err: StrongroomError) -> None:
        at_ms = self.clock.reading_ms()  # written even when the refusal is for an untrusted clock
        ops = self.repo.activities.audit_refusal(
            at_ms, org.id, principal.user.id, principal.public_key, what, err.code.value, err.message
        )
        try:
            await self.repo.write(ops)
        except Exception:  # noqa: BLE001 - the refusal stands either way; the store's failure is visible in /readyz
            log.warning("audit_refusal_not_written", type=what)
