"""deploy/container-entrypoint.sh, run on this machine as the image runs it: the first start makes a
SoftHSM2 token with the PIN from the environment or from a secret file, initialises and serves;
the daemon signs; a later start serves the same organization without initialising again; no PIN
is a one-line refusal. (The image itself: tests/unit/test_containerfile.py and the README.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_daemon import sign_and_verify

from conftest import Daemon, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

ENTRYPOINT = Path(__file__).resolve().parents[2] / "deploy" / "container-entrypoint.sh"


def environment(data_dir: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF" and not k.startswith("STRONGROOM_")}
    return {
        **base,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}",
        "STRONGROOM_DATA_DIR": str(data_dir),
        "STRONGROOM_TOKEN_PIN_FILE": str(data_dir.parent / "no-such-secret"),
        "STRONGROOM_HOST": "127.0.0.1",
        "STRONGROOM_RATE_LIMIT_PER_SECOND": "10000",
        **extra,
    }


@contextmanager
def container(data_dir: Path, **extra: str) -> Iterator[Daemon]:
    port = free_port()
    log_path = data_dir.parent / f"entrypoint-{port}.log"
    log = log_path.open("wb")
    env = environment(data_dir, STRONGROOM_PORT=str(port), **extra)
    proc = subprocess.Popen([str(ENTRYPOINT)], stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            log.close()
            raise RuntimeError(f"the entrypoint exited ({proc.returncode}):\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    break
        except (OSError, urllib.error.HTTPError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"not ready:\n{log_path.read_text()}")
        time.sleep(0.2)
    init = json.loads((data_dir / "init.json").read_text())
    d = Daemon(url, data_dir, init["organizationId"], init["userId"], data_dir / "keys" / "root", proc, log_path, log)
    try:
        yield d
    finally:
        d.stop()


def test_first_start_makes_the_token_and_later_starts_serve_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with container(data_dir, STRONGROOM_TOKEN_PIN="env-pin-1234") as d:
        sign_and_verify(d)
        first_org = d.organization_id
    settings = (data_dir / "strongroom.toml").read_text()
    assert "env-pin-1234" not in settings  # the config names where the PIN is, never the PIN
    assert not any("env-pin-1234" in p.read_text(errors="ignore") for p in data_dir.glob("*.json"))
    mode = (data_dir / "strongroom.toml").stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)
    # A later start: the same token and organization, nothing initialised again.
    with container(data_dir, STRONGROOM_TOKEN_PIN="env-pin-1234") as d:
        assert d.organization_id == first_org
        assert d.client().whoami()["organizationId"] == first_org
    # ... with the wrong PIN, the token refuses and the daemon does not start.
    with pytest.raises(RuntimeError, match="exited"), container(data_dir, STRONGROOM_TOKEN_PIN="wrong-pin-0000"):
        pass


def test_the_pin_can_be_a_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "strongroom_token_pin"
    secret.write_text("file-pin-5678\n")
    data_dir = tmp_path / "data"
    with container(data_dir, STRONGROOM_TOKEN_PIN_FILE=str(secret)) as d:
        sign_and_verify(d)


def test_no_pin_is_one_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    out = subprocess.run(
        [str(ENTRYPOINT)], env=environment(data_dir), capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"strongroom: no token PIN: set STRONGROOM_TOKEN_PIN or mount it as the secret {tmp_path / 'no-such-secret'}"
    ]
    assert not (data_dir / "strongroom.toml").exists()
