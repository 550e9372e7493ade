"""The optional extras are optional: without psycopg (the `[postgres]` extra) the daemon serves and
signs on SQLite, and a configured PostgreSQL store is refused at start with one line naming the
extra. psycopg is hidden from the subprocesses by a `psycopg` package first on PYTHONPATH that
fails to import, as a missing one does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_daemon import run_cli, sign_and_verify

from conftest import REPO, start_daemon

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

NEEDS = "error: PostgreSQL (`database_url`) needs psycopg, the `postgres` extra: pip install 'strongroom[postgres]'"


@pytest.fixture
def without_psycopg(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "no-extras" / "psycopg"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'psycopg'\")\n")
    path = os.pathsep.join(filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path}


def cli(data_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    return subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        env={**base, **env},
        cwd=REPO,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_sqlite_serves_and_signs_without_the_postgres_extra(tmp_path: Path, without_psycopg: dict[str, str]) -> None:
    probe = cli(tmp_path, without_psycopg, "--version")
    assert probe.returncode == 0, probe.stderr
    assert subprocess.run(
        [sys.executable, "-c", "import psycopg"],
        env={**os.environ, **without_psycopg},
        capture_output=True,
        check=False,
    ).returncode, "the fake psycopg package did not hide the real one"
    d = start_daemon(tmp_path / "sqlite", env=without_psycopg)
    try:
        sign_and_verify(d)
    finally:
        d.stop()


def test_postgresql_without_the_extra_is_one_clear_line(tmp_path: Path, without_psycopg: dict[str, str]) -> None:
    data_dir = tmp_path / "d"
    run_cli("init", data_dir=data_dir)
    url = "postgresql://strongroom@127.0.0.1:1/strongroom"
    for args, env in (
        (("serve", "--port", "0"), {**without_psycopg, "STRONGROOM_DATABASE_URL": url}),
        (("audit", "verify", "--database-url", url), without_psycopg),
    ):
        out = cli(data_dir, env, *args)
        assert out.returncode == 2, out.stderr
        lines = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("{")]
        assert lines[-1].startswith(NEEDS), out.stderr
        assert "Traceback" not in out.stderr
