"""Operator commands on a PostgreSQL deployment: `org create` and `usage set-quota` write to the
configured database (not a stale SQLite file beside it), through the notarised store."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import REPO
from store.pg_cluster import PgCluster
from strongroom.store.postgres import copy_from_sqlite

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    return subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(data), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
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
