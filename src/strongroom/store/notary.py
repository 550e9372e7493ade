"""Notarised state: the database is untrusted storage; the token vouches for what authorised activities wrote.

Every row that decides authorisation or custody belongs to one organization's **state**: its own
`organizations` row (name, parent, root quorum threshold, signature quota), its `root_quorum`,
`users` (access type, tags), `api_keys`, `authenticators` (the passkey signature counter aside:
it moves on every passkey-stamped request and only guards against cloned authenticators),
`private_keys` and `key_addresses`, `policies` and `tags`, wallets and their accounts, and
`webhook_endpoints` (where approval notices are sent).

Each row has a hash (SHA-256 over its table and canonical column values); each table of an
organization a digest over its rows' hashes; the organization a digest over its tables' digests.
`org_state` keeps, per organization, a version counter, the per-table digests and the MAC the
token made (HMAC-SHA256 under a non-extractable key, `hsm.keystore.Notary`) over the
organization id, the version and the digests. So:

- an edited or inserted row is not among the hashes the token vouched for;
- a deleted row, or an old row restored in place of a newer one, changes its table's digest;
- an old `org_state` restored with its rows (a rollback of one organization) is caught by the
  version that the audit chain and the running daemon have seen (the chain records every state
  change, and its checkpoints are signed by a key pinned outside the database).

Only the group-commit writer notarises, inside the transaction that changes the rows: a write
that touches an organization's state carries a `notarise_op(org_id)`, and the writer first checks
the organization's current rows against its notarisation (a write never launders a tampered
state), then applies the write, then computes the new digests, asks the token for the MAC, stores
the next version and appends a `state` entry to the audit chain. Rows are notarised only by the
pipeline that executed an authorising activity, or by `init` / `org create` / `migrate`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from strongroom.errors import Unavailable
from strongroom.store import audit
from strongroom.store.group_commit import Op, Param

NOTARISE_OP: Final = "-- strongroom notarise"
ADOPT_OP: Final = "-- strongroom notarise adopt"  # `migrate --notarise`: vouch for rows as they are
MESSAGE_PREFIX: Final = b"strongroom-notary-v1"


class Mac(Protocol):
    """The token's HMAC (see `strongroom.hsm.keystore.Notary`)."""

    def mac(self, message: bytes) -> bytes: ...

    def check(self, message: bytes, mac: bytes) -> bool: ...


class TamperedState(Unavailable):
    """Stored state does not match what the token notarised: refuse, name the object."""


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    scope: str  # the column that names the organization
    columns: tuple[str, ...]  # hashed, in this order
    key: tuple[str, ...]  # identifies a row in messages
    # Columns added after rows were notarised: hashed (after `columns`, with their names) only when
    # set, so a row notarised before they existed keeps its hash while they hold their default.
    optional: tuple[str, ...] = ()


TABLES: Final[tuple[Table, ...]] = (
    Table(
        "organizations",
        "id",
        ("id", "name", "parent_id", "root_quorum_threshold", "monthly_signature_quota", "created_at", "updated_at"),
        ("id",),
    ),
    Table("root_quorum", "organization_id", ("organization_id", "user_id"), ("user_id",)),
    Table(
        "users",
        "organization_id",
        ("id", "organization_id", "name", "email", "access_type", "tags", "phone_number", "created_at", "updated_at"),
        ("id",),
    ),
    Table(
        "api_keys",
        "organization_id",
        ("id", "user_id", "organization_id", "name", "public_key", "curve", "expires_at", "created_at", "updated_at"),
        ("id",),
    ),
    Table(
        "authenticators",
        "organization_id",
        (
            "id",
            "user_id",
            "organization_id",
            "name",
            "credential_id",
            "cose_key",
            "public_key",
            "aaguid",
            "attestation_type",
            "transports",
            "created_at",
            "updated_at",
        ),
        ("id",),
    ),
    Table(
        "private_keys",
        "organization_id",
        (
            "id",
            "organization_id",
            "name",
            "curve",
            "public_key",
            "backend",
            "wrapped",
            "addresses",
            "tags",
            "created_at",
            "updated_at",
        ),
        ("id",),
        optional=("exported", "imported"),
    ),
    Table("key_addresses", "organization_id", ("organization_id", "address", "private_key_id"), ("address",)),
    Table(
        "policies",
        "organization_id",
        (
            "id",
            "organization_id",
            "name",
            "effect",
            "condition",
            "consensus",
            "time",
            "notes",
            "created_at",
            "updated_at",
        ),
        ("id",),
    ),
    Table("tags", "organization_id", ("id", "organization_id", "name", "type", "created_at", "updated_at"), ("id",)),
    # Added with schema step 9. A state notarised before then has no digest for them: it stays valid
    # while they are empty for that organization (`check`), and the next write notarises them.
    Table(
        "wallets",
        "organization_id",
        (
            "id",
            "organization_id",
            "name",
            "sealed_mnemonic",
            "sealed_seed",
            "imported",
            "exported",
            "created_at",
            "updated_at",
        ),
        ("id",),
    ),
    Table(
        "wallet_accounts",
        "organization_id",
        (
            "id",
            "organization_id",
            "wallet_id",
            "name",
            "curve",
            "path_format",
            "path",
            "address_format",
            "address",
            "address_key",
            "public_key",
            "position",
            "created_at",
            "updated_at",
        ),
        ("id",),
    ),
    # Schema step 11: an ABI decides what a policy reads of a call (`eth.tx.contract_call_args`).
    Table(
        "smart_contract_interfaces",
        "organization_id",
        (
            "id",
            "organization_id",
            "address",
            "address_key",
            "type",
            "interface",
            "digest",
            "label",
            "notes",
            "created_at",
            "updated_at",
        ),
        ("id",),
    ),
    # Added with schema step 11: where approval notices go (an edited URL would redirect them).
    Table(
        "webhook_endpoints",
        "organization_id",
        ("id", "organization_id", "name", "url", "is_active", "subscriptions", "created_at", "updated_at"),
        ("id",),
    ),
)
LATER_TABLES: Final = frozenset({"wallets", "wallet_accounts", "smart_contract_interfaces", "webhook_endpoints"})
"""Tables notarised since a later schema step: a state that predates them lacks their digest."""
BY_NAME: Final = {t.name: t for t in TABLES}

