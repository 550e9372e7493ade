"""Persistence: SQLite is the embedded default."""

from strongroom.store import audit
from strongroom.store.records import Activity, ApiKey, Organization, PrivateKey, Repository, User
from strongroom.store.sqlite import SqliteDatabase

__all__ = ["audit", "Activity", "ApiKey", "Organization", "PrivateKey", "Repository", "SqliteDatabase", "User"]
