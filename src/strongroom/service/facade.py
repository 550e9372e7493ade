"""Composition of the domain services: token, store, clock, activity pipeline, queries."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

from strongroom.clock import Clock, SystemClock
from strongroom.config import Settings
from strongroom.errors import StrongroomError
from strongroom.hsm import AsyncKeyStore, Capabilities, KeyStore, Token
from strongroom.hsm.keystore import Notary
from strongroom.logs import get_logger
from strongroom.service import audit_trust, webhooks
from strongroom.service.catalog import CATALOG, Catalog
from strongroom.service.dashboard import Dashboard
from strongroom.service.ethrpc import EthRpc, Upstream
from strongroom.service.events import EventStreams, StreamRequest
from strongroom.service.invites import Invites
from strongroom.service.metrics import Metrics
from strongroom.service.pipeline import Pipeline
from strongroom.service.queries import Queries
from strongroom.service.webauthn import WebAuthnSettings
from strongroom.store import Repository, audit, open_database
from strongroom.store.notary import TamperedState
from strongroom.store.sessions import SessionRepository

log = get_logger("strongroom.service")


class Strongroom:
    """Everything a request needs, built once per process."""

    def __init__(self, settings: Settings, token: Token, capabilities: Capabilities, clock: Clock) -> None:
        self.settings: Final = settings
        self.token: Final = token
        self.capabilities: Final = capabilities
        self.guard: Final = audit_trust.AuditGuard(clock)  # audit + time checks at start (see audit_trust)
        self.clock: Final = clock
        keystore = KeyStore(token, capabilities)
        if not (capabilities.secp256k1 and capabilities.ed25519):
            keystore.ensure_kek()  # the fallback will be needed: fail now, not at the first key
        keystore.ensure_webhook_key()  # before any worker thread could race to create it
        self.keys: Final = AsyncKeyStore(keystore, threads=settings.token.threads)
        self.db: Final = open_database(settings.database_url, settings.database_path, shared=settings.workers > 1)
        self.repo: Final = Repository(self.db)
        # The database is untrusted: what decides authorisation is checked against the token.
        self.notary: Final = Notary(token)
        self.notary.ensure_key()
        self.repo.set_notary(self.notary)
        passkeys = WebAuthnSettings(settings.rp_id, settings.passkey_origins)
        self.pipeline: Final = Pipeline(
            self.repo,
            self.guard,
            CATALOG,  # the activity types served: the pipeline dispatches from the catalog only
            keys=self.keys,
            webauthn=passkeys,
            max_age_ms=settings.timestamp_max_age_ms,
            max_future_ms=settings.timestamp_max_future_ms,
            max_pending=settings.max_pending_activities,
        )
        self.queries: Final = Queries(self.repo, self.pipeline)
        # Webhook events (written by the pipeline with each change) posted by a background duty.
        self.webhooks: Final = webhooks.Delivery(
            self.repo,
            self.guard,
            self.keys,
            timeout_s=settings.webhook_timeout_s,
            backoff_base_ms=settings.webhook_backoff_base_ms,
            backoff_max_ms=settings.webhook_backoff_max_ms,
            max_attempts=settings.webhook_max_attempts,
        )
        # The same events as a server-sent event stream, read from the store (service/events.py).
        self.events: Final = EventStreams(
            self.repo,
            self.pipeline,
            self.keys,
            per_user=settings.max_event_streams_per_user,
            heartbeat_s=settings.event_stream_heartbeat_s,
        )
        # POST /eth/rpc: wallet methods over the same pipeline (the transport sets its upstream node)
        self.ethrpc: Final = EthRpc(self.pipeline, max_batch=settings.eth_rpc_max_batch)
        # The dashboard's login, sessions (in the store: shared by replicas) and reads.
        self.dashboard: Final = Dashboard(
            settings, self.repo, SessionRepository(self.db), self.queries, clock, passkeys
        )
        self.dashboard.invites = Invites(self.repo, self.pipeline, clock)  # passkey invites (service/invites.py)
        self.metrics: Final = Metrics(per_organization=settings.metrics_per_organization)
        self.token_problem: str | None = None
        self.keys.observe = self.metrics.observe_signing
        self.pipeline.metrics = self.metrics
        self.repo.on_tampered = self._tampered
        self.pipeline.stopped = self.verify_state()
        self.metrics.bind(
            in_flight=lambda: self.keys.in_flight,
            token_ok=lambda: self.token_problem is None,
            clock_ok=lambda: self.guard.clock_status() is None,
            store_ok=lambda: self.db.failure is None,
        )
        self._checkpointed = 0
        audit_trust.start(settings.data_dir, keystore, self.db, self.guard)

    def _tampered(self, org_id: str, problem: str) -> None:
        self.metrics.notarisation_failures.inc()
        log.error("notarisation_mismatch", organization_id=org_id, problem=problem)

    def verify_state(self) -> str | None:
        """Start-up check of every organization's notarised state; the first problem, or None.

        A problem stops signing for the whole daemon (the database is not what the token
        vouched for: nothing it says about any organization can be trusted until an operator
        has looked), and /readyz says why.
        """
        ids = self.repo.organizations.organization_ids()
        ids += [i for i in self.repo.organizations.notarised_organization_ids() if i not in ids]
        for org_id in ids:
            try:
                self.repo.verified(org_id, fresh=True)
            except TamperedState as err:
                problem = f"stored state failed verification at start-up: {err.message}"
                log.error("startup_verification_failed", problem=problem)
                return problem
        return None

    @classmethod
    def open(
        cls, settings: Settings, environ: Mapping[str, str] | None = None, clock: Clock | None = None
    ) -> Strongroom:
        environ = os.environ if environ is None else environ
        if settings.token.softhsm2_conf is not None:
            # SoftHSM2 reads its configuration from the environment when the module initialises.
            os.environ["SOFTHSM2_CONF"] = str(settings.token.softhsm2_conf)
        pin = settings.token.read_pin(environ)
        token = Token(settings.token.module, settings.token.label, pin)
        del pin
        capabilities = token.probe()
        log.info(
            "token_ready",
            token=settings.token.label,
            secp256k1="token" if capabilities.secp256k1 else "software-fallback",
            ed25519="token" if capabilities.ed25519 else "software-fallback",
            notes=list(capabilities.notes),
        )
        return cls(settings, token, capabilities, clock or SystemClock())

    @property
    def catalog(self) -> Catalog:
        """The activity types this daemon serves (the OpenAPI document and the dashboard list them)."""
        return self.pipeline.catalog

    async def submit(self, path: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        try:
            return await self.pipeline.submit(path, body, headers)
        finally:
            self.events.notify()  # an event this submission committed reaches the streams at once

    async def open_stream(self, body: bytes, headers: Mapping[str, str]) -> StreamRequest:
        """Check an event-stream request and take its slot (every refusal is raised here, before
        the stream starts); then `stream_frames`, and `close_stream` at the end."""
        return await self.events.open(body, headers)

    def stream_frames(self, request: StreamRequest, connected: Callable[[], bool]) -> AsyncIterator[bytes]:
        return self.events.frames(request, connected)

    def close_stream(self, request: StreamRequest) -> None:
        self.events.release(request)

    def stop_streams(self) -> None:
        """End every event stream and refuse new ones (the daemon is stopping)."""
        self.events.close()

    async def query(self, name: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        return await self.queries.run(name, body, headers)

    async def eth_rpc(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        """One Ethereum JSON-RPC call or batch (see `service/ethrpc.py`): result and error objects."""
        return await self.ethrpc.handle(body, headers)

    def use_eth_upstream(self, upstream: Upstream | None) -> None:
        """The Ethereum node `/eth/rpc` passes the node's methods to (`eth_upstream_url`)."""
        self.ethrpc.upstream = upstream

    async def checkpoint(self) -> bool:
        """Sign the audit chain head with the token's audit key, if it moved since the last one."""
        seq, head = self.db.audit_head()
        if self.guard.audit_problem is not None or self.db.failure is not None:
            return False  # never sign a head that failed verification, or that the writer refused
        if seq == 0 or seq <= self._checkpointed:
            return False
        last = self.repo.activities.last_checkpoint_seq()
        if last >= seq:
            self._checkpointed = last
            return False
        at_ms = self.guard.signed_time()  # the trusted time is signed too (v2); None: v1, no time
        message = audit.checkpoint_message(seq, head, at_ms)
        scheme, public_key, signature = await self.keys.sign_audit(message)
        signed_at = self.clock.now_ms() if at_ms is None else at_ms
        await self.repo.write(
            self.repo.activities.insert_checkpoint(seq, head, signed_at, scheme, public_key, signature)
        )
        self._checkpointed = seq
        await asyncio.to_thread(audit_trust.checkpointed, self.settings.data_dir, seq, head, at_ms)  # fsyncs
        return True

    async def expire_activities(self) -> int:
        """End the vote windows that have passed (`service/expiry.py`); how many were expired.

        Nothing is written while signing is stopped (start-up verification failed) or the audit
        log failed verification: an expiry is an audited change like any other.
        """
        if self.pipeline.stopped is not None or self.guard.audit_problem is not None:
            return 0
        expired = await self.pipeline.expiry.run()
        if expired:
            self.events.notify()
        return expired

    async def deliver_webhooks(self, post: webhooks.Post) -> int:
        """Post the webhook events that are due (`service/webhooks.py`); how many were delivered.

        Nothing is sent while signing is stopped or the audit log failed verification: the
        events' store is then not to be trusted, and their signature would vouch for it.
        """
        if self.pipeline.stopped is not None or self.guard.audit_problem is not None:
            return 0
        return await self.webhooks.run(post)

    async def check_token(self) -> bool:
        """Is the token reachable and logged in? If not, try to log in again (PIN re-read)."""
        try:
            await self.keys.ping()
        except StrongroomError as err:
            if self.token_problem is None:
                log.error("token_unavailable", error=err.message)
            self.token_problem = err.message
            try:
                self.keys.relogin(self.settings.token.read_pin(os.environ))
                await self.keys.ping()
            except StrongroomError:
                return False
        if self.token_problem is not None:
            log.info("token_available_again")
        self.token_problem = None
        return True

    async def retry_store(self) -> bool:
        """True when the store is writable; if a write failed, try an empty transaction (which
        clears the failure, so signing resumes)."""
        if self.db.failure is None:
            return True
        if await self.db.probe():
            log.info("store_writable_again")
            return True
        return False

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        checks: dict[str, Any] = {
            "token": {
                **self.capabilities.as_dict(),
                "state": "ready" if self.token_problem is None else self.token_problem,
            }
        }
        failure = self.db.failure
        checks["store"] = "writable" if failure is None else failure
        audit_problem = self.guard.audit_problem
        checks["audit"] = (failure or "writable") if audit_problem is None else f"failed verification: {audit_problem}"
        problem = self.pipeline.stopped or ("; ".join(sorted(self.repo.tampered.values()))[:2000] or None)
        checks["notarisation"] = "verified" if problem is None else problem
        ok = failure is None and problem is None and self.token_problem is None and audit_problem is None
        reason = self.guard.clock_status()
        checks["clock"] = "trusted" if reason is None else f"untrusted: {reason}"
        ok = ok and reason is None
        return ok, checks

    def close(self) -> None:
        self.keys.close()
        self.db.close()
        self.token.close()
