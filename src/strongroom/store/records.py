"""Domain records and the queries/writes that produce them.

The repository returns frozen records and builds write operations; it never decides whether
something is allowed. Timestamps are integer milliseconds since the epoch.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar

import orjson

from strongroom.store import audit, notary
from strongroom.store.group_commit import Op, Param
from strongroom.store.sqlite import EXPECT_ROW

_T = TypeVar("_T")


class Row(Protocol):
    """A result row: `row["column"]` and `row[0]` (Row, postgres.Row)."""

    def __getitem__(self, key: Any, /) -> Any: ...


class Database(Protocol):
    """What the repository and the daemon need from a store (SQLite or PostgreSQL)."""

    @property
    def shared(self) -> bool:
        """True when other processes write to the same database (their writes are not seen by
        this process's cache invalidation, so reads must not be cached)."""
        ...

    @property
    def failure(self) -> str | None: ...

    def one(self, sql: str, params: Sequence[Param] = ()) -> Any: ...

    def all(self, sql: str, params: Sequence[Param] = ()) -> Sequence[Any]: ...

    async def write(self, ops: Sequence[Op]) -> None: ...

    def write_sync(self, ops: Sequence[Op]) -> None: ...

    def set_notary(self, mac: notary.Mac | None) -> None: ...

    async def probe(self) -> bool: ...

    def exclusive(self, name: str) -> AbstractAsyncContextManager[None]: ...

    def audit_head(self) -> tuple[int, str]: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Organization:
    id: str
    name: str
    parent_id: str | None
    root_quorum_threshold: int
    root_user_ids: tuple[str, ...]
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class User:
    id: str
    organization_id: str
    name: str
    email: str | None
    access_type: str
    tags: tuple[str, ...]
    created_at: int
    updated_at: int
    phone_number: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    user_id: str
    organization_id: str
    name: str
    public_key: str
    curve: str
    expires_at: int | None
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Authenticator:
    """A passkey: a WebAuthn credential registered with a verified attestation."""

    id: str
    user_id: str
    organization_id: str
    name: str
    credential_id: str  # base64url of the raw credential id, as clients send it
    cose_key: bytes  # the credential public key as the authenticator encoded it (COSE)
    public_key: str  # display form: compressed SEC1 hex for P-256, else hex of the COSE key
    aaguid: str
    attestation_type: str  # the attestation statement format (`none`, `packed`, ...)
    transports: tuple[str, ...]  # AUTHENTICATOR_TRANSPORT_*
    sign_count: int
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class PrivateKey:
    id: str
    organization_id: str
    name: str
    curve: str
    public_key: bytes
    backend: str
    wrapped: bytes | None
    addresses: tuple[tuple[str, str], ...]  # (format, address)
    tags: tuple[str, ...]
    created_at: int
    updated_at: int

    def __repr__(self) -> str:  # never print the sealed secret
        return f"PrivateKey({self.id!r}, {self.curve}, {self.backend})"


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    id: str
    organization_id: str
    name: str
    effect: str
    condition: str
    consensus: str
    time: str
    notes: str
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Tag:
    id: str
    organization_id: str
    name: str
    type: str  # TAG_TYPE_USER or TAG_TYPE_PRIVATE_KEY
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Activity:
    id: str
    organization_id: str
    type: str
    status: str
    fingerprint: str
    user_id: str | None
    intent: dict[str, Any]
    result: dict[str, Any]
    failure: dict[str, Any] | None
    votes: list[dict[str, Any]]
    created_at: int
    updated_at: int
    policy_evaluations: list[dict[str, Any]] = field(default_factory=list)


def _touches_cached(sql: str) -> bool:
    head = sql.lstrip()[:64].upper()
    return not head.startswith("SELECT") and any(f" {t.upper()} " in f"{head} " for t in _CACHED_TABLES)


def address_key(address: str) -> str:
    """Lookup form of an address: hex addresses are case-insensitive, base58 is not."""
    return address.lower() if address[:2].lower() == "0x" else address


_CACHED_TABLES: Final = (
    "organizations",
    "users",
    "root_quorum",
    "api_keys",
    "private_keys",
    "key_addresses",
    "policies",
    "tags",
    "authenticators",
)


def _mark(org_id: str, ops: list[Op]) -> list[Op]:
    """Ops that change an organization's notarised state, with the mark that has the writer re-notarise it."""
    return [*ops, notary.notarise_op(org_id)]


_READ_ONLY: ContextVar[str | None] = ContextVar("strongroom_read_only", default=None)


@contextlib.contextmanager
def read_only(what: str) -> Iterator[None]:
    """Within this block (this task), any write through a Repository is a bug: it raises."""
    token = _READ_ONLY.set(what)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def _check_writable() -> None:
    what = _READ_ONLY.get()
    if what is not None:
        raise RuntimeError(f"{what} is read-only but tried to write to the store")


class Repository:
    """Reads and write-builders for the domain records.

    Lookups on the request path (organization, credential, user, private key) are cached in
    memory and the whole cache is dropped after any committed write that touches their tables
    (`write`), so a change is seen by the very next request of this process. Activity writes,
    the hot path, leave the cache warm. Reads run on the event-loop thread, synchronously, so a
    reader can never store a stale row after an invalidation.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[tuple[str, ...], Any] = {}
        # Several replicas on one database: another one's write would not invalidate this cache.
        self._use_cache = not db.shared
        self.notary: notary.Mac | None = None
        self._verified: dict[str, tuple[int, bytes, notary.Snapshot]] = {}
        # The highest notarised version seen per organization: an older one showing up later is a
        # restored old state (its MAC is valid, but it went backwards).
        self._highest: dict[str, int] = {}
        # Organizations whose stored state failed verification (for /readyz), and a hook (metrics).
        self.tampered: dict[str, str] = {}
        self.on_tampered: Callable[[str, str], None] | None = None

    # -- notarisation (store/notary.py) ----------------------------------------------------------
    def set_notary(self, mac: notary.Mac | None) -> None:
        """Verify every read used for a decision against the token's notarisation, and have the
        writer notarise every change; None turns both off (a store opened without a token)."""
        self.notary = mac
        self.db.set_notary(mac)
        self._verified.clear()
        self.invalidate()

    def _refuse(self, org_id: str, err: notary.TamperedState) -> notary.TamperedState:
        self._verified.pop(org_id, None)
        self.tampered[org_id] = err.message
        if self.on_tampered is not None:
            self.on_tampered(org_id, err.message)
        return err

    def verified(self, org_id: str, *, fresh: bool = False) -> notary.Snapshot | None:
        """The organization's notarised rows, checked against the token's MAC (None without a notary).

        The check is redone whenever the stored version moves (another replica wrote) or `fresh`
        is asked; in between, the snapshot of what was verified is the reference for every read.
        """
        if self.notary is None:
            return None
        cached = self._verified.get(org_id)
        if cached is not None and self._use_cache and not fresh:
            return cached[2]
        stored = notary.read_stored(self.db.all, org_id)
        if cached is not None and stored is not None and (stored.version, stored.mac) == cached[:2] and not fresh:
            return cached[2]
        snapshot = notary.load(self.db.all, org_id)
        if stored is None and snapshot.empty:
            return snapshot  # no such organization (yet): nothing to vouch for, nothing to trust
        try:
            notary.check(stored, snapshot, self.notary)
        except notary.TamperedState as err:
            raise self._refuse(org_id, err) from None
        assert stored is not None
        highest = self._highest.get(org_id, 0)
        if stored.version < highest:
            raise self._refuse(
                org_id,
                notary.TamperedState(
                    f"the notarised state of organization `{org_id}` went back from version {highest} to "
                    f"{stored.version}: an old state was restored"
                ),
            )
        self._highest[org_id] = stored.version
        self._verified[org_id] = (stored.version, stored.mac, snapshot)
        self.tampered.pop(org_id, None)
        return snapshot

    def _checked(self, table_name: str, row: Row) -> Row:
        """`row` if the token vouched for it in its organization's state; else refuse, naming it."""
        if self.notary is None:
            return row
        table = notary.BY_NAME[table_name]
        org_id = str(row[table.scope])
        h = notary.row_hash(table, row)
        snapshot = self.verified(org_id)
        if snapshot is not None and h in snapshot.hashes[table.name]:
            return row
        snapshot = self.verified(org_id, fresh=True)  # the state may have moved on legitimately
        if snapshot is not None and h in snapshot.hashes[table.name]:
            return row
        raise self._refuse(
            org_id,
            notary.TamperedState(
                f"{notary.describe(table, row)} of organization `{org_id}` does not match its notarisation: "
                "it was changed outside an authorised activity"
            ),
        )

    def _checked_all(
        self, table_name: str, org_id: str, rows: Sequence[Row], keep: Callable[[Any], bool] | None = None
    ) -> Sequence[Row]:
        """A list read: exactly the rows the token vouched for (none added, edited or deleted)."""
        if self.notary is None:
            return rows
        table = notary.BY_NAME[table_name]
        got = sorted(notary.row_hash(table, r) for r in rows)
        for attempt in range(2):
            snapshot = self.verified(org_id, fresh=attempt > 0)
            assert snapshot is not None
            expected = sorted(notary.row_hash(table, r) for r in snapshot.rows[table.name] if keep is None or keep(r))
            if got == expected:
                return rows
        raise self._refuse(
            org_id,
            notary.TamperedState(
                f"the `{table.name}` rows of organization `{org_id}` do not match their notarisation: "
                "rows were added, changed or deleted outside an authorised activity"
            ),
        )

    def _cached(self, key: tuple[str, ...], load: Callable[[], _T]) -> _T:
        if not self._use_cache:
            return load()
        try:
            value: _T = self._cache[key]
        except KeyError:
            value = load()
            if value is not None:
                if len(self._cache) > 50_000:
                    self._cache.clear()
                self._cache[key] = value
        return value

    def invalidate(self) -> None:
        self._cache.clear()
        self._verified.clear()

    async def write(self, ops: Sequence[Op]) -> None:
        """Commit `ops` durably, then drop cached reads if they touched cached tables."""
        _check_writable()
        try:
            await self.db.write(ops)
        finally:
            if any(_touches_cached(sql) for sql, _ in ops):
                self.invalidate()

    def write_sync(self, ops: Sequence[Op]) -> None:
        _check_writable()
        try:
            self.db.write_sync(ops)
        finally:
            if any(_touches_cached(sql) for sql, _ in ops):
                self.invalidate()

    # -- organizations ------------------------------------------------------------------------
    def organization_ids(self) -> list[str]:
        """Every organization's id (top-level and sub-organizations), unverified: what start-up and
        `migrate --notarise` walk."""
        return [str(r[0]) for r in self.db.all("SELECT id FROM organizations ORDER BY id")]

    def notarised_organization_ids(self) -> list[str]:
        """The organizations that have a notarised state (a row in `org_state`), unverified."""
        return [str(r[0]) for r in self.db.all("SELECT organization_id FROM org_state ORDER BY organization_id")]

    def first_organization_id(self) -> str | None:
        """The oldest top-level organization, found without verifying it (`strongroom init`)."""
        row = self.db.one("SELECT id FROM organizations WHERE parent_id IS NULL ORDER BY created_at, id LIMIT 1")
        return None if row is None else str(row[0])

    def user_id_of_api_key(self, org_id: str, public_key: str) -> str | None:
        """The user holding the API key `public_key` in `org_id`, unverified (`strongroom init`)."""
        row = self.db.one(
            "SELECT user_id FROM api_keys WHERE organization_id = ? AND public_key = ?", (org_id, public_key)
        )
        return None if row is None else str(row[0])

    def organization(self, org_id: str) -> Organization | None:
        return self._cached(("org", org_id), lambda: self._load_organization(org_id))

    def _load_organization(self, org_id: str) -> Organization | None:
        row = self.db.one("SELECT * FROM organizations WHERE id = ?", (org_id,))
        if row is None:
            if self.notary is not None and notary.read_stored(self.db.all, org_id) is not None:
                raise self._refuse(
                    org_id,
                    notary.TamperedState(
                        f"organization `{org_id}` has a notarised state but its row is gone: it was deleted "
                        "outside an authorised activity"
                    ),
                )
            return None
        row = self._checked("organizations", row)
        roots = self._checked_all(
            "root_quorum",
            org_id,
            self.db.all("SELECT * FROM root_quorum WHERE organization_id = ? ORDER BY user_id", (org_id,)),
        )
        return Organization(
            row["id"],
            row["name"],
            row["parent_id"],
            row["root_quorum_threshold"],
            tuple(r["user_id"] for r in roots),
            row["created_at"],
            row["updated_at"],
        )

    def organizations(self) -> list[Organization]:
        rows = self.db.all("SELECT id FROM organizations WHERE parent_id IS NULL ORDER BY created_at, id")
        return [o for o in (self.organization(r["id"]) for r in rows) if o is not None]

    @staticmethod
    def insert_organization(org: Organization) -> list[Op]:
        ops: list[Op] = [
            (
                "INSERT INTO organizations (id, name, parent_id, root_quorum_threshold, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (org.id, org.name, org.parent_id, org.root_quorum_threshold, org.created_at, org.updated_at),
            )
        ]
        return _mark(org.id, ops)

    @staticmethod
    def insert_root_users(org_id: str, user_ids: Sequence[str]) -> list[Op]:
        return _mark(
            org_id,
            [("INSERT INTO root_quorum (organization_id, user_id) VALUES (?, ?)", (org_id, u)) for u in user_ids],
        )

    # -- users and credentials ----------------------------------------------------------------
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
        return self._cached(("user", user_id), lambda: self._load_user(user_id))

    def _load_user(self, user_id: str) -> User | None:
        row = self.db.one("SELECT * FROM users WHERE id = ?", (user_id,))
        return None if row is None else self._user(self._checked("users", row))

    def users(self, org_id: str) -> list[User]:
        rows = self.db.all("SELECT * FROM users WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        return [self._user(r) for r in self._checked_all("users", org_id, rows)]

    @staticmethod
    def insert_user(user: User) -> list[Op]:
        return _mark(
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
        return self._cached(("api_key", org_id, public_key), lambda: self._load_api_key(org_id, public_key))

    def _load_api_key(self, org_id: str, public_key: str) -> ApiKey | None:
        row = self.db.one(
            "SELECT * FROM api_keys WHERE organization_id = ? AND public_key = ?", (org_id, public_key.lower())
        )
        return None if row is None else self._api_key(self._checked("api_keys", row))

    def api_keys_of_user(self, user_id: str) -> list[ApiKey]:
        return list(self._cached(("user_api_keys", user_id), lambda: self._load_api_keys_of_user(user_id)))

    def _load_api_keys_of_user(self, user_id: str) -> tuple[ApiKey, ...]:
        rows = self.db.all("SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, id", (user_id,))
        return tuple(self._api_key(self._checked("api_keys", r)) for r in rows)

    @staticmethod
    def insert_api_key(key: ApiKey) -> list[Op]:
        return _mark(
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

    def user_count(self, org_id: str) -> int:
        row = self.db.one("SELECT count(*) FROM users WHERE organization_id = ?", (org_id,))
        return 0 if row is None else int(row[0])

    def pending_count(self, org_id: str, status: str, since_ms: int) -> int:
        """Activities of `org_id` in `status` created after `since_ms` (the consensus cap)."""
        row = self.db.one(
            "SELECT count(*) FROM activities WHERE organization_id = ? AND status = ? AND created_at > ?",
            (org_id, status, since_ms),
        )
        return 0 if row is None else int(row[0])

    def user_by_email(self, email: str) -> User | None:
        """Emails are unique across the whole store, compared without regard to case."""
        row = self.db.one("SELECT * FROM users WHERE lower(email) = lower(?) LIMIT 1", (email,))
        return None if row is None else self._user(self._checked("users", row))

    @staticmethod
    def update_user(user: User) -> list[Op]:
        return _mark(
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
        return _mark(
            org_id,
            [
                ("DELETE FROM api_keys WHERE user_id = ? AND organization_id = ?", (user_id, org_id)),
                ("DELETE FROM authenticators WHERE user_id = ? AND organization_id = ?", (user_id, org_id)),
                ("DELETE FROM users WHERE id = ? AND organization_id = ?", (user_id, org_id)),
            ],
        )

    def api_key(self, org_id: str, key_id: str) -> ApiKey | None:
        row = self.db.one("SELECT * FROM api_keys WHERE id = ? AND organization_id = ?", (key_id, org_id))
        return None if row is None else self._api_key(self._checked("api_keys", row))

    @staticmethod
    def delete_api_key(org_id: str, key_id: str) -> list[Op]:
        return _mark(org_id, [("DELETE FROM api_keys WHERE id = ? AND organization_id = ?", (key_id, org_id))])

    # Passkeys are read from the database on every request (never cached): their signature
    # counter changes with each use, and a deleted passkey must be refused at once.
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
        return list(self._cached(("user_authenticators", user_id), lambda: self._load_authenticators_of_user(user_id)))

    def _load_authenticators_of_user(self, user_id: str) -> tuple[Authenticator, ...]:
        rows = self.db.all("SELECT * FROM authenticators WHERE user_id = ? ORDER BY created_at, id", (user_id,))
        return tuple(self._authenticator(self._checked("authenticators", r)) for r in rows)

    def authenticator(self, org_id: str, authenticator_id: str) -> Authenticator | None:
        row = self.db.one(
            "SELECT * FROM authenticators WHERE id = ? AND organization_id = ?", (authenticator_id, org_id)
        )
        return None if row is None else self._authenticator(self._checked("authenticators", row))

    def authenticator_by_credential_id(self, org_id: str, credential_id: str) -> Authenticator | None:
        row = self.db.one(
            "SELECT * FROM authenticators WHERE organization_id = ? AND credential_id = ?", (org_id, credential_id)
        )
        return None if row is None else self._authenticator(self._checked("authenticators", row))

    def authenticator_by_public_key(self, org_id: str, public_key: str) -> Authenticator | None:
        row = self.db.one(
            "SELECT * FROM authenticators WHERE organization_id = ? AND public_key = ? LIMIT 1", (org_id, public_key)
        )
        return None if row is None else self._authenticator(self._checked("authenticators", row))

    @staticmethod
    def insert_authenticator(a: Authenticator) -> list[Op]:
        return _mark(
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
        return _mark(
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

    # -- sub-organizations ----------------------------------------------------------------------
    def sub_organization_ids(self, parent_id: str) -> list[str]:
        rows = self.db.all("SELECT id FROM organizations WHERE parent_id = ? ORDER BY created_at, id", (parent_id,))
        return [r["id"] for r in rows]

    # -- private keys ---------------------------------------------------------------------------
    @staticmethod
    def _private_key(row: Row) -> PrivateKey:
        return PrivateKey(
            row["id"],
            row["organization_id"],
            row["name"],
            row["curve"],
            bytes(row["public_key"]),
            row["backend"],
            None if row["wrapped"] is None else bytes(row["wrapped"]),
            tuple((a["format"], a["address"]) for a in json.loads(row["addresses"])),
            tuple(json.loads(row["tags"])),
            row["created_at"],
            row["updated_at"],
        )

    def private_key(self, org_id: str, key_id: str) -> PrivateKey | None:
        return self._cached(("pk", org_id, key_id), lambda: self._load_private_key(org_id, key_id))

    def _load_private_key(self, org_id: str, key_id: str) -> PrivateKey | None:
        row = self.db.one("SELECT * FROM private_keys WHERE id = ? AND organization_id = ?", (key_id, org_id))
        return None if row is None else self._private_key(self._checked("private_keys", row))

    def private_key_by_address(self, org_id: str, address: str) -> PrivateKey | None:
        key = address_key(address)
        return self._cached(("pk_addr", org_id, key), lambda: self._load_private_key_by_address(org_id, key))

    def _load_private_key_by_address(self, org_id: str, address: str) -> PrivateKey | None:
        rows = self.db.all(
            "SELECT a.* FROM key_addresses a JOIN private_keys p ON p.id = a.private_key_id"
            " WHERE a.organization_id = ? AND a.address = ? ORDER BY p.created_at, p.id",
            (org_id, address),
        )
        for row in rows:
            key = self._load_private_key(org_id, str(self._checked("key_addresses", row)["private_key_id"]))
            if key is not None:
                return key
        return None

    def private_keys(self, org_id: str) -> list[PrivateKey]:
        rows = self.db.all("SELECT * FROM private_keys WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        return [self._private_key(r) for r in self._checked_all("private_keys", org_id, rows)]

    def private_key_name_taken(self, org_id: str, name: str) -> bool:
        return (
            self.db.one("SELECT 1 FROM private_keys WHERE organization_id = ? AND name = ?", (org_id, name)) is not None
        )

    @staticmethod
    def insert_private_key(key: PrivateKey) -> list[Op]:
        ops: list[Op] = [
            (
                "INSERT INTO private_keys (id, organization_id, name, curve, public_key, backend, wrapped,"
                " addresses, tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.id,
                    key.organization_id,
                    key.name,
                    key.curve,
                    key.public_key,
                    key.backend,
                    key.wrapped,
                    json.dumps([{"format": f, "address": a} for f, a in key.addresses]),
                    json.dumps(list(key.tags)),
                    key.created_at,
                    key.updated_at,
                ),
            )
        ]
        seen = set()
        for _fmt, address in key.addresses:
            k = address_key(address)
            if k in seen:
                continue
            seen.add(k)
            ops.append(
                (
                    "INSERT INTO key_addresses (organization_id, address, private_key_id) VALUES (?, ?, ?)",
                    (key.organization_id, k, key.id),
                )
            )
        return _mark(key.organization_id, ops)

    # -- policies -------------------------------------------------------------------------------------
    @staticmethod
    def _policy(row: Row) -> PolicyRecord:
        return PolicyRecord(
            row["id"],
            row["organization_id"],
            row["name"],
            row["effect"],
            row["condition"],
            row["consensus"],
            row["time"],
            row["notes"],
            row["created_at"],
            row["updated_at"],
        )

    def policies(self, org_id: str) -> list[PolicyRecord]:
        return list(self._cached(("policies", org_id), lambda: self._load_policies(org_id)))

    def _load_policies(self, org_id: str) -> tuple[PolicyRecord, ...]:
        rows = self.db.all("SELECT * FROM policies WHERE organization_id = ? ORDER BY created_at, id", (org_id,))
        return tuple(self._policy(r) for r in self._checked_all("policies", org_id, rows))

    def policy(self, org_id: str, policy_id: str) -> PolicyRecord | None:
        return next((p for p in self.policies(org_id) if p.id == policy_id), None)

    @staticmethod
    def insert_policy(p: PolicyRecord) -> list[Op]:
        return _mark(
            p.organization_id,
            [
                (
                    "INSERT INTO policies (id, organization_id, name, effect, condition, consensus, time, notes,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        p.id,
                        p.organization_id,
                        p.name,
                        p.effect,
                        p.condition,
                        p.consensus,
                        p.time,
                        p.notes,
                        p.created_at,
                        p.updated_at,
                    ),
                )
            ],
        )

    @staticmethod
    def update_policy(p: PolicyRecord) -> list[Op]:
        return _mark(
            p.organization_id,
            [
                (
                    "UPDATE policies SET name = ?, effect = ?, condition = ?, consensus = ?, time = ?, notes = ?,"
                    " updated_at = ? WHERE id = ? AND organization_id = ?",
                    (
                        p.name,
                        p.effect,
                        p.condition,
                        p.consensus,
                        p.time,
                        p.notes,
                        p.updated_at,
                        p.id,
                        p.organization_id,
                    ),
                )
            ],
        )

    @staticmethod
    def delete_policy(org_id: str, policy_id: str) -> list[Op]:
        return _mark(org_id, [("DELETE FROM policies WHERE id = ? AND organization_id = ?", (policy_id, org_id))])

    # -- tags -------------------------------------------------------------------------------------------
    def tags(self, org_id: str, tag_type: str) -> list[Tag]:
        return list(self._cached(("tags", org_id, tag_type), lambda: self._load_tags(org_id, tag_type)))

    def _load_tags(self, org_id: str, tag_type: str) -> tuple[Tag, ...]:
        rows = self._checked_all(
            "tags",
            org_id,
            self.db.all(
                "SELECT * FROM tags WHERE organization_id = ? AND type = ? ORDER BY created_at, id", (org_id, tag_type)
            ),
            lambda r: r["type"] == tag_type,
        )
        return tuple(
            Tag(r["id"], r["organization_id"], r["name"], r["type"], r["created_at"], r["updated_at"]) for r in rows
        )

    @staticmethod
    def insert_tag(tag: Tag) -> list[Op]:
        return _mark(
            tag.organization_id,
            [
                (
                    "INSERT INTO tags (id, organization_id, name, type, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (tag.id, tag.organization_id, tag.name, tag.type, tag.created_at, tag.updated_at),
                )
            ],
        )

    @staticmethod
    def rename_tag(org_id: str, tag_id: str, name: str, now_ms: int) -> list[Op]:
        return _mark(
            org_id,
            [
                (
                    "UPDATE tags SET name = ?, updated_at = ? WHERE id = ? AND organization_id = ?",
                    (name, now_ms, tag_id, org_id),
                )
            ],
        )

    @staticmethod
    def delete_tag(org_id: str, tag_id: str) -> list[Op]:
        return _mark(org_id, [("DELETE FROM tags WHERE id = ? AND organization_id = ?", (tag_id, org_id))])

    @staticmethod
    def set_user_tags(org_id: str, user_id: str, tags: Sequence[str], now_ms: int) -> list[Op]:
        return _mark(
            org_id,
            [
                (
                    "UPDATE users SET tags = ?, updated_at = ? WHERE id = ? AND organization_id = ?",
                    (json.dumps(list(tags)), now_ms, user_id, org_id),
                )
            ],
        )

    @staticmethod
    def set_private_key_tags(org_id: str, key_id: str, tags: Sequence[str], now_ms: int) -> list[Op]:
        return _mark(
            org_id,
            [
                (
                    "UPDATE private_keys SET tags = ?, updated_at = ? WHERE id = ? AND organization_id = ?",
                    (json.dumps(list(tags)), now_ms, key_id, org_id),
                )
            ],
        )

    # -- root quorum --------------------------------------------------------------------------------
    @staticmethod
    def set_root_quorum(org_id: str, threshold: int, user_ids: Sequence[str], now_ms: int) -> list[Op]:
        return _mark(
            org_id,
            [
                ("DELETE FROM root_quorum WHERE organization_id = ?", (org_id,)),
                *(("INSERT INTO root_quorum (organization_id, user_id) VALUES (?, ?)", (org_id, u)) for u in user_ids),
                (
                    "UPDATE organizations SET root_quorum_threshold = ?, updated_at = ? WHERE id = ?",
                    (threshold, now_ms, org_id),
                ),
            ],
        )

    # -- activities -------------------------------------------------------------------------------
    @staticmethod
    def _activity(row: Row) -> Activity:
        return Activity(
            row["id"],
            row["organization_id"],
            row["type"],
            row["status"],
            row["fingerprint"],
            row["user_id"],
            json.loads(row["intent"]),
            json.loads(row["result"]),
            None if row["failure"] is None else json.loads(row["failure"]),
            json.loads(row["votes"]),
            row["created_at"],
            row["updated_at"],
            json.loads(row["policy_evaluations"]),
        )

    def activity(self, org_id: str, activity_id: str) -> Activity | None:
        row = self.db.one("SELECT * FROM activities WHERE id = ? AND organization_id = ?", (activity_id, org_id))
        return None if row is None else self._activity(row)

    def recent_fingerprints(self, since_ms: int) -> list[tuple[str, int]]:
        rows = self.db.all(
            "SELECT fingerprint, created_at FROM activities WHERE created_at >= ? ORDER BY created_at", (since_ms,)
        )
        return [(r["fingerprint"], r["created_at"]) for r in rows]

    def audit_entries_of_activity(self, org_id: str, activity_id: str) -> list[tuple[int, str, dict[str, Any]]]:
        """(seq, hash, entry) of the audit entries about one activity, in order (portable SQL: no
        JSON functions, which differ between SQLite and PostgreSQL)."""
        try:
            activity_id = str(uuid.UUID(activity_id))
        except ValueError:
            return []
        rows = self.db.all(
            "SELECT seq, hash, body FROM audit_log WHERE body LIKE ? ORDER BY seq",
            (f'%"activity_id":"{activity_id}"%',),
        )
        out = []
        for row in rows:
            entry = orjson.loads(row[2])
            if entry.get("activity_id") == activity_id and entry.get("organization_id") == org_id:
                out.append((int(row[0]), str(row[1]), entry))
        return out

    def stored_request(self, fingerprint: str) -> tuple[bytes, str, str | None, str] | None:
        """The exact request bytes, stamp header, user and organization recorded for a fingerprint."""
        row = self.db.one(
            "SELECT request, stamp, user_id, organization_id FROM activities WHERE fingerprint = ?", (fingerprint,)
        )
        if row is None:
            return None
        return bytes(row[0]), str(row[1]), None if row[2] is None else str(row[2]), str(row[3])

    def activity_by_fingerprint(self, fingerprint: str) -> Activity | None:
        row = self.db.one("SELECT * FROM activities WHERE fingerprint = ?", (fingerprint,))
        return None if row is None else self._activity(row)

    def activities(
        self,
        org_id: str,
        *,
        statuses: Sequence[str] = (),
        types: Sequence[str] = (),
        limit: int = 10,
        before: str | None = None,
        after: str | None = None,
    ) -> list[Activity]:
        """Newest first. `before`/`after` are activity ids (cursors) in that order."""
        sql = "SELECT * FROM activities WHERE organization_id = ?"
        params: list[str | int] = [org_id]
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            params += list(statuses)
        if types:
            sql += f" AND type IN ({','.join('?' * len(types))})"
            params += list(types)
        # "before" = older than the cursor (later in the newest-first list); "after" = newer.
        order = "DESC"
        if before is not None:
            sql += " AND seq < (SELECT seq FROM activities WHERE id = ? AND organization_id = ?)"
            params += [before, org_id]
        if after is not None:
            sql += " AND seq > (SELECT seq FROM activities WHERE id = ? AND organization_id = ?)"
            params += [after, org_id]
            if before is None:
                order = "ASC"
        sql += f" ORDER BY seq {order} LIMIT ?"
        params.append(limit)
        rows = [self._activity(r) for r in self.db.all(sql, params)]
        if order == "ASC":
            rows.reverse()
        return rows

    @staticmethod
    def _activity_entry(activity: Activity, request_digest: str, result: str, actor_key: str | None) -> dict[str, Any]:
        return {
            "kind": "activity",
            "at_ms": activity.updated_at,
            "organization_id": activity.organization_id,
            "user_id": activity.user_id,
            "credential": actor_key,
            "type": activity.type,
            "status": activity.status,
            "activity_id": activity.id,
            "fingerprint": activity.fingerprint,
            "request_digest": request_digest,
            "result_digest": audit.digest(result),
        }

    @staticmethod
    def insert_activity(activity: Activity, request: bytes, stamp: str, actor_key: str) -> list[Op]:
        """The activity row and its audit entry, to be committed together."""
        result = orjson.dumps(activity.result).decode()
        entry = Repository._activity_entry(activity, audit.digest(request), result, actor_key)
        return [
            (
                "INSERT INTO activities (id, organization_id, type, status, fingerprint, user_id, intent, result,"
                " failure, votes, request, stamp, created_at, updated_at, policy_evaluations)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    activity.id,
                    activity.organization_id,
                    activity.type,
                    activity.status,
                    activity.fingerprint,
                    activity.user_id,
                    orjson.dumps(activity.intent).decode(),
                    result,
                    None if activity.failure is None else orjson.dumps(activity.failure).decode(),
                    orjson.dumps(activity.votes).decode(),
                    request,
                    stamp,
                    activity.created_at,
                    activity.updated_at,
                    orjson.dumps(activity.policy_evaluations).decode(),
                ),
            ),
            audit.append_op(entry),
        ]

    def update_activity(self, activity: Activity, *, expected_status: str) -> list[Op]:
        """A state change (votes, completion), only from `expected_status`, with its audit entry."""
        result = orjson.dumps(activity.result).decode()
        row = self.db.one("SELECT request FROM activities WHERE id = ?", (activity.id,))
        request_digest = audit.digest(bytes(row["request"])) if row is not None else ""
        entry = self._activity_entry(activity, request_digest, result, None)
        return [
            (
                "UPDATE activities SET status = ?, result = ?, failure = ?, votes = ?, policy_evaluations = ?,"
                " updated_at = ? WHERE id = ? AND status = ?" + EXPECT_ROW,
                (
                    activity.status,
                    result,
                    None if activity.failure is None else orjson.dumps(activity.failure).decode(),
                    orjson.dumps(activity.votes).decode(),
                    orjson.dumps(activity.policy_evaluations).decode(),
                    activity.updated_at,
                    activity.id,
                    expected_status,
                ),
            ),
            audit.append_op(entry),
        ]

    @staticmethod
    def audit_refusal(
        at_ms: int, organization_id: str, user_id: str | None, actor_key: str, what: str, error: str, code: str
    ) -> list[Op]:
        """An authenticated request that was refused: who, what, and why."""
        return [
            audit.append_op(
                {
                    "kind": "refusal",
                    "at_ms": at_ms,
                    "organization_id": organization_id,
                    "user_id": user_id,
                    "credential": actor_key,
                    "type": what,
                    "decision": code,
                    "reason": error,
                }
            )
        ]

    # -- signed checkpoints of the audit chain ------------------------------------------------------
    def last_checkpoint_seq(self) -> int:
        """The chain entry the last signed checkpoint covers (0: none yet)."""
        row = self.db.one("SELECT max(seq) FROM audit_checkpoints")
        return 0 if row is None or row[0] is None else int(row[0])

    @staticmethod
    def insert_checkpoint(
        seq: int, head: str, at_ms: int, scheme: str, public_key: bytes | None, signature: bytes | None
    ) -> list[Op]:
        return [
            (
                "INSERT INTO audit_checkpoints (seq, hash, at_ms, scheme, public_key, signature)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (seq, head, at_ms, scheme, public_key, signature),
            )
        ]

    # -- usage ------------------------------------------------------------------------------------
    def signatures_used(self, org_id: str, month: str) -> int:
        row = self.db.one("SELECT signatures FROM usage WHERE organization_id = ? AND month = ?", (org_id, month))
        return 0 if row is None else int(row["signatures"])

    def signature_quota(self, org_id: str) -> int | None:
        row = self.db.one("SELECT * FROM organizations WHERE id = ?", (org_id,))
        if row is None:
            return None
        quota = self._checked("organizations", row)["monthly_signature_quota"]
        return None if quota is None else int(quota)

    @staticmethod
    def add_usage(org_id: str, month: str, signatures: int) -> list[Op]:
        return [
            (
                "INSERT INTO usage (organization_id, month, signatures) VALUES (?, ?, ?)"
                " ON CONFLICT (organization_id, month)"
                " DO UPDATE SET signatures = usage.signatures + excluded.signatures",
                (org_id, month, signatures),
            )
        ]

    @staticmethod
    def set_signature_quota(org_id: str, quota: int | None) -> list[Op]:
        return _mark(org_id, [("UPDATE organizations SET monthly_signature_quota = ? WHERE id = ?", (quota, org_id))])
