"""The core the aggregate repositories share: reads checked against the token's notarisation,
the read cache, and writes (which drop the cache when they touch cached tables)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, TypeVar

from strongroom.store.group_commit import Op, Param
from strongroom.store.notary import (
    BY_NAME,
    Mac,
    Snapshot,
    TamperedState,
    describe,
    notarise_op,
    read_stored,
    read_version,
    row_hash,
)
from strongroom.store.notary import check as check_state
from strongroom.store.notary import load as load_state
from strongroom.store.records import Database, Row

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_T = TypeVar("_T")
_R = TypeVar("_R")
_D = TypeVar("_D", bound="DataclassInstance")


def _touches_cached(sql: str) -> bool:
    try:
        return _TOUCHES[sql]
    except KeyError:
        pass
    head = sql.lstrip()[:64].upper()
    touches = not head.startswith("SELECT") and any(f" {t.upper()} " in f"{head} " for t in _CACHED_TABLES)
    if len(_TOUCHES) < 4096:  # the store's statements are a small fixed set; a pure function of the text
        _TOUCHES[sql] = touches
    return touches


_TOUCHES: dict[str, bool] = {}


USER_KEYED: Final = frozenset({"user", "user_api_keys", "user_authenticators"})
"""Cached lookups whose key names a user, not the organization (see `Core.cached`)."""

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
    "wallets",
    "wallet_accounts",
    "smart_contract_interfaces",
    "webhook_endpoints",
)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def columns(record: Any, **stored: Any) -> dict[str, Any]:
    """A record's fields as column values; `stored` replaces the fields kept in another form (JSON)."""
    return {**{name: getattr(record, name) for name in _field_names(type(record))}, **stored}


def from_row(cls: type[_D], row: Row, **loaded: Any) -> _D:
    """A record from a row of its table; `loaded` replaces the columns kept in another form."""
    return cls(**{f.name: loaded[f.name] if f.name in loaded else row[f.name] for f in dataclasses.fields(cls)})


def _where(where: Mapping[str, Param]) -> str:
    return " AND ".join(f"{c} = ?" for c in where)


