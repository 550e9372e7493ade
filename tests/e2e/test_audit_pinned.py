"""The audit log proves itself against a key pinned outside the database (real daemon, real CLI).

The attack of the issue: with write access to the database, rewrite the tail of the log, re-link
the chain and sign a new checkpoint with a key of one's own, storing that key in the row.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_daemon import run_cli

from conftest import REPO, Daemon, free_port, sign_body, start_daemon
from store.pg_cluster import PgCluster
from strongroom.crypto import encoding, p256
from strongroom.store import audit
from strongroom.store.postgres import copy_from_sqlite

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def sign_some(d: Daemon, n: int = 3) -> str:
    c = d.client()
    key = c.create_private_key(f"k-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    key_id = key["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    for i in range(n):
        status, out = c.post_raw(
            "/public/v1/submit/sign_raw_payload", sign_body(d.organization_id, key_id, f"payload {i}")
        )
        assert status == 200, out
    return str(key_id)


def resign(conn: Any, ph: str, from_seq: int) -> int:
    """The attack: edit entry `from_seq`, re-link every later entry, drop the checkpoints that no
    longer match and sign the new head with a fresh key stored in the row. Returns the head."""
    rows = conn.execute("SELECT seq, body, hash FROM audit_log ORDER BY seq").fetchall()
    prev = audit.GENESIS
    update = f"UPDATE audit_log SET body = {ph}, prev_hash = {ph}, hash = {ph} WHERE seq = {ph}"
    for seq, original, stored in rows:
        if seq < from_seq:
            prev = stored
            continue
        body = original
        if seq == from_seq:
            fields = json.loads(original)
            fields["tampered"] = True
            body = audit.canonical(fields).decode()
        h = audit.entry_hash(prev, seq, body.encode())
        conn.execute(update, (body, prev, h, seq))
        prev = h
    head = rows[-1][0]
    conn.execute(f"DELETE FROM audit_checkpoints WHERE seq >= {ph}", (from_seq,))
    private_hex, public_hex = p256.generate_private_key()
    at_ms = int(time.time() * 1000)
    r, s = encoding.der_to_rs(p256.sign_sha256_der(private_hex, audit.checkpoint_message(head, prev, at_ms)))
    conn.execute(
        "INSERT INTO audit_checkpoints (seq, hash, at_ms, scheme, public_key, signature)"
        f" VALUES ({ph}, {ph}, {ph}, {ph}, {ph}, {ph})",
        (head, prev, at_ms, "ecdsa-p256-sha256", bytes.fromhex(public_hex), r.to_bytes(32) + s.to_bytes(32)),
    )
    return int(head)


def verify(data: Path, *args: str) -> dict[str, Any]:
    out = run_cli("audit", "verify", "--json", *args, data_dir=data, check=False)
    assert out.returncode in (0, 1), out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def tamper_sqlite(data: Path, from_seq: int) -> int:
    conn = sqlite3.connect(data / "strongroom.sqlite3")
    head = resign(conn, "?", from_seq)
    conn.commit()
    conn.close()
    return head


def test_pinned_key_written_at_init_and_exported(tmp_path: Path) -> None:
    data = tmp_path / "d"
    out = run_cli("init", data_dir=data)
    info = json.loads(out.stdout)
    pinned = data / "audit-key.pub"
    assert info["auditKeyFile"] == str(pinned)
    assert pinned.stat().st_mode & 0o777 == 0o644
    scheme, key_hex = pinned.read_text().split()
    assert (scheme, info["auditKey"]) == ("ecdsa-p256-sha256", f"{scheme} {key_hex}")
    exported = run_cli("audit", "export-key", data_dir=data).stdout.strip()
    assert exported == pinned.read_text().strip()
    # An older data dir without the file: the daemon pins the key at its first start and says so
    # (`serve` alone: `init` would pin it again).
    pinned.unlink()
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    log_path = data / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "strongroom", "--data-dir", str(data), "serve", "--port", str(free_port())],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 30
            while "listening" not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            text = log_path.read_text()
        finally:
            proc.terminate()
            proc.wait(10)
    assert "audit_key_pinned" in text and "first use" in text, text
    assert pinned.read_text().strip() == exported


def test_resigned_log_fails_verify_and_edits_are_pinpointed_sqlite(tmp_path: Path) -> None:
    data = tmp_path / "d"
    d = start_daemon(data)
    try:
        sign_some(d)
    finally:
        d.stop()  # checkpoints the head at shutdown
    intact = verify(data)
    assert intact["ok"] and intact["unsignedTail"] is None, intact

    # An edit without re-linking: the entry is named.
    conn = sqlite3.connect(data / "strongroom.sqlite3")
    backup = tmp_path / "backup.sqlite3"
    conn.backup(sqlite3.connect(backup))
    (completed,) = conn.execute("SELECT min(seq) FROM audit_log WHERE body LIKE '%COMPLETED%'").fetchone()
    conn.execute(f"UPDATE audit_log SET body = replace(body, 'COMPLETED', 'FAILED') WHERE seq = {completed}")
    conn.commit()
    conn.close()
    edited = verify(data)
    assert (edited["ok"], edited["firstBrokenEntry"]) == (False, completed)
    assert edited["problems"] == [f"entry {completed} was edited: its content does not match its hash"]
    sqlite3.connect(backup).backup(sqlite3.connect(data / "strongroom.sqlite3"))

    # Re-linked and re-signed with the attacker's key, which is stored in the row: refused.
    head = tamper_sqlite(data, 3)
    result = verify(data)
    assert result["ok"] is False, result
    assert f"checkpoint at entry {head} is not signed by the pinned audit key" in result["problems"][0], result
    # Without the data dir's memory of the last verified checkpoint, the pinned key alone suffices.
    (data / "audit-verified.json").unlink()
    result = verify(data)
    assert result["ok"] is False
    assert f"checkpoint at entry {head} is not signed by the pinned audit key" in result["problems"][0]
    # A checkpoint left unsigned (scheme `none`) is refused unless explicitly allowed.
    conn = sqlite3.connect(data / "strongroom.sqlite3")
    conn.execute("UPDATE audit_checkpoints SET scheme = 'none', signature = NULL WHERE seq = ?", (head,))
    conn.commit()
    conn.close()
    result = verify(data)
    assert "is unsigned (scheme `none`)" in result["problems"][0], result


def test_unsigned_tail_is_reported(tmp_path: Path) -> None:
    data = tmp_path / "d"
    d = start_daemon(data)
    try:
        sign_some(d, 1)
    finally:
        d.stop()
    conn = sqlite3.connect(data / "strongroom.sqlite3")
    seq, prev = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    for n in (seq + 1, seq + 2):  # appended after the last checkpoint (a crash, or someone else)
        body = audit.canonical({"kind": "state", "n": n}).decode()
        h = audit.entry_hash(prev, n, body.encode())
        conn.execute("INSERT INTO audit_log (seq, body, prev_hash, hash) VALUES (?, ?, ?, ?)", (n, body, prev, h))
        prev = h
    conn.commit()
    conn.close()
    result = verify(data)
    assert result["ok"] is True  # nothing proves them wrong, nothing proves them right
    assert result["unsignedTail"] == [seq + 1, seq + 2]
    assert f"entries {seq + 1}..{seq + 2} are not covered by a signed checkpoint" in " ".join(result["warnings"])
    human = run_cli("audit", "verify", data_dir=data).stdout
    assert f"warning: entries {seq + 1}..{seq + 2} are not covered by a signed checkpoint" in human


def test_startup_refuses_signing_after_tampering(tmp_path: Path) -> None:
    data = tmp_path / "d"
    d = start_daemon(data)
    try:
        key_id = sign_some(d)
    finally:
        d.stop()
    tamper_sqlite(data, 2)
    for forget in (False, True):  # incremental from the verified marker, then from entry 1
        if forget:
            (data / "audit-verified.json").unlink()
        d = start_daemon(data, ready=False)
        try:
            ready = json.loads(urlopen_body(d.url + "/readyz"))
            assert ready["checks"]["audit"].startswith("failed verification: "), ready
            status, out = d.client().post_raw(
                "/public/v1/submit/sign_raw_payload", sign_body(d.organization_id, key_id, "after")
            )
            assert status == 503, out
            assert out["code"] == 14
            assert out["details"][0]["turnkeyErrorCode"] == "INTERNAL"
            assert out["message"].startswith("refused: the audit log failed verification at start: "), out
            want = "not signed by the pinned audit key" if forget else "covered by a checkpoint verified earlier"
            assert want in out["message"], out
            assert "audit_verification_failed" in d.logs("audit_verification_failed")
        finally:
            d.stop()


def urlopen_body(url: str) -> bytes:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as err:
        return bytes(err.read())


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


def test_resigned_log_fails_verify_postgres(tmp_path: Path, cluster: PgCluster) -> None:
    import psycopg

    url = cluster.create_database()
    data = tmp_path / "d"
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(data), "init"],
        check=True,
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    copy_from_sqlite(data / "strongroom.sqlite3", url)
    d = start_daemon(data, config=f'rate_limit_per_second = 10000\ndatabase_url = "{url}"\n')
    try:
        sign_some(d)
    finally:
        d.stop()
    pinned = str(data / "audit-key.pub")
    intact = verify(data, "--database-url", url, "--pinned-key", pinned)
    assert intact["ok"] is True and intact["entries"] >= 4, intact
    with psycopg.connect(url, autocommit=True) as conn:
        head = resign(conn, "%s", 3)
    for args in (("--database-url", url, "--pinned-key", pinned), ()):  # explicit, and the data dir's store
        result = verify(data, *args)
        assert result["ok"] is False, result
        assert f"checkpoint at entry {head} is not signed by the pinned audit key" in result["problems"][0]


def test_the_daemon_checkpoints_soon_after_writes(tmp_path: Path) -> None:
    data = tmp_path / "d"
    d = start_daemon(data)
    try:
        sign_some(d, 1)
        written = time.monotonic()
        while True:  # verified while the daemon runs: the tail closes within about a second
            result = verify(data)
            assert result["ok"], result
            if result["unsignedTail"] is None:
                break
            assert time.monotonic() - written < 3.0, result
            time.sleep(0.2)
        marker = json.loads((data / "audit-verified.json").read_text())
        assert marker["seq"] == result["entries"]  # the daemon remembers what it signed, outside the database
    finally:
        d.stop()
