"""The harness really hides masked mechanisms from a real SoftHSM2 token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.softhsm import create_token, load_token
from strongroom.softhsm.harness import MASK_ECDSA, MASK_EDDSA

pytestmark = pytest.mark.softhsm

PROBE = """
import json, sys, pkcs11
from pkcs11 import Mechanism as M
lib = pkcs11.lib(sys.argv[1])
tok = lib.get_token(token_label=sys.argv[2])
offered = set(tok.slot.get_mechanisms())
wanted = (M.EC_KEY_PAIR_GEN, M.ECDSA, M.EC_EDWARDS_KEY_PAIR_GEN, M.EDDSA, M.AES_GCM)
print(json.dumps(sorted(m.name for m in wanted if m in offered)))
"""


def offered(token_dir: Path) -> list[str]:
    token = load_token(token_dir)
    assert token is not None
    env = {**os.environ, **token.env()}  # its own process: SoftHSM reads its config once per process
    out = subprocess.run(
        [sys.executable, "-c", PROBE, token.module, token.label], env=env, check=True, capture_output=True, text=True
    )
    result: list[str] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize(
    ("mask", "expected"),
    [
        ((), ["AES_GCM", "ECDSA", "EC_EDWARDS_KEY_PAIR_GEN", "EC_KEY_PAIR_GEN", "EDDSA"]),
        (MASK_EDDSA, ["AES_GCM", "ECDSA", "EC_KEY_PAIR_GEN"]),
        (MASK_ECDSA, ["AES_GCM", "EC_EDWARDS_KEY_PAIR_GEN", "EDDSA"]),
        (MASK_ECDSA + MASK_EDDSA, ["AES_GCM"]),
    ],
)
def test_masked_mechanisms_are_gone(tmp_path: Path, mask: tuple[str, ...], expected: list[str]) -> None:
    create_token(tmp_path / "t", "masked", masked=mask)
    assert offered(tmp_path / "t") == expected


def test_create_token_is_idempotent(tmp_path: Path) -> None:
    a = create_token(tmp_path / "t", "same")
    pin = a.read_pin()
    b = create_token(tmp_path / "t", "same")
    assert b == a
    assert b.read_pin() == pin
    assert oct((tmp_path / "t" / "user.pin").stat().st_mode & 0o777) == "0o600"
