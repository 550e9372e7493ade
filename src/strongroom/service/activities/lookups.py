"""Lookups several activity families share: a user, users or private keys of the organization."""

from __future__ import annotations

from strongroom.errors import NotFound
from strongroom.service.activities.base import Context, Deps
from strongroom.store.records import PrivateKey, User


def user_in(deps: Deps, org_id: str, user_id: str) -> User:
    """A user of this organization, or NotFound."""
    user = deps.repo.users.user(user_id)
    if user is None or user.organization_id != org_id:
        raise NotFound(f"no user `{user_id[:64]}` found in this organization")
    return user


def is_root(ctx: Context, user: User) -> bool:
    """Changes to a root user's credentials or access type are root-quorum-only (see decide.py)."""
    return user.id in ctx.organization.root_user_ids


def users_in(deps: Deps, org_id: str, ids: list[str]) -> list[User]:
    """Users of this organization, each once, in the order given; NotFound for the first stranger."""
    return [user_in(deps, org_id, i) for i in dict.fromkeys(ids)]


def private_keys_in(deps: Deps, org_id: str, ids: list[str]) -> list[PrivateKey]:
    out = []
    for key_id in dict.fromkeys(ids):
        key = deps.repo.private_keys.private_key(org_id, key_id)
        if key is None:
            raise NotFound(f"no private key `{key_id[:64]}` found in this organization")
        out.append(key)
    return out
