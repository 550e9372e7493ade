"""The event stream (docs/events.md) and webhook filters against a running daemon (issue 19).

A 2-of-3 request streams "consensus needed", the vote and the completion, over HTTP and over the
Unix socket, each signed like a webhook; a stream resumed with `Last-Event-ID` (or `lastEventId`)
gets exactly the events it missed; a sub-organization's events never reach its parent's stream;
bad requests are refused with Turnkey's error shape before the stream starts; streams are
bounded per user and end when the daemon stops. Webhook `filtersJson` is checked when an endpoint
is created or updated and decides which events are queued for it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import queue
import socket
import sqlite3
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import test_replicas
from test_daemon import run_cli
from test_expiry import SIGN, MovedClock, Setup, ok, submit, two_of_three
from test_replicas import Replicas
from test_webhooks import Receiver, create_endpoint

from conftest import Daemon, start_daemon
from strongroom.client import ApiError, ApiKeyStamper, AsyncClient, Client, StreamEvent, verify_event
from strongroom.crypto import p256

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

cluster = test_replicas.cluster  # two daemons on one PostgreSQL database (tests/e2e/test_replicas.py)
replicas = test_replicas.replicas

CONFIG = (
    "rate_limit_per_second = 10000\nwebhook_backoff_base_ms = 100\nwebhook_timeout_s = 2\n"
    "max_event_streams_per_user = 50\nevent_stream_heartbeat_s = 1\n"
)
STREAM = "/public/v1/stream/events"
TRANSPORTS = ("http", "unix")


def url_of(d: Daemon, transport: str) -> str:
    return d.url if transport == "http" else f"unix://{d.data_dir / 'run' / 'strongroom.sock'}"


@dataclass
class Watcher:
    """A stream read by a thread: its events in a queue, `opened` once the daemon accepted it."""

    client: Client
    after: str | None = None
    filters: dict[str, Any] | None = None
    headers: dict[str, str] | None = None
    events: queue.Queue[StreamEvent | BaseException | None] = field(default_factory=queue.Queue)
    opened: threading.Event = field(default_factory=threading.Event)
    refused: BaseException | None = None

    def start(self) -> Watcher:
        def run() -> None:
            try:
                for ev in self.client.events(
                    self.after, self.filters, headers=self.headers, on_open=self.opened.set, read_timeout=30
                ):
                    self.events.put(ev)
                self.events.put(None)  # the daemon ended the stream
            except BaseException as err:  # handed to the test
                if not self.opened.is_set():
                    self.refused = err
                self.events.put(err)
                self.opened.set()

        threading.Thread(target=run, daemon=True).start()
        assert self.opened.wait(30), "the stream was never accepted"
        if self.refused is not None:
            raise self.refused
        return self

    def next(self, timeout: float = 30.0) -> StreamEvent:
        got = self.events.get(timeout=timeout)
        if isinstance(got, BaseException):
            raise got
        assert got is not None, "the stream ended"
        return got

    def take(self, n: int) -> list[StreamEvent]:
        return [self.next() for _ in range(n)]

    def ended(self, timeout: float = 30.0) -> bool:
        """Read until the stream ends; True if it did (events read meanwhile are dropped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if got is None or isinstance(got, BaseException):
                return True
        return False


@dataclass
class Org:
    d: Daemon
    clock: MovedClock
    setup: Setup
    signer: str


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Org]:
    tmp = tmp_path_factory.mktemp("events")
    d = start_daemon(tmp / "d", config=CONFIG)
    clock = MovedClock(tmp / "offset")
    try:
        setup = two_of_three(d, clock)
        yield Org(d, clock, setup, d.client().query("get_webhook_signer")["publicKey"])
    finally:
        d.stop()


