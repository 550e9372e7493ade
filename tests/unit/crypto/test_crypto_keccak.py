"""Keccak-256 (Ethereum flavour)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from strongroom.crypto.keccak import keccak256

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def test_known_answers() -> None:
    for vector in _load("keccak256.json")["vectors"]:
        assert keccak256(bytes.fromhex(vector["input"])).hex() == vector["digest"]


def test_empty_digest() -> None:
    expected = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"").hex() == expected


def test_is_not_nist_sha3() -> None:
    assert keccak256(b"") != hashlib.sha3_256(b"").digest()
    assert len(keccak256(b"abc")) == 32
