"""The dashboard in headless Chromium (Debian's `chromium`, driven by Playwright's Python API
with `executable_path`) against a real daemon, with Chromium's virtual WebAuthn authenticator:
register a passkey, log in, create a key, write a policy (a syntax error shown as you type, then
a valid one) and edit its condition, approve a CONSENSUS_NEEDED activity another user created
through the API, open an EIP-1559 transfer waiting for two approvals on its activity page (the
decoded view: to, value in ETH, chain id, what is missing) and approve it there, add then remove
an API key on a user's page, and add then remove a user.

It runs on SQLite and on PostgreSQL (sessions and challenges in the store; the activity pages).

Polish (issue #20): a flash message stays on the page that produced it; copy buttons put the right
text on the clipboard (the Clipboard API and its execCommand fallback); status, curve and root badges;
the key form offers each curve's address formats; at 375x800 no main page scrolls sideways.

Screenshots of the main pages go to $STRONGROOM_ARTIFACTS/dashboard (default var/artifacts/dashboard);
with STRONGROOM_DOC_IMAGES=1 the desktop and phone shots of the main pages also go to docs/images/
(the ones docs/dashboard.md shows), and the decoded activity page as
docs/images/activity-approve.png (the README shows it).
Without /usr/bin/chromium the test fails, unless STRONGROOM_SKIP_BROWSER=1.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_dashboard_api import start_dashboard_daemon

from conftest import REPO, Daemon, api_user
from store.pg_cluster import PgCluster
from strongroom.chains.ethereum import rlp
from strongroom.chains.ethereum.address import to_checksum
from strongroom.chains.ethereum.tx import parse_signed_transaction
from strongroom.client import Client

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

SIGN_TX = "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
CHROMIUM = os.environ.get("STRONGROOM_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


PHONE = {"width": 375, "height": 800}
DESKTOP = {"width": 1280, "height": 800}
MAIN_PAGES = ("overview", "keys", "users", "policies", "activities", "suborgs")


def doc_images_dir() -> Path | None:
    if os.environ.get("STRONGROOM_DOC_IMAGES") != "1":
        return None
    out = REPO / "docs" / "images"
    out.mkdir(parents=True, exist_ok=True)
    return out


def artifacts_dir() -> Path:
    base = Path(os.environ.get("STRONGROOM_ARTIFACTS") or REPO / "var" / "artifacts")
    out = base / "dashboard"
    out.mkdir(parents=True, exist_ok=True)
    return out


def browser_or_fail() -> Any:
    skip = os.environ.get("STRONGROOM_SKIP_BROWSER") == "1"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        if skip:
            pytest.skip("STRONGROOM_SKIP_BROWSER=1 and no chromium")
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (make test does), or STRONGROOM_SKIP_BROWSER=1")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if skip:
            pytest.skip("STRONGROOM_SKIP_BROWSER=1 and no playwright")
        pytest.fail("the Python `playwright` package is missing: install the dev extras (make test does)")
    return sync_playwright


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_dashboard_in_chromium(tmp_path: Path, backend: str) -> None:
    sync_playwright = browser_or_fail()
    shots = artifacts_dir() if backend == "sqlite" else artifacts_dir() / backend
    shots.mkdir(exist_ok=True)
    cluster = PgCluster() if backend == "postgres" else None
    try:
        daemon, origin = start_dashboard_daemon(tmp_path / "daemon", cluster.create_database() if cluster else None)
        docs = doc_images_dir() if backend == "sqlite" else None
        drive_browser(sync_playwright, tmp_path, daemon, origin, shots, docs)
    finally:
        if cluster is not None:
            cluster.stop()


def drive_browser(
    sync_playwright: Any, tmp_path: Path, daemon: Daemon, origin: str, shots: Path, docs: Path | None = None
) -> None:
    root = daemon.client()
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"),  # an empty --user-data-dir
                executable_path=CHROMIUM,
                headless=True,
                args=FLAGS,
                viewport={"width": 1280, "height": 900},
            )
            context.set_default_timeout(15_000)
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
            page = context.pages[0] if context.pages else context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            cdp.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                    }
                },
            )
            try:
                run_flow(page, root, origin, shots, docs)
            except Exception as err:
                page.screenshot(path=str(shots / "failure.png"), full_page=True)
                raise AssertionError(f"{err}\n--- page text ---\n{page.inner_text('body')}") from err
            finally:
                context.close()
    finally:
        daemon.stop()


def clipboard(page: Any) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


def copy(page: Any, label: str) -> str:
    """Click the copy button labelled `Copy <label>` and return what landed on the clipboard."""
    page.evaluate("navigator.clipboard.writeText('(nothing copied)')")
    button = page.locator(f"button[aria-label={json.dumps('Copy ' + label)}]")
    button.click()
    page.wait_for_selector(f"button[aria-label={json.dumps('Copy ' + label)}]:has-text('Copied')")
    return clipboard(page)


def status_and_error(page: Any) -> tuple[str, str]:
    return page.inner_text("#status").strip(), page.inner_text("#error").strip()


def goto_page(page: Any, origin: str, name: str) -> None:
    page.goto(f"{origin}/dashboard/#{name}")
    page.wait_for_selector(f"main[data-page='{name}']")


def run_flow(page: Any, root: Client, origin: str, shots: Path, docs: Path | None = None) -> None:
    email = f"web-{uuid.uuid4().hex[:6]}@example.com"
    # 1. Register a passkey: the browser makes it; the administrator (root API key) adds the user.
    page.goto(f"{origin}/dashboard/#register")
    page.fill("#register-name", "laptop")
    page.fill("#register-email", email)
    page.click("#register-button")
    page.wait_for_function("document.getElementById('registration-output').value.length > 0")
    page.screenshot(path=str(shots / "register.png"), full_page=True)
    registration = json.loads(page.input_value("#registration-output"))
    created = root.submit(
        "create_users",
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        {
            "users": [
                {
                    "userName": "web-admin",
                    "userEmail": email,
                    "apiKeys": [],
                    "authenticators": [registration],
                    "oauthProviders": [],
                    "userTags": [],
                }
            ]
        },
    )
    web_id = created["activity"]["result"]["createUsersResult"]["userIds"][0]
    # The web user may do anything it approves itself; anyone else's activity needs its vote.
    root.create_policy("web-admin decides", "EFFECT_ALLOW", "true", f"approvers.any(user, user.id == '{web_id}')")
    alice = api_user(root, "alice")

    # 2. Log in with the passkey.
    page.goto(f"{origin}/dashboard/#overview")
    page.wait_for_selector("#login-email")
    page.screenshot(path=str(shots / "login.png"), full_page=True)
    page.fill("#login-email", email)
    page.click("#login-button")
    page.wait_for_selector("main[data-page='overview']")
    page.wait_for_selector("text=Root quorum")
    page.screenshot(path=str(shots / "overview.png"), full_page=True)

    # 3. Create a private key (stamped by the passkey over the exact body).
    page.goto(f"{origin}/dashboard/#keys")
    page.wait_for_selector("#key-name")
    # The form offers each curve's address formats (as the server derives them), the usual one checked.
    offered = page.eval_on_selector_all("#key-formats input", "cs => cs.map(c => [c.value, c.checked])")
    assert offered[0] == ["ADDRESS_FORMAT_ETHEREUM", True], offered
    assert {"ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH", "ADDRESS_FORMAT_TRON"} <= {v for v, _ in offered}, offered
    assert not any(checked for _, checked in offered[1:]), offered
    page.fill("#key-name", "browser-key")
    page.check("#key-format-bitcoin_mainnet_p2wpkh")
    page.click("#create-key")
    page.wait_for_selector("#status:has-text('ACTIVITY_STATUS_COMPLETED')")
    page.wait_for_selector("td:has-text('browser-key')")
    page.screenshot(path=str(shots / "private-keys.png"), full_page=True)
    key = next(k for k in root.list_private_keys()["privateKeys"] if k["privateKeyName"] == "browser-key")
    eth = {a["format"]: a["address"] for a in key["addresses"]}
    assert set(eth) == {"ADDRESS_FORMAT_ETHEREUM", "ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH"}, key
    # The flash message of that activity belongs to the keys page: gone on the users page, and not
    # back when returning to the keys page.
    goto_page(page, origin, "users")
    assert status_and_error(page) == ("", "")
    goto_page(page, origin, "keys")
    assert status_and_error(page) == ("", "")
    # Badges: the key's curve; copy buttons: its id, public key and each address, the exact text.
    row = f"tr[data-private-key='{key['privateKeyId']}']"
    assert page.inner_text(f"{row} .badge-curve") == "secp256k1"
    assert copy(page, "private key ID of browser-key") == key["privateKeyId"]
    assert copy(page, "public key of browser-key") == key["publicKey"]
    assert copy(page, "Ethereum address of browser-key") == eth["ADDRESS_FORMAT_ETHEREUM"]
    assert copy(page, "Bitcoin P2WPKH address of browser-key") == eth["ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH"]
    # Without the Clipboard API the button falls back to a selected textarea and execCommand("copy").
    page.evaluate("Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true })")
    page.locator("button[aria-label='Copy private key ID of browser-key']").focus()
    page.locator("button[aria-label='Copy public key of browser-key']").focus()  # resets the first button
    page.click("button[aria-label='Copy private key ID of browser-key']")
    page.wait_for_selector("button[aria-label='Copy private key ID of browser-key']:has-text('Copied')")
    page.evaluate("delete navigator.clipboard")
    assert clipboard(page) == key["privateKeyId"]
    assert page.inner_text("#copy-announcer") == "Copied private key ID of browser-key."
    # An Ed25519 key is offered Solana, not Ethereum (that pairing used to be offered, then refused).
    page.select_option("#key-curve", "CURVE_ED25519")
    offered = page.eval_on_selector_all("#key-formats input", "cs => cs.map(c => [c.value, c.checked])")
    assert offered[0] == ["ADDRESS_FORMAT_SOLANA", True], offered
    assert "ADDRESS_FORMAT_ETHEREUM" not in {v for v, _ in offered}, offered
    page.fill("#key-name", "browser-ed-key")
    page.click("#create-key")
    page.wait_for_selector("td:has-text('browser-ed-key')")
    ed = next(k for k in root.list_private_keys()["privateKeys"] if k["privateKeyName"] == "browser-ed-key")
    assert [a["format"] for a in ed["addresses"]] == ["ADDRESS_FORMAT_SOLANA"]
    assert page.inner_text(f"tr[data-private-key='{ed['privateKeyId']}'] .badge-curve") == "Ed25519"
    # An HD wallet with Turnkey's default Ethereum and Solana accounts, listed with their paths.
    page.fill("#wallet-name", "browser-wallet")
    page.check("#wallet-sol")
    page.click("#create-wallet")
    page.wait_for_selector("td:has-text('browser-wallet')")
    page.wait_for_selector("small:has-text(\"m/44'/501'/0'/0'\")")
    (wallet,) = [w for w in root.list_wallets()["wallets"] if w["walletName"] == "browser-wallet"]
    accounts = root.list_wallet_accounts(wallet["walletId"])["accounts"]
    assert [a["addressFormat"] for a in accounts] == ["ADDRESS_FORMAT_ETHEREUM", "ADDRESS_FORMAT_SOLANA"]
    for account in accounts:
        page.wait_for_selector(f"code:has-text('{account['address']}')")
    page.screenshot(path=str(shots / "wallets.png"), full_page=True)

    # 4. A policy: a syntax error is shown as you type, then a valid one is created.
    page.goto(f"{origin}/dashboard/#policies")
    page.wait_for_selector("#policy-name")
    page.fill("#policy-name", "only sign raw")
    page.fill("#policy-condition", "activity.type == ")
    page.wait_for_selector("#policy-issues li:has-text('condition line 1')")
    assert page.is_disabled("#create-policy")
    page.screenshot(path=str(shots / "policy-error.png"), full_page=True)
    page.fill("#policy-condition", "activity.type == 'ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2'")
    page.wait_for_selector("#policy-issues:has-text('No problems found.')")
    page.click("#create-policy")
    page.wait_for_selector("#status:has-text('ACTIVITY_STATUS_COMPLETED')")
    page.wait_for_selector("td:has-text('only sign raw')")
    page.screenshot(path=str(shots / "policies.png"), full_page=True)
    assert "only sign raw" in {p["policyName"] for p in root.list_policies()["policies"]}

    # 4b. Edit that policy: change its condition (checked as you type), saved by update_policy.
    page.click("a[aria-label='Edit policy only sign raw']")
    page.wait_for_selector("#edit-policy-condition")
    new_condition = "activity.type == 'ACTIVITY_TYPE_SIGN_TRANSACTION_V2'"
    page.fill("#edit-policy-condition", new_condition)
    page.wait_for_selector("#edit-policy-issues:has-text('No problems found.')")
    page.screenshot(path=str(shots / "policy-edit.png"), full_page=True)
    page.click("#save-policy")
    page.wait_for_selector("#status:has-text('ACTIVITY_STATUS_COMPLETED')")
    page.wait_for_selector(f'td code:has-text("{new_condition}")')
    edited = {p["policyName"]: p for p in root.list_policies()["policies"]}["only sign raw"]
    assert edited["condition"] == new_condition, edited

    # 5. Alice (an API user) asks for a key; it needs the web user's vote; approve it in the browser.
    pending = alice.submit(
        "create_private_keys",
        "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        {
            "privateKeys": [
                {"privateKeyName": "alice-key", "curve": "CURVE_ED25519", "privateKeyTags": [], "addressFormats": []}
            ]
        },
    )["activity"]
    assert pending["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED", pending
    page.goto(f"{origin}/dashboard/#activities?status=ACTIVITY_STATUS_CONSENSUS_NEEDED")
    approve = f"button[aria-label='Approve activity {pending['id']}']"
    page.wait_for_selector(approve)
    pending_row = f"tr[data-activity='{pending['id']}']"
    assert page.get_attribute(f"{pending_row} .badge-status", "data-status") == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    assert "badge-warn" in (page.get_attribute(f"{pending_row} .badge-status", "class") or "")
    assert copy(page, f"activity ID {pending['id']}") == pending["id"]
    page.screenshot(path=str(shots / "activities.png"), full_page=True)
    page.click(approve)
    page.wait_for_selector("#status:has-text('ACTIVITY_STATUS_COMPLETED')")
    assert root.get_activity(pending["id"])["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"

    page.goto(f"{origin}/dashboard/#activity/{pending['id']}")
    page.wait_for_selector("#activity-status:has-text('ACTIVITY_STATUS_COMPLETED')")
    page.wait_for_selector("#audit")
    # The activity page's identifiers get copy buttons too (labelled by their fact).
    assert copy(page, "Fingerprint") == root.get_activity(pending["id"])["activity"]["fingerprint"]
    page.screenshot(path=str(shots / "activity.png"), full_page=True)

    # 5a. A two-approver consensus on transfers: alice's EIP-1559 transfer waits; its page shows it
    # decoded (to, value in ETH, chain id, what is still missing); the Approve button on that page
    # signs (passkey) the approval of exactly that activity's fingerprint, and it completes.
    root.delete_policy(edited["policyId"])  # it allowed every SIGN_TRANSACTION_V2 without approvals
    root.create_policy(
        "two approvers for transfers", "EFFECT_ALLOW", f"activity.type == '{SIGN_TX}'", "approvers.count() >= 2"
    )
    made = root.create_private_key("treasury", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])["activity"]
    sender = made["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["addresses"][0]["address"]
    to = "0x" + "35" * 20
    u = rlp.encode_uint
    fields = [u(11155111), u(3), u(10**9), u(30 * 10**9), u(21000), bytes.fromhex(to[2:]), u(25 * 10**16), b"", []]
    unsigned = (b"\x02" + rlp.encode(fields)).hex()
    params = {"signWith": sender, "type": "TRANSACTION_TYPE_ETHEREUM", "unsignedTransaction": unsigned}
    transfer = alice.submit("sign_transaction", SIGN_TX, params)["activity"]
    assert transfer["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED", transfer
    page.goto(f"{origin}/dashboard/#activity/{transfer['id']}")
    page.wait_for_selector("#activity-status:has-text('ACTIVITY_STATUS_CONSENSUS_NEEDED')")
    assert page.inner_text("[data-field='to']") == to_checksum(to)
    assert page.inner_text("[data-field='value']").startswith("0.25 ETH (250000000000000000 wei)")
    assert page.inner_text("[data-field='chain-id']") == "11155111"
    page.wait_for_selector("li:has-text('two approvers for transfers: needs 2 approvals from any users, has 1')")
    page.wait_for_selector("dd:has-text('alice')")  # who asked
    assert not page.is_visible("details.raw-json pre")  # the raw JSON stays folded
    assert not page.evaluate("[...document.querySelector('main').childNodes].some((n) => n.nodeType === 3)")
    approve = f"button[aria-label='Approve activity {transfer['id']}']"
    page.wait_for_selector(approve)
    page.screenshot(path=str(shots / "activity-decoded.png"), full_page=True)
    if docs is not None:
        page.screenshot(path=str(docs / "activity-approve.png"), full_page=True)
    page.click(approve)
    page.wait_for_selector("#activity-status:has-text('ACTIVITY_STATUS_COMPLETED')")
    done = root.get_activity(transfer["id"])["activity"]
    assert done["status"] == "ACTIVITY_STATUS_COMPLETED"
    signed = parse_signed_transaction(done["result"]["signTransactionResult"]["signedTransaction"])
    assert (signed.tx.to, signed.tx.value, signed.tx.chain_id) == (to_checksum(to), 25 * 10**16, 11155111)
    (web_vote,) = [v for v in done["votes"] if v["userId"] == web_id]
    assert web_vote["selection"] == "VOTE_SELECTION_APPROVED" and web_vote["scheme"] == "SIGNATURE_SCHEME_WEBAUTHN"
    assert json.loads(web_vote["message"])["parameters"] == {"fingerprint": transfer["fingerprint"]}
    # 5b. Add an API key to alice on her user page, then remove it (create_api_keys, delete_api_keys).
    alice_id = {u["userName"]: u["userId"] for u in root.list_users()["users"]}["alice"]
    extra = ec.generate_private_key(ec.SECP256R1()).public_key()
    extra_hex = extra.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint).hex()
    page.goto(f"{origin}/dashboard/#users")
    page.click(f"tr[data-user='{alice_id}'] a")
    page.wait_for_selector("#apikey-name")
    page.fill("#apikey-name", "alice-ci")
    page.fill("#apikey-public-key", extra_hex)
    page.select_option("#apikey-curve", "API_KEY_CURVE_P256")
    page.fill("#apikey-expiry", "3600")
    page.click("#create-api-key")
    page.wait_for_selector("#status:has-text('ACTIVITY_STATUS_COMPLETED')")
    remove = "button[aria-label='Remove API key alice-ci']"
    page.wait_for_selector(remove)
    page.screenshot(path=str(shots / "user.png"), full_page=True)

    def alice_keys() -> dict[str, Any]:
        users = {u["userId"]: u for u in root.list_users()["users"]}
        return {k["apiKeyName"]: k for k in users[alice_id]["apiKeys"]}

    added = alice_keys()["alice-ci"]
    assert added["credential"]["publicKey"] == extra_hex, added
    assert copy(page, "public key of API key alice-ci") == extra_hex
    assert copy(page, "user ID") == alice_id
    assert page.inner_text(f"tr[data-api-key='{added['apiKeyId']}'] .badge-curve") == "P-256"
    assert added.get("expirationSeconds") == "3600", added
    page.click(remove)
    page.wait_for_selector("#status:has-text('ACTIVITY_STATUS_COMPLETED')")
    page.wait_for_selector(remove, state="detached")
    assert set(alice_keys()) == {"alice"}

    # 5c. Add a user with an API key on the users page (create_users), then remove it (delete_users,
    # after confirming the dialog).
    bob_hex = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
        .hex()
    )
    page.goto(f"{origin}/dashboard/#users")
    page.wait_for_selector("#newuser-name")
    page.fill("#newuser-name", "bob")
    page.fill("#newuser-email", "bob@example.com")
    page.fill("#newuser-public-key", bob_hex)
    page.click("#create-user")
    page.wait_for_selector("#status:has-text('ACTIVITY_STATUS_COMPLETED')")
    page.wait_for_selector("button[aria-label='Remove user bob']")
    bob = {u["userName"]: u for u in root.list_users()["users"]}["bob"]
    assert [k["credential"]["publicKey"] for k in bob["apiKeys"]] == [bob_hex], bob
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button[aria-label='Remove user bob']")
    page.wait_for_selector("#status:has-text('ACTIVITY_STATUS_COMPLETED')")
    page.wait_for_selector("button[aria-label='Remove user bob']", state="detached")
    assert "bob" not in {u["userName"] for u in root.list_users()["users"]}

    for name in ("users", "suborgs"):
        goto_page(page, origin, name)
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    # The users page marks root users (and only them) and the logged-in user.
    goto_page(page, origin, "users")
    users = {u["userName"]: u["userId"] for u in root.list_users()["users"]}
    root_rows = page.eval_on_selector_all("tr:has(.badge-root)", "rs => rs.map(r => r.dataset.user)")
    assert root_rows and set(root_rows) < set(users.values()), root_rows
    assert users["alice"] not in root_rows and users["web-admin"] not in root_rows
    assert page.inner_text(f"tr[data-user='{users['web-admin']}'] .badge-you") == "you"
    assert page.inner_text(f"tr[data-user='{users['web-admin']}'] .badge-access") == "web"

    # 5d. At phone width (375x800) every main page fits: no sideways page scroll. Screenshots of the
    # main pages at phone and desktop width (also into docs/images with STRONGROOM_DOC_IMAGES=1).
    for viewport, suffix in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page.set_viewport_size(viewport)
        for name in MAIN_PAGES:
            goto_page(page, origin, name)
            width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], (name, viewport, width)
            page.screenshot(path=str(shots / f"{name}-{suffix}.png"), full_page=True)
            if docs is not None and name != "suborgs":
                page.screenshot(path=str(docs / f"dashboard-{name}-{suffix}.png"))
        page.goto(f"{origin}/dashboard/#user/{alice_id}")
        page.wait_for_selector("main[data-page='user'] #apikey-name")
        width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], ("user", viewport, width)
    # Dark colours follow prefers-color-scheme.
    page.emulate_media(color_scheme="dark")
    goto_page(page, origin, "keys")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(13, 17, 23)"
    page.screenshot(path=str(shots / "keys-dark.png"), full_page=True)
    if docs is not None:
        page.screenshot(path=str(docs / "dashboard-keys-dark.png"))
    page.emulate_media(color_scheme="light")

    # 6. Log out: the session is gone server-side, the login page is back.
    page.click("#logout")
    page.wait_for_selector("#login-email")
    assert page.evaluate("fetch('/dashboard/api/session').then(r => r.status)") == 401
