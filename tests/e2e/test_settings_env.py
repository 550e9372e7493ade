"""Every setting can come from the environment, the token's included (a container has no TOML to
edit), and the log level is a setting: checked on a real daemon and a real token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from test_daemon import run_cli

from conftest import REPO, start_daemon
from strongroom.config import load_settings
from strongroom.errors import ConfigError

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def _serve(data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    return subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(data_dir), "serve", "--port", "0"],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_token_settings_come_from_the_environment(tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    run_cli("init", data_dir=data_dir)
    label = load_settings(data_dir).token.label
    # The environment wins over the file: a label no token has is refused by name at start.
    out = _serve(data_dir, {"STRONGROOM_TOKEN_LABEL": "no-such-token"})
    assert out.returncode == 2, out.stderr
    assert "no-such-token" in out.stderr
    assert "Traceback" not in out.stderr
    # ... and a PIN variable named from the environment is where the PIN is read.
    settings = load_settings(data_dir, {"STRONGROOM_TOKEN_PIN_ENV": "MY_PIN", "STRONGROOM_TOKEN_THREADS": "3"})
    assert (settings.token.label, settings.token.pin_env, settings.token.threads) == (label, "MY_PIN", 3)
    assert settings.token.read_pin({"MY_PIN": "1234"}) == "1234"
    with pytest.raises(ConfigError, match=r"token\.threads"):
        load_settings(data_dir, {"STRONGROOM_TOKEN_THREADS": "many"})


def test_log_level_is_a_setting(tmp_path: Path) -> None:
    run_cli("init", data_dir=tmp_path / "bad")
    with pytest.raises(ConfigError, match="log_level"):
        load_settings(tmp_path / "bad", {"STRONGROOM_LOG_LEVEL": "chatty"})
    quiet = start_daemon(tmp_path / "quiet", env={"STRONGROOM_LOG_LEVEL": "warning"})
    try:
        with urllib.request.urlopen(quiet.url + "/healthz", timeout=10) as resp:
            assert resp.status == 200
        quiet.client().whoami()
        events = [json.loads(line) for line in quiet.logs().splitlines() if line.startswith("{")]
        assert events == [] or all(e.get("level") in ("warning", "error", "critical") for e in events), events
        assert not any(e.get("event") in ("listening", "request") for e in events)
    finally:
        quiet.stop()


def test_the_ethereum_upstream_is_off_by_default_and_a_checked_url(tmp_path: Path) -> None:
    run_cli("init", data_dir=tmp_path / "d")
    settings = load_settings(tmp_path / "d", {})
    assert (settings.eth_upstream_url, settings.eth_rpc_max_batch) == (None, 20)
    env = {"STRONGROOM_ETH_UPSTREAM_URL": "http://127.0.0.1:8545", "STRONGROOM_ETH_RPC_MAX_BATCH": "5"}
    settings = load_settings(tmp_path / "d", env)
    assert (settings.eth_upstream_url, settings.eth_rpc_max_batch) == ("http://127.0.0.1:8545", 5)
    for bad in ("127.0.0.1:8545", "ws://127.0.0.1:8546", "http://"):
        with pytest.raises(ConfigError, match="eth_upstream_url"):
            load_settings(tmp_path / "d", {"STRONGROOM_ETH_UPSTREAM_URL": bad})
