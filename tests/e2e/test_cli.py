"""Every CLI command, run for real against a running daemon; --json output parses."""

from __future__ import annotations

import base64
import json
import os
import pty
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from coincurve import PublicKey
from test_daemon import run_cli

from conftest import REPO, Daemon, start_daemon
from solana_build import labelled, sol_transfer_message, transaction
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.chains.ethereum.tx import parse_signed_transaction
from strongroom.chains.solana import wire
from strongroom.crypto import ed25519, p256
from strongroom.crypto.base58 import b58decode
from strongroom.crypto.keccak import keccak256

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    daemon = start_daemon(tmp_path_factory.mktemp("cli"))
    yield daemon
    daemon.stop()


def cli(d: Daemon, *args: str, key: Path | None = None, check: bool = True) -> Any:
    """Run `strongroom --json ...` against `d`; returns the parsed JSON (or the process if not check)."""
    common = ["--url", d.url, "--org", d.organization_id, "--key", str(key or d.key_prefix), "--json"]
    out = run_cli(*common, *args, data_dir=d.data_dir, check=check)
    return json.loads(out.stdout) if check else out


def add_member(d: Daemon, tmp: Path) -> tuple[str, Path]:
    """A second, non-root user with an API key, created by the root user through the API (the store
    refuses users written into it directly: they carry no notarisation)."""
    priv, pub = p256.generate_private_key()
    prefix = tmp / f"member-{uuid.uuid4().hex[:6]}"
    Path(f"{prefix}.public").write_text(pub)
    Path(f"{prefix}.private").write_text(priv)
    name = f"member-{uuid.uuid4().hex[:6]}"
    created = d.client().submit(
        "create_users",
        "ACTIVITY_TYPE_CREATE_USERS_V4",
        {
            "users": [
                {
                    "userName": name,
                    "apiKeys": [{"apiKeyName": "member key", "publicKey": pub, "curveType": "API_KEY_CURVE_P256"}],
                    "authenticators": [],
                    "oauthProviders": [],
                    "userTags": [],
                }
            ]
        },
    )
    (user_id,) = created["activity"]["result"]["createUsersResult"]["userIds"]
    return str(user_id), prefix


