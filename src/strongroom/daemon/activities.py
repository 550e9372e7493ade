"""The activity pipeline: stamp, envelope, credential, trusted time, idempotency, policy,
execution, durable record, in that order. Nothing reaches the token before every guard passed.

Every activity that executes is committed (request bytes, stamp, intent, result) before its
response is returned: a signature never leaves without its record. Validation errors are
answered as errors and change nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog

from strongroom.daemon import auth, render
from strongroom.daemon.auth import Principal
from strongroom.daemon.clock import Clock
from strongroom.daemon.metering import Meter, Reservation
from strongroom.daemon.params import JsonObj, obj, req_str
from strongroom.errors import (
    Conflict,
    ErrorCode,
    HsmError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
    StrongroomError,
    Unavailable,
)
from strongroom.logs import get_logger
from strongroom.store.records import Activity, Organization, Repository

log = get_logger("strongroom.activity")

STATUS_COMPLETED: Final = "ACTIVITY_STATUS_COMPLETED"
STATUS_FAILED: Final = "ACTIVITY_STATUS_FAILED"


@dataclass(frozen=True, slots=True)
class Context:
    """What an activity handler gets: who asks, in which organization, at what trusted time."""

    principal: Principal
    organization: Organization
    now_ms: int
    activity_id: str


Handler = Callable[[Context, JsonObj], Awaitable["Execution"]]


@dataclass(frozen=True, slots=True)
class Execution:
    """A handler's outcome: the result object and the extra writes to commit with the activity.

    `rollback` undoes side effects outside the database (token objects) if the commit fails.
    """

    result: dict[str, Any]
    ops: list[Any]
    rollback: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True, slots=True)
class ActivitySpec:
    path: str
    type: str
    intent_key: str
    result_key: str
    handler: Handler
    # How many signatures the request will make (metered), or None if it signs nothing.
    signatures: Callable[[JsonObj], int] | None = None


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def new_ids(n: int) -> list[str]:
    """`n` random UUIDs from one `urandom` call (each call is a syscall on the event loop)."""
    raw = os.urandom(16 * n)
    return [str(uuid.UUID(bytes=raw[i * 16 : (i + 1) * 16], version=4)) for i in range(n)]


class RecentFingerprints:
    """Fingerprints of the activities recorded in the last `window_ms`.

    Only these can come back: a body whose first submission is older than the timestamp window
    (max age + max future skew) fails the timestamp check before idempotency is consulted. So
    an identical submission is found in memory, without a database read; the set is reloaded
    from the database at start-up, so it holds across restarts. Another replica's activities
    are not in it: there the database's unique fingerprint decides (see `Pipeline.submit`).
    """

    def __init__(self, window_ms: int) -> None:
        self.window_ms: Final = window_ms
        self._seen: OrderedDict[str, int] = OrderedDict()

    def add(self, fingerprint: str, at_ms: int) -> None:
        self._seen[fingerprint] = at_ms
        self._seen.move_to_end(fingerprint)

    def prune(self, now_ms: int) -> None:
        horizon = now_ms - self.window_ms
        while self._seen:
            fingerprint, at_ms = next(iter(self._seen.items()))
            if at_ms >= horizon:
                break
            del self._seen[fingerprint]

    def __contains__(self, fingerprint: str) -> bool:
        return fingerprint in self._seen

    def __len__(self) -> int:
        return len(self._seen)


class Pipeline:
    def __init__(self, repo: Repository, clock: Clock, *, max_age_ms: int, max_future_ms: int) -> None:
        self.repo: Final = repo
        self.clock: Final = clock
        self.max_age_ms: Final = max_age_ms
        self.max_future_ms: Final = max_future_ms
        self._specs: dict[str, ActivitySpec] = {}
        self._inflight: dict[str, asyncio.Future[Activity]] = {}
        self.recent: Final = RecentFingerprints(max_age_ms + max_future_ms + 60_000)
        self.meter: Final = Meter(repo)
        now = clock.now_ms()
        for fingerprint, at_ms in repo.recent_fingerprints(now - self.recent.window_ms):
            self.recent.add(fingerprint, at_ms)

    def register(self, spec: ActivitySpec) -> None:
        self._specs[spec.path] = spec

    def paths(self) -> list[str]:
        return sorted(self._specs)

    # -- envelope --------------------------------------------------------------------------------
    def check_timestamp(self, envelope: JsonObj, now_ms: int) -> int:
        raw = envelope.get("timestampMs")
        if raw is None:
            raise InvalidRequest("missing field `timestampMs`", code=ErrorCode.INVALID_TIME)
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise InvalidRequest("`timestampMs` must be a string of decimal milliseconds", code=ErrorCode.INVALID_TIME)
        text = str(raw)
        if not text.isdigit() or len(text) > 16:
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
        org = self.repo.organization(org_id)
        if org is None:
            raise NotFound("no organization found with the given ID", code=ErrorCode.ORGANIZATION_NOT_FOUND)
        return org

    @staticmethod
    def parse_body(body: bytes) -> JsonObj:
        """Strict JSON: UTF-8, no duplicate keys (a signer must not guess which one was meant)."""
        try:
            data = json.loads(body, object_pairs_hook=_no_duplicate_keys)
        except (ValueError, UnicodeDecodeError) as err:
            if isinstance(err, _DuplicateKey):
                raise InvalidRequest(f"bad request body: duplicate key `{err.key[:64]}`") from err
            raise InvalidRequest("bad request body: not valid JSON") from err
        return obj(data, "body")

    # -- policy (root quorum for now; the policy engine plugs in here) ----------------------------
    @staticmethod
    def authorize(org: Organization, principal: Principal) -> None:
        if principal.user.id in org.root_user_ids and org.root_quorum_threshold <= 1:
            return
        raise PermissionDenied("policy engine denied request implicitly", code=ErrorCode.FORBIDDEN)

    # -- submit ---------------------------------------------------------------------------------------
    async def submit(self, path: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """Guards in order; nothing reaches the token before all of them passed.

        stamp → body → organization → credential → type → trusted time → timestamp window →
        idempotency → store writable → quota → policy → execute → durable record + audit.
        Refusals after the stamp's key is known are written to the audit log too.
        """
        spec = self._specs.get(path)
        if spec is None:
            raise NotFound(f"unknown activity endpoint `{path[:64]}`")
        stamp = auth.parse_stamp(headers)
        auth.verify_stamp(stamp, body)
        envelope = self.parse_body(body)
        org_id = req_str(envelope, "organizationId")
        org = self.organization(org_id)
        now_ms = self.clock.now_ms()
        principal = auth.resolve(self.repo, stamp, org_id, now_ms)
        try:
            return await self._submit(spec, envelope, body, org, principal, now_ms)
        except StrongroomError as err:
            if not isinstance(err, Conflict):
                await self._audit_refusal(spec, org, principal, err)
            raise

    async def _submit(
        self,
        spec: ActivitySpec,
        envelope: JsonObj,
        body: bytes,
        org: Organization,
        principal: Principal,
        now_ms: int,
    ) -> dict[str, Any]:
        activity_type = req_str(envelope, "type", max_len=128)
        if activity_type != spec.type:
            raise InvalidRequest(
                f"unsupported activity type `{activity_type}` for /public/v1/submit/{spec.path}; expected `{spec.type}`"
            )
        self.check_timestamp(envelope, now_ms)
        params = obj(envelope.get("parameters"), "parameters")

        fingerprint = hashlib.sha256(body).hexdigest()
        if fingerprint in self.recent:
            existing = self.repo.activity_by_fingerprint(fingerprint)
            if existing is not None:
                return {"activity": render.activity(existing)}
        pending = self._inflight.get(fingerprint)
        if pending is not None:
            return {"activity": render.activity(await asyncio.shield(pending))}
        fut: asyncio.Future[Activity] = asyncio.get_running_loop().create_future()
        self._inflight[fingerprint] = fut
        try:
            failure = self.repo.db.failure
            if failure is not None:
                raise Unavailable(f"signing is stopped because {failure}")
            self.authorize(org, principal)
            reservation = None
            if spec.signatures is not None:
                reservation = self.meter.reserve(org.id, spec.signatures(params), now_ms)
            try:
                activity = await self._execute(spec, principal, org, params, body, fingerprint, now_ms, reservation)
            except Conflict:
                # Another process recorded the same body first: its activity is the answer; the
                # signature computed here was never released.
                recorded = self.repo.activity_by_fingerprint(fingerprint)
                if recorded is None:
                    raise
                activity = recorded
        except BaseException as err:
            fut.set_exception(err)
            fut.exception()  # mark retrieved: waiters get it through shield
            raise
        else:
            fut.set_result(activity)
            self.recent.add(fingerprint, activity.created_at)
            self.recent.prune(now_ms)
        finally:
            del self._inflight[fingerprint]
        return {"activity": render.activity(activity)}

    async def _audit_refusal(
        self, spec: ActivitySpec, org: Organization, principal: Principal, err: StrongroomError
    ) -> None:
        status = self.clock.status()
        at_ms = int(time.time() * 1000) if status is not None else self.clock.now_ms()
        ops = self.repo.audit_refusal(
            at_ms, org.id, principal.user.id, principal.stamp.public_key, spec.type, err.code.value, err.message
        )
        try:
            await self.repo.write(ops)
        except Exception:  # noqa: BLE001 - the refusal stands either way; the store's failure is visible in /readyz
            log.warning("audit_refusal_not_written", type=spec.type)

    async def _execute(
        self,
        spec: ActivitySpec,
        principal: Principal,
        org: Organization,
        params: JsonObj,
        body: bytes,
        fingerprint: str,
        now_ms: int,
        reservation: Reservation | None = None,
    ) -> Activity:
        activity_id, vote_id = new_ids(2)
        structlog.contextvars.bind_contextvars(activity_id=activity_id, activity_type=spec.type)
        ctx = Context(principal, org, now_ms, activity_id)
        vote = {
            "id": vote_id,
            "userId": principal.user.id,
            "user": render.user(principal.user, self.repo.api_keys_of_user(principal.user.id)),
            "activityId": activity_id,
            "selection": "VOTE_SELECTION_APPROVED",
            "message": body.decode("utf-8", errors="replace"),
            "publicKey": principal.stamp.public_key,
            "signature": principal.stamp.signature,
            "scheme": principal.stamp.scheme,
            "createdAt": render.timestamp(now_ms),
        }
        execution: Execution | None = None
        failure: dict[str, Any] | None = None
        started = time.perf_counter()
        try:
            execution = await spec.handler(ctx, params)
        except HsmError as err:
            # Accepted but could not be carried out: record it as FAILED (the detail goes to the log).
            # the error type only: no traceback that might carry token details
            log.error("activity_failed", activity_id=activity_id, type=spec.type, error=type(err).__name__)
            failure = {"code": int(err.grpc), "message": err.message, "details": []}
        done_ms = self.clock.now_ms()
        executed = time.perf_counter()
        activity = Activity(
            id=activity_id,
            organization_id=org.id,
            type=spec.type,
            status=STATUS_COMPLETED if failure is None else STATUS_FAILED,
            fingerprint=fingerprint,
            user_id=principal.user.id,
            intent={spec.intent_key: dict(params)},
            result={} if execution is None else {spec.result_key: execution.result},
            failure=failure,
            votes=[vote],
            created_at=now_ms,
            updated_at=done_ms,
        )
        ops = [
            *(execution.ops if execution else []),
            *self.repo.insert_activity(activity, body, principal.stamp.header, principal.stamp.public_key),
        ]
        if reservation is not None and execution is not None:
            ops += self.meter.ops(reservation)
        try:
            await self.repo.write(ops)
        except BaseException:
            if reservation is not None:
                self.meter.released(reservation)
            if execution is not None and execution.rollback is not None:
                await execution.rollback()
            raise
        if reservation is not None:
            if execution is not None:
                self.meter.committed(reservation)
            else:
                self.meter.released(reservation)
        # The request line (api middleware) carries these: one log line per request.
        structlog.contextvars.bind_contextvars(
            activity_status=activity.status,
            organization_id=org.id,
            user_id=principal.user.id,
            execute_ms=round((executed - started) * 1000, 2),
            commit_ms=round((time.perf_counter() - executed) * 1000, 2),
        )
        return activity
