"""Interop: Turnkey's own `@turnkey/crypto` 2.13.2 opens Strongroom's export bundles and encrypts to
its import bundles; Strongroom opens what it encrypted. Pure crypto: no daemon.

(a) `generateP256KeyPair` makes the client's target key in Node; Python builds export bundles for a
    raw private key, a Solana (Ed25519) seed and a mnemonic; `decryptExportBundle` (with
    `dangerouslyOverrideSignerPublicKey` set to our signer) recovers each exactly, and refuses the
    bundle without the override (it pins Turnkey's production key) or for another organization.
(b) Python signs an import bundle for a fresh target key; `encryptPrivateKeyToBundle` (HEXADECIMAL,
    with and without `0x`, and SOLANA) and `encryptWalletToBundle` encrypt to it; Python opens each
    and gets the exact key or mnemonic back.

The pinned npm packages are installed here with `npm ci` when `node_modules` is missing or older
than `package-lock.json` (`node_project` in tests/conftest.py).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from conftest import node_project
from strongroom.crypto import bundles, ed25519, hpke
from strongroom.crypto.base58 import b58encode

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "bundles.mjs"
ORG = "4d2c6a8e-1f0b-4c3d-9e8a-7b6c5d4e3f21"
USER = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
MNEMONIC = "leaf lady until indicate praise final route toast cake minimum insect unknown"
IMPORT_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
RAW_KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
IMPORT_KEY = bytes.fromhex("1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727")


def _node(node: str, command: str, job: dict[str, Any] | None = None) -> Any:
    proc = subprocess.run(
        [node, str(SCRIPT), command],
        cwd=HERE,
        input=json.dumps(job) if job is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"bundles.mjs {command} failed (exit {proc.returncode}):\n{proc.stderr}\n{proc.stdout}", pytrace=False
        )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line, got:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def node() -> str:
    return node_project(HERE)


@pytest.fixture(scope="module")
def signer() -> bundles.BundleSigner:
    key = ec.generate_private_key(ec.SECP256R1())
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return bundles.BundleSigner(point.hex(), lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))


@pytest.fixture(scope="module")
def solana_seed() -> bytearray:
    return ed25519.generate_seed()


@pytest.fixture(scope="module")
def import_target() -> tuple[bytearray, bytes]:
    return hpke.generate_key_pair()


@pytest.fixture(scope="module")
def out(node: str, signer: bundles.BundleSigner, solana_seed: bytearray, import_target: tuple[bytearray, bytes]) -> Any:
    client = _node(node, "keygen")
    target = client["publicKeyUncompressed"]
    assert len(target) == 130 and target.startswith("04")
    solana_pub = ed25519.public_key_from_seed(solana_seed)
    job = {
        "embeddedKey": client["privateKey"],
        "organizationId": ORG,
        "userId": USER,
        "signerPublicKey": signer.public_key,
        "exports": {
            "hex": bundles.build_export_bundle(RAW_KEY, target, ORG, signer),
            "solana": bundles.build_export_bundle(solana_seed, target, ORG, signer),
            "mnemonic": bundles.build_export_bundle(MNEMONIC.encode("utf-8"), target, ORG, signer),
        },
        "importBundle": bundles.build_import_bundle(import_target[1], ORG, USER, signer),
        "importKeys": {"hex": IMPORT_KEY.hex(), "solana": b58encode(bytes(solana_seed) + solana_pub)},
        "importMnemonic": IMPORT_MNEMONIC,
    }
    return _node(node, "run", job)


def test_decrypt_export_bundle_recovers_a_raw_private_key(out: Any) -> None:
    assert out["exportHex"] == {"ok": RAW_KEY.hex()}


def test_decrypt_export_bundle_recovers_a_solana_key(out: Any, solana_seed: bytearray) -> None:
    expected = b58encode(bytes(solana_seed) + ed25519.public_key_from_seed(solana_seed))
    assert out["exportSolana"] == {"ok": expected}


def test_decrypt_export_bundle_recovers_a_mnemonic(out: Any) -> None:
    assert out["exportMnemonic"] == {"ok": MNEMONIC}


def test_decrypt_export_bundle_refuses_without_the_signer_override_or_for_another_org(out: Any) -> None:
    assert "expected signer key" in out["exportPinnedToProduction"]["error"]
    assert "organization id does not match" in out["exportWrongOrganization"]["error"]


def test_encrypt_private_key_to_bundle_opens_here(out: Any, import_target: tuple[bytearray, bytes]) -> None:
    sk, _ = import_target
    for name in ("importHex", "importHex0x"):
        encrypted = out[name]["ok"]
        assert set(json.loads(encrypted)) == {"encappedPublic", "ciphertext"}
        assert bytes(bundles.open_import_bundle(encrypted, sk)) == IMPORT_KEY


def test_solana_import_carries_the_32_byte_seed(
    out: Any, import_target: tuple[bytearray, bytes], solana_seed: bytearray
) -> None:
    assert bytes(bundles.open_import_bundle(out["importSolana"]["ok"], import_target[0])) == bytes(solana_seed)


def test_encrypt_wallet_to_bundle_opens_here(out: Any, import_target: tuple[bytearray, bytes]) -> None:
    plaintext = bundles.open_import_bundle(out["importWallet"]["ok"], import_target[0])
    assert bundles.split_wallet_plaintext(plaintext) == (IMPORT_MNEMONIC, None)


def test_import_bundle_checks_user_and_signer(out: Any) -> None:
    assert "user id does not match" in out["importWrongUser"]["error"]
    assert "expected signer key" in out["importPinnedToProduction"]["error"]


def test_an_import_bundle_encrypted_to_one_target_does_not_open_with_another(out: Any) -> None:
    other, _ = hpke.generate_key_pair()
    with pytest.raises(bundles.BundleError, match="does not decrypt"):
        bundles.open_import_bundle(out["importWallet"]["ok"], other)
