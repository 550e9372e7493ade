"""The repository: one aggregate per kind of record, on one shared core.

`Repository` is the core (the database, notary-checked reads, the read cache, writes) with the
aggregates as attributes: `repo.users.user(user_id)`, `repo.policies.policies(org_id)`. Each
aggregate returns frozen records (`store/records.py`) and builds write operations (static
methods, e.g. `repo.users.insert_user(user)`); it never decides whether something is allowed.
Timestamps are integer milliseconds since the epoch.
"""

from __future__ import annotations

from strongroom.store.activities import Activities
from strongroom.store.contracts import Contracts
from strongroom.store.core import Core, read_only
from strongroom.store.imports import Imports
from strongroom.store.organizations import Organizations
from strongroom.store.policies import Policies
from strongroom.store.private_keys import PrivateKeys, address_key
from strongroom.store.records import Database
from strongroom.store.tags import Tags
from strongroom.store.usage import Usage
from strongroom.store.users import Users
from strongroom.store.wallets import Wallets
from strongroom.store.webhooks import Webhooks


class Repository(Core):
    """The shared core with one repository per aggregate."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.organizations = Organizations(self)
        self.users = Users(self)
        self.private_keys = PrivateKeys(self)
        self.policies = Policies(self)
        self.tags = Tags(self)
        self.activities = Activities(self)
        self.usage = Usage(self)
        self.wallets = Wallets(self)
        self.imports = Imports(self)
        self.contracts = Contracts(self)
        self.webhooks = Webhooks(self)


__all__ = [
    "Activities",
    "Contracts",
    "Imports",
    "Organizations",
    "Policies",
    "PrivateKeys",
    "Repository",
    "Tags",
    "Usage",
    "Users",
    "Wallets",
    "Webhooks",
    "address_key",
    "read_only",
]
