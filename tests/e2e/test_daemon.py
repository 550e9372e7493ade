"""The daemon as a separate process on its own SoftHSM2 token, driven over real HTTP."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from coincurve import PublicKey
from nacl.signing import VerifyKey

from conftest import REPO, Daemon, start_daemon
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.client import ClientError
from strongroom.crypto.base58 import b58decode
from strongroom.crypto.keccak import keccak256

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def run_cli(*args: str, data_dir: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    return subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(data_dir), *args],
        stdin=subprocess.DEVNULL,  # never the terminal pytest may run in: commands that ask would wait
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=check,
    )


def sign_and_verify(d: Daemon) -> dict[str, str]:
    """Create one key of each curve, sign with each, verify independently; returns key ids by curve."""
    c = d.client()
    eth = c.create_private_key(f"eth-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    eth_key = eth["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]
    address = eth_key["addresses"][0]["address"]
    out = c.sign_raw_payload(address, "hello", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256")
    res = out["activity"]["result"]["signRawPayloadResult"]
    pub = PublicKey.from_signature_and_message(
        bytes.fromhex(res["r"] + res["s"] + res["v"]), keccak256(b"hello"), hasher=None
    )
    assert address_from_public_key(pub.format(compressed=False)) == address

    sol = c.create_private_key(f"sol-{uuid.uuid4()}", "CURVE_ED25519", ["ADDRESS_FORMAT_SOLANA"])
    sol_key = sol["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]
    sol_address = sol_key["addresses"][0]["address"]
    out = c.sign_raw_payload(sol_address, "68656c6c6f", "PAYLOAD_ENCODING_HEXADECIMAL", "HASH_FUNCTION_NOT_APPLICABLE")
    res = out["activity"]["result"]["signRawPayloadResult"]
    VerifyKey(b58decode(sol_address)).verify(b"hello", bytes.fromhex(res["r"] + res["s"]))
    return {"CURVE_SECP256K1": eth_key["privateKeyId"], "CURVE_ED25519": sol_key["privateKeyId"]}


def backends(data_dir: Path) -> dict[str, tuple[str, int]]:
    conn = sqlite3.connect(data_dir / "strongroom.sqlite3")
    try:
        rows = conn.execute("SELECT id, backend, length(wrapped) FROM private_keys").fetchall()
    finally:
        conn.close()
    return {r[0]: (r[1], r[2] or 0) for r in rows}


def readiness(d: Daemon) -> dict[str, object]:
    with urllib.request.urlopen(d.url + "/readyz") as resp:
        data: dict[str, object] = json.loads(resp.read())
        return data


def test_init_is_idempotent_and_writes_turnkey_key_files(tmp_path: Path) -> None:
    first = run_cli("init", data_dir=tmp_path / "d").stdout
    second = run_cli("init", data_dir=tmp_path / "d").stdout
    assert first == second
    info = json.loads(first)
    assert set(info) == {
        "organizationId",
        "userId",
        "apiPublicKey",
        "apiPublicKeyFile",
        "apiPrivateKeyFile",
        "auditKey",  # the audit checkpoint key, pinned outside the database
        "auditKeyFile",
    }
    assert Path(info["auditKeyFile"]).read_text().strip() == info["auditKey"]
    pub, priv = Path(info["apiPublicKeyFile"]), Path(info["apiPrivateKeyFile"])
    assert len(pub.read_text().strip()) == 66 and pub.read_text().strip() == info["apiPublicKey"]
    assert len(priv.read_text().strip()) == 64
    for p in (pub, priv):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
    db = (tmp_path / "d" / "strongroom.sqlite3").read_bytes()
    assert priv.read_text().strip().encode() not in db


def test_token_path_end_to_end(daemon: Daemon) -> None:
    ids = sign_and_verify(daemon)
    found = backends(daemon.data_dir)
    assert all(found[i] == ("token", 0) for i in ids.values())
    caps = readiness(daemon)["checks"]["token"]  # type: ignore[index]
    assert caps["secp256k1"] is True and caps["ed25519"] is True


def test_fallback_path_on_a_masked_token(fallback_daemon: Daemon) -> None:
    caps = readiness(fallback_daemon)["checks"]["token"]  # type: ignore[index]
    assert caps["secp256k1"] is False and caps["ed25519"] is False
    ids = sign_and_verify(fallback_daemon)
    found = backends(fallback_daemon.data_dir)
    for key_id in ids.values():
        backend, wrapped_len = found[key_id]
        assert backend == "software"
        assert wrapped_len == 12 + 32 + 16  # nonce + sealed 32-byte secret + GCM tag: nothing else stored


def test_keys_and_activities_survive_a_restart(tmp_path: Path) -> None:
    for mask in ((), ("CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA", "CKM_EC_EDWARDS_KEY_PAIR_GEN", "CKM_EDDSA")):
        data = tmp_path / ("masked" if mask else "plain")
        d = start_daemon(data, mask=mask)
        try:
            ids = sign_and_verify(d)
            activities = d.client().query("list_activities", paginationOptions={"limit": "100"})["activities"]
        finally:
            d.stop()
        d = start_daemon(data, mask=mask)
        try:
            c = d.client()
            after = c.query("list_activities", paginationOptions={"limit": "100"})["activities"]
            assert [a["id"] for a in after] == [a["id"] for a in activities]
            digest = hashlib.sha256(b"after restart").hexdigest()
            out = c.sign_raw_payload(
                ids["CURVE_SECP256K1"], digest, "PAYLOAD_ENCODING_HEXADECIMAL", "HASH_FUNCTION_NO_OP"
            )
            assert out["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED"
        finally:
            d.stop()


def test_cli_signs_and_reports_errors_with_exit_codes(daemon: Daemon, tmp_path: Path) -> None:
    common = ["--url", daemon.url, "--org", daemon.organization_id, "--key", str(daemon.key_prefix)]
    out = run_cli(*common, "keys", "create", "--name", "cli-eth", "--curve", "secp256k1", "--json", data_dir=tmp_path)
    address = json.loads(out.stdout)["addresses"][0]["address"]
    out = run_cli(*common, "sign", "raw", "--sign-with", address, "--payload", "hi", "--json", data_dir=tmp_path)
    assert json.loads(out.stdout)["status"] == "ACTIVITY_STATUS_COMPLETED"
    bad = run_cli(
        *common,
        "sign",
        "raw",
        "--sign-with",
        address,
        "--payload",
        "hi",
        "--hash",
        "not_applicable",
        data_dir=tmp_path,
        check=False,
    )
    assert bad.returncode == 1
    assert "400" in bad.stderr
    missing = run_cli(
        "--url",
        daemon.url,
        "--org",
        daemon.organization_id,
        "--key",
        str(tmp_path / "nope"),
        "whoami",
        data_dir=tmp_path,
        check=False,
    )
    assert missing.returncode == 2
    assert "API key file not found" in missing.stderr
    down = run_cli(
        "--url",
        "http://127.0.0.1:9",
        "--org",
        daemon.organization_id,
        "--key",
        str(daemon.key_prefix),
        "whoami",
        data_dir=tmp_path,
        check=False,
    )
    assert down.returncode == 3
    assert "daemon not reachable" in down.stderr


def test_daemon_logs_hold_no_secret(daemon: Daemon, fallback_daemon: Daemon) -> None:
    for d in (daemon, fallback_daemon):
        sign_and_verify(d)
        with pytest.raises(ClientError):
            d.client().sign_raw_payload("nope", "x", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256")
        logs = d.logs(wait_for="no private key or address")
        assert '"activity_id"' in logs  # the flows above were logged
        secrets = [
            (d.data_dir / "softhsm" / "user.pin").read_text().strip(),
            (d.data_dir / "softhsm" / "so.pin").read_text().strip(),
            Path(f"{d.key_prefix}.private").read_text().strip(),
        ]
        for s in secrets:
            assert s not in logs


def test_a_database_that_predates_notarisation_is_refused_until_the_operator_notarises_it(tmp_path: Path) -> None:
    data = tmp_path / "old"
    run_cli("init", data_dir=data)
    # What a database written before notarisation looks like: the rows, no notarised state.
    conn = sqlite3.connect(data / "strongroom.sqlite3")
    with conn:
        conn.execute("DELETE FROM org_state")
    conn.close()
    d = start_daemon(data, ready=False)
    try:
        ready = urllib.request.urlopen(d.url + "/readyz")
    except urllib.error.HTTPError as err:
        checks = json.loads(err.read())
        assert "migrate --notarise" in json.dumps(checks)
    else:  # pragma: no cover - the daemon must not be ready
        raise AssertionError(ready.read())
    with pytest.raises(ClientError, match="notaris"):
        d.client().create_private_key("k", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    d.stop()
    refused = run_cli("migrate", data_dir=data, check=False)
    assert refused.returncode != 0 and "--notarise" in refused.stderr
    done = run_cli("migrate", "--notarise", "--json", data_dir=data)
    assert json.loads(done.stdout)["notarised"] == [d.organization_id]
    d = start_daemon(data)
    try:
        d.client().create_private_key("k", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    finally:
        d.stop()
