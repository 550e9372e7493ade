"""The catalog: every activity type Strongroom accepts, one typed entry each (`ActivityType`).

An entry says everything the daemon knows about its type: the type string and its submit path,
the intent and result keys (with Turnkey's version suffixes), what policies see it act on
(`resource`, `action`), whether only the root quorum may approve it, the JSON Schema of its
parameters, and its reader, which validates the parameters and returns the policy subjects and
the executor (`Prepared`). The pipeline dispatches from here only, and the OpenAPI document
lists these paths with their parameters.

Adding an activity type = one catalog entry + one module: in its family's module under
`service/activities/` (or a new module for a new family), write the reader and the JSON Schema of
the parameters it reads, and add an `activity(...)` entry to the module's `ACTIVITIES`; a new
module is added to `FAMILIES` below. The OpenAPI document and the dashboard's agreement test
(tests/api/test_catalog.py) follow from the catalog. A type or a path twice is refused here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import MappingProxyType
from typing import Final

from strongroom.service.activities import (
    contracts,
    credentials,
    keys,
    policies,
    quorum,
    signing,
    sub_orgs,
    tags,
    transfer,
    users,
    votes,
    wallets,
    webhooks,
)
from strongroom.service.activities.base import Action, ActivityType, Resource, RootOnly, older_version

__all__ = ["CATALOG", "Action", "ActivityType", "Catalog", "Resource", "RootOnly"]

FAMILIES: Final = (
    keys,
    wallets,
    transfer,
    signing,
    users,
    credentials,
    sub_orgs,
    policies,
    contracts,
    tags,
    quorum,
    webhooks,
    votes,
)
"""The activity families, one module each (docs/architecture.md has one line per family)."""


class Catalog:
    """The activity types, by submit path and by type string; each path and each type once."""

    def __init__(self, entries: Iterable[ActivityType]) -> None:
        by_path: dict[str, ActivityType] = {}
        by_type: dict[str, ActivityType] = {}
        for entry in entries:
            if entry.path in by_path:
                raise ValueError(f"activity path `{entry.path}` is in the catalog twice")
            if entry.type in by_type:
                raise ValueError(f"activity type `{entry.type}` is in the catalog twice")
            by_path[entry.path] = by_type[entry.type] = entry
            for old in entry.older:  # served at the same path; found by type (votes, explain)
                if old in by_type:
                    raise ValueError(f"activity type `{old}` is in the catalog twice")
                by_type[old] = older_version(entry, old)
        self.by_path: Final = MappingProxyType(by_path)
        self.by_type: Final = MappingProxyType(by_type)

    def __iter__(self) -> Iterator[ActivityType]:
        return iter(self.by_path.values())

    def __len__(self) -> int:
        return len(self.by_path)

    def submit_types(self) -> dict[str, str]:
        """Each submit path and the one `type` it accepts."""
        return {e.path: e.type for e in self}


CATALOG: Final = Catalog(entry for family in FAMILIES for entry in family.ACTIVITIES)