Query = Callable[[str, Sequence[Param]], Sequence[Any]]


def notarise_op(org_id: str) -> Op:
    """Marks a write that changes `org_id`'s state: the writer re-notarises it in the same transaction."""
    return (NOTARISE_OP, (org_id,))


def adopt_op(org_id: str) -> Op:
    """Notarise `org_id`'s rows as they are, without checking them first: only for `strongroom
    migrate --notarise`, the operator's explicit consent for a database that predates notarisation."""
    return (ADOPT_OP, (org_id,))


def _value(v: Any) -> Any:
    if isinstance(v, bool):  # PostgreSQL's BOOLEAN and SQLite's 0/1 hash alike (copy_from_sqlite)
        return int(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return "0x" + bytes(v).hex()
    return v


def row_hash(table: Table, row: Any) -> str:
    """SHA-256 of a row's table and canonical column values (hex)."""
    values = [_value(row[c]) for c in table.columns]
    values += [[c, _value(row[c])] for c in table.optional if row[c]]
    return hashlib.sha256(orjson.dumps([table.name, values])).hexdigest()


def describe(table: Table, row: Any) -> str:
    """`users row 1234…` for messages (ids only, never content)."""
    ident = "/".join(str(row[c]) for c in table.key)
    return f"`{table.name}` row `{ident[:80]}`"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An organization's rows as read, with their hashes and the digests they produce."""

    org_id: str
    rows: Mapping[str, Sequence[Any]]
    hashes: Mapping[str, frozenset[str]]
    digests: Mapping[str, str]

    @property
    def digest(self) -> str:
        return hashlib.sha256(orjson.dumps(sorted(self.digests.items()))).hexdigest()

    @property
    def empty(self) -> bool:
        return not any(self.rows.values())


EMPTY_DIGEST: Final = hashlib.sha256(b"").hexdigest()


def load(query: Query, org_id: str) -> Snapshot:
    """Read every notarised row of an organization and compute the digests."""
    rows: dict[str, Sequence[Any]] = {}
    hashes: dict[str, frozenset[str]] = {}
    digests: dict[str, str] = {}
    for table in TABLES:
        found = query(f"SELECT * FROM {table.name} WHERE {table.scope} = ?", (org_id,))
        row_hashes = sorted(row_hash(table, r) for r in found)
        rows[table.name] = found
        hashes[table.name] = frozenset(row_hashes)
        digests[table.name] = hashlib.sha256("\n".join(row_hashes).encode()).hexdigest()
    return Snapshot(org_id, rows, hashes, digests)


def message(org_id: str, version: int, digests: Mapping[str, str]) -> bytes:
    """What the token MACs: the organization, the version, and every table's digest."""
    return b"\n".join([MESSAGE_PREFIX, org_id.encode(), str(version).encode(), orjson.dumps(sorted(digests.items()))])


@dataclass(frozen=True, slots=True)
class Stored:
    """An `org_state` row."""

    org_id: str
    version: int
    digests: Mapping[str, str]
    mac: bytes


def read_version(query: Query, org_id: str) -> tuple[int, bytes] | None:
    """Which notarised state is current (version and MAC), without the digests: enough to tell
    that an already verified snapshot is still the current one."""
    found = query("SELECT version, mac FROM org_state WHERE organization_id = ?", (org_id,))
    return None if not found else (int(found[0][0]), bytes(found[0][1]))


def read_stored(query: Query, org_id: str) -> Stored | None:
    found = query("SELECT version, digests, mac FROM org_state WHERE organization_id = ?", (org_id,))
    if not found:
        return None
    row = found[0]
    try:
        digests = orjson.loads(row[1])
    except orjson.JSONDecodeError:
        digests = {}
    if not isinstance(digests, dict):
        digests = {}
    return Stored(org_id, int(row[0]), {str(k): str(v) for k, v in digests.items()}, bytes(row[2]))


def check(stored: Stored | None, snapshot: Snapshot, notary: Mac) -> None:
    """Raise `TamperedState` naming the first table whose rows differ from the notarised state."""
    org_id = snapshot.org_id
    if stored is None:
        raise TamperedState(
            f"organization `{org_id}` has no notarised state: its rows were not written by an authorised "
            "activity (or the database predates notarisation: run `strongroom migrate --notarise`)"
        )
    for table in TABLES:
        expected = stored.digests.get(table.name)
        if expected is None and table.name in LATER_TABLES:
            expected = EMPTY_DIGEST  # notarised before the table existed: it must still be empty
        if expected != snapshot.digests[table.name]:
            raise TamperedState(
                f"the `{table.name}` rows of organization `{org_id}` do not match their notarisation: "
                "they were changed outside an authorised activity"
            )
    names = {t.name for t in TABLES}
    if not names - LATER_TABLES <= set(stored.digests) <= names or not notary.check(
        message(org_id, stored.version, stored.digests), stored.mac
    ):
        raise TamperedState(
            f"the notarised state of organization `{org_id}` does not carry the token's MAC: it was forged"
        )


def notarised_ops(stored: Stored | None, snapshot: Snapshot, notary: Mac) -> tuple[int, list[Op]]:
    """The next version's `org_state` upsert for a snapshot taken after a write."""
    version = (stored.version if stored is not None else 0) + 1
    mac = notary.mac(message(snapshot.org_id, version, snapshot.digests))
    digests = orjson.dumps(dict(sorted(snapshot.digests.items()))).decode()
    return version, [
        (
            "INSERT INTO org_state (organization_id, version, digests, mac) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (organization_id) DO UPDATE SET version = excluded.version,"
            " digests = excluded.digests, mac = excluded.mac",
            (snapshot.org_id, version, digests, mac),
        )
    ]


def state_entry(org_id: str, version: int, snapshot: Snapshot) -> dict[str, Any]:
    """The audit entry of a state change: which organization, which version, which digest."""
    return {"kind": "state", "organization_id": org_id, "version": version, "digest": snapshot.digest}


class WriterNotary:
    """The writer's side: check before a write, notarise after it (see the module docstring)."""

    def __init__(self, notary: Mac) -> None:
        self.notary = notary

    def before(
        self, query: Query, org_ids: Sequence[str], adopt: frozenset[str] = frozenset()
    ) -> dict[str, Stored | None]:
        out: dict[str, Stored | None] = {}
        for org_id in org_ids:
            stored = read_stored(query, org_id)
            if org_id in adopt:
                out[org_id] = stored
                continue
            snapshot = load(query, org_id)
            if stored is None and snapshot.empty:
                out[org_id] = None  # a new organization: nothing to vouch for yet
                continue
            check(stored, snapshot, self.notary)
            out[org_id] = stored
        return out

    def after(self, query: Query, before: Mapping[str, Stored | None]) -> tuple[list[Op], list[dict[str, Any]]]:
        ops: list[Op] = []
        entries: list[dict[str, Any]] = []
        for org_id, stored in before.items():
            snapshot = load(query, org_id)
            version, upsert = notarised_ops(stored, snapshot, self.notary)
            ops += upsert
            entries.append(state_entry(org_id, version, snapshot))
        return ops, entries


def apply(
    ops: Sequence[Op], query: Query, execute: Callable[[str, Sequence[Param]], None], notary: WriterNotary | None
) -> None:
    """Run one job's ops in the writer's open transaction, notarising the organizations it marks.

    `execute` runs one op (audit appends included). Without a notary (a store opened without a
    token, e.g. by tests of the store alone) the marks are skipped.
    """
    orgs = marked_orgs(ops) if notary is not None else []
    adopt = frozenset(str(params[0]) for sql, params in ops if sql == ADOPT_OP)
    before = notary.before(query, orgs, adopt) if notary is not None and orgs else {}
    for sql, params in ops:
        if sql not in (NOTARISE_OP, ADOPT_OP):
            execute(sql, params)
    if notary is not None and before:
        upserts, entries = notary.after(query, before)
        for sql, params in upserts:
            execute(sql, params)
        for entry in entries:
            execute(*audit.append_op(entry))


def marked_orgs(ops: Sequence[Op]) -> list[str]:
    """The organizations a job's ops ask to re-notarise, in order, once each."""
    return list(dict.fromkeys(str(params[0]) for sql, params in ops if sql in (NOTARISE_OP, ADOPT_OP)))


__all__ = [
    "BY_NAME",
    "NOTARISE_OP",
    "TABLES",
    "Mac",
    "Snapshot",
    "Stored",
    "TamperedState",
    "WriterNotary",
    "adopt_op",
    "apply",
    "check",
    "describe",
    "load",
    "marked_orgs",
    "notarise_op",
    "read_stored",
    "read_version",
    "row_hash",
]
