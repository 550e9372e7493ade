"""Persistence: SQLite is the embedded default; PostgreSQL (`database_url`) serves several replicas."""

from __future__ import annotations

from pathlib import Path

from strongroom.store import audit
from strongroom.store.records import Activity, ApiKey, Database, Organization, PrivateKey, User
from strongroom.store.repository import Repository
from strongroom.store.sqlite import SqliteDatabase


def open_database(url: str | None, path: Path) -> Database:
    """PostgreSQL when `url` is set (psycopg is imported only then), else SQLite at `path`."""
    if url:
        from strongroom.store.postgres import PostgresDatabase

        return PostgresDatabase(url)
    return SqliteDatabase(path)


__all__ = [
    "audit",
    "Activity",
    "ApiKey",
    "Database",
    "Organization",
    "PrivateKey",
    "Repository",
    "SqliteDatabase",
    "User",
    "open_database",
]
