"""Operator commands on a PostgreSQL deployment: `org create`, `org list`, `usage set-quota`,
`audit verify` and `migrate --notarise` work on the configured database (never on a stale SQLite
file beside it), through the notarised store, and a daemon serving that database sees the effect."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, Daemon, start_daemon
from store.pg_cluster import PgCluster
from strongroom.client import ApiError, ApiKeyStamper, Client
from strongroom.store.postgres import copy_from_sqlite

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


def cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    return subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=check,
    )


def test_org_create_and_set_quota_write_to_postgres(cluster: PgCluster, tmp_path: Path) -> None:
    data = tmp_path / "d"
    first = json.loads(cli(data, "init").stdout)
    url = cluster.create_database()
    copy_from_sqlite(data / "strongroom.sqlite3", url)
    cfg = data / "strongroom.toml"
    cfg.write_text(f'database_url = "{url}"\n' + cfg.read_text())
    sqlite_before = (data / "strongroom.sqlite3").read_bytes()

    created = json.loads(cli(data, "org", "create", "--name", "treasury", "--json").stdout)
    org_id = created["organizationId"]
    cli(data, "usage", "set-quota", "--organization", org_id, "--signatures", "7", "--json")
    listed = json.loads(cli(data, "org", "list", "--json").stdout)
    assert {o["organizationId"] for o in listed} == {first["organizationId"], org_id}

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT monthly_signature_quota FROM organizations WHERE id = %s", (org_id,)).fetchone()
        assert row == (7,)
        notarised = conn.execute("SELECT version FROM org_state WHERE organization_id = %s", (org_id,)).fetchone()
        assert notarised is not None and notarised[0] == 2  # created, then the quota
    conn2 = sqlite3.connect(data / "strongroom.sqlite3")
    try:
        assert conn2.execute("SELECT count(*) FROM organizations WHERE id = ?", (org_id,)).fetchone() == (0,)
    finally:
        conn2.close()
    assert (data / "strongroom.sqlite3").read_bytes() == sqlite_before


@pytest.fixture
def pg_daemon(cluster: PgCluster, tmp_path: Path) -> Iterator[tuple[Daemon, str]]:
    """A daemon serving a PostgreSQL database that `init`'s SQLite store was moved into."""
    data = tmp_path / "d"
    cli(data, "init")
    url = cluster.create_database()
    copy_from_sqlite(data / "strongroom.sqlite3", url)
    d = start_daemon(data, config=f'rate_limit_per_second = 10000\ndatabase_url = "{url}"\n')
    try:
        yield d, url
    finally:
        d.stop()


def sign(c: Client, key: str, payload: str) -> str:
    return str(
        c.sign_raw_payload(key, payload, "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256")["activity"]["status"]
    )


def test_operator_commands_on_postgres_are_seen_by_the_daemon(pg_daemon: tuple[Daemon, str]) -> None:
    daemon, url = pg_daemon
    data = daemon.data_dir
    stale = data / "strongroom.sqlite3"
    stale_before = stale.read_bytes()

    # org create: the new organization's root API key works against the daemon at once.
    created = json.loads(cli(data, "org", "create", "--name", "treasury", "--json").stdout)
    prefix = Path(created["apiPrivateKeyFile"]).with_suffix("")
    treasury = Client(daemon.url, ApiKeyStamper.from_files(prefix), created["organizationId"])
    me = treasury.whoami()
    assert (me["organizationId"], me["userId"]) == (created["organizationId"], created["userId"])
    listed = json.loads(cli(data, "org", "list", "--json").stdout)
    assert {o["organizationId"] for o in listed} == {daemon.organization_id, created["organizationId"]}

    # usage set-quota: the daemon enforces it.
    cli(data, "usage", "set-quota", "--organization", created["organizationId"], "--signatures", "2")
    assert treasury.get_usage()["usage"]["monthlySignatureQuota"] == "2"
    created_key = treasury.create_private_key("k", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    key = created_key["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    assert [sign(treasury, key, f"p{i}") for i in range(2)] == ["ACTIVITY_STATUS_COMPLETED"] * 2
    with pytest.raises(ApiError) as refused:
        sign(treasury, key, "one too many")
    assert refused.value.status == 429
    assert "monthly signature quota of 2 is exhausted" in refused.value.message
    assert treasury.get_usage()["usage"]["signatures"] == "2"

    # migrate --notarise: every organization on PostgreSQL is notarised already.
    assert json.loads(cli(data, "migrate", "--notarise", "--json").stdout) == {"notarised": []}

    # audit verify: the PostgreSQL chain (with the checkpoints the daemon signed), intact ...
    deadline = time.monotonic() + 10
    with psycopg.connect(url) as conn:
        while conn.execute("SELECT count(*) FROM audit_checkpoints").fetchone() == (0,):
            assert time.monotonic() < deadline, "the daemon signed no checkpoint"
            time.sleep(0.2)
    daemon.stop()  # a still chain, to count it
    with psycopg.connect(url) as conn:
        entries = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    report = json.loads(cli(data, "audit", "verify", "--json").stdout)
    assert report["ok"] is True, report
    assert report["entries"] == entries and report["checkpoints"] >= 1
    assert entries > sqlite3.connect(stale).execute("SELECT count(*) FROM audit_log").fetchone()[0]

    # ... and broken once a PostgreSQL audit row is altered.
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE audit_log SET body = body || ' ' WHERE seq = 3")
    broken = cli(data, "audit", "verify", "--json", check=False)
    assert broken.returncode == 1, broken.stderr
    report = json.loads(broken.stdout)
    assert report["ok"] is False
    assert report["firstBrokenEntry"] == 3

    assert stale.read_bytes() == stale_before  # the SQLite file beside the config was never touched
