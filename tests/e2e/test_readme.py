"""The README's quickstart and walk-through, extracted and run verbatim against freshly served daemons
(the walk-through's dashboard steps in Chromium, as in test_dashboard.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from coincurve import PublicKey
from test_dashboard import CHROMIUM, FLAGS, browser_or_fail

from conftest import REPO, free_port, start_daemon
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.chains.ethereum.tx import parse_signed_transaction
from strongroom.client import ApiKeyStamper, Client
from strongroom.crypto.keccak import keccak256

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def quickstart_block() -> str:
    text = (REPO / "README.md").read_text()
    match = re.search(r"<!-- quickstart:.*?-->\s*```sh\n(.*?)```", text, re.S)
    assert match, "the README lost its quickstart block"
    return match.group(1)


def test_readme_quickstart_signs_a_transaction(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "var")
    try:
        script = "set -euo pipefail\n" + quickstart_block() + 'echo "ADDRESS=$ADDRESS"\n'
        env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
        env["STRONGROOM_DATA_DIR"] = str(d.data_dir)  # what `make serve` means by ./var
        out = subprocess.run(
            ["bash", "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        signed, address = lines[-2], lines[-1].removeprefix("ADDRESS=")
        assert signed.startswith("0x02")
        tx = parse_signed_transaction(signed)
        assert tx.tx.chain_id == 11155111
        assert tx.tx.to == "0x000000000000000000000000000000000000dEaD"
        assert tx.tx.value == 10**15
        sender = PublicKey.from_signature_and_message(tx.signature.to_bytes65(), tx.tx.signing_hash(), hasher=None)
        assert address_from_public_key(sender.format(compressed=False)) == address
    finally:
        d.stop()


# -- the walk-through: serve on another port, invite bob, a 2-of-2 policy, an approved transfer ----------
README_PORT = "PORT=8090"  # the one thing the test changes: the documented variable, to a free port


def walkthrough_blocks() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    blocks = dict(re.findall(r"<!-- walkthrough: ([a-z ]+) -->\s*```sh\n(.*?)```", text, re.S))
    assert list(blocks) == ["serve", "first signature", "invite", "policy", "transfer", "approve"], list(blocks)
    assert blocks["serve"].count(README_PORT) == 1, blocks["serve"]
    return blocks


class Shell:
    """One bash session, like the reader's second terminal: each block is sourced in it (stdin from
    /dev/null), so variables carry over from block to block; `set -euo pipefail` ends it at the first
    failing command."""

    MARK = "__walkthrough_block_done__"

    def __init__(self, env: dict[str, str], scratch: Path) -> None:
        self.scratch = scratch
        self.stderr = (scratch / "shell.stderr").open("w+")
        self.proc = subprocess.Popen(
            ["bash"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, cwd=REPO, env=env
        )
        self.count = 0
        self.send("set -euo pipefail")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def run(self, block: str) -> str:
        self.count += 1
        path = self.scratch / f"block{self.count}.sh"
        path.write_text(block)
        self.send(f"source {path} </dev/null")
        self.send(f"echo {self.MARK}")
        assert self.proc.stdout is not None
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                self.stderr.seek(0)
                raise AssertionError(f"the README block failed:\n{block}\n--- stderr ---\n{self.stderr.read()}")
            if line.strip() == self.MARK:
                return "".join(lines)
            lines.append(line)

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        self.proc.wait(timeout=30)
        self.stderr.close()


def wait_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, f"make serve exited:\n{log.read_text()}"
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"make serve never became ready:\n{log.read_text()}"
        time.sleep(0.2)


def wait_for(what: str, check: Any) -> Any:
    deadline = time.monotonic() + 30
    while not (found := check()):
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.2)
    return found


def test_readme_walkthrough(tmp_path: Path) -> None:
    sync_playwright = browser_or_fail()
    blocks = walkthrough_blocks()
    port = free_port()
    data = tmp_path / "var"
    (tmp_path / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    # What the reader's ./var and ~ are: make serve reads DATA, the CLI STRONGROOM_DATA_DIR.
    env.update(DATA=str(data), STRONGROOM_DATA_DIR=str(data), HOME=str(tmp_path / "home"))
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + blocks["serve"].replace(README_PORT, f"PORT={port}")],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and the daemon it execs: stopped together below
        )
    shell = Shell(env, tmp_path)
    try:
        wait_ready(f"http://127.0.0.1:{port}", server, log)
        profile = json.loads((data / "client.json").read_text())
        assert profile["baseUrl"] == f"http://127.0.0.1:{port}"
        root = Client(profile["baseUrl"], ApiKeyStamper.from_files(data / "keys" / "root"), profile["organizationId"])

        signed_hello = shell.run(blocks["first signature"])
        address = shell.run('echo "$ADDRESS"').strip()
        rsv = dict(line.split(": ", 1) for line in signed_hello.strip().splitlines())
        signature = bytes.fromhex(rsv["r"] + rsv["s"] + rsv["v"][-2:])
        signer = PublicKey.from_signature_and_message(signature, keccak256(b"hello"), hasher=None)
        assert address_from_public_key(signer.format(compressed=False)) == address, signed_hello

        invite_out = shell.run(blocks["invite"])
        origin = f"http://localhost:{port}"
        (link,) = [w for w in invite_out.split() if w.startswith("http")]
        assert link.startswith(f"{origin}/dashboard/#invite/"), invite_out
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS
            )
            context.set_default_timeout(15_000)
            page = context.pages[0] if context.pages else context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("WebAuthn.enable")
            options = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True}
            options |= {"hasUserVerification": True, "isUserVerified": True}
            cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
            try:
                # Opened from an origin passkeys do not work on, the page says so.
                page.goto(link.replace(origin, f"http://127.0.0.1:{port}"))
                page.wait_for_selector(f"#origin-warning:has-text('{origin}')")
                # Bob opens his link: a passkey, then logged in (the link is spent).
                page.goto(link)
                page.wait_for_selector("#invite-email")
                assert page.query_selector("#origin-warning") is None
                page.fill("#invite-email", "bob@example.com")
                page.click("#invite-button")
                page.wait_for_selector("main[data-page='overview']")
                assert "#invite" not in page.url
                bob = {u["userName"]: u for u in root.list_users()["users"]}["bob"]
                assert len(bob["authenticators"]) == 1 and bob["apiKeys"] == [], bob

                shell.run(blocks["policy"])
                shell.run(blocks["transfer"])
                activity_id = shell.run('echo "$ACTIVITY"').strip()
                parked = root.get_activity(activity_id)["activity"]
                assert parked["type"] == "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
                assert parked["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED", parked

                # Bob approves in the dashboard; the activity still waits for alice.
                page.goto(f"{origin}/dashboard/#activities?status=ACTIVITY_STATUS_CONSENSUS_NEEDED")
                page.click(f"button[aria-label='Approve activity {activity_id}']")

                def bob_voted() -> bool:
                    votes = root.get_activity(activity_id)["activity"]["votes"]
                    return any(v["userId"] == bob["userId"] for v in votes)

                wait_for("bob's vote", bob_voted)
                assert root.get_activity(activity_id)["activity"]["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED"
            except Exception as err:
                raise AssertionError(f"{err}\n--- page text ---\n{page.inner_text('body')}") from err
            finally:
                context.close()

        approved = shell.run(blocks["approve"])
        assert f"activity {activity_id} is now COMPLETED" in approved, approved
        done = root.get_activity(activity_id)["activity"]
        assert done["status"] == "ACTIVITY_STATUS_COMPLETED", done
        signed = done["result"]["signTransactionResult"]["signedTransaction"]
        assert signed in approved  # `activities get` shows it
        tx = parse_signed_transaction(signed)
        assert tx.tx.to == "0x000000000000000000000000000000000000dEaD" and tx.tx.value == 10**15
        sender = PublicKey.from_signature_and_message(tx.signature.to_bytes65(), tx.tx.signing_hash(), hasher=None)
        assert address_from_public_key(sender.format(compressed=False)) == address
    finally:
        shell.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