def park(o: Org, payload: str) -> dict[str, Any]:
    params = {
        "signWith": o.setup.key_id,
        "payload": payload,
        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
        "hashFunction": "HASH_FUNCTION_KECCAK256",
    }
    parked = ok(submit(o.d, o.clock, "sign_raw_payload", SIGN, params, who=o.setup.members["alice"]))
    assert parked["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    return parked


def approve(o: Org, parked: dict[str, Any], who: str = "bob") -> dict[str, Any]:
    params = {"fingerprint": parked["fingerprint"]}
    return ok(
        submit(o.d, o.clock, "approve_activity", "ACTIVITY_TYPE_APPROVE_ACTIVITY", params, who=o.setup.members[who])
    )


def checked(o: Org, ev: StreamEvent) -> dict[str, Any]:
    """The event, after its signature verified with the published webhook key."""
    event: dict[str, Any] = verify_event(o.signer, ev.data)
    assert ev.id == event["id"] == ev.data["eventId"]
    assert ev.type == event["type"] == ev.data["eventType"]
    assert event["organizationId"] == o.d.organization_id
    return event


def kinds(o: Org, events: list[StreamEvent]) -> list[tuple[str, str]]:
    return [(checked(o, e)["type"], checked(o, e)["activity"]["id"]) for e in events]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_two_of_three_request_streams_signed_events(org: Org, transport: str) -> None:
    client = Client(url_of(org.d, transport), ApiKeyStamper.from_files(org.d.key_prefix), org.d.organization_id)
    watch = Watcher(client).start()
    parked = park(org, f"over {transport}")
    done = approve(org, parked)
    assert done["status"] == "ACTIVITY_STATUS_COMPLETED"
    events = watch.take(3)
    assert kinds(org, events) == [
        ("ACTIVITY_CONSENSUS_NEEDED", parked["id"]),
        ("ACTIVITY_VOTE_CAST", parked["id"]),
        ("ACTIVITY_COMPLETED", parked["id"]),
    ]
    needed, cast, completed = (checked(org, e) for e in events)
    assert needed["activity"]["fingerprint"] == parked["fingerprint"]
    assert len(cast["activity"]["votes"]) == 2
    assert completed["activity"]["result"] == done["result"]
    # A tampered envelope does not verify.
    forged = dict(events[2].data, body=events[2].data["body"].replace("COMPLETED", "FAILED"))
    with pytest.raises(ValueError, match="does not verify"):
        verify_event(org.signer, forged)

    # A stream with a filter gets only what it asked for.
    only_done = Watcher(client, filters={"eventTypes": ["ACTIVITY_COMPLETED"]}).start()
    again = park(org, f"filtered over {transport}")
    approve(org, again, who="carol")
    assert kinds(org, [only_done.next()]) == [("ACTIVITY_COMPLETED", again["id"])]
    # ... while the unfiltered stream got all three, in order, and nothing else.
    assert kinds(org, watch.take(3)) == [
        ("ACTIVITY_CONSENSUS_NEEDED", again["id"]),
        ("ACTIVITY_VOTE_CAST", again["id"]),
        ("ACTIVITY_COMPLETED", again["id"]),
    ]


@pytest.mark.parametrize("how", ["header", "body"])
def test_a_resumed_stream_gets_exactly_the_missed_events(org: Org, how: str) -> None:
    client = org.d.client()
    first = Watcher(client).start()
    parked = park(org, f"resume by {how}")
    seen = first.next()
    assert kinds(org, [seen]) == [("ACTIVITY_CONSENSUS_NEEDED", parked["id"])]
    # The rest happens while nobody listens on a stream that starts "from now".
    approve(org, parked)
    if how == "header":  # what an SSE client sends when it reconnects
        resumed = Watcher(client, headers={"Last-Event-ID": seen.id}).start()
    else:
        resumed = Watcher(client, after=seen.id).start()
    missed = resumed.take(2)
    assert kinds(org, missed) == [("ACTIVITY_VOTE_CAST", parked["id"]), ("ACTIVITY_COMPLETED", parked["id"])]
    # Nothing twice, nothing else: the next event on the resumed stream is a new one.
    marker = park(org, f"marker {how}")
    assert kinds(org, [resumed.next()]) == [("ACTIVITY_CONSENSUS_NEEDED", marker["id"])]
    approve(org, marker)  # leave nothing waiting for the other tests


def _sub_org(o: Org) -> tuple[str, Client, Client]:
    """A sub-organization with two root users and a quorum of two: each of its activities waits
    for the other's vote, so it has events of its own."""
    keys = [p256.generate_private_key() for _ in range(2)]
    name = f"tenant-{uuid.uuid4().hex[:6]}"
    result = ok(
        submit(
            o.d,
            o.clock,
            "create_sub_organization",
            "ACTIVITY_TYPE_CREATE_SUB_ORGANIZATION_V8",
            {
                "subOrganizationName": name,
                "rootUsers": [
                    {
                        "userName": f"{name} root {i}",
                        "userEmail": f"{name}-{i}@example.com",
                        "apiKeys": [{"apiKeyName": "k", "publicKey": pub, "curveType": "API_KEY_CURVE_P256"}],
                        "authenticators": [],
                        "oauthProviders": [],
                    }
                    for i, (_priv, pub) in enumerate(keys)
                ],
                "rootQuorumThreshold": 2,
            },
        )
    )
    (created,) = result["result"].values()  # createSubOrganizationResultV7 (Turnkey's name for V8's result)
    sub_id = created["subOrganizationId"]
    first, second = (Client(o.d.url, ApiKeyStamper(pub, priv), sub_id) for priv, pub in keys)
    return sub_id, first, second


def test_another_organizations_events_never_appear(org: Org) -> None:
    sub_id, sub_root, _other_root = _sub_org(org)
    parent = Watcher(org.d.client()).start()
    tenant = Watcher(sub_root).start()
    waiting = sub_root.submit(
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {
            "privateKeys": [
                {"privateKeyName": "t", "curve": "CURVE_SECP256K1", "privateKeyTags": [], "addressFormats": []}
            ]
        },
    )["activity"]
    assert waiting["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    tenant_event = tenant.next()
    body = json.loads(tenant_event.data["body"])
    assert (body["type"], body["organizationId"], body["activity"]["id"]) == (
        "ACTIVITY_CONSENSUS_NEEDED",
        sub_id,
        waiting["id"],
    )
    # The parent's stream: its own next event comes, the tenant's never came before it.
    marker = park(org, "after the tenant's")
    assert kinds(org, [parent.next()]) == [("ACTIVITY_CONSENSUS_NEEDED", marker["id"])]
    approve(org, marker)
    # The tenant's event id does not resume a stream of the parent (no cursor leaks across)...
    with pytest.raises(ApiError) as err:
        next(iter(org.d.client().events(after=tenant_event.id)))
    assert err.value.status == 404
    # ... and the tenant's credentials cannot open the parent's stream.
    outsider = Client(org.d.url, sub_root.stamper, org.d.organization_id)
    with pytest.raises(ApiError) as err:
        next(iter(outsider.events()))
    assert err.value.status in (401, 403, 404)
    assert set(err.value.body) >= {"code", "message", "details"}


def _raw(d: Daemon, transport: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, Any]:
    """POST to the stream endpoint without the client's help: (status, content type, JSON body)."""
    if transport == "http":
        conn = http.client.HTTPConnection("127.0.0.1", int(d.url.rsplit(":", 1)[1]), timeout=30)
    else:
        conn = http.client.HTTPConnection("localhost", timeout=30)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(d.data_dir / "run" / "strongroom.sock"))
        conn.sock = sock
    try:
        conn.request("POST", STREAM, body=body, headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_stream_requests_get_turnkeys_error_shape(org: Org, transport: str) -> None:
    d = org.d
    stamper = ApiKeyStamper.from_files(d.key_prefix)

    def body(**extra: Any) -> bytes:
        fields = {"organizationId": d.organization_id, "timestampMs": str(int(time.time() * 1000)), **extra}
        return json.dumps(fields).encode()

    good = body()
    cases: list[tuple[str, bytes, dict[str, str], int]] = [
        ("no stamp", good, {}, 401),
        ("stamped over another body", good, {"X-Stamp": stamper.stamp(body(lastEventId=None))}, 401),
        ("stale", body(timestampMs="1000"), {}, 400),
        ("no timestamp", json.dumps({"organizationId": d.organization_id}).encode(), {}, 400),
        ("unknown event id", body(lastEventId=str(uuid.uuid4())), {}, 404),
        ("malformed event id", body(lastEventId="nope"), {}, 400),
        ("bad filter", body(filters={"eventTypes": ["ACTIVITY_EXPLODED"]}), {}, 400),
        ("unknown filter", body(filters={"walletIds": ["x"]}), {}, 400),
        ("unknown field", body(follow=True), {}, 400),
    ]
    for what, raw, given, expected in cases:
        headers = given if what in ("no stamp", "stamped over another body") else {"X-Stamp": stamper.stamp(raw)}
        status, content_type, data = _raw(d, transport, raw, headers)
        assert (status, content_type) == (expected, "application/json"), (what, data)
        assert set(data) == {"code", "message", "details"}, (what, data)
    # A stamp from a key the daemon does not know.
    priv, pub = p256.generate_private_key()
    status, _, data = _raw(d, transport, good, {"X-Stamp": ApiKeyStamper(pub, priv).stamp(good)})
    assert status in (401, 403, 404) and set(data) == {"code", "message", "details"}


def test_webhook_filters_are_checked_and_applied(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "d", config=CONFIG)
    clock = MovedClock(tmp_path / "offset")
    everything, completions = Receiver(), Receiver()
    try:
        client = d.client()

        def create(url: str, filters: str) -> tuple[int, Any]:
            sub = {"eventType": "ACTIVITY_UPDATES", "filtersJson": filters}
            params = {"url": url, "name": "filtered", "subscriptions": [sub]}
            return submit(d, clock, "create_webhook_endpoint", "ACTIVITY_TYPE_CREATE_WEBHOOK_ENDPOINT", params)

        for bad in ("{not json", "[]", '{"eventTypes": ["ACTIVITY_EXPLODED"]}', '{"eventTypes": []}', '{"x": 1}'):
            status, data = create(completions.url, bad)
            assert status == 400 and set(data) == {"code", "message", "details"}, (bad, data)
            assert "filtersJson" in data["message"] or "filter" in data["message"]
        assert client.query("list_webhook_endpoints")["webhookEndpoints"] == []  # nothing was created

        create_endpoint(d, clock, everything.url, name="everything")
        status, data = create(completions.url, json.dumps({"eventTypes": ["ACTIVITY_COMPLETED"]}))
        assert status == 200, data
        filtered_id = data["activity"]["result"]["createWebhookEndpointResult"]["endpointId"]
        # An update with a bad filter changes nothing either.
        before = client.query("list_webhook_endpoints")["webhookEndpoints"]
        status, data = submit(
            d,
            clock,
            "update_webhook_endpoint",
            "ACTIVITY_TYPE_UPDATE_WEBHOOK_ENDPOINT",
            {
                "endpointId": filtered_id,
                "name": "renamed",
                "subscriptions": [{"eventType": "ACTIVITY_UPDATES", "filtersJson": '{"activityTypes": ["sign"]}'}],
            },
        )
        assert status == 400 and set(data) == {"code", "message", "details"}, data
        assert client.query("list_webhook_endpoints")["webhookEndpoints"] == before

        setup = two_of_three(d, clock)
        o = Org(d, clock, setup, client.query("get_webhook_signer")["publicKey"])
        parked = park(o, "filtered webhooks")
        approve(o, parked)
        for kind in ("ACTIVITY_CONSENSUS_NEEDED", "ACTIVITY_VOTE_CAST", "ACTIVITY_COMPLETED"):
            everything.event(kind, parked["id"])
        completions.event("ACTIVITY_COMPLETED", parked["id"])
        # What was queued for each endpoint (the outbox is written with the change: final now).
        db = sqlite3.connect(f"file:{d.data_dir / 'strongroom.sqlite3'}?mode=ro", uri=True)
        try:
            queued = db.execute(
                "SELECT e.type FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
                " WHERE d.endpoint_id = ? ORDER BY e.created_at",
                (filtered_id,),
            ).fetchall()
        finally:
            db.close()
        assert [r[0] for r in queued] == ["ACTIVITY_COMPLETED"]
        assert [e["type"] for e in completions.processed] == ["ACTIVITY_COMPLETED"]
    finally:
        everything.stop()
        completions.stop()
        d.stop()


def _open_raw(d: Daemon) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    """A stream of the root user read by hand (HTTP), after its headers."""
    raw = json.dumps({"organizationId": d.organization_id, "timestampMs": str(int(time.time() * 1000))}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", int(d.url.rsplit(":", 1)[1]), timeout=30)
    stamp = ApiKeyStamper.from_files(d.key_prefix).stamp(raw)
    conn.request("POST", STREAM, body=raw, headers={"Content-Type": "application/json", "X-Stamp": stamp})
    return conn, conn.getresponse()


def test_streams_are_bounded_and_end_when_the_daemon_stops(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "d", config=CONFIG.replace("per_user = 50", "per_user = 2"))
    try:
        conn, resp = _open_raw(d)
        assert (resp.status, resp.getheader("Content-Type")) == (200, "text/event-stream")
        assert resp.readline() == b": stream open\n"
        # Keepalive comments flow while nothing happens (every second here).
        while (line := resp.readline()) != b": keepalive\n":
            assert line in (b"retry: 2000\n", b"\n"), line
        sock = Client(url_of(d, "unix"), ApiKeyStamper.from_files(d.key_prefix), d.organization_id)
        watchers = [Watcher(sock).start()]
        # A third stream of the same user, on either transport, is refused (Turnkey's shape, 429).
        for client in (d.client(), sock):
            with pytest.raises(ApiError) as err:
                next(iter(client.events()))
            assert err.value.status == 429
            assert "at most 2 event streams" in err.value.message
            assert set(err.value.body) == {"code", "message", "details"}
        # A client that goes away frees its slot: a new stream is accepted (once the daemon noticed).
        conn.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                watchers.append(Watcher(d.client()).start())
                break
            except ApiError as refused:
                status = refused.status
            assert status == 429 and time.monotonic() < deadline, "the slot was never freed"
            time.sleep(0.2)
        d.process.terminate()
        d.process.wait(20)  # aiohttp would wait a minute for open handlers: the streams end first
        assert all(w.ended() for w in watchers)
        assert "shutting_down" in d.logs()
    finally:
        d.stop()


def test_events_written_by_another_replica_reach_the_stream(replicas: Replicas) -> None:
    """Two daemons on one PostgreSQL database: a stream on A gets the events of a 2-of-3 request
    made and approved on B (the stream reads the store, not this process's memory)."""
    a, b = replicas.a, replicas.b
    clock = MovedClock(a.data_dir / "unmoved-offset")  # offset 0: both daemons run on the real clock
    setup = two_of_three(b, clock)
    o = Org(b, clock, setup, a.client().query("get_webhook_signer")["publicKey"])
    on_a = Watcher(a.client()).start()
    on_a_socket = Watcher(Client(url_of(a, "unix"), ApiKeyStamper.from_files(a.key_prefix), a.organization_id)).start()
    parked = park(o, "made on B")
    approve(o, parked)
    expected = [
        ("ACTIVITY_CONSENSUS_NEEDED", parked["id"]),
        ("ACTIVITY_VOTE_CAST", parked["id"]),
        ("ACTIVITY_COMPLETED", parked["id"]),
    ]
    first = on_a.take(3)
    assert kinds(o, first) == expected
    assert kinds(o, on_a_socket.take(3)) == expected
    # Resuming on B after A's first event gets the same two others, with the same ids.
    resumed = Watcher(b.client(), after=first[0].id).start().take(2)
    assert [e.id for e in resumed] == [e.id for e in first[1:]]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_activities_watch_prints_events_and_resumes_after_an_id(org: Org, transport: str) -> None:
    watch = Watcher(org.d.client()).start()
    parked = park(org, f"watched from the cli over {transport}")
    approve(org, parked)
    first, second, third = watch.take(3)
    where = (
        ["--url", org.d.url] if transport == "http" else ["--socket", str(org.d.data_dir / "run" / "strongroom.sock")]
    )
    common = [*where, "--org", org.d.organization_id, "--key", str(org.d.key_prefix)]
    # Resumed after the first event: the two that followed, one line each, then --count stops it.
    out = run_cli(*common, "activities", "watch", "--after", first.id, "--count", "2", data_dir=org.d.data_dir)
    lines = out.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [
        [second.id, "ACTIVITY_VOTE_CAST", parked["id"]],
        [third.id, "ACTIVITY_COMPLETED", parked["id"]],
    ]
    # --json: the verified webhook bodies, one per line; filters apply.
    out = run_cli(
        *common,
        "--json",
        "activities",
        "watch",
        "--after",
        first.id,
        "--count",
        "1",
        "--event-type",
        "ACTIVITY_COMPLETED",
        data_dir=org.d.data_dir,
    )
    (line,) = out.stdout.splitlines()
    assert json.loads(line) == json.loads(third.data["body"])
    # An unknown id is the daemon's refusal, exit code 1.
    out = run_cli(*common, "activities", "watch", "--after", str(uuid.uuid4()), data_dir=org.d.data_dir, check=False)
    assert out.returncode == 1 and "404" in out.stderr


def test_the_stream_is_in_the_openapi_document(org: Org) -> None:
    with urllib.request.urlopen(f"{org.d.url}/openapi.json", timeout=10) as resp:
        doc = json.loads(resp.read())
    post = doc["paths"]["/public/v1/stream/events"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["organizationId", "timestampMs"]
    assert set(body["properties"]) == {"organizationId", "timestampMs", "lastEventId", "filters"}
    assert "text/event-stream" in post["responses"]["200"]["content"]
    assert set(doc["components"]["schemas"]["EventFilter"]["properties"]) == {"eventTypes", "activityTypes"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_async_client_streams_too(org: Org, transport: str) -> None:
    url = url_of(org.d, transport)

    async def watch() -> list[StreamEvent]:
        opened = asyncio.Event()
        got: list[StreamEvent] = []
        async with AsyncClient(url, ApiKeyStamper.from_files(org.d.key_prefix), org.d.organization_id) as client:

            async def read() -> None:
                async for item in client.events(on_open=opened.set):
                    got.append(item)
                    if len(got) == 3:
                        return

            reading = asyncio.create_task(read())
            await asyncio.wait_for(opened.wait(), 30)
            parked = await asyncio.to_thread(park, org, f"async over {transport}")
            await asyncio.to_thread(approve, org, parked)
            await asyncio.wait_for(reading, 30)
        assert {checked(org, e)["activity"]["id"] for e in got} == {parked["id"]}
        return got

    events = asyncio.run(watch())
    assert [e.type for e in events] == ["ACTIVITY_CONSENSUS_NEEDED", "ACTIVITY_VOTE_CAST", "ACTIVITY_COMPLETED"]
