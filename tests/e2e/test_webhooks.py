"""Webhooks against a running daemon and a local aiohttp receiver (issue 19).

A 2-of-3 policy parks a member's signing request: the receiver gets a signed "consensus needed"
event and verifies it with the key the daemon publishes (`get_webhook_signer`), with the snippet
of docs/webhooks.md; a vote and the completion, a reject vote and the rejection produce their
events. A receiver that fails gets retries; a daemon killed (-9) before delivering, restarted,
still delivers; the receiver sees each event id at least once and processes it once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from test_expiry import SIGN, MovedClock, ok, submit, two_of_three

from conftest import Daemon, start_daemon

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

CONFIG = "rate_limit_per_second = 10000\nwebhook_backoff_base_ms = 100\nwebhook_timeout_s = 2\n"


def verify_webhook(public_key_hex: str, headers: Any, body: bytes, now_ms: int, max_age_ms: int = 300_000) -> Any:
    """docs/webhooks.md's verification: the signature over `timestamp.body`, the timestamp's age,
    the id in the header against the body's. Raises on any mismatch; returns the event."""
    timestamp = headers["X-Strongroom-Timestamp"]
    signature = bytes.fromhex(headers["X-Strongroom-Signature"])
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(public_key_hex))
    key.verify(signature, timestamp.encode() + b"." + body, ec.ECDSA(hashes.SHA256()))
    if abs(now_ms - int(timestamp)) > max_age_ms:
        raise ValueError("stale webhook")
    event = json.loads(body)
    if event["id"] != headers["X-Strongroom-Event-Id"]:
        raise ValueError("event id mismatch")
    return event


class Receiver:
    """An aiohttp server in a thread: records every attempt, answers 503 while `failing`, and
    processes each event id once (the dedupe docs/webhooks.md asks of receivers)."""

    def __init__(self) -> None:
        self.failing = False
        self.attempts: list[tuple[dict[str, str], bytes]] = []
        self.processed: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10)
        self.url = f"http://127.0.0.1:{self.port}/hooks/strongroom"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.attempts.append((dict(request.headers), body))
            if self.failing:
                return web.Response(status=503, text="not now")
            event_id = request.headers["X-Strongroom-Event-Id"]
            if event_id not in self._seen:  # at-least-once delivery, processed once
                self._seen.add(event_id)
                self.processed.append(json.loads(body))
        return web.Response(status=204)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hooks/strongroom", self._handle)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait(self, what: str, found: Callable[[], Any], timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = found()
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(f"the receiver never saw {what}: {len(self.attempts)} attempts")

    def event(self, event_type: str, activity_id: str) -> dict[str, Any]:
        def find() -> Any:
            return next(
                (e for e in self.processed if e["type"] == event_type and e["activity"]["id"] == activity_id), None
            )

        found: dict[str, Any] = self.wait(f"{event_type} of {activity_id}", find)
        return found

    def verify_all(self, public_key: str) -> None:
        with self._lock:
            attempts = list(self.attempts)
        for headers, body in attempts:
            event = verify_webhook(public_key, headers, body, int(time.time() * 1000))
            assert headers["X-Strongroom-Event-Type"] == event["type"]


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.stop()


def create_endpoint(d: Daemon, clock: MovedClock, url: str, name: str = "approvals") -> str:
    params = {"url": url, "name": name, "subscriptions": [{"eventType": "ACTIVITY_UPDATES"}]}
    created = ok(submit(d, clock, "create_webhook_endpoint", "ACTIVITY_TYPE_CREATE_WEBHOOK_ENDPOINT", params))
    result = created["result"]["createWebhookEndpointResult"]
    assert result["webhookEndpoint"]["url"] == url
    assert result["webhookEndpoint"]["isActive"] is True
    endpoint_id: str = result["endpointId"]
    return endpoint_id


