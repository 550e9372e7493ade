"""Shared fixtures: a throwaway SoftHSM2 token per test session, and daemons to talk to.

The session token is created before anything loads the PKCS#11 module in this process, and
SOFTHSM2_CONF points at it for the whole session. Tests that need a token with masked
mechanisms run a daemon in a subprocess with its own token (`spawn_daemon`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from strongroom.client import ApiKeyStamper, Client
from strongroom.softhsm import SoftHsmToken, create_token

REPO = Path(__file__).resolve().parents[1]

# eth-account imports py_ecc, which raises the recursion limit to 100000 on first import. Test
# modules import eth-account at collection (tests/e2e/test_eth_*.py), which would leak that limit
# into every test of the session: import it once here, first, and put the limit back.
_recursion_limit = sys.getrecursionlimit()
with contextlib.suppress(ImportError):  # a dev extra: the tests that need it fail on their own
    import eth_account  # noqa: F401
sys.setrecursionlimit(_recursion_limit)


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    token = create_token(tmp_path_factory.mktemp("softhsm") / "token", "strongroom-test")
    os.environ.update(token.env())
    return token


@pytest.fixture(scope="session")
def token(softhsm_token: SoftHsmToken) -> Iterator[object]:
    from strongroom.hsm import Token

    t = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
    yield t
    t.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Daemon:
    url: str
    data_dir: Path
    organization_id: str
    user_id: str
    key_prefix: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def client(self) -> Client:
        return Client(self.url, ApiKeyStamper.from_files(self.key_prefix), self.organization_id)

    def logs(self, wait_for: str = "", timeout: float = 5.0) -> str:
        """The daemon's log so far, complete lines only (it is being appended to: a line may be half
        written); it flushes every 0.2 s, so optionally wait for `wait_for`."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_path.read_text()
            text = text[: text.rfind("\n") + 1]
            if wait_for in text or time.monotonic() > deadline:
                return text
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def sign_body(org: str, key_id: str, payload: str) -> bytes:
    """A SIGN_RAW_PAYLOAD_V2 envelope for `payload` (UTF-8 text, KECCAK256), stamped-time now."""
    return json.dumps(
        {
            "type": "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
            "timestampMs": str(int(time.time() * 1000)),
            "organizationId": org,
            "parameters": {
                "signWith": key_id,
                "payload": payload,
                "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                "hashFunction": "HASH_FUNCTION_KECCAK256",
            },
        }
    ).encode()


def api_user(root: Client, name: str) -> Client:
    """A new non-root user of `root`'s organization with a P-256 API key, as a client (root users
    are not subject to policies)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    key = {"apiKeyName": name, "publicKey": public.hex(), "curveType": "API_KEY_CURVE_P256"}
    user = {"userName": name, "apiKeys": [key], "authenticators": [], "oauthProviders": [], "userTags": []}
    root.submit("create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", {"users": [user]})
    stamper = ApiKeyStamper(public.hex(), f"{private.private_numbers().private_value:064x}", "p256")
    return Client(root.base_url, stamper, root.organization_id)


def allow_from_deny_to(root: Client, user: Client, address: str, blocked: str) -> None:
    """Two policies: `user` may sign Ethereum transactions from `address`, never to `blocked`."""
    root.create_policy(
        f"alice signs with {address}",
        "EFFECT_ALLOW",
        f"activity.resource == 'PRIVATE_KEY' && eth.tx.from == '{address.lower()}'",
        f"approvers.any(user, user.id == '{user.whoami()['userId']}')",
    )
    root.create_policy(
        f"never to dead from {address}",
        "EFFECT_DENY",
        f"eth.tx.from == '{address.lower()}' && eth.tx.to == '{blocked.lower()}'",
    )


def start_daemon(
    data_dir: Path,
    *,
    mask: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    config: str = "rate_limit_per_second = 10000\n",
    ready: bool = True,
    clock_offset_file: Path | None = None,
) -> Daemon:
    """`strongroom init` + `strongroom serve` in a subprocess, on a free port; waits until ready.

    `config` is appended to the data dir's strongroom.toml on first init (tests raise the
    per-IP rate limit, since every test client shares 127.0.0.1; the limit has its own tests).
    `ready=False` also accepts a daemon that answers /readyz with 503 (it refuses to sign).
    `clock_offset_file`: serve on a clock the test moves (`tests/e2e/moved_clock.py`).
    """
    base_env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    base_env.update(env or {})
    cmd = [sys.executable, "-m", "strongroom", "--data-dir", str(data_dir)]
    init_cmd = [*cmd, "init"] + [a for m in mask for a in ("--softhsm-mask", m)]
    out = subprocess.run(init_cmd, check=True, capture_output=True, env=base_env, cwd=REPO)
    info = json.loads(out.stdout)
    marker = data_dir / ".test-config-applied"
    if config and not marker.exists():
        cfg = data_dir / "strongroom.toml"
        cfg.write_text(config + cfg.read_text())  # top-level keys go before the [token] table
        marker.touch()
    port = free_port()
    log_path = data_dir / "daemon.log"
    log = log_path.open("wb")
    serve = [*cmd, "serve", "--port", str(port)]
    if clock_offset_file is not None:
        script = REPO / "tests" / "e2e" / "moved_clock.py"
        serve = [sys.executable, str(script), str(data_dir), str(port), str(clock_offset_file)]
    proc = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT, env=base_env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"daemon exited early:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    break
        except urllib.error.HTTPError as err:
            if not ready and err.code == 503:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log.close()
            raise RuntimeError(f"daemon did not become ready:\n{log_path.read_text()}")
        time.sleep(0.1)
    return Daemon(
        url,
        data_dir,
        info["organizationId"],
        info["userId"],
        Path(info["apiPrivateKeyFile"]).with_suffix(""),
        proc,
        log_path,
        log,
    )


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A real daemon process on the embedded default (its own SoftHSM2 token + SQLite)."""
    d = start_daemon(tmp_path_factory.mktemp("daemon"))
    yield d
    d.stop()