def test_client_commands(d: Daemon, tmp_path: Path) -> None:
    me = cli(d, "whoami")
    assert me["organizationId"] == d.organization_id
    human = run_cli(
        "--url", d.url, "--org", d.organization_id, "--key", str(d.key_prefix), "whoami", data_dir=d.data_dir
    )
    assert f"organization Strongroom ({d.organization_id})" in human.stdout

    name = f"cli-{uuid.uuid4()}"
    key = cli(d, "keys", "create", "--name", name, "--curve", "secp256k1")
    address = key["addresses"][0]["address"]
    assert [k["privateKeyId"] for k in cli(d, "keys", "list")].count(key["privateKeyId"]) == 1
    assert cli(d, "keys", "get", key["privateKeyId"])["addresses"][0]["address"] == address
    # ... and by name or by address (in any case), as a person remembers it
    assert cli(d, "keys", "get", name)["privateKeyId"] == key["privateKeyId"]
    assert cli(d, "keys", "get", address.upper().replace("0X", "0x"))["privateKeyId"] == key["privateKeyId"]
    missing = cli(d, "keys", "get", "no-such-key", check=False)
    assert (missing.returncode, "no private key with the name or address" in missing.stderr) == (2, True)
    ed = cli(d, "keys", "create", "--name", f"cli-ed-{uuid.uuid4()}", "--curve", "ed25519")
    assert ed["addresses"][0]["format"] == "ADDRESS_FORMAT_SOLANA"
    sol_address = ed["addresses"][0]["address"]
    sol_message = sol_transfer_message(b58decode(sol_address), labelled(9), 111).encode()
    sol = cli(d, "sign", "tx", "--type", "solana", "--sign-with", sol_address,
              "--unsigned", transaction(sol_message, 1).hex())  # fmt: skip
    sol_tx = wire.parse_transaction(bytes.fromhex(sol["signedTransaction"]))
    assert base64.b64decode(sol["base64"]) == sol_tx.serialize()
    assert sol_tx.message.raw == sol_message
    ed25519.verify(b58decode(sol_address), sol_message, sol_tx.signatures[0])
    wrong = cli(d, "sign", "tx", "--type", "solana", "--sign-with", address, "--unsigned",
                transaction(sol_message, 1).hex(), check=False)  # fmt: skip
    assert wrong.returncode != 0
    assert "ed25519" in wrong.stderr

    sig = cli(d, "sign", "raw", "--sign-with", address, "--payload", "hi", "--hash", "sha256")
    assert sig["status"] == "ACTIVITY_STATUS_COMPLETED"
    assert len(sig["r"]) == 64

    unsigned = cli(
        d, "tx", "eth-transfer", "--to", "0x" + "35" * 20, "--value", "0.01eth", "--nonce", "0",
        "--chain-id", "11155111", "--max-fee", "30gwei", "--priority-fee", "1gwei",
    )["unsignedTransaction"]  # fmt: skip
    signed = cli(d, "sign", "tx", "--sign-with", address, "--unsigned", unsigned)["signedTransaction"]
    tx = parse_signed_transaction(signed)
    assert tx.tx.value == 10**16
    assert tx.tx.chain_id == 11155111
    sender = PublicKey.from_signature_and_message(tx.signature.to_bytes65(), tx.tx.signing_hash(), hasher=None)
    assert address_from_public_key(sender.format(compressed=False)) == address

    created = cli(
        d,
        "policies",
        "create",
        "--name",
        "pair",
        "--effect",
        "allow",
        "--condition",
        "activity.action == 'SIGN'",
        "--consensus",
        "approvers.count() >= 2",
    )
    assert created["policyId"] in {p["policyId"] for p in cli(d, "policies", "list")}
    bad = cli(
        d, "policies", "create", "--name", "bad", "--effect", "allow", "--condition", "activity.action ==", check=False
    )
    assert bad.returncode == 1
    assert "invalid policy condition" in bad.stderr

    # A member's signature needs two approvers: the CLI says so (exit 1), root approves by id.
    _member_id, member_key = add_member(d, tmp_path)
    pending = cli(d, "sign", "raw", "--sign-with", address, "--payload", "x", key=member_key, check=False)
    assert pending.returncode == 1
    waiting = json.loads(pending.stdout)["activity"]
    assert waiting["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
    assert cli(d, "activities", "get", waiting["id"])["fingerprint"] == waiting["fingerprint"]
    listed = cli(d, "activities", "list", "--status", "consensus_needed")
    assert waiting["id"] in {a["id"] for a in listed}
    # `pending` is what a person types for "waiting for votes"; it used to match nothing, silently.
    assert waiting["id"] in {a["id"] for a in cli(d, "activities", "list", "--status", "pending")}
    common = ("--url", d.url, "--org", d.organization_id, "--key", str(d.key_prefix))
    none = run_cli(*common, "activities", "list", "--status", "created", data_dir=d.data_dir)
    assert none.stdout.strip() == "no activities with status created"
    approved = cli(d, "activities", "approve", waiting["id"], "--yes")
    assert approved["status"] == "ACTIVITY_STATUS_COMPLETED"
    second = json.loads(
        cli(d, "sign", "raw", "--sign-with", address, "--payload", "y", key=member_key, check=False).stdout
    )
    rejected = cli(d, "activities", "reject", "--fingerprint", second["activity"]["fingerprint"], "--yes")
    assert rejected["status"] == "ACTIVITY_STATUS_REJECTED"
    cli(d, "policies", "delete", created["policyId"])
    assert created["policyId"] not in {p["policyId"] for p in cli(d, "policies", "list")}

    users = cli(d, "users", "list")
    assert len(users) == 2
    raw = cli(
        d, "request", "--path", "/public/v1/query/whoami", "--body", json.dumps({"organizationId": d.organization_id})
    )
    assert raw["userId"] == d.user_id
    # organizationId and an activity's timestampMs are filled in; the body may come from a file
    assert cli(d, "request", "--path", "/public/v1/query/whoami")["userId"] == d.user_id
    body = tmp_path / "tag.json"
    body.write_text(
        json.dumps({"type": "ACTIVITY_TYPE_CREATE_USER_TAG", "parameters": {"userTagName": "ops", "userIds": []}})
    )
    made = cli(d, "request", "--path", "/public/v1/submit/create_user_tag", "--body", f"@{body}")
    assert made["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    assert int(made["activity"]["createdAt"]["seconds"]) > 0
    socket_me = run_cli(
        "--socket",
        str(d.data_dir / "run" / "strongroom.sock"),
        "--org",
        d.organization_id,
        "--key",
        str(d.key_prefix),
        "--json",
        "whoami",
        data_dir=d.data_dir,
    )
    assert json.loads(socket_me.stdout)["userId"] == d.user_id


def test_operator_commands(d: Daemon, tmp_path: Path) -> None:
    org = cli(d, "org", "create", "--name", "Test org")
    assert set(org) == {"organizationId", "userId", "apiPublicKey", "apiPublicKeyFile", "apiPrivateKeyFile"}
    assert org["organizationId"] in {o["organizationId"] for o in cli(d, "org", "list")}
    quota = cli(d, "usage", "set-quota", "--organization", org["organizationId"], "--signatures", "5")
    assert quota["monthlySignatureQuota"] == "5"
    generated = cli(d, "api-key", "generate", "--name", "ci", "--dir", str(tmp_path))
    assert len(generated["publicKey"]) == 66
    assert Path(generated["privateKeyFile"]).stat().st_mode & 0o777 == 0o600
    report = cli(d, "audit", "verify")
    assert report["ok"] is True
    assert report["entries"] > 0


def test_exit_codes_and_errors(d: Daemon, tmp_path: Path) -> None:
    out = run_cli(
        "--url",
        "http://127.0.0.1:9",
        "--org",
        d.organization_id,
        "--key",
        str(d.key_prefix),
        "whoami",
        data_dir=tmp_path,
        check=False,
    )
    assert (out.returncode, "daemon not reachable at http://127.0.0.1:9" in out.stderr) == (3, True)
    out = run_cli(
        "--url",
        d.url,
        "--org",
        d.organization_id,
        "--key",
        str(tmp_path / "missing"),
        "whoami",
        data_dir=tmp_path,
        check=False,
    )
    assert (out.returncode, "API key file not found" in out.stderr) == (2, True)
    out = cli(
        d,
        "tx",
        "eth-transfer",
        "--to",
        "0x1234",
        "--value",
        "1",
        "--nonce",
        "0",
        "--chain-id",
        "1",
        "--max-fee",
        "1gwei",
        "--priority-fee",
        "1gwei",
        check=False,
    )
    assert (out.returncode, "is not an Ethereum address" in out.stderr) == (2, True)
    out = cli(d, "sign", "raw", "--sign-with", "nope", "--payload", "x", check=False)
    assert out.returncode == 1
    assert "the daemon answered 404" in out.stderr


def test_bad_arguments_are_one_line_errors_with_exit_code_2(d: Daemon, tmp_path: Path) -> None:
    """A typo is a usage error (exit 2, one line naming the argument), never a traceback."""
    for args in (
        (
            "tx",
            "eth-transfer",
            "--to",
            "0x" + "11" * 20,
            "--value",
            "1",
            "--nonce",
            "-1",
            "--chain-id",
            "1",
            "--max-fee",
            "1gwei",
            "--priority-fee",
            "1gwei",
        ),
        ("activities", "list", "--limit", "ten"),
        ("activities", "list", "--status", "stuck"),
        ("serve", "--port", "-5"),
        ("sign",),
        ("keys", "create", "--name", "k", "--curve", "p384"),
    ):
        out = run_cli(*args, data_dir=tmp_path, check=False)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("strongroom"), out.stderr  # one line, no usage dump
    assert "a command is needed: one of raw, tx" in run_cli("sign", data_dir=tmp_path, check=False).stderr
    version = run_cli("--version", data_dir=tmp_path)
    assert version.stdout.startswith("strongroom ") and version.stdout.split()[1][0].isdigit()


def test_serve_on_a_taken_port_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run_cli("init", data_dir=data_dir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli("serve", "--host", "127.0.0.1", "--port", str(port), data_dir=data_dir, check=False)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in out.stderr


def key_files(tmp: Path, name: str) -> Path:
    """A P-256 API key in Turnkey's file format; returns the prefix (PREFIX.public, PREFIX.private)."""
    priv, pub = p256.generate_private_key()
    prefix = tmp / f"{name}-{uuid.uuid4().hex[:6]}"
    Path(f"{prefix}.public").write_text(pub)
    Path(f"{prefix}.private").write_text(priv)
    return prefix


def human(d: Daemon, *args: str, key: Path | None = None, check: bool = True) -> Any:
    """Run `strongroom ...` against `d` without --json (what a person reads)."""
    common = ["--url", d.url, "--org", d.organization_id, "--key", str(key or d.key_prefix)]
    return run_cli(*common, *args, data_dir=d.data_dir, check=check)


def test_users_and_their_credentials(d: Daemon, tmp_path: Path) -> None:
    first, second = key_files(tmp_path, "alice"), key_files(tmp_path, "alice-ci")
    email = f"alice-{uuid.uuid4().hex[:6]}@example.com"
    made = cli(d, "users", "create", "--name", "alice", "--email", email, "--api-key-file", f"{first}.public")
    alice = made["userId"]
    assert cli(d, "whoami", key=first)["userId"] == alice
    listed = {u["userId"]: u for u in cli(d, "users", "list")}
    assert listed[alice]["userEmail"] == email
    assert [k["apiKeyName"] for k in listed[alice]["apiKeys"]] == [first.name]
    lines = human(d, "users", "list").stdout.splitlines()
    assert any(x.startswith(alice) and x.endswith(email) for x in lines)  # not root: no badge
    assert any(x.startswith(d.user_id) and x.endswith("[root]") for x in lines)
    assert "    1 API key, 0 passkeys" in lines

    # USER is an id, an email (any case) or a name
    cli(d, "users", "update", email.upper(), "--name", "alice-renamed")
    assert {u["userId"]: u["userName"] for u in cli(d, "users", "list")}[alice] == "alice-renamed"
    added = cli(
        d, "users", "add-api-key", "alice-renamed", "--public-key-file", f"{second}.public",
        "--name", "ci", "--expires-in", "30d",
    )  # fmt: skip
    assert cli(d, "whoami", key=second)["userId"] == alice
    keys = {k["apiKeyName"]: k for u in cli(d, "users", "list") if u["userId"] == alice for k in u["apiKeys"]}
    assert keys["ci"]["apiKeyId"] == added["apiKeyId"]
    assert keys["ci"]["expirationSeconds"] == str(30 * 86400)
    out = human(d, "users", "remove-credential", alice, "ci")
    assert out.stdout.strip() == f"removed API key ci ({added['apiKeyId']})"
    assert cli(d, "whoami", key=second, check=False).returncode == 1  # the key no longer exists

    # access type: a web user's API keys are refused at once
    cli(d, "users", "update", alice, "--access", "web")
    assert cli(d, "whoami", key=first, check=False).returncode == 1
    cli(d, "users", "update", alice, "--access", "api")
    assert cli(d, "whoami", key=first)["userId"] == alice

    both = cli(
        d, "users", "create", "--name", "bob", "--access", "all", "--api-key-file", str(key_files(tmp_path, "bob"))
    )
    assert both["accessType"] == "ACCESS_TYPE_ALL"
    out = human(d, "users", "delete", "bob")
    assert out.stdout.strip() == f"deleted user bob ({both['userId']})"
    cli(d, "users", "delete", alice)
    assert not {alice, both["userId"]} & {u["userId"] for u in cli(d, "users", "list")}

    # the daemon's refusals exit 1; a credential-less user is one
    refused = cli(d, "users", "create", "--name", "nobody", check=False)
    assert (refused.returncode, "needs at least one credential" in refused.stderr) == (1, True)
    assert cli(d, "users", "delete", d.user_id, check=False).returncode == 1  # root quorum member


def test_users_bad_arguments_are_local_errors(d: Daemon, tmp_path: Path) -> None:
    prefix = key_files(tmp_path, "carol")
    for args, message in (
        (("users", "update", "no-such-user", "--name", "x"), "no user with the id, email or name `no-such-user`"),
        (("users", "update", d.user_id), "nothing to change"),
        (("users", "remove-credential", d.user_id, "no-such-key"), "has no API key or passkey"),
        (("users", "add-api-key", d.user_id, "--public-key-file", f"{prefix}.private"), "is a private key file"),
        (("users", "add-api-key", d.user_id, "--public-key-file", str(tmp_path / "nope")), "cannot read"),
        (("users", "create", "--name", "w", "--access", "web", "--api-key-file", str(prefix)), "--access web"),
        (("users", "add-api-key", d.user_id, "--public-key-file", str(prefix), "--expires-in", "3x"), "duration"),
        (("users", "create", "--name", "x", "--access", "root"), "invalid choice"),
        (("root-quorum", "set", "--threshold", "0", "--user", d.user_id), "1 or more"),
        (("root-quorum", "set", "--threshold", "2", "--user", d.user_id), "more than the 1 users"),
    ):
        out = cli(d, *args, check=False)
        assert out.returncode == 2, (args, out.stderr)
        assert "Traceback" not in out.stderr
        last = out.stderr.strip().splitlines()[-1]  # argparse prints its usage above its one line
        assert message in last and last.startswith(("error: ", "strongroom ")), (args, out.stderr)


def test_root_quorum_and_pending_activities(d: Daemon, tmp_path: Path) -> None:
    shown = cli(d, "root-quorum", "show")
    assert (shown["threshold"], shown["userIds"]) == (1, [d.user_id])
    assert human(d, "root-quorum", "show").stdout.startswith("root quorum: 1 of 1 must approve")
    member_key = key_files(tmp_path, "second-root")
    member = cli(d, "users", "create", "--name", "second-root", "--api-key-file", str(member_key))["userId"]

    both = cli(d, "root-quorum", "set", "--threshold", "2", "--user", d.user_id, "--user", "second-root")
    assert (both["threshold"], set(both["userIds"])) == (2, {d.user_id, member})
    # now changing it back needs both: the CLI says so (exit 1) and the activity waits for votes
    waiting = cli(d, "root-quorum", "set", "--threshold", "1", "--user", d.user_id, check=False)
    assert waiting.returncode == 1
    activity_id = json.loads(waiting.stdout)["activity"]["id"]
    pending = cli(d, "activities", "pending")
    assert pending[0]["id"] == activity_id
    assert all(a["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED" for a in pending)
    assert activity_id in human(d, "activities", "pending").stdout
    text = human(d, "activities", "get", activity_id).stdout
    assert "CONSENSUS_NEEDED  UPDATE_ROOT_QUORUM" in text
    assert "parameters:" in text and "threshold: 1" in text
    assert f"requested by: {cli(d, 'whoami')['username']} ({d.user_id}) with API key" in text
    root_name = cli(d, "whoami")["username"]
    assert f"approved  {root_name} ({d.user_id})" in text  # who voted, and how
    assert "more approvals are needed" in text

    assert cli(d, "activities", "approve", activity_id, "-y", key=member_key)["status"] == "ACTIVITY_STATUS_COMPLETED"
    assert cli(d, "root-quorum", "show")["userIds"] == [d.user_id]
    text = human(d, "activities", "get", activity_id).stdout
    assert text.count("approved  ") == 2 and f"({member})" in text
    assert "no activities waiting for votes" in human(d, "activities", "pending").stdout
    cli(d, "users", "delete", member)


def test_activities_get_decodes_a_signed_transaction(d: Daemon) -> None:
    address = cli(d, "keys", "create", "--name", f"cli-{uuid.uuid4()}", "--curve", "secp256k1", "--print", "address")[
        "addresses"
    ][0]["address"]
    unsigned = cli(
        d, "tx", "eth-transfer", "--to", "0x" + "35" * 20, "--value", "0.01eth", "--nonce", "7",
        "--chain-id", "11155111", "--max-fee", "30gwei", "--priority-fee", "1gwei",
    )["unsignedTransaction"]  # fmt: skip
    signed = cli(d, "sign", "tx", "--sign-with", address, "--unsigned", unsigned)
    text = human(d, "activities", "get", signed["activityId"]).stdout
    assert "COMPLETED  SIGN_TRANSACTION_V2" in text
    assert "signs with: private key 'cli-" in text and f" {address} (" in text
    assert "Ethereum transaction (EIP-1559):" in text and "value: 0.01 ETH (10000000000000000 wei)" in text
    assert "chain id: 11155111" in text and f"to: 0x{'35' * 20}" in text and "nonce: 7" in text
    assert "max fee per gas: 30000000000 wei" in text and "max priority fee per gas: 1000000000 wei" in text
    assert "result (signTransactionResult):" in text and "signedTransaction: " in text
    assert "votes:" in text


def test_activities_get_shows_who_rejected(d: Daemon, tmp_path: Path) -> None:
    """A member's signature that needs two approvers, rejected by root: both votes are shown."""
    address = cli(d, "keys", "create", "--name", f"cli-{uuid.uuid4()}", "--curve", "secp256k1")["addresses"][0][
        "address"
    ]
    policy = cli(
        d, "policies", "create", "--name", "pair", "--effect", "allow",
        "--condition", "activity.action == 'SIGN'", "--consensus", "approvers.count() >= 2",
    )["policyId"]  # fmt: skip
    member_key = key_files(tmp_path, "member")
    member = cli(d, "users", "create", "--name", f"member-{uuid.uuid4().hex[:6]}", "--api-key-file", str(member_key))
    waiting = cli(d, "sign", "raw", "--sign-with", address, "--payload", "x", key=member_key, check=False)
    activity = json.loads(waiting.stdout)["activity"]
    assert cli(d, "activities", "pending")[0]["id"] == activity["id"]
    pending = human(d, "activities", "pending").stdout
    assert f"payload x with {address}, asked by {member['userName']}" in pending
    assert "waiting for: pair: needs 2 approvals from any users, has 1" in pending
    cli(d, "activities", "reject", activity["id"], "--yes")
    text = human(d, "activities", "get", activity["id"]).stdout
    assert "REJECTED  SIGN_RAW_PAYLOAD_V2" in text and "payload: x" in text
    assert f"approved  {member['userName']} ({member['userId']})" in text  # the request is its sender's vote
    assert f"rejected  {cli(d, 'whoami')['username']} ({d.user_id})" in text
    assert "result (" not in text
    cli(d, "policies", "delete", policy)
    cli(d, "users", "delete", member["userId"])


def test_wallets_create_list_accounts_sign_and_delete(d: Daemon) -> None:
    name = f"w-{uuid.uuid4().hex[:6]}"
    made = cli(d, "wallets", "create", "--name", name, "--account", "ethereum", "--account", "solana", "--words", "24")
    wallet_id = made["walletId"]
    eth, sol = made["addresses"]
    out = human(d, "wallets", "create", "--name", f"{name}-2", "--print", "address")
    assert out.stdout.strip().startswith("0x")  # the first (default: Ethereum) account's address

    listed = cli(d, "wallets", "list")
    assert wallet_id in {w["walletId"] for w in listed["wallets"]}
    lines = human(d, "wallets", "list").stdout.splitlines()
    assert f"{wallet_id}  {name}" in lines
    assert f"    ETHEREUM: {eth}  (m/44'/60'/0'/0/0)" in lines
    assert f"    SOLANA: {sol}  (m/44'/501'/0'/0')" in lines

    accounts = cli(d, "wallets", "accounts", wallet_id, "--add", "ethereum:1")
    assert [a["path"] for a in accounts] == ["m/44'/60'/0'/0/0", "m/44'/501'/0'/0'", "m/44'/60'/0'/0/1"]
    second = accounts[2]["address"]

    sig = cli(d, "sign", "raw", "--sign-with", second, "--payload", "from the CLI")
    digest = keccak256(b"from the CLI")
    pub = PublicKey.from_signature_and_message(bytes.fromhex(sig["r"] + sig["s"] + sig["v"]), digest, hasher=None)
    assert address_from_public_key(pub.format(compressed=False)) == second

    bad = cli(d, "wallets", "accounts", wallet_id, "--add", "solana:x", check=False)
    assert (bad.returncode, bad.stderr.count("\n")) == (2, 1)
    refused = cli(d, "wallets", "delete", wallet_id, check=False)  # never exported: the flag is required
    assert refused.returncode == 1 and "deleteWithoutExport" in refused.stderr
    out = human(d, "wallets", "delete", wallet_id, "--without-export")
    assert out.stdout.strip() == f"deleted wallet {wallet_id}"
    gone = cli(d, "sign", "raw", "--sign-with", second, "--payload", "after", check=False)
    assert gone.returncode == 1

    key = cli(d, "keys", "create", "--name", f"k-{uuid.uuid4().hex[:6]}", "--curve", "secp256k1")
    key_id = key["privateKeyId"]
    assert human(d, "keys", "delete", key_id, "--without-export").stdout.strip() == f"deleted private key {key_id}"
    assert cli(d, "keys", "get", key_id, check=False).returncode == 1


def test_wallets_import_and_export_through_the_cli(d: Daemon, tmp_path: Path) -> None:
    mnemonic = " ".join(["abandon"] * 11 + ["about"])
    words = tmp_path / "words.txt"
    words.write_text("  " + mnemonic.replace(" ", "\n") + "\n")  # any whitespace, as people paste it
    name = f"imported-{uuid.uuid4().hex[:6]}"
    made = cli(d, "wallets", "import", "--name", name, "--mnemonic-file", str(words), "--account", "solana")
    assert made["addresses"] == ["HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk"]  # the published address
    signer = d.client().query("get_bundle_signer")["publicKey"]
    out = human(d, "wallets", "export", made["walletId"], "--signer-key", signer.upper())
    assert out.stdout.strip() == mnemonic
    wrong = human(d, "wallets", "export", made["walletId"], "--signer-key", "04" + "11" * 64, check=False)
    assert wrong.returncode == 2 and "refusing" in wrong.stderr
    # Exported, it may go without --without-export.
    assert human(d, "wallets", "delete", made["walletId"]).stdout.strip() == f"deleted wallet {made['walletId']}"
    missing = cli(d, "wallets", "import", "--name", "x", "--mnemonic-file", str(tmp_path / "nope"), check=False)
    assert (missing.returncode, missing.stderr.count("\n")) == (2, 1)


def on_terminal(d: Daemon, *args: str, answer: str) -> subprocess.CompletedProcess[str]:
    """Run `strongroom ...` (root's key) with a pseudo-terminal as stdin, on which `answer` is typed."""
    main, side = pty.openpty()
    common = ["--url", d.url, "--org", d.organization_id, "--key", str(d.key_prefix)]
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "strongroom", "--data-dir", str(d.data_dir), *common, *args],
            stdin=side, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
        )  # fmt: skip
        os.close(side)
        os.write(main, answer.encode() + b"\n")  # the terminal holds the line until the CLI reads it
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(main)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_approve_and_reject_show_the_activity_and_ask_first(d: Daemon, tmp_path: Path) -> None:
    """`activities approve|reject ID` print what `activities get` prints, ask on the terminal
    (not without one, unless --yes), then vote with the activity's fingerprint."""
    address = cli(d, "keys", "create", "--name", f"cli-{uuid.uuid4()}", "--curve", "secp256k1")["addresses"][0][
        "address"
    ]
    key_id = cli(d, "keys", "get", address)["privateKeyId"]
    policy = cli(
        d, "policies", "create", "--name", f"pair {key_id}", "--effect", "allow",
        "--condition", f"activity.action == 'SIGN' && private_key.id == '{key_id}'",
        "--consensus", "approvers.count() >= 2",
    )["policyId"]  # fmt: skip
    member_key = key_files(tmp_path, "member")
    member = cli(d, "users", "create", "--name", f"member-{uuid.uuid4().hex[:6]}", "--api-key-file", str(member_key))

    def park(nonce: int) -> dict[str, Any]:
        unsigned = cli(
            d, "tx", "eth-transfer", "--to", "0x" + "35" * 20, "--value", "0.25eth", "--nonce", str(nonce),
            "--chain-id", "11155111", "--max-fee", "30gwei", "--priority-fee", "1gwei",
        )["unsignedTransaction"]  # fmt: skip
        out = cli(d, "sign", "tx", "--sign-with", address, "--unsigned", unsigned, key=member_key, check=False)
        activity: dict[str, Any] = json.loads(out.stdout)["activity"]
        assert activity["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
        return activity

    def status(activity: dict[str, Any]) -> str:
        return str(cli(d, "activities", "get", activity["id"])["status"])

    first, second = park(1), park(2)
    view = human(d, "activities", "get", first["id"]).stdout

    # No terminal, no --yes: one line, exit 2, nothing sent.
    for verb in ("approve", "reject"):
        refused = human(d, "activities", verb, first["id"], check=False)
        assert refused.returncode == 2
        assert refused.stdout == ""
        assert refused.stderr == (
            f"error: stdin is not a terminal, so `activities {verb}` cannot ask: pass --yes to {verb} anyway\n"
        )
    assert status(first) == "ACTIVITY_STATUS_CONSENSUS_NEEDED"

    # On a terminal: the decoded view, then the question; "n" sends nothing.
    declined = on_terminal(d, "activities", "approve", first["id"], answer="n")
    assert declined.returncode == 2
    assert declined.stdout.startswith(view)  # exactly what `activities get` prints
    assert "Ethereum transaction (EIP-1559):" in declined.stdout
    assert "value: 0.25 ETH (250000000000000000 wei)" in declined.stdout
    assert f"pair {key_id}" in declined.stdout and "needs 2 approvals from any users, has 1" in declined.stdout
    assert f"requested by: {member['userName']} ({member['userId']}) with API key" in declined.stdout
    assert declined.stdout.endswith(f"approve activity {first['id']}? [y/N] ")
    assert declined.stderr == "error: not approved: nothing was sent\n"
    assert status(first) == "ACTIVITY_STATUS_CONSENSUS_NEEDED"

    approved = on_terminal(d, "activities", "approve", first["id"], answer="y")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.startswith(view)
    assert approved.stdout.endswith(f"? [y/N] approved: activity {first['id']} is now COMPLETED\n")
    assert status(first) == "ACTIVITY_STATUS_COMPLETED"
    signed = cli(d, "activities", "get", first["id"])["result"]["signTransactionResult"]["signedTransaction"]
    assert parse_signed_transaction(signed).tx.value == 25 * 10**16

    # Already decided: shown, not asked, nothing sent (exit 1).
    again = on_terminal(d, "activities", "reject", first["id"], answer="y")
    assert again.returncode == 1
    assert again.stdout.endswith(
        f"activity {first['id']} is COMPLETED: it is not waiting for votes, nothing was sent\n"
    )
    assert "[y/N]" not in again.stdout

    # By fingerprint, answered "yes": found among the activities waiting for votes, then rejected.
    rejected = on_terminal(d, "activities", "reject", "--fingerprint", second["fingerprint"], answer="yes")
    assert rejected.returncode == 0, rejected.stderr
    assert rejected.stdout.startswith(f"{second['id']}  CONSENSUS_NEEDED  SIGN_TRANSACTION_V2\n")
    assert "value: 0.25 ETH (250000000000000000 wei)" in rejected.stdout and "nonce: 2" in rejected.stdout
    assert rejected.stdout.endswith(f"rejected: activity {second['id']} is now REJECTED\n")
    assert status(second) == "ACTIVITY_STATUS_REJECTED"

    # --yes: no question, and --json keeps stdout one JSON document.
    third = park(3)
    shown = human(d, "activities", "approve", third["id"], "--yes")
    assert "Ethereum transaction (EIP-1559):" in shown.stdout and "[y/N]" not in shown.stdout
    assert shown.stdout.endswith(f"approved: activity {third['id']} is now COMPLETED\n")
    fourth = park(4)
    assert cli(d, "activities", "reject", fourth["id"], "--yes")["status"] == "ACTIVITY_STATUS_REJECTED"
    cli(d, "policies", "delete", policy)
    cli(d, "users", "delete", member["userId"])


def test_contracts_add_list_delete(d: Daemon, tmp_path: Path) -> None:
    abi_file = tmp_path / "erc20.json"
    artifact = {"abi": [{"type": "function", "name": "transfer", "inputs": [
        {"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}]}], "bytecode": "0x"}  # fmt: skip
    abi_file.write_text(json.dumps(artifact))
    address = "0x" + uuid.uuid4().hex[:8] * 5
    made = cli(d, "contracts", "add", "--address", address, "--file", str(abi_file), "--label", "usdc")
    interface_id = made["smartContractInterfaceId"]
    lines = human(d, "contracts", "list").stdout.splitlines()
    assert f"{interface_id}  ETHEREUM  {address}  usdc" in lines
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    refused = cli(d, "contracts", "add", "--address", address, "--file", str(bad), check=False)
    assert refused.returncode == 1 and "no functions" in refused.stderr
    out = human(d, "contracts", "delete", interface_id)
    assert out.stdout.strip() == f"deleted contract interface {interface_id}"
    assert interface_id not in {c["smartContractInterfaceId"] for c in cli(d, "contracts", "list")}