def park(d: Daemon, clock: MovedClock, key_id: str, who: Any, payload: str) -> dict[str, Any]:
    params = {
        "signWith": key_id,
        "payload": payload,
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    parked = ok(submit(d, clock, "sign_raw_payload", SIGN, params, who=who))
    assert parked["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    return parked


def vote(d: Daemon, clock: MovedClock, approve: bool, fingerprint: str, who: Any) -> dict[str, Any]:
    name = "approve_activity" if approve else "reject_activity"
    kind = "ACTIVITY_TYPE_APPROVE_ACTIVITY" if approve else "ACTIVITY_TYPE_REJECT_ACTIVITY"
    return ok(submit(d, clock, name, kind, {"fingerprint": fingerprint}, who=who))


def test_a_two_of_three_request_produces_signed_events(tmp_path: Path, receiver: Receiver) -> None:
    d = start_daemon(tmp_path / "d", config=CONFIG)
    clock = MovedClock(tmp_path / "offset")
    try:
        client = d.client()
        # Only http(s) URLs with a host and without credentials are endpoints.
        for bad in ("ftp://127.0.0.1/x", "http://user:secret@127.0.0.1/x", "http:///nohost", "javascript:alert(1)"):
            params = {"url": bad, "name": "bad"}
            status, data = submit(d, clock, "create_webhook_endpoint", "ACTIVITY_TYPE_CREATE_WEBHOOK_ENDPOINT", params)
            assert status == 400, (bad, data)
            assert "parameters.url" in data["message"]
        endpoint_id = create_endpoint(d, clock, receiver.url)
        other = create_endpoint(d, clock, "http://127.0.0.1:9/unused", name="to delete")
        deleted = ok(
            submit(d, clock, "delete_webhook_endpoint", "ACTIVITY_TYPE_DELETE_WEBHOOK_ENDPOINT", {"endpointId": other})
        )
        assert deleted["result"]["deleteWebhookEndpointResult"] == {"endpointId": other}
        renamed = ok(
            submit(
                d,
                clock,
                "update_webhook_endpoint",
                "ACTIVITY_TYPE_UPDATE_WEBHOOK_ENDPOINT",
                {"endpointId": endpoint_id, "name": "approvals desk"},
            )
        )
        assert renamed["result"]["updateWebhookEndpointResult"]["webhookEndpoint"]["name"] == "approvals desk"
        listed = client.query("list_webhook_endpoints")["webhookEndpoints"]
        assert [(e["endpointId"], e["name"], e["url"], e["isActive"]) for e in listed] == [
            (endpoint_id, "approvals desk", receiver.url, True)
        ]
        assert listed[0]["subscriptions"] == [{"eventType": "ACTIVITY_UPDATES", "isActive": True}]
        signer = client.query("get_webhook_signer")
        assert signer["scheme"] == "ecdsa-p256-sha256"
        public_key = signer["publicKey"]

        setup = two_of_three(d, clock)
        alice, bob, carol = (setup.members[n] for n in ("alice", "bob", "carol"))
        parked = park(d, clock, setup.key_id, alice, "pay the supplier")
        needed = receiver.event("ACTIVITY_CONSENSUS_NEEDED", parked["id"])
        assert needed["organizationId"] == d.organization_id
        assert needed["activity"]["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
        assert needed["activity"]["fingerprint"] == parked["fingerprint"]
        # The decoded view, as `get_activity_view` gives it: what is asked, by whom, what is missing.
        view = needed["view"]
        assert view == client.get_activity_view(parked["id"])["view"]
        assert view["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
        assert view["requester"]["userName"].startswith("alice-")
        assert view["requester"]["credential"]["name"] == "alice key"
        assert view["signer"]["privateKeyId"] == setup.key_id
        assert view["payloads"][0]["raw"] == {
            "payload": "pay the supplier",
            "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
            "hashFunction": "HASH_FUNCTION_KECCAK256",
        }
        (policy,) = view["policies"]
        assert policy["policyName"] == f"two of three {setup.key_id}"
        assert policy["consensusProgress"][0]["needed"] == 2 and policy["consensusProgress"][0]["has"] == 1
        assert view["waitingFor"] == [f"two of three {setup.key_id}: {policy['consensusProgress'][0]['description']}"]
        receiver.verify_all(public_key)

        done = vote(d, clock, True, parked["fingerprint"], bob)
        assert done["status"] == "ACTIVITY_STATUS_COMPLETED"
        cast = receiver.event("ACTIVITY_VOTE_CAST", parked["id"])
        assert len(cast["activity"]["votes"]) == 2
        completed = receiver.event("ACTIVITY_COMPLETED", parked["id"])
        assert completed["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
        assert completed["activity"]["result"] == done["result"]
        assert completed["view"]["status"] == "ACTIVITY_STATUS_COMPLETED"
        assert completed["view"]["result"] == done["result"]
        assert [v["selection"] for v in completed["view"]["votes"]] == ["VOTE_SELECTION_APPROVED"] * 2
        assert cast["view"]["approvals"] == 2

        refused = park(d, clock, setup.key_id, alice, "pay someone else")
        rejected = vote(d, clock, False, refused["fingerprint"], carol)
        assert rejected["status"] == "ACTIVITY_STATUS_REJECTED"
        receiver.event("ACTIVITY_VOTE_CAST", refused["id"])
        assert receiver.event("ACTIVITY_REJECTED", refused["id"])["activity"]["status"] == "ACTIVITY_STATUS_REJECTED"
        receiver.verify_all(public_key)
        # Every event once (not necessarily in order: due deliveries are posted concurrently);
        # none for the activities decided at once (the endpoint, the key, the users, the policy).
        kinds = sorted((e["type"], e["activity"]["id"]) for e in receiver.processed)
        assert kinds == sorted(
            [
                ("ACTIVITY_CONSENSUS_NEEDED", parked["id"]),
                ("ACTIVITY_VOTE_CAST", parked["id"]),
                ("ACTIVITY_COMPLETED", parked["id"]),
                ("ACTIVITY_CONSENSUS_NEEDED", refused["id"]),
                ("ACTIVITY_VOTE_CAST", refused["id"]),
                ("ACTIVITY_REJECTED", refused["id"]),
            ]
        )
        assert len({e["id"] for e in receiver.processed}) == 6

        # A tampered signature or body does not verify.
        headers, body = receiver.attempts[0]
        with pytest.raises(InvalidSignature):
            verify_webhook(public_key, headers, body.replace(b"CONSENSUS", b"CONSENSUs"), int(time.time() * 1000))

        # An endpoint URL edited in the database is not notarised: the daemon refuses it.
        with sqlite3.connect(d.data_dir / "strongroom.sqlite3") as conn:
            conn.execute("UPDATE webhook_endpoints SET url = 'http://127.0.0.1:9/attacker'")
        status, data = client.post_raw(
            "/public/v1/query/list_webhook_endpoints", json.dumps({"organizationId": d.organization_id}).encode()
        )
        assert status == 503, data
        assert "webhook_endpoints" in data["message"]
    finally:
        d.stop()


def test_kill_9_before_delivery_then_restart_still_delivers_once(tmp_path: Path, receiver: Receiver) -> None:
    data = tmp_path / "d"
    clock = MovedClock(tmp_path / "offset")
    receiver.failing = True
    d = start_daemon(data, config=CONFIG)
    try:
        create_endpoint(d, clock, receiver.url)
        setup = two_of_three(d, clock)
        parked = park(d, clock, setup.key_id, setup.members["alice"], f"before the crash {uuid.uuid4()}")
        public_key = d.client().query("get_webhook_signer")["publicKey"]

        # The receiver fails: the daemon retries, with backoff, the same event.
        def retried() -> bool:
            ids = [h["X-Strongroom-Event-Id"] for h, _b in receiver.attempts]
            return len(ids) >= 3 and len(set(ids)) == 1

        receiver.wait("three attempts of one event", retried)
        assert receiver.processed == []
    finally:
        d.process.send_signal(signal.SIGKILL)  # no shutdown: the event is still undelivered in the store
        d.process.wait()
        d.log_file.close()
    failed_attempts = len(receiver.attempts)
    receiver.failing = False

    d = start_daemon(data, config=CONFIG)
    try:
        needed = receiver.event("ACTIVITY_CONSENSUS_NEEDED", parked["id"])
        receiver.verify_all(public_key)
        assert len(receiver.attempts) > failed_attempts
        done = vote(d, clock, True, parked["fingerprint"], setup.members["bob"])
        assert done["status"] == "ACTIVITY_STATUS_COMPLETED"
        receiver.event("ACTIVITY_VOTE_CAST", parked["id"])
        receiver.event("ACTIVITY_COMPLETED", parked["id"])
        # Each event id seen at least once, processed once.
        seen = {h["X-Strongroom-Event-Id"] for h, _b in receiver.attempts}
        processed = [e["id"] for e in receiver.processed]
        assert len(processed) == len(set(processed)) == 3
        assert seen == set(processed)
        assert needed["id"] in seen
        assert d.client().query("get_webhook_signer")["publicKey"] == public_key  # the token's key, kept
    finally:
        d.stop()


def test_the_end_of_a_vote_window_produces_an_expired_event(tmp_path: Path, receiver: Receiver) -> None:
    clock = MovedClock(tmp_path / "offset")
    d = start_daemon(tmp_path / "d", config=CONFIG, clock_offset_file=clock.path)
    try:
        create_endpoint(d, clock, receiver.url)
        setup = two_of_three(d, clock)
        parked = park(d, clock, setup.key_id, setup.members["alice"], "left waiting")
        receiver.event("ACTIVITY_CONSENSUS_NEEDED", parked["id"])
        public_key = d.client().query("get_webhook_signer")["publicKey"]
        receiver.verify_all(public_key)
        clock.advance(24 * 3600 * 1000 + 60_000)  # a minute after the vote window ended
        expired = receiver.event("ACTIVITY_EXPIRED", parked["id"])
        assert expired["activity"]["status"] == "ACTIVITY_STATUS_REJECTED"
        assert expired["activity"]["failure"]["message"].startswith("expired: the vote window ended")
        assert expired["view"]["status"] == "ACTIVITY_STATUS_REJECTED"
        assert expired["view"]["failure"] == expired["activity"]["failure"]
        assert "waitingFor" not in expired["view"]
        for headers, body in receiver.attempts:  # signed at the daemon's time, which moved
            if headers["X-Strongroom-Event-Type"] == "ACTIVITY_EXPIRED":
                verify_webhook(public_key, headers, body, clock.now_ms())
        assert sorted(e["type"] for e in receiver.processed) == ["ACTIVITY_CONSENSUS_NEEDED", "ACTIVITY_EXPIRED"]
    finally:
        d.stop()