@pytest.fixture(scope="session")
def fallback_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon whose token has no ECDSA and no EdDSA: every key takes the software fallback."""
    d = start_daemon(
        tmp_path_factory.mktemp("fallback"),
        mask=("CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA", "CKM_EC_EDWARDS_KEY_PAIR_GEN", "CKM_EDDSA"),
    )
    yield d
    d.stop()


# -- Node.js interop helpers -------------------------------------------------------------------------
def node_project(directory: Path) -> str:
    """`node`'s path, with `directory`'s pinned npm packages installed (`npm ci` when stale).

    CI runs on a fresh machine, so the tests install the packages themselves. Without node and
    npm the calling test FAILS, unless STRONGROOM_SKIP_INTEROP=1 says to skip on purpose.
    """
    if os.environ.get("STRONGROOM_SKIP_INTEROP") == "1":
        pytest.skip("STRONGROOM_SKIP_INTEROP=1")
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if node_bin is None or npm_bin is None:
        missing = " and ".join(name for name, path in (("node", node_bin), ("npm", npm_bin)) if path is None)
        pytest.fail(
            f"interop tests need Node.js: {missing} not found on PATH. Install Node >= 18 with npm, "
            "or set STRONGROOM_SKIP_INTEROP=1 to skip them explicitly.",
            pytrace=False,
        )
    marker = directory / "node_modules" / ".package-lock.json"  # written by every npm install
    if not marker.is_file() or marker.stat().st_mtime < (directory / "package-lock.json").stat().st_mtime:
        proc = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(
                f"`npm ci` in {directory} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}", pytrace=False
            )
    return node_bin


def run_node_script(
    node: str, script: Path, d: Daemon, label: str = "daemon", extra_env: dict[str, str] | None = None
) -> Any:
    """Run a Node script against daemon `d` (env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY,
    API_PRIVATE_KEY, and `extra_env`) and return the one JSON line it prints; fail with its output otherwise."""
    env = {
        **os.environ,
        **(extra_env or {}),
        "BASE_URL": d.url,
        "ORGANIZATION_ID": d.organization_id,
        "API_PUBLIC_KEY": Path(f"{d.key_prefix}.public").read_text().strip(),
        "API_PRIVATE_KEY": Path(f"{d.key_prefix}.private").read_text().strip(),
    }
    proc = subprocess.run(
        [node, str(script)], cwd=script.parent, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{script.name} failed against {label} (exit {proc.returncode}):\n"
            f"--- stderr ---\n{proc.stderr}\n--- stdout ---\n{proc.stdout}\n"
            f"--- daemon log (tail) ---\n{d.logs()[-4000:]}",
            pytrace=False,
        )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one JSON line on stdout, got:\n{proc.stdout}"
    return json.loads(lines[0])
