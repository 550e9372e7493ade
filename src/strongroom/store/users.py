"""Users and their credentials: API keys and passkeys (WebAuthn authenticators)."""

from __future__ import annotations

import json

from strongroom.store.core import Aggregate, mark
from strongroom.store.group_commit import Op
from strongroom.store.records import ApiKey, Authenticator, Row, User


class Users(Aggregate):
    """Users and their credentials: API keys and passkeys (WebAuthn authenticators)."""

    @staticmethod
    def _user(row: Row) -> User:
        return User(
            row["id"],
            row["organization_id"],
            row["name"],
            row["email"],
            row["access_type"],
            tuple(json.loads(row["tags"])),
            row["created_at"],
            row["updated_at"],
            row["phone_number"],
        )

    def user(self, user_id: str) -> User | None:
        return self.core.cached(("user", user_id), lambda: self._load_user(user_id))

    def _load_user(self, user_id: str) -> User | None:
        row = self.db.one("SELECT * FROM users WHERE id = ?", (user_id,))
        return None if row is None else self._user(self.core.checked("users", row))

    def users(self, org_id: str) -> list[User]:
        rows = self.db.all("SELECT * FROM users WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        return [self._user(r) for r in self.core.checked_all("users", org_id, rows)]

    @staticmethod
    def insert_user(user: User) -> list[Op]:
        return mark(
            user.organization_id,
            [
                (
                    "INSERT INTO users (id, organization_id, name, email, access_type, tags, created_at, updated_at,"
                    " phone_number) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        user.id,
                        user.organization_id,
                        user.name,
                        user.email,
                        user.access_type,
                        json.dumps(list(user.tags)),
                        user.created_at,
                        user.updated_at,
                        user.phone_number,
                    ),
                )
            ],
        )

    @staticmethod
    def update_user(user: User) -> list[Op]:
        return mark(
            user.organization_id,
            [
                (
                    "UPDATE users SET name = ?, email = ?, phone_number = ?, access_type = ?, tags = ?, updated_at = ?"
                    " WHERE id = ? AND organization_id = ?",
                    (
                        user.name,
                        user.email,
                        user.phone_number,
                        user.access_type,
                        json.dumps(list(user.tags)),
                        user.updated_at,
                        user.id,
                        user.organization_id,
                    ),
                )
            ],
        )

    @staticmethod
    def delete_user(org_id: str, user_id: str) -> list[Op]:
        """The user and every credential it holds."""
        return mark(
            org_id,
            [
                ("DELETE FROM api_keys WHERE user_id = ? AND organization_id = ?", (user_id, org_id)),
                ("DELETE FROM authenticators WHERE user_id = ? AND organization_id = ?", (user_id, org_id)),
                ("DELETE FROM users WHERE id = ? AND organization_id = ?", (user_id, org_id)),
            ],
        )

    def user_count(self, org_id: str) -> int:
        row = self.db.one("SELECT count(*) FROM users WHERE organization_id = ?", (org_id,))
        return 0 if row is None else int(row[0])

    def user_by_email(self, email: str) -> User | None:
        """Emails are unique across the whole store, compared without regard to case."""
        row = self.db.one("SELECT * FROM users WHERE lower(email) = lower(?) LIMIT 1", (email,))
        return None if row is None else self._user(self.core.checked("users", row))

    def user_id_of_api_key(self, org_id: str, public_key: str) -> str | None:
        """The user holding the API key `public_key` in `org_id`, unverified (`strongroom init`)."""
        row = self.db.one(
            "SELECT user_id FROM api_keys WHERE organization_id = ? AND public_key = ?", (org_id, public_key)
        )
        return None if row is None else str(row[0])

    @staticmethod
    def _api_key(row: Row) -> ApiKey:
        return ApiKey(
            row["id"],
            row["user_id"],
            row["organization_id"],
            row["name"],
            row["public_key"],
            row["curve"],
            row["expires_at"],
            row["created_at"],
            row["updated_at"],
        )

    def api_key_in_org(self, org_id: str, public_key: str) -> ApiKey | None:
        return self.core.cached(("api_key", org_id, public_key), lambda: self._load_api_key(org_id, public_key))

    def _load_api_key(self, org_id: str, public_key: str) -> ApiKey | None:
        row = self.db.one(
            "SELECT * FROM api_keys WHERE organization_id = ? AND public_key = ?", (org_id, public_key.lower())
        )
        return None if row is None else self._api_key(self.core.checked("api_keys", row))

    def api_keys_of_user(self, user_id: str) -> list[ApiKey]:
        return list(self.core.cached(("user_api_keys", user_id), lambda: self._load_api_keys_of_user(user_id)))

    def _load_api_keys_of_user(self, user_id: str) -> tuple[ApiKey, ...]:
        rows = self.db.all("SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id", (user_id,))
        return tuple(self._api_key(self.core.checked("api_keys", r)) for r in rows)

    @staticmethod
    def insert_api_key(key: ApiKey) -> list[Op]:
        return mark(
            key.organization_id,
            [
                (
                    "INSERT INTO api_keys (id, user_id, organization_id, name, public_key, curve, expires_at,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key.id,
                        key.user_id,
                        key.organization_id,
                        key.name,
                        key.public_key.lower(),
                        key.curve,
                        key.expires_at,
                        key.created_at,
                        key.updated_at,
                    ),
                )
            ],
        )

    def api_key(self, org_id: str, key_id: str) -> ApiKey | None:
        row = self.db.one("SELECT * FROM api_keys WHERE id = ? AND organization_id = ?", (key_id, org_id))
        return None if row is None else self._api_key(self.core.checked("api_keys", row))

    @staticmethod
    def delete_api_key(org_id: str, key_id: str) -> list[Op]:
        return mark(org_id, [("DELETE FROM api_keys WHERE id = ? AND organization_id = ?", (key_id, org_id))])

    @staticmethod
    def _authenticator(row: Row) -> Authenticator:
        return Authenticator(
            row["id"],
            row["user_id"],
            row["organization_id"],
            row["name"],
            row["credential_id"],
            bytes(row["cose_key"]),
            row["public_key"],
            row["aaguid"],
            row["attestation_type"],
            tuple(json.loads(row["transports"])),
            int(row["sign_count"]),
            row["created_at"],
            row["updated_at"],
        )

    def authenticators_of_user(self, user_id: str) -> list[Authenticator]:
        """Cached (every signing request renders its voter): a passkey's own check reads it fresh."""
        return list(
            self.core.cached(("user_authenticators", user_id), lambda: self._load_authenticators_of_user(user_id))
        )

    def _load_authenticators_of_user(self, user_id: str) -> tuple[Authenticator, ...]:
        rows = self.db.all("SELECT * FROM authenticators WHERE user_id = ? ORDER BY created_at, id", (user_id,))
        return tuple(self._authenticator(self.core.checked("authenticators", r)) for r in rows)

    def authenticator(self, org_id: str, authenticator_id: str) -> Authenticator | None:
        row = self.db.one(
            "SELECT * FROM authenticators WHERE id = ? AND organization_id = ?", (authenticator_id, org_id)
        )
        return None if row is None else self._authenticator(self.core.checked("authenticators", row))

    def authenticator_by_credential_id(self, org_id: str, credential_id: str) -> Authenticator | None:
        row = self.db.one(
            "SELECT * FROM authenticators WHERE organization_id = ? AND credential_id = ?", (org_id, credential_id)
        )
        return None if row is None else self._authenticator(self.core.checked("authenticators", row))

    def authenticator_by_public_key(self, org_id: str, public_key: str) -> Authenticator | None:
        row = self.db.one(
            "SELECT * FROM authenticators WHERE organization_id = ? AND public_key = ? LIMIT 1", (org_id, public_key)
        )
        return None if row is None else self._authenticator(self.core.checked("authenticators", row))

    @staticmethod
    def insert_authenticator(a: Authenticator) -> list[Op]:
        return mark(
            a.organization_id,
            [
                (
                    "INSERT INTO authenticators (id, user_id, organization_id, name, credential_id, cose_key,"
                    " public_key, aaguid, attestation_type, transports, sign_count, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        a.id,
                        a.user_id,
                        a.organization_id,
                        a.name,
                        a.credential_id,
                        a.cose_key,
                        a.public_key,
                        a.aaguid,
                        a.attestation_type,
                        json.dumps(list(a.transports)),
                        a.sign_count,
                        a.created_at,
                        a.updated_at,
                    ),
                )
            ],
        )

    @staticmethod
    def delete_authenticator(org_id: str, authenticator_id: str) -> list[Op]:
        return mark(
            org_id, [("DELETE FROM authenticators WHERE id = ? AND organization_id = ?", (authenticator_id, org_id))]
        )

    @staticmethod
    def advance_sign_count(authenticator_id: str, sign_count: int) -> list[Op]:
        """Record a passkey's signature counter; it only ever moves forward."""
        return [
            (
                "UPDATE authenticators SET sign_count = ? WHERE id = ? AND sign_count < ?",
                (sign_count, authenticator_id, sign_count),
            )
        ]
