"""Dashboard sessions over HTTP against a real daemon (no browser): cookie attributes, logout,
cookie-only writes refused everywhere, organizations isolated, security headers, the activity
pages. Every test runs on SQLite and on PostgreSQL (sessions and challenges live in the store).

`SoftPasskey` is a software WebAuthn authenticator (P-256, `none` attestation) written for these
tests; the browser test (test_dashboard.py) uses Chromium's virtual authenticator instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from test_daemon import run_cli

import conftest
from conftest import Daemon, start_daemon
from store.pg_cluster import PgCluster
from strongroom.client import ApiKeyStamper, Client
from strongroom.store.postgres import copy_from_sqlite

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def init_on_postgres(data_dir: Path, url: str) -> None:
    """`strongroom init` (it writes SQLite), then the organization moves to PostgreSQL at `url`,
    as an operator moves a deployment (docs/operations.md); the daemon is then given `database_url`."""
    run_cli("init", data_dir=data_dir)
    copy_from_sqlite(data_dir / "strongroom.sqlite3", url)


def start_dashboard_daemon(data_dir: Path, database_url: str | None = None) -> tuple[Daemon, str]:
    """A daemon whose passkey origin is http://localhost:<its port>; returns it and that origin.
    With `database_url`, on that (empty) PostgreSQL database."""
    port = conftest.free_port()
    origin = f"http://localhost:{port}"
    config = (
        'webauthn_rp_id = "localhost"\n'
        f'webauthn_origins = ["{origin}"]\n'
        "rate_limit_per_second = 10000\n"
        "rate_limit_burst = 10000\n"
    )
    if database_url:
        init_on_postgres(data_dir, database_url)
        config += f'database_url = "{database_url}"\n'
    original = conftest.free_port
    conftest.free_port = lambda: port  # start_daemon picks its port with this helper
    try:
        daemon = start_daemon(data_dir, config=config)
    finally:
        conftest.free_port = original
    return daemon, origin


class SoftPasskey:
    def __init__(self, origin: str, rp_id: str = "localhost") -> None:
        self.origin = origin
        self.rp_id = rp_id.encode()
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.count = 0

    def registration(self, name: str = "soft passkey") -> dict[str, Any]:
        challenge = os.urandom(32)
        n = self.key.public_key().public_numbers()
        cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: n.x.to_bytes(32, "big"), -3: n.y.to_bytes(32, "big")})
        client = json.dumps({"type": "webauthn.create", "challenge": b64url(challenge), "origin": self.origin})
        auth_data = (
            hashlib.sha256(self.rp_id).digest()
            + bytes([0x45])
            + (0).to_bytes(4, "big")
            + bytes(16)
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + cose
        )
        return {
            "authenticatorName": name,
            "challenge": b64url(challenge),
            "attestation": {
                "credentialId": b64url(self.credential_id),
                "clientDataJson": b64url(client.encode()),
                "attestationObject": b64url(cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})),
                "transports": ["AUTHENTICATOR_TRANSPORT_INTERNAL"],
            },
        }

    def assertion(self, challenge: bytes) -> dict[str, str]:
        client = json.dumps({"type": "webauthn.get", "challenge": b64url(challenge), "origin": self.origin}).encode()
        self.count += 1
        auth_data = hashlib.sha256(self.rp_id).digest() + bytes([0x05]) + self.count.to_bytes(4, "big")
        signature = self.key.sign(auth_data + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "credentialId": b64url(self.credential_id),
            "clientDataJson": b64url(client),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }


def http(
    method: str, url: str, data: Any = None, *, cookie: str = "", headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    body = None if data is None else (data if isinstance(data, bytes) else json.dumps(data).encode())
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    request.add_header("Content-Type", "application/json")
    if cookie:
        request.add_header("Cookie", f"strongroom_session={cookie}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw, status, got = resp.read(), resp.status, resp.headers
    except urllib.error.HTTPError as err:
        raw, status, got = err.read(), err.code, err.headers
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return status, got, parsed


def create_web_user(client: Client, passkey: SoftPasskey, email: str, name: str = "web") -> str:
    out = client.submit(
        "create_users",
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        {
            "users": [
                {
                    "userName": name,
                    "userEmail": email,
                    "apiKeys": [],
                    "authenticators": [passkey.registration()],
                    "oauthProviders": [],
                    "userTags": [],
                }
            ]
        },
    )
    user_id: str = out["activity"]["result"]["createUsersResult"]["userIds"][0]
    return user_id


def login(base: str, email: str, passkey: SoftPasskey) -> tuple[str, Any]:
    status, _, options = http("POST", f"{base}/dashboard/api/login/options", {"email": email})
    assert status == 200, options
    assert options["allowCredentials"] == [{"type": "public-key", "id": b64url(passkey.credential_id)}]
    status, headers, data = http(
        "POST",
        f"{base}/dashboard/api/login",
        {"email": email, "assertion": passkey.assertion(unb64url(options["challenge"]))},
    )
    assert status == 200, data
    cookie = headers["Set-Cookie"]
    return cookie.split(";", 1)[0].split("=", 1)[1], cookie


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    url = request.getfixturevalue("cluster").create_database() if request.param == "postgres" else None
    daemon, origin = start_dashboard_daemon(tmp_path_factory.mktemp("dash-api"), url)
    try:
        base = origin
        root = daemon.client()
        passkey = SoftPasskey(origin)
        email = f"a-{uuid.uuid4().hex[:6]}@example.com"
        create_web_user(root, passkey, email)
        created = root.create_private_key("a-key", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
        key_id = created["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
        yield {
            "daemon": daemon,
            "base": base,
            "root": root,
            "passkey": passkey,
            "email": email,
            "key_id": key_id,
            "activity_id": created["activity"]["id"],
        }
    finally:
        daemon.stop()


def test_login_sets_a_strict_session_cookie_and_security_headers(setup: dict[str, Any]) -> None:
    base = setup["base"]
    session, cookie = login(base, setup["email"], setup["passkey"])
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Strict" in cookie
    assert "Path=/dashboard" in cookie
    assert "secure" not in attributes  # plain HTTP here; Secure is set when served over TLS
    assert len(session) >= 43  # 256 bits, base64url
    status, headers, who = http("GET", f"{base}/dashboard/api/session", cookie=session)
    assert status == 200
    assert who["organizationId"] == setup["daemon"].organization_id
    for path in ("/dashboard/", "/dashboard/static/app.js", "/dashboard/api/session", "/dashboard/api/overview"):
        status, headers, _ = http("GET", base + path, cookie=session)
        assert status == 200, path
        csp = headers["Content-Security-Policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
            assert directive in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
    # Without a session nothing is read.
    status, headers, _ = http("GET", f"{base}/dashboard/api/overview")
    assert status == 401
    assert "Content-Security-Policy" in headers


def test_the_daemon_root_and_bare_dashboard_path_redirect_to_the_dashboard(setup: dict[str, Any]) -> None:
    """A browser pointed at the daemon lands on the dashboard (it used to get a JSON 404)."""
    split = urllib.parse.urlsplit(setup["base"])
    for path in ("/", "/dashboard"):
        conn = HTTPConnection(split.hostname or "", split.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            assert (resp.status, resp.headers["Location"]) == (302, "/dashboard/"), path
        finally:
            conn.close()
    status, _, _ = http("GET", setup["base"] + "/nothing-here")
    assert status == 404


def test_passkey_origin_follows_the_port_when_not_configured(tmp_path: Path) -> None:
    """No `webauthn_origins` in the config: the dashboard's own address, on whatever port the daemon
    serves, is the passkey origin (it used to stay http://localhost:8080); the daemon logs it."""
    daemon = start_daemon(tmp_path / "d", config="rate_limit_per_second = 10000\n")
    try:
        port = urllib.parse.urlsplit(daemon.url).port
        assert port != 8080
        origin = f"http://localhost:{port}"
        assert f'"dashboard":"{origin}/dashboard/"' in daemon.logs(wait_for='"dashboard"')
        client = daemon.client()
        good = SoftPasskey(origin)
        create_web_user(client, good, f"{uuid.uuid4().hex[:8]}@example.com")
        bad = SoftPasskey(f"http://127.0.0.1:{port}")  # an IP origin: not the relying party's
        with pytest.raises(Exception, match="origin"):
            create_web_user(client, bad, f"{uuid.uuid4().hex[:8]}@example.com", name="bad")
    finally:
        daemon.stop()


def test_behind_a_proxy_public_url_sets_the_passkey_origin_and_relying_party(tmp_path: Path) -> None:
    """`public_url` (the address a reverse proxy serves the daemon at): passkeys are bound to its
    host and made on its origin, the daemon logs the dashboard there, and an assertion made on the
    daemon's own address (which the proxy hides) is refused."""
    public = "https://vault.example.com"
    daemon = start_daemon(tmp_path / "d", config=f'rate_limit_per_second = 10000\npublic_url = "{public}/"\n')
    try:
        port = urllib.parse.urlsplit(daemon.url).port
        assert f'"dashboard":"{public}/dashboard/"' in daemon.logs(wait_for='"dashboard"')
        status, _, options = http("POST", f"{daemon.url}/dashboard/api/register/options", {})
        assert status == 200, options
        assert (options["rpId"], options["origins"]) == ("vault.example.com", [public]), options
        client = daemon.client()
        create_web_user(client, SoftPasskey(public, "vault.example.com"), f"{uuid.uuid4().hex[:8]}@example.com")
        for origin, rp_id in ((f"http://localhost:{port}", "vault.example.com"), (public, "localhost")):
            with pytest.raises(Exception, match=r"origin|RP ID"):
                create_web_user(client, SoftPasskey(origin, rp_id), f"{uuid.uuid4().hex[:8]}@example.com", name="x")
    finally:
        daemon.stop()


def test_a_public_url_with_a_path_stops_the_start_with_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    run_cli("init", data_dir=data_dir)
    toml = data_dir / "strongroom.toml"
    toml.write_text('public_url = "https://vault.example.com/strongroom"\n' + toml.read_text())
    out = run_cli("serve", "--port", "0", data_dir=data_dir, check=False)
    assert out.returncode == 2, out
    assert "`public_url` must be an origin" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr


def test_a_login_challenge_is_single_use_and_bound_to_the_user(setup: dict[str, Any]) -> None:
    base, passkey = setup["base"], setup["passkey"]
    _, _, options = http("POST", f"{base}/dashboard/api/login/options", {"email": setup["email"]})
    assertion = passkey.assertion(unb64url(options["challenge"]))
    assert http("POST", f"{base}/dashboard/api/login", {"assertion": assertion})[0] == 200
    assert http("POST", f"{base}/dashboard/api/login", {"assertion": assertion})[0] == 401  # replayed
    # A challenge nobody issued, and one issued for an unknown email, open nothing.
    assert http("POST", f"{base}/dashboard/api/login", {"assertion": passkey.assertion(os.urandom(32))})[0] == 401
    _, _, unknown = http("POST", f"{base}/dashboard/api/login/options", {"email": "nobody@example.com"})
    # It is answered like a real one (decoy credential ids), and none of them is the real passkey's.
    assert unknown["allowCredentials"] and all(c["type"] == "public-key" for c in unknown["allowCredentials"])
    assert b64url(passkey.credential_id) not in [c["id"] for c in unknown["allowCredentials"]]
    forged = passkey.assertion(unb64url(unknown["challenge"]))
    assert http("POST", f"{base}/dashboard/api/login", {"assertion": forged})[0] == 401


def test_the_activity_pages_list_filter_and_show_the_audit_trail(setup: dict[str, Any]) -> None:
    base, activity_id = setup["base"], setup["activity_id"]
    session, _ = login(base, setup["email"], setup["passkey"])
    status, _, listed = http("GET", f"{base}/dashboard/api/activities?limit=5", cookie=session)
    assert status == 200, listed
    assert activity_id in [a["id"] for a in listed["activities"]]
    assert all(a["needsMyVote"] is False for a in listed["activities"])
    status, _, filtered = http(
        "GET", f"{base}/dashboard/api/activities?type=ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2", cookie=session
    )
    assert status == 200 and [a["id"] for a in filtered["activities"]] == [activity_id], filtered
    status, _, detail = http("GET", f"{base}/dashboard/api/activities/{activity_id}", cookie=session)
    assert status == 200, detail
    assert detail["activity"]["id"] == activity_id
    # The audit trail of the activity (portable SQL: the page used SQLite's json_extract once).
    assert detail["audit"] and all(e["entry"]["activity_id"] == activity_id for e in detail["audit"])
    assert [e["seq"] for e in detail["audit"]] == sorted(e["seq"] for e in detail["audit"])
    assert "policyEvaluations" in detail
    status, _, overview = http("GET", f"{base}/dashboard/api/overview", cookie=session)
    assert status == 200 and overview["counts"]["privateKeys"] >= 1, overview


def test_the_users_page_shows_access_type_and_root_users(setup: dict[str, Any]) -> None:
    """The Users table's Access column was always empty, and it offered to remove root users."""
    session, _ = login(setup["base"], setup["email"], setup["passkey"])
    status, _, data = http("GET", f"{setup['base']}/dashboard/api/users", cookie=session)
    assert status == 200, data
    by_id = {u["userId"]: u for u in data["users"]}
    root = by_id[setup["daemon"].user_id]
    assert root["isRoot"] is True
    assert root["accessType"].startswith("ACCESS_TYPE_")
    web = next(u for u in data["users"] if u.get("userEmail") == setup["email"])
    assert (web["isRoot"], web["accessType"]) == (False, "ACCESS_TYPE_WEB")


def test_the_keys_page_offers_each_curves_address_formats(setup: dict[str, Any]) -> None:
    """The key form offered one format per curve (typed into app.js); now the server's list."""
    session, _ = login(setup["base"], setup["email"], setup["passkey"])
    status, _, data = http("GET", f"{setup['base']}/dashboard/api/private-keys", cookie=session)
    assert status == 200, data
    formats = data["addressFormats"]
    assert set(formats) == {"CURVE_SECP256K1", "CURVE_ED25519"}, formats
    assert {"ADDRESS_FORMAT_ETHEREUM", "ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH", "ADDRESS_FORMAT_TRON"} <= set(
        formats["CURVE_SECP256K1"]
    )
    assert set(formats["CURVE_ED25519"]) == {"ADDRESS_FORMAT_SOLANA", "ADDRESS_FORMAT_COMPRESSED"}
    assert formats["CURVE_SECP256K1"] == sorted(formats["CURVE_SECP256K1"])


def test_logout_ends_the_session_server_side(setup: dict[str, Any]) -> None:
    base = setup["base"]
    session, _ = login(base, setup["email"], setup["passkey"])
    assert http("GET", f"{base}/dashboard/api/users", cookie=session)[0] == 200
    status, headers, _ = http("POST", f"{base}/dashboard/api/logout", {}, cookie=session)
    assert status == 200
    assert "Max-Age=0" in headers["Set-Cookie"]
    # The old cookie value, replayed, is dead: the server forgot the session.
    for path in ("session", "users", "private-keys", "activities"):
        assert http("GET", f"{base}/dashboard/api/{path}", cookie=session)[0] == 401


def test_removing_the_passkey_or_the_user_ends_their_sessions(setup: dict[str, Any]) -> None:
    base, root = setup["base"], setup["root"]
    users = {}
    for name in ("gone-passkey", "gone-user"):
        passkey, email = SoftPasskey(base), f"{name}-{uuid.uuid4().hex[:6]}@example.com"
        users[name] = (create_web_user(root, passkey, email, name=name), login(base, email, passkey)[0])
        assert http("GET", f"{base}/dashboard/api/session", cookie=users[name][1])[0] == 200
    user_id, session = users["gone-passkey"]
    found = root.query("get_authenticators", userId=user_id)["authenticators"]
    root.submit(
        "delete_authenticators",
        "ACTIVITY_TYPE_DELETE_AUTHENTICATORS",
        {"userId": user_id, "authenticatorIds": [a["authenticatorId"] for a in found]},
    )
    user_id, other = users["gone-user"]
    root.submit("delete_users", "ACTIVITY_TYPE_DELETE_USERS", {"userIds": [user_id]})
    for cookie in (session, other):
        status, _, data = http("GET", f"{base}/dashboard/api/overview", cookie=cookie)
        assert (status, data["message"]) == (401, "dashboard session ended: log in again"), data
        status, _, data = http("GET", f"{base}/dashboard/api/overview", cookie=cookie)
        assert (status, data["message"]) == (401, "no dashboard session: log in with a passkey"), data  # gone


def test_a_session_cookie_alone_never_writes(setup: dict[str, Any]) -> None:
    base, daemon, root = setup["base"], setup["daemon"], setup["root"]
    session, _ = login(base, setup["email"], setup["passkey"])
    before = (len(root.list_private_keys()["privateKeys"]), len(root.list_policies()["policies"]))
    paths = sorted(json.loads(urllib.request.urlopen(f"{base}/openapi.json").read())["paths"])
    submit_paths = [p for p in paths if p.startswith("/public/v1/submit/")]
    assert "/public/v1/submit/create_private_keys" in submit_paths
    body = {
        "type": "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        "timestampMs": "0",
        "organizationId": daemon.organization_id,
        "parameters": {
            "privateKeys": [
                {"privateKeyName": "csrf", "curve": "CURVE_ED25519", "privateKeyTags": [], "addressFormats": []}
            ]
        },
    }
    for path in submit_paths:
        # The cookie is sent as for any path (a browser would not: it is scoped to /dashboard).
        status, _, data = http("POST", base + path, body, cookie=session, headers={"Origin": base})
        assert status == 401, (path, data)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for path in ("private-keys", "policies", "users", "activities", "overview", "submit/create_private_keys"):
            status, _, _ = http(method, f"{base}/dashboard/api/{path}", body, cookie=session)
            assert status in (404, 405), (method, path, status)
    after = (len(root.list_private_keys()["privateKeys"]), len(root.list_policies()["policies"]))
    assert after == before


def test_a_session_of_one_organization_reveals_nothing_of_another(setup: dict[str, Any]) -> None:
    base, daemon = setup["base"], setup["daemon"]
    created = json.loads(
        run_cli("org", "create", "--name", f"b-{uuid.uuid4().hex[:6]}", data_dir=daemon.data_dir).stdout
    )
    b_root = Client(
        base, ApiKeyStamper.from_files(Path(created["apiPrivateKeyFile"]).with_suffix("")), created["organizationId"]
    )
    b_passkey = SoftPasskey(base)
    b_email = f"b-{uuid.uuid4().hex[:6]}@example.com"
    create_web_user(b_root, b_passkey, b_email, name="b-web")
    b_key = b_root.create_private_key("b-key", "CURVE_ED25519", [])["activity"]
    b_key_id = b_key["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]

    a_session, _ = login(base, setup["email"], setup["passkey"])
    b_session, _ = login(base, b_email, b_passkey)
    mine = {"a": (a_session, daemon.organization_id), "b": (b_session, created["organizationId"])}
    secrets = {
        "a": {daemon.organization_id, setup["key_id"], setup["activity_id"], daemon.user_id},
        "b": {created["organizationId"], b_key_id, b_key["id"], created["userId"]},
    }
    for me, them in (("a", "b"), ("b", "a")):
        session, org_id = mine[me]
        seen = ""
        for path in ("session", "overview", "users", "private-keys", "policies", "activities", "suborgs"):
            status, _, data = http("GET", f"{base}/dashboard/api/{path}", cookie=session)
            assert status == 200, (path, data)
            seen += json.dumps(data)
        assert org_id in seen
        for secret in secrets[them]:
            assert secret not in seen, (me, secret)
        their_activity = sorted(secrets[them])[0]
        for activity_id in secrets[them]:
            status, _, data = http("GET", f"{base}/dashboard/api/activities/{activity_id}", cookie=session)
            assert status in (400, 404), data
            assert their_activity not in json.dumps(data) or status == 404


def test_the_policy_checker_reports_issues_with_positions(setup: dict[str, Any]) -> None:
    base = setup["base"]
    assert http("POST", f"{base}/dashboard/api/check-policy", {"condition": "true"})[0] == 401
    session, _ = login(base, setup["email"], setup["passkey"])
    status, _, data = http(
        "POST", f"{base}/dashboard/api/check-policy", {"condition": "activity.type ==", "consensus": ""}, cookie=session
    )
    assert status == 200
    assert data["valid"] is False
    issue = data["issues"][0]
    assert issue["field"] == "condition"
    assert issue["line"] == 1
    assert issue["column"] >= 1
    status, _, data = http(
        "GET",
        f"{base}/dashboard/api/check-policy?condition=activity.type%20%3D%3D%20%27x%27",
        cookie=session,
    )
    assert status == 200
    assert data == {"valid": True, "issues": []}
