"""Users and their credentials: API keys and passkeys (WebAuthn authenticators)."""

from __future__ import annotations

import json

from strongroom.store.core import Aggregate, columns, delete, from_row, in_org, insert, mark, update
from strongroom.store.group_commit import Op
from strongroom.store.records import ApiKey, Authenticator, Row, User
from strongroom.store.writer import EXPECT_ROW


class Users(Aggregate):
    """Users and their credentials: API keys and passkeys (WebAuthn authenticators)."""

    @staticmethod
    def _user(row: Row) -> User:
        return from_row(User, row, tags=tuple(json.loads(row["tags"])))

    def user(self, user_id: str) -> User | None:
        return self.core.cached(("user", user_id), lambda: self._load_user(user_id))

    def _load_user(self, user_id: str) -> User | None:
        return self._one("users", self._user, "SELECT * FROM users WHERE id = ?", (user_id,))

    def users(self, org_id: str) -> list[User]:
        rows = self.db.all("SELECT * FROM users WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        return [self._user(r) for r in self.core.checked_all("users", org_id, rows)]

    @staticmethod
    def insert_user(user: User) -> list[Op]:
        return mark(user.organization_id, [insert("users", columns(user, tags=json.dumps(list(user.tags))))])

    @staticmethod
    def update_user(user: User) -> list[Op]:
        changed = {
            "name": user.name,
            "email": user.email,
            "phone_number": user.phone_number,
            "access_type": user.access_type,
            "tags": json.dumps(list(user.tags)),
            "updated_at": user.updated_at,
        }
        return mark(user.organization_id, [update("users", changed, in_org(user.organization_id, user.id))])

    @staticmethod
    def delete_user(org_id: str, user_id: str) -> list[Op]:
        """The user and every credential it holds."""
        held = {"user_id": user_id, "organization_id": org_id}
        return mark(
            org_id, [delete("api_keys", held), delete("authenticators", held), delete("users", in_org(org_id, user_id))]
        )

    def user_count(self, org_id: str) -> int:
        row = self.db.one("SELECT count(*) FROM users WHERE organization_id = ?", (org_id,))
        return 0 if row is None else int(row[0])

    def user_by_email(self, email: str) -> User | None:
        """Emails are unique across the whole store, compared without regard to case."""
        return self._one("users", self._user, "SELECT * FROM users WHERE lower(email) = lower(?) LIMIT 1", (email,))

    def user_id_of_api_key(self, org_id: str, public_key: str) -> str | None:
        """The user holding the API key `public_key` in `org_id`, unverified (`strongroom init`)."""
        row = self.db.one(
            "SELECT user_id FROM api_keys WHERE organization_id = ? AND public_key = ?", (org_id, public_key)
        )
        return None if row is None else str(row[0])

    # -- API keys -------------------------------------------------------------------------------
    @staticmethod
    def _api_key(row: Row) -> ApiKey:
        return from_row(ApiKey, row)

    def api_key_in_org(self, org_id: str, public_key: str) -> ApiKey | None:
        return self.core.cached(("api_key", org_id, public_key), lambda: self._load_api_key(org_id, public_key))

    def _load_api_key(self, org_id: str, public_key: str) -> ApiKey | None:
        return self._one(
            "api_keys",
            self._api_key,
            "SELECT * FROM api_keys WHERE organization_id = ? AND public_key = ?",
            (org_id, public_key.lower()),
        )

    def api_keys_of_user(self, user_id: str) -> list[ApiKey]:
        return list(self.core.cached(("user_api_keys", user_id), lambda: self._load_api_keys_of_user(user_id)))

    def _load_api_keys_of_user(self, user_id: str) -> tuple[ApiKey, ...]:
        rows = self.db.all("SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id", (user_id,))
        return tuple(self._api_key(self.core.checked("api_keys", r)) for r in rows)

    @staticmethod
    def insert_api_key(key: ApiKey) -> list[Op]:
        return mark(key.organization_id, [insert("api_keys", columns(key, public_key=key.public_key.lower()))])

    def api_key(self, org_id: str, key_id: str) -> ApiKey | None:
        return self._one(
            "api_keys", self._api_key, "SELECT * FROM api_keys WHERE id = ? AND organization_id = ?", (key_id, org_id)
        )

    @staticmethod
    def delete_api_key(org_id: str, key_id: str) -> list[Op]:
        return mark(org_id, [delete("api_keys", in_org(org_id, key_id))])

    @staticmethod
    def consume_api_key(org_id: str, key_id: str) -> list[Op]:
        """Delete a key that must still exist (a one-time invite): `Conflict` if it is gone."""
        sql, params = delete("api_keys", in_org(org_id, key_id))
        return mark(org_id, [(sql + EXPECT_ROW, params)])

    # -- passkeys ---------------------------------------------------------------------------------
    # Passkeys are read from the database on every request (never cached): their signature
    # counter changes with each use, and a deleted passkey must be refused at once.
    @staticmethod
    def _authenticator(row: Row) -> Authenticator:
        return from_row(
            Authenticator,
            row,
            cose_key=bytes(row["cose_key"]),
            transports=tuple(json.loads(row["transports"])),
            sign_count=int(row["sign_count"]),
        )

    def authenticators_of_user(self, user_id: str) -> list[Authenticator]:
        """Cached (every signing request renders its voter): a passkey's own check reads it fresh."""
        return list(
            self.core.cached(("user_authenticators", user_id), lambda: self._load_authenticators_of_user(user_id))
        )

    def _load_authenticators_of_user(self, user_id: str) -> tuple[Authenticator, ...]:
        rows = self.db.all("SELECT * FROM authenticators WHERE user_id = ? ORDER BY created_at, id", (user_id,))
        return tuple(self._authenticator(self.core.checked("authenticators", r)) for r in rows)

    def _authenticator_where(self, where: str, params: tuple[str, str]) -> Authenticator | None:
        return self._one("authenticators", self._authenticator, f"SELECT * FROM authenticators WHERE {where}", params)

    def authenticator(self, org_id: str, authenticator_id: str) -> Authenticator | None:
        return self._authenticator_where("id = ? AND organization_id = ?", (authenticator_id, org_id))

    def authenticator_by_credential_id(self, org_id: str, credential_id: str) -> Authenticator | None:
        return self._authenticator_where("organization_id = ? AND credential_id = ?", (org_id, credential_id))

    def authenticator_by_public_key(self, org_id: str, public_key: str) -> Authenticator | None:
        return self._authenticator_where("organization_id = ? AND public_key = ? LIMIT 1", (org_id, public_key))

    @staticmethod
    def insert_authenticator(a: Authenticator) -> list[Op]:
        return mark(
            a.organization_id, [insert("authenticators", columns(a, transports=json.dumps(list(a.transports))))]
        )

    @staticmethod
    def delete_authenticator(org_id: str, authenticator_id: str) -> list[Op]:
        return mark(org_id, [delete("authenticators", in_org(org_id, authenticator_id))])

    @staticmethod
    def advance_sign_count(authenticator_id: str, sign_count: int) -> list[Op]:
        """Record a passkey's signature counter; it only ever moves forward."""
        return [
            (
                "UPDATE authenticators SET sign_count = ? WHERE id = ? AND sign_count < ?",
                (sign_count, authenticator_id, sign_count),
            )
        ]
