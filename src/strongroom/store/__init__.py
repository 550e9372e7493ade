"""Persistence: SQLite is the embedded default; PostgreSQL (`database_url`) serves several replicas."""

from __future__ import annotations

from pathlib import Path

from strongroom.store import audit
from strongroom.store.records import Activity, ApiKey, Database, Organization, PrivateKey, User
from strongroom.store.repository import Repository
from strongroom.store.sqlite import SqliteDatabase


def open_database(url: str | None, path: Path, *, shared: bool = False) -> Database:
    """PostgreSQL when `url` is set (psycopg is imported only then), else SQLite at `path`;
    `shared`: other processes of this daemon (its workers) write to the same SQLite file."""
    if url:
        from strongroom.store.postgres import PostgresDatabase

        return PostgresDatabase(url)
    return SqliteDatabase(path, shared=shared)


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
