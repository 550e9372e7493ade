"""Domain records (frozen) and what the repository needs from a database.

The repository (`store/repository.py`, with one module per aggregate) reads and writes them.
Timestamps are integer milliseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from strongroom.store.group_commit import Op, Param
from strongroom.store.notary import Mac

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

    async def write_alone(self, ops: Sequence[Op]) -> None:
        """`ops` in a transaction of their own (no other job's locks): see `PostgresDatabase.write_alone`."""
        ...

    def set_notary(self, mac: Mac | None) -> None: ...

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
    exported: bool = False
    imported: bool = False

    def __repr__(self) -> str:  # never print the sealed secret
        return f"PrivateKey({self.id!r}, {self.curve}, {self.backend})"


@dataclass(frozen=True, slots=True)
class Wallet:
    id: str
    organization_id: str
    name: str
    sealed_mnemonic: bytes
    sealed_seed: bytes
    imported: bool
    exported: bool
    created_at: int
    updated_at: int

    def __repr__(self) -> str:  # never print the sealed secrets
        return f"Wallet({self.id!r})"


@dataclass(frozen=True, slots=True)
class WalletAccount:
    id: str
    organization_id: str
    wallet_id: str
    name: str | None
    curve: str
    path_format: str
    path: str
    address_format: str
    address: str
    public_key: bytes
    created_at: int
    updated_at: int
    position: int = 0  # order of creation within its wallet (accounts made together share a time)


@dataclass(frozen=True, slots=True)
class ContractInterface:
    id: str
    organization_id: str
    address: str
    type: str
    interface: str
    digest: str
    label: str
    notes: str
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class ImportTarget:
    """A one-time P-256 key that INIT_IMPORT_* issued for one user; IMPORT_* decrypts with it once."""

    id: str
    organization_id: str
    user_id: str
    kind: str
    public_key: bytes
    sealed_private: bytes
    created_at: int
    expires_at: int

    def __repr__(self) -> str:
        return f"ImportTarget({self.id!r}, {self.kind})"


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
class WebhookEndpoint:
    id: str
    organization_id: str
    name: str
    url: str
    is_active: bool
    subscriptions: list[dict[str, Any]]  # Turnkey's v1WebhookSubscriptionParams
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One event of the outbox: its exact payload and the token's MAC over it."""

    id: str
    organization_id: str
    type: str
    activity_id: str
    payload: bytes
    mac: bytes
    created_at: int


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One (event, endpoint) pair to deliver, as claimed by the duty."""

    event: WebhookEvent
    endpoint_id: str
    attempts: int  # including the one just claimed


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
