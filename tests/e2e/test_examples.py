"""Every example in examples/ runs against a real daemon and verifies its own output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Daemon, node_project

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

EXAMPLES = REPO / "examples"


def example_env(d: Daemon) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    env.update(
        STRONGROOM_URL=d.url,
        STRONGROOM_ORGANIZATION_ID=d.organization_id,
        STRONGROOM_API_KEY=str(d.key_prefix),
    )
    return env


@pytest.mark.parametrize(
    "script", ["python-eip1559/sign_eip1559.py", "solana-ed25519/sign_message.py", "erc20-cap/erc20_cap.py"]
)
def test_python_examples(daemon: Daemon, script: str) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env=example_env(daemon),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "OK:" in out.stdout


def test_node_viem_example(daemon: Daemon) -> None:
    here = EXAMPLES / "node-viem"
    node = node_project(here)
    out = subprocess.run(
        [node, "sign.mjs"], cwd=here, env=example_env(daemon), capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr + out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["messageOk"] is True
    assert result["sender"] == result["address"]
    assert Path(here / "package.json").is_file()


def test_node_solana_example(daemon: Daemon) -> None:
    here = EXAMPLES / "node-solana"
    node = node_project(here)
    out = subprocess.run(
        [node, "transfer.mjs"],
        cwd=here,
        env=example_env(daemon),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["verified"] is True
    assert len(bytes.fromhex(result["signature"])) == 64
