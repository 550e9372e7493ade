"""Persistence: SQLite is the embedded default."""

from strongroom.store.records import Activity, ApiKey, Organization, PrivateKey, Repository, User
from strongroom.store.sqlite import SqliteDatabase

__all__ = ["Activity", "ApiKey", "Organization", "PrivateKey", "Repository", "SqliteDatabase", "User"]
