"""Passkey invites against a running daemon (no browser; test_dashboard.py drives one in Chromium).

`strongroom dashboard invite` / `users add-passkey-invite` print a one-time link; redeeming it
at `/dashboard/api/invite` registers a passkey (CREATE_AUTHENTICATORS_V2 through the pipeline)
and the user then logs in. The invite key does nothing else; an expired, reused, revoked or
tampered invite, or the wrong email, is refused with Turnkey's error shape and writes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from test_daemon import run_cli
from test_dashboard_api import SoftPasskey, http, login, start_dashboard_daemon, unb64url

from conftest import Daemon
from strongroom.client import ApiError, ApiKeyStamper, Client
from strongroom.crypto import p256

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, str]]:
    daemon, origin = start_dashboard_daemon(tmp_path_factory.mktemp("invite"))
    try:
        yield daemon, origin
    finally:
        daemon.stop()


def cli(daemon: Daemon, *args: str) -> dict[str, Any]:
    out = run_cli("--url", daemon.url, "--json", *args, data_dir=daemon.data_dir, check=False)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def token_of(link: str) -> str:
    return link.split("#invite/", 1)[1]


def users(root: Client) -> dict[str, dict[str, Any]]:
    return {u["userName"]: u for u in root.list_users()["users"]}


def redeem(origin: str, token: str, email: str, passkey: SoftPasskey) -> tuple[int, Any]:
    status, _, options = http("POST", f"{origin}/dashboard/api/register/options", {})
    assert status == 200 and options["origins"] == [origin], options
    registration = passkey.registration()
    status, _, data = http(
        "POST", f"{origin}/dashboard/api/invite", {"invite": token, "email": email, "authenticator": registration}
    )
    return status, data


def test_invite_registers_a_passkey_once_and_logs_in(served: tuple[Daemon, str]) -> None:
    daemon, origin = served
    root = daemon.client()
    made = cli(daemon, "dashboard", "invite", "--email", "Bob@Example.com", "--name", "bob")
    link = made["link"]
    assert link.startswith(f"{origin}/dashboard/#invite/{daemon.organization_id}."), link
    token = token_of(link)
    bob = users(root)["bob"]
    # Stored: the invite key's public half only, expiring in 24 h; bob is a web user without passkeys.
    (invite_key,) = bob["apiKeys"]
    assert invite_key["apiKeyName"].startswith("strongroom-invite:")
    assert invite_key.get("expirationSeconds") == "86400"
    assert bob["authenticators"] == []
    assert token.split(".", 1)[1] not in (daemon.data_dir / "strongroom.sqlite3").read_bytes().decode(errors="replace")
    assert http("POST", f"{origin}/dashboard/api/invite", {"invite": token})[2] == {"valid": True}

    # The invite key is good for nothing but registering bob's passkey: no query, no other activity.
    private_hex = unb64url(token.split(".", 1)[1]).hex()
    stamper = ApiKeyStamper(p256.public_key_of(private_hex), private_hex, "p256")
    as_invite = Client(daemon.url, stamper, daemon.organization_id)
    with pytest.raises(ApiError) as refused:
        as_invite.whoami()
    assert refused.value.status == 403 and "passkey invite" in refused.value.message
    with pytest.raises(ApiError) as refused:
        as_invite.create_private_key("stolen", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    assert refused.value.status == 403

    passkey = SoftPasskey(origin)
    # The wrong email and a tampered token change nothing.
    status, data = redeem(origin, token, "eve@example.com", passkey)
    assert status == 400 and "another email" in data["message"] and set(data) >= {"code", "message", "details"}
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    status, data = redeem(origin, tampered, "bob@example.com", passkey)
    assert status == 401 and "not valid" in data["message"], data
    status, data = redeem(origin, "not-a-token", "bob@example.com", passkey)
    assert status == 401, data
    assert users(root)["bob"]["authenticators"] == [] and len(users(root)["bob"]["apiKeys"]) == 1

    status, data = redeem(origin, token, "bob@example.com", passkey)
    assert status == 200, data
    activity = data["activity"]
    assert activity["type"] == "ACTIVITY_TYPE_CREATE_AUTHENTICATORS_V2"
    assert activity["status"] == "ACTIVITY_STATUS_COMPLETED", activity
    bob = users(root)["bob"]
    assert [a["authenticatorName"] for a in bob["authenticators"]] == ["soft passkey"]
    assert bob["apiKeys"] == []  # the invite is spent, in the same transaction
    cookie, _ = login(origin, "bob@example.com", passkey)
    status, _, me = http("GET", f"{origin}/dashboard/api/session", cookie=cookie)
    assert status == 200 and me["userId"] == bob["userId"]

    # Used once: a second redemption (another passkey) is refused and adds nothing.
    status, data = redeem(origin, token, "bob@example.com", SoftPasskey(origin))
    assert status == 401 and "not valid" in data["message"], data
    assert len(users(root)["bob"]["authenticators"]) == 1
    assert run_cli("audit", "verify", data_dir=daemon.data_dir, check=False).returncode == 0


def test_expired_and_revoked_invites_are_refused(served: tuple[Daemon, str]) -> None:
    daemon, origin = served
    root = daemon.client()
    cli(daemon, "dashboard", "invite", "--email", "carol@example.com")
    expiring = token_of(cli(daemon, "users", "add-passkey-invite", "carol", "--expires-in", "1s")["link"])
    time.sleep(1.5)  # the invite's expiry (1 s) is behind us: refused from now on
    status, data = redeem(origin, expiring, "carol@example.com", SoftPasskey(origin))
    assert status == 401 and "expired" in data["message"], data
    revoked = cli(daemon, "users", "add-passkey-invite", "carol")
    token = token_of(revoked["link"])
    cli(daemon, "users", "remove-credential", "carol", revoked["inviteName"])
    status, data = redeem(origin, token, "carol@example.com", SoftPasskey(origin))
    assert status == 401 and "not valid" in data["message"], data
    assert users(root)["carol"]["authenticators"] == []


def test_root_invite_joins_the_root_quorum(served: tuple[Daemon, str]) -> None:
    daemon, origin = served
    root = daemon.client()
    made = cli(daemon, "dashboard", "invite", "--email", "dana@example.com", "--root")
    dana = users(root)["dana"]
    quorum = root.get_organization()["organizationData"]["rootQuorum"]
    assert dana["userId"] in quorum["userIds"] and set(made["rootQuorum"]["userIds"]) == set(quorum["userIds"])
    passkey = SoftPasskey(origin)
    status, data = redeem(origin, token_of(made["link"]), "dana@example.com", passkey)
    assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", data
    cookie, _ = login(origin, "dana@example.com", passkey)
    status, _, overview = http("GET", f"{origin}/dashboard/api/overview", cookie=cookie)
    assert status == 200 and dana["userId"] in [u["userId"] for u in overview["rootQuorum"]["users"]]


def test_invites_need_an_email_and_web_access(served: tuple[Daemon, str], tmp_path: Path) -> None:
    daemon, _ = served
    for name in ("noemail", "api-only"):
        run_cli("api-key", "generate", "--name", name, "--dir", str(tmp_path), data_dir=daemon.data_dir)
    key = str(tmp_path / "noemail.public")
    cli(daemon, "users", "create", "--name", "noemail", "--access", "all", "--api-key-file", key)
    out = run_cli("--url", daemon.url, "users", "add-passkey-invite", "noemail", data_dir=daemon.data_dir, check=False)
    assert out.returncode == 2 and "has no email" in out.stderr
    key = str(tmp_path / "api-only.public")
    cli(daemon, "users", "create", "--name", "api-only", "--email", "api@example.com", "--api-key-file", key)
    out = run_cli("--url", daemon.url, "users", "add-passkey-invite", "api-only", data_dir=daemon.data_dir, check=False)
    assert out.returncode == 1 and "needs web access" in out.stderr, out.stderr


def test_concurrent_redemptions_register_one_passkey(served: tuple[Daemon, str]) -> None:
    """Four redemptions of one invite at once (four passkeys): one registers, the others are refused
    (the invite is gone, or spent by the racing activity's transaction) and write nothing."""
    daemon, origin = served
    root = daemon.client()
    token = token_of(cli(daemon, "dashboard", "invite", "--email", "erin@example.com")["link"])
    passkeys = [SoftPasskey(origin) for _ in range(4)]
    with ThreadPoolExecutor(len(passkeys)) as pool:
        answers = list(pool.map(lambda pk: redeem(origin, token, "erin@example.com", pk), passkeys))
    ok = [data for status, data in answers if status == 200]
    assert len(ok) == 1 and ok[0]["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", answers
    assert sorted(status for status, _ in answers)[1:] in ([401] * 3, [401, 401, 409], [401, 409, 409], [409] * 3)
    for status, data in answers:
        assert status == 200 or "invite" in data["message"], data
    erin = users(root)["erin"]
    assert len(erin["authenticators"]) == 1 and erin["apiKeys"] == [], erin
