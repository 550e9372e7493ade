"""Fixtures the store tests share: a throwaway PostgreSQL cluster, and an empty database of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.pg_cluster import PgCluster
from strongroom.store import Database, open_database


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh, empty database: SQLite, then a new database on the module's PostgreSQL cluster."""
    url = request.getfixturevalue("cluster").create_database() if request.param == "postgres" else None
    d = open_database(url, tmp_path / "s.sqlite3")
    yield d
    d.close()
