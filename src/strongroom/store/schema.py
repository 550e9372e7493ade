"""The schema, described once; SQLite's and PostgreSQL's DDL are generated from it.

How to change the schema (never edit a step that has shipped: databases already ran it):
- add a table: declare it below (`NAME = Table("name", Column(...), ..., primary_key=..., unique=...)`)
  and append a step that creates it: `Step(7, "what it is for", NAME)`;
- add a column to an existing table: `Step(8, "why", AddColumn("table", Column("name", INT, null=True)))`
  (a NOT NULL column needs a `default`); add an index: `Step(9, "why", Index("name", "table", "column"))`;
- something the description cannot say: `Raw(sqlite=("...",), postgres=("...",))` in a step;
- then `tests/store/test_contract.py` runs it on both backends; `notary.TABLES` lists what is
  notarised and `postgres.copy_from_sqlite` copies every table in creation order.

Portable types: `TEXT`, `INT` (64-bit: SQLite INTEGER, PostgreSQL BIGINT), `BYTES` (BLOB, BYTEA),
`BOOL` (INTEGER 0/1, BOOLEAN) and `SERIAL` (an ascending 64-bit key the database assigns).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

Dialect = Literal["sqlite", "postgres"]
Type = Literal["TEXT", "INT", "BYTES", "BOOL", "SERIAL"]
TEXT: Final[Type] = "TEXT"
INT: Final[Type] = "INT"
BYTES: Final[Type] = "BYTES"
BOOL: Final[Type] = "BOOL"
SERIAL: Final[Type] = "SERIAL"

_TYPES: Final[dict[Dialect, dict[Type, str]]] = {
    "sqlite": {"TEXT": "TEXT", "INT": "INTEGER", "BYTES": "BLOB", "BOOL": "INTEGER", "SERIAL": "INTEGER"},
    "postgres": {
        "TEXT": "TEXT",
        "INT": "BIGINT",
        "BYTES": "BYTEA",
        "BOOL": "BOOLEAN",
        "SERIAL": "BIGINT GENERATED ALWAYS AS IDENTITY",
    },
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: Type
    null: bool = False
    primary_key: bool = False
    unique: bool = False
    default: str | None = None  # an SQL literal, the same in both dialects: `'[]'`, `0`
    references: str | None = None  # `table(column)`

    def ddl(self, dialect: Dialect) -> str:
        out = f"{self.name} {_TYPES[dialect][self.type]}"
        if self.primary_key:
            out += " PRIMARY KEY" + (" AUTOINCREMENT" if self.type == SERIAL and dialect == "sqlite" else "")
        elif not self.null:
            out += " NOT NULL"
        if self.unique:
            out += " UNIQUE"
        if self.default is not None:
            out += f" DEFAULT {self.default}"
        if self.references is not None:
            out += f" REFERENCES {self.references}"
        return out


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()  # a composite key (a single one is `Column(primary_key=True)`)
    unique: tuple[tuple[str, ...], ...] = ()

    def __init__(
        self,
        name: str,
        *columns: Column,
        primary_key: tuple[str, ...] = (),
        unique: tuple[tuple[str, ...], ...] = (),
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "primary_key", primary_key)
        object.__setattr__(self, "unique", unique)

    def ddl(self, dialect: Dialect) -> list[str]:
        parts = [c.ddl(dialect) for c in self.columns]
        if self.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(self.primary_key)})")
        parts += [f"UNIQUE ({', '.join(u)})" for u in self.unique]
        return [f"CREATE TABLE {self.name} ({', '.join(parts)})"]


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    table: str
    columns: tuple[str, ...]

    def __init__(self, name: str, table: str, *columns: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "table", table)
        object.__setattr__(self, "columns", columns)

    def ddl(self, dialect: Dialect) -> list[str]:
        return [f"CREATE INDEX {self.name} ON {self.table}({', '.join(self.columns)})"]


@dataclass(frozen=True, slots=True)
class AddColumn:
    table: str
    column: Column

    def ddl(self, dialect: Dialect) -> list[str]:
        return [f"ALTER TABLE {self.table} ADD COLUMN {self.column.ddl(dialect)}"]


@dataclass(frozen=True, slots=True)
class Raw:
    """The escape hatch: statements written per dialect, for what the description cannot say."""

    sqlite: tuple[str, ...] = ()
    postgres: tuple[str, ...] = ()

    def ddl(self, dialect: Dialect) -> list[str]:
        return list(self.sqlite if dialect == "sqlite" else self.postgres)


Change = Table | Index | AddColumn | Raw


@dataclass(frozen=True, slots=True)
class Step:
    version: int
    why: str
    changes: tuple[Change, ...]

    def __init__(self, version: int, why: str, *changes: Change) -> None:
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "why", why)
        object.__setattr__(self, "changes", changes)

    def ddl(self, dialect: Dialect) -> tuple[str, ...]:
        return tuple(statement for change in self.changes for statement in change.ddl(dialect))


# -- the tables ------------------------------------------------------------------------------------
def _id() -> Column:
    return Column("id", TEXT, primary_key=True)


def _org(*, references: bool = True) -> Column:
    return Column("organization_id", TEXT, references="organizations(id)" if references else None)


def _tags() -> Column:
    return Column("tags", TEXT, default="'[]'")


def _times() -> tuple[Column, Column]:
    return Column("created_at", INT), Column("updated_at", INT)


ORGANIZATIONS: Final = Table(
    "organizations",
    _id(),
    Column("name", TEXT),
    Column("parent_id", TEXT, null=True, references="organizations(id)"),
    Column("root_quorum_threshold", INT),
    *_times(),
)
USERS: Final = Table(
    "users",
    _id(),
    _org(),
    Column("name", TEXT),
    Column("email", TEXT, null=True, unique=True),
    Column("access_type", TEXT),
    _tags(),
    *_times(),
)
ROOT_QUORUM: Final = Table(
    "root_quorum",
    _org(),
    Column("user_id", TEXT, references="users(id)"),
    primary_key=("organization_id", "user_id"),
)
API_KEYS: Final = Table(
    "api_keys",
    _id(),
    Column("user_id", TEXT, references="users(id)"),
    _org(),
    Column("name", TEXT),
    Column("public_key", TEXT),
    Column("curve", TEXT),
    Column("expires_at", INT, null=True),
    *_times(),
    unique=(("organization_id", "public_key"),),
)
PRIVATE_KEYS: Final = Table(
    "private_keys",
    _id(),
    _org(),
    Column("name", TEXT),
    Column("curve", TEXT),
    Column("public_key", BYTES),
    Column("backend", TEXT),
    Column("wrapped", BYTES, null=True),
    Column("addresses", TEXT),
    _tags(),
    *_times(),
    unique=(("organization_id", "name"),),
)
KEY_ADDRESSES: Final = Table(
    "key_addresses",
    _org(references=False),
    Column("address", TEXT),
    Column("private_key_id", TEXT, references="private_keys(id)"),
    primary_key=("organization_id", "address", "private_key_id"),
)
ACTIVITIES: Final = Table(
    "activities",
    Column("seq", SERIAL, primary_key=True),
    Column("id", TEXT, unique=True),
    _org(references=False),
    Column("type", TEXT),
    Column("status", TEXT),
    Column("fingerprint", TEXT, unique=True),
    Column("user_id", TEXT, null=True),
    Column("intent", TEXT),
    Column("result", TEXT),
    Column("failure", TEXT, null=True),
    Column("votes", TEXT),
    Column("request", BYTES),
    Column("stamp", TEXT),
    *_times(),
)
AUDIT_LOG: Final = Table(
    "audit_log",
    Column("seq", INT, primary_key=True),
    Column("body", TEXT),
    Column("prev_hash", TEXT),
    Column("hash", TEXT),
)
AUDIT_CHECKPOINTS: Final = Table(
    "audit_checkpoints",
    Column("seq", INT, primary_key=True),
    Column("hash", TEXT),
    Column("at_ms", INT),
    Column("scheme", TEXT),
    Column("public_key", BYTES, null=True),
    Column("signature", BYTES, null=True),
)
USAGE: Final = Table(
    "usage",
    _org(references=False),
    Column("month", TEXT),
    Column("signatures", INT),
    primary_key=("organization_id", "month"),
)
POLICIES: Final = Table(
    "policies",
    _id(),
    _org(),
    Column("name", TEXT),
    Column("effect", TEXT),
    *(Column(name, TEXT, default="''") for name in ("condition", "consensus", "time", "notes")),
    *_times(),
    unique=(("organization_id", "name"),),
)
TAGS: Final = Table(
    "tags",
    _id(),
    _org(),
    Column("name", TEXT),
    Column("type", TEXT),
    *_times(),
    unique=(("organization_id", "type", "name"),),
)
AUTHENTICATORS: Final = Table(
    "authenticators",
    _id(),
    Column("user_id", TEXT, references="users(id)"),
    _org(),
    Column("name", TEXT),
    Column("credential_id", TEXT),
    Column("cose_key", BYTES),
    Column("public_key", TEXT),
    Column("aaguid", TEXT),
    Column("attestation_type", TEXT),
    Column("transports", TEXT, default="'[]'"),
    Column("sign_count", INT, default="0"),
    *_times(),
    unique=(("organization_id", "credential_id"),),
)
ORG_STATE: Final = Table(
    "org_state",
    Column("organization_id", TEXT, primary_key=True),
    Column("version", INT),
    Column("digests", TEXT),
    Column("mac", BYTES),
)
DASHBOARD_SESSIONS: Final = Table(
    "dashboard_sessions",
    Column("session_hash", TEXT, primary_key=True),  # SHA-256 of the cookie: the id itself is a bearer secret
    Column("user_id", TEXT),
    Column("organization_id", TEXT),
    Column("authenticator_id", TEXT),
    Column("created_at", INT),
    Column("expires_at", INT),
)
LOGIN_CHALLENGES: Final = Table(
    "login_challenges",
    Column("challenge_hash", TEXT, primary_key=True),
    Column("user_id", TEXT, null=True),  # None: a decoy for an unknown email
    Column("email", TEXT),
    Column("client", TEXT),
    Column("issued", INT),
    Column("expires_at", INT),
)
USAGE_RESERVATIONS: Final = Table(
    "usage_reservations",
    _id(),
    _org(references=False),
    Column("month", TEXT),
    Column("signatures", INT),
    Column("expires_at", INT),
)
WALLETS: Final = Table(
    "wallets",
    _id(),
    _org(),
    Column("name", TEXT),
    Column("sealed_mnemonic", BYTES),  # nonce || AES-GCM under the token's KEK; only export opens it
    Column("sealed_seed", BYTES),  # the BIP-39 seed, sealed the same way; signing derives from it
    Column("imported", BOOL),
    Column("exported", BOOL),
    *_times(),
    unique=(("organization_id", "name"),),
)
WALLET_ACCOUNTS: Final = Table(
    "wallet_accounts",
    _id(),
    _org(),
    Column("wallet_id", TEXT, references="wallets(id)"),
    Column("name", TEXT, null=True),
    Column("curve", TEXT),
    Column("path_format", TEXT),
    Column("path", TEXT),
    Column("address_format", TEXT),
    Column("address", TEXT),
    Column("address_key", TEXT),  # the lookup form (`private_keys.address_key`)
    Column("public_key", BYTES),
    Column("position", INT),  # order of creation within the wallet (accounts made together share a time)
    *_times(),
    unique=(("wallet_id", "path", "address_format"),),
)
IMPORT_TARGETS: Final = Table(
    "import_targets",
    _id(),
    _org(references=False),
    Column("user_id", TEXT),
    Column("kind", TEXT),  # PRIVATE_KEY or WALLET
    Column("public_key", BYTES),  # the one-time P-256 key a client encrypts its key or mnemonic to
    Column("sealed_private", BYTES),  # its scalar, nonce || AES-GCM under the token's KEK
    Column("created_at", INT),
    Column("expires_at", INT),
)
SMART_CONTRACT_INTERFACES: Final = Table(
    "smart_contract_interfaces",
    _id(),
    _org(),
    Column("address", TEXT),  # as uploaded
    Column("address_key", TEXT),  # the lookup form (`private_keys.address_key`)
    Column("type", TEXT),  # SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM / _SOLANA
    Column("interface", TEXT),  # the ABI or IDL, JSON text as uploaded
    Column("digest", TEXT),  # SHA-256 of `interface`, hex
    Column("label", TEXT),
    Column("notes", TEXT),
    *_times(),
)

# Webhooks (schema step 11, store/webhooks.py). The endpoints are notarised (an edited URL would send
# approval notices elsewhere); an event is written in the transaction that changes its activity,
# with the token's MAC over its payload; a delivery is one (event, endpoint) pair the duty works on.
WEBHOOK_ENDPOINTS: Final = Table(
    "webhook_endpoints",
    _id(),
    _org(),
    Column("name", TEXT),
    Column("url", TEXT),
    Column("is_active", BOOL),
    Column("subscriptions", TEXT, default="'[]'"),  # Turnkey's v1WebhookSubscriptionParams, as JSON
    *_times(),
)
WEBHOOK_EVENTS: Final = Table(
    "webhook_events",
    _id(),
    _org(),
    Column("type", TEXT),
    Column("activity_id", TEXT),
    Column("payload", BYTES),  # the exact JSON body every endpoint receives
    Column("mac", BYTES),  # the token's HMAC over the id and the payload (none can be invented here)
    Column("created_at", INT),
)
WEBHOOK_DELIVERIES: Final = Table(
    "webhook_deliveries",
    Column("event_id", TEXT, references="webhook_events(id)"),
    Column("endpoint_id", TEXT),  # no reference: a deleted endpoint's deliveries are dropped by the duty
    _org(),
    Column("state", TEXT),  # pending, delivered, failed (attempts exhausted), dropped (endpoint gone)
    Column("attempts", INT, default="0"),
    Column("next_at", INT),  # not before (ms): the backoff
    Column("lease_until", INT, default="0"),  # claimed by a replica until then (ms)
    Column("last_status", INT, null=True),  # the last HTTP status (0: no answer)
    Column("delivered_at", INT, null=True),
    Column("created_at", INT),
    primary_key=("event_id", "endpoint_id"),
)
# The event stream's cursor (schema step 13, store/webhooks.py): each event gets an ascending `seq`
# when it is written. Events are written only by transactions that append to the audit chain, which
# hold the chain lock until they commit, so `seq` is assigned in commit order on every replica (a
# reader that saw `seq` n never sees a smaller one appear later).
EVENT_STREAM: Final = Table(
    "event_stream",
    Column("seq", SERIAL, primary_key=True),
    Column("event_id", TEXT, unique=True, references="webhook_events(id)"),
    _org(),
)

_BACKFILL_STREAM: Final = (
    "INSERT INTO event_stream (event_id, organization_id)"
    " SELECT id, organization_id FROM webhook_events ORDER BY created_at, id"
)

# -- the migrations: version n is STEPS[n - 1] -----------------------------------------------------
STEPS: Final[tuple[Step, ...]] = (
    Step(
        1,
        "organizations, users, credentials, private keys, activities",
        ORGANIZATIONS,
        USERS,
        ROOT_QUORUM,
        API_KEYS,
        Index("api_keys_public_key", "api_keys", "public_key"),
        PRIVATE_KEYS,
        KEY_ADDRESSES,
        ACTIVITIES,
        Index("activities_org_seq", "activities", "organization_id", "seq"),
    ),
    Step(
        2,
        "the idempotency window is reloaded at start-up by creation time",
        Index("activities_created_at", "activities", "created_at"),
    ),
    Step(
        3,
        "tamper-evident audit log, signed checkpoints, usage metering and quotas",
        AUDIT_LOG,
        AUDIT_CHECKPOINTS,
        USAGE,
        AddColumn("organizations", Column("monthly_signature_quota", INT, null=True)),
    ),
    Step(
        4,
        "policies, tags, and how policies evaluated for each activity",
        POLICIES,
        TAGS,
        AddColumn("activities", Column("policy_evaluations", TEXT, default="'[]'")),
    ),
    Step(
        5,
        "passkeys (WebAuthn authenticators), phone numbers, lookups by user and by parent org",
        AUTHENTICATORS,
        Index("authenticators_user", "authenticators", "user_id"),
        Index("authenticators_credential", "authenticators", "credential_id"),
        Index("api_keys_user", "api_keys", "user_id"),
        Index("users_organization", "users", "organization_id"),
        Index("organizations_parent", "organizations", "parent_id"),
        AddColumn("users", Column("phone_number", TEXT, null=True)),
    ),
    Step(6, "each organization's notarised state (store/notary.py)", ORG_STATE),
    Step(
        7,
        "dashboard sessions and passkey-login challenges (store/sessions.py), shared by replicas",
        DASHBOARD_SESSIONS,
        Index("dashboard_sessions_expires", "dashboard_sessions", "expires_at"),
        LOGIN_CHALLENGES,
        Index("login_challenges_email", "login_challenges", "email", "expires_at"),
        Index("login_challenges_client", "login_challenges", "client", "expires_at"),
        Index("login_challenges_expires", "login_challenges", "expires_at"),
    ),
    Step(
        8,
        "signatures reserved by requests in flight (store/usage.py); each row expires on its own",
        USAGE_RESERVATIONS,
        Index("usage_reservations_organization", "usage_reservations", "organization_id", "month"),
    ),
    Step(
        9,
        "HD wallets (store/wallets.py), found by address; key export/import (store/imports.py)",
        WALLETS,
        WALLET_ACCOUNTS,
        Index("wallet_accounts_address", "wallet_accounts", "organization_id", "address_key"),
        Index("wallet_accounts_wallet", "wallet_accounts", "wallet_id"),
        AddColumn("private_keys", Column("exported", BOOL, default="FALSE")),
        AddColumn("private_keys", Column("imported", BOOL, default="FALSE")),
        IMPORT_TARGETS,
        Index("import_targets_user", "import_targets", "organization_id", "user_id", "kind"),
    ),
    Step(
        10,
        "activities waiting for votes, oldest first, across organizations (the expiry duty)",
        Index("activities_status_created", "activities", "status", "created_at"),
    ),
    Step(
        11,
        "smart contract interfaces (ABIs, IDLs) that policies read calls through (store/contracts.py)",
        SMART_CONTRACT_INTERFACES,
        Index("smart_contract_interfaces_address", "smart_contract_interfaces", "organization_id", "address_key"),
    ),
    Step(
        12,
        "webhooks: notarised endpoints, an outbox of activity events and their deliveries (store/webhooks.py)",
        WEBHOOK_ENDPOINTS,
        Index("webhook_endpoints_organization", "webhook_endpoints", "organization_id"),
        WEBHOOK_EVENTS,
        WEBHOOK_DELIVERIES,
        Index("webhook_deliveries_due", "webhook_deliveries", "state", "next_at"),
    ),
    Step(
        13,
        "the event stream: an ascending cursor over each organization's webhook events (store/webhooks.py)",
        EVENT_STREAM,
        Index("event_stream_org_seq", "event_stream", "organization_id", "seq"),
        Raw(
            sqlite=(_BACKFILL_STREAM,),
            postgres=(_BACKFILL_STREAM,),
        ),
    ),
)

VERSION_TABLE: Final = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def migrations(dialect: Dialect) -> tuple[tuple[str, ...], ...]:
    """The statements of each version, in order (version n at index n - 1)."""
    assert [s.version for s in STEPS] == list(range(1, len(STEPS) + 1)), "steps are numbered 1, 2, 3, ..."
    return tuple(step.ddl(dialect) for step in STEPS)


def pending(scripts: tuple[tuple[str, ...], ...], current: int) -> Iterator[tuple[int, tuple[str, ...]]]:
    """(version, statements) of each migration after `current`, in order."""
    for version, statements in enumerate(scripts, start=1):
        if version > current:
            yield version, statements


def table_names() -> tuple[str, ...]:
    """Every table, in creation order (a table only references tables created before it)."""
    return tuple(c.name for step in STEPS for c in step.changes if isinstance(c, Table))


def serial_columns() -> tuple[tuple[str, str], ...]:
    """(table, column) of every SERIAL column (the database assigns them; a copy must keep them)."""
    return tuple(
        (c.name, col.name)
        for step in STEPS
        for c in step.changes
        if isinstance(c, Table)
        for col in c.columns
        if col.type == SERIAL
    )