@functools.lru_cache(maxsize=512)
def _insert_sql(table: str, names: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"


def insert(table: str, values: Mapping[str, Param]) -> Op:
    return _insert_sql(table, tuple(values)), tuple(values.values())


def update(table: str, values: Mapping[str, Param], where: Mapping[str, Param]) -> Op:
    sets = ", ".join(f"{c} = ?" for c in values)
    return f"UPDATE {table} SET {sets} WHERE {_where(where)}", (*values.values(), *where.values())


def delete(table: str, where: Mapping[str, Param]) -> Op:
    return f"DELETE FROM {table} WHERE {_where(where)}", tuple(where.values())


def in_org(org_id: str, row_id: str) -> dict[str, Param]:
    """The key of an organization's row: `WHERE id = ? AND organization_id = ?`."""
    return {"id": row_id, "organization_id": org_id}


def mark(org_id: str, ops: list[Op]) -> list[Op]:
    """Ops that change an organization's notarised state, with the mark that has the writer re-notarise it."""
    return [*ops, notarise_op(org_id)]


_READ_ONLY: ContextVar[str | None] = ContextVar("strongroom_read_only", default=None)

# Within one request on a shared database: the `org_state` (version, MAC) each organization had
# when this request first verified it (`Core.request_scope`).
_STATE_SEEN: ContextVar[dict[str, tuple[int, bytes]] | None] = ContextVar("strongroom_state_seen", default=None)


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


def content_key(rows: Sequence[Any]) -> tuple[Any, ...] | None:
    """Rows' exact content (column names and values) as a hashable key; None if a value is not hashable.

    `rows` are `sqlite3.Row` or `postgres.Row` (both have `keys()` and iterate over their values).
    """
    if not rows:
        return ()
    try:
        key = (tuple(rows[0].keys()), *(tuple(r) for r in rows))
        hash(key)
    except TypeError:
        return None
    return key


class Core:
    """What every aggregate repository shares: notary-checked reads, the read cache, and writes.

    Lookups on the request path (organization, credential, user, private key) are cached in
    memory and the whole cache is dropped after any committed write that touches their tables
    (`write`), so a change is seen by the very next request of this process. Activity writes,
    the hot path, leave the cache warm. When other processes write the same database (worker
    processes, replicas), a cached lookup is also tied to its organization's notarised state and
    reused only while that state is unchanged (`_cached_shared`). Reads run on the event-loop
    thread, synchronously, so a reader can never store a stale row after an invalidation.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[tuple[str, ...], Any] = {}
        # Several replicas on one database: another one's write would not invalidate this cache.
        self._use_cache = not db.shared
        self.notary: Mac | None = None
        self._verified: dict[str, tuple[int, bytes, Snapshot]] = {}
        # The highest notarised version seen per organization: an older one showing up later is a
        # restored old state (its MAC is valid, but it went backwards).
        self._highest: dict[str, int] = {}
        # Organizations whose stored state failed verification (for /readyz), and a hook (metrics).
        self.tampered: dict[str, str] = {}
        self.on_tampered: Callable[[str, str], None] | None = None
        # List reads already checked against a verified snapshot: (table, organization, exact
        # content of the rows read) -> that snapshot. A hit needs the same rows, byte for byte,
        # and the same snapshot still current, so the rows are not hashed again (see `checked_all`).
        self._lists: dict[tuple[str, str, tuple[Any, ...]], Snapshot] = {}
        # Shared database: the organization of each user seen (for lookups keyed by user id).
        self._user_orgs: dict[str, str] = {}

    # -- notarisation (store/notary.py) ----------------------------------------------------------
    def set_notary(self, mac: Mac | None) -> None:
        """Verify every read used for a decision against the token's notarisation, and have the
        writer notarise every change; None turns both off (a store opened without a token)."""
        self.notary = mac
        self.db.set_notary(mac)
        self._verified.clear()
        self.invalidate()

    @contextlib.contextmanager
    def request_scope(self) -> Iterator[None]:
        """One request: on a shared database, `org_state` is read once per organization.

        Every row is still read from the database and checked against the verified snapshot; what
        is shared within the request is only the reading of the (version, MAC) that says which
        snapshot is current. A row that does not match it makes the check read `org_state` again
        (`fresh`), so a change another replica made meanwhile is still seen, and a forged row is
        still refused. Outside a scope (and on SQLite, whose cache holds until a local write)
        nothing changes.
        """
        token = _STATE_SEEN.set({} if self.db.shared else None)
        try:
            yield
        finally:
            _STATE_SEEN.reset(token)

    def refuse(self, org_id: str, err: TamperedState) -> TamperedState:
        self._verified.pop(org_id, None)
        self.tampered[org_id] = err.message
        if self.on_tampered is not None:
            self.on_tampered(org_id, err.message)
        return err

    def verified(self, org_id: str, *, fresh: bool = False) -> Snapshot | None:
        """The organization's notarised rows, checked against the token's MAC (None without a notary).

        The check is redone whenever the stored version moves (another replica wrote) or `fresh`
        is asked; in between, the snapshot of what was verified is the reference for every read.
        """
        if self.notary is None:
            return None
        cached = self._verified.get(org_id)
        if cached is not None and self._use_cache and not fresh:
            return cached[2]
        seen = _STATE_SEEN.get()
        if cached is not None and seen is not None and not fresh and seen.get(org_id) == cached[:2]:
            return cached[2]  # this request already read `org_state`, and it named this snapshot
        if cached is not None and not fresh:
            current = read_version(self.db.all, org_id)
            if current == cached[:2]:
                if seen is not None:
                    seen[org_id] = current
                return cached[2]  # still the state this snapshot was verified against
        stored = read_stored(self.db.all, org_id)
        if stored is not None and seen is not None:
            seen[org_id] = (stored.version, stored.mac)
        if cached is not None and stored is not None and (stored.version, stored.mac) == cached[:2] and not fresh:
            return cached[2]
        snapshot = load_state(self.db.all, org_id)
        if stored is None and snapshot.empty:
            return snapshot  # no such organization (yet): nothing to vouch for, nothing to trust
        try:
            check_state(stored, snapshot, self.notary)
        except TamperedState as err:
            raise self.refuse(org_id, err) from None
        assert stored is not None
        highest = self._highest.get(org_id, 0)
        if stored.version < highest:
            raise self.refuse(
                org_id,
                TamperedState(
                    f"the notarised state of organization `{org_id}` went back from version {highest} to "
                    f"{stored.version}: an old state was restored"
                ),
            )
        self._highest[org_id] = stored.version
        self._verified[org_id] = (stored.version, stored.mac, snapshot)
        self.tampered.pop(org_id, None)
        return snapshot

    def checked(self, table_name: str, row: Row) -> Row:
        """`row` if the token vouched for it in its organization's state; else refuse, naming it."""
        if self.notary is None:
            return row
        table = BY_NAME[table_name]
        org_id = str(row[table.scope])
        h = row_hash(table, row)
        snapshot = self.verified(org_id)
        if snapshot is not None and h in snapshot.hashes[table.name]:
            return row
        snapshot = self.verified(org_id, fresh=True)  # the state may have moved on legitimately
        if snapshot is not None and h in snapshot.hashes[table.name]:
            return row
        raise self.refuse(
            org_id,
            TamperedState(
                f"{describe(table, row)} of organization `{org_id}` does not match its notarisation: "
                "it was changed outside an authorised activity"
            ),
        )

    def checked_all(
        self, table_name: str, org_id: str, rows: Sequence[Row], keep: Callable[[Any], bool] | None = None
    ) -> Sequence[Row]:
        """A list read: exactly the rows the token vouched for (none added, edited or deleted)."""
        if self.notary is None:
            return rows
        table = BY_NAME[table_name]
        content = content_key(rows) if keep is None else None
        key = None if content is None else (table.name, org_id, content)
        snapshot = self.verified(org_id)
        if key is not None and snapshot is not None and self._lists.get(key) is snapshot:
            return rows  # exactly these rows were checked against this very snapshot
        got = sorted(row_hash(table, r) for r in rows)
        for attempt in range(2):
            if attempt:
                snapshot = self.verified(org_id, fresh=True)
            assert snapshot is not None
            expected = sorted(row_hash(table, r) for r in snapshot.rows[table.name] if keep is None or keep(r))
            if got == expected:
                if key is not None:
                    if len(self._lists) > 1_000:
                        self._lists.clear()
                    self._lists[key] = snapshot
                return rows
        raise self.refuse(
            org_id,
            TamperedState(
                f"the `{table.name}` rows of organization `{org_id}` do not match their notarisation: "
                "rows were added, changed or deleted outside an authorised activity"
            ),
        )

    def cached(self, key: tuple[str, ...], load: Callable[[], _T]) -> _T:
        """`load()`, remembered. `key[0]` names the lookup; `key[1]` is the organization whose
        notarised state holds the rows, or for `USER_KEYED` lookups the user's id."""
        if not self._use_cache:
            return self._cached_shared(key, load)
        try:
            value: _T = self._cache[key]
        except KeyError:
            value = load()
            if value is not None:
                self._remember(key, value)
        return value

    def _remember(self, key: tuple[str, ...], value: Any) -> None:
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = value

    def _cached_shared(self, key: tuple[str, ...], load: Callable[[], _T]) -> _T:
        """On a database other processes write too: a value is kept with the verified snapshot of
        its organization's state it was read under, and reused only while that snapshot is still
        the current one, which `verified` decides from `org_state` (the version and the token's MAC,
        read once per request in a `request_scope`). Every change to rows a lookup reads goes
        through an authorised activity, which re-notarises the organization (a new version), so a
        change made by another process or replica is seen on the next request, as it is without
        the cache; a rolled-back `org_state` is refused as it is without the cache."""
        if self.notary is None:
            return load()
        org_id = self._user_orgs.get(key[1]) if key[0] in USER_KEYED else key[1]
        snapshot = None if org_id is None else self.verified(org_id)
        entry = self._cache.get(key)
        if entry is not None and snapshot is not None and entry[0] is snapshot:
            hit: _T = entry[1]
            return hit
        value = load()
        if value is not None and org_id is None:  # first sight of this user: learn its organization
            first = value[0] if isinstance(value, tuple) and value else value
            found = getattr(first, "organization_id", None)
            if isinstance(found, str) and len(self._user_orgs) < 100_000:
                self._user_orgs[key[1]] = found
        elif value is not None and org_id is not None and self.verified(org_id) is snapshot:
            self._remember(key, (snapshot, value))  # the state did not move while the rows were read
        return value

    def invalidate(self) -> None:
        self._cache.clear()
        self._verified.clear()
        self._lists.clear()

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


class Aggregate:
    """One aggregate's reads and write builders, on the shared core."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.db = core.db

    def _one(self, table: str, load: Callable[[Row], _R], sql: str, params: Sequence[Param]) -> _R | None:
        """One row of `table`, checked against the notarisation, as a record (None: no such row)."""
        row = self.db.one(sql, params)
        return None if row is None else load(self.core.checked(table, row))
