"""The README's quickstart, extracted and run verbatim against a freshly served daemon."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from coincurve import PublicKey

from conftest import REPO, start_daemon
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.chains.ethereum.tx import parse_signed_transaction

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
