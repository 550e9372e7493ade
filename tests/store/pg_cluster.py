"""A throwaway PostgreSQL cluster for tests: initdb into a temporary directory, a Unix socket only.

Debian's `postgresql` package provides the binaries (`make test` installs it). PostgreSQL
refuses to run as root, so as root the cluster belongs to the `postgres` system user the
package creates (commands run through `runuser`). Missing binaries fail the tests unless
STRONGROOM_SKIP_POSTGRES=1 says to skip them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

SKIP_ENV = "STRONGROOM_SKIP_POSTGRES"


def find_bindir() -> Path | None:
    explicit = os.environ.get("STRONGROOM_PG_BINDIR")
    candidates = [Path(explicit)] if explicit else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "pg_ctl").is_file():
            return c
    return None


class PgCluster:
    def __init__(self) -> None:
        bindir = find_bindir()
        if bindir is None:
            if os.environ.get(SKIP_ENV) == "1":
                pytest.skip(f"PostgreSQL binaries not found ({SKIP_ENV}=1)")
            pytest.fail(
                "PostgreSQL binaries (initdb, pg_ctl) not found: install Debian's `postgresql` package "
                f"(`make test` does), or set {SKIP_ENV}=1 to skip the PostgreSQL tests",
                pytrace=False,
            )
        self.bindir = bindir
        # Not under pytest's tmp dir: that is 0700 root, and the server may run as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"
        )
        options = f"-k {self.socket_dir} -c listen_addresses= -c fsync=off -c max_connections=200"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bindir / tool), *args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=self.root)
        if out.returncode != 0:
            raise RuntimeError(f"{tool} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql:///{dbname}?host={self.socket_dir}&user=postgres"

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
