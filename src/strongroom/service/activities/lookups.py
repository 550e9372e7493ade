"""Lookups several activity families share: a user, users or private keys of the organization."""

from __future__ import annotations

from strongroom.errors import InvalidRequest, NotFound
from strongroom.service.activities.base import Context, Deps
from strongroom.store.records import PrivateKey, User, Wallet


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


def wallet_in(deps: Deps, org_id: str, wallet_id: str) -> Wallet:
    """A wallet of this organization, or NotFound."""
    wallet = deps.repo.wallets.wallet(org_id, wallet_id)
    if wallet is None:
        raise NotFound(f"no wallet `{wallet_id[:64]}` found in this organization")
    return wallet


def unexported_refusal(what: str) -> InvalidRequest:
    """Deleting what was never exported destroys it for good: Turnkey asks for `deleteWithoutExport`."""
    return InvalidRequest(
        f"{what} has not been exported: deleting it destroys it for good; export it first, or pass"
        " `deleteWithoutExport: true`"
    )
