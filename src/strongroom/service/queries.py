"""Read endpoints (`/public/v1/query/...`).

Any authenticated user of an organization may read it, and so may the users of its parent
organization (reads only; see `auth`). A sub-organization's users see neither their parent nor
their siblings: their credentials do not resolve there.

Queries are strictly read-only: a query body carries no timestamp in Turnkey's wire format, so a
captured query stamp can be replayed for as long as its credential is valid, and the replay must
not be able to change anything. The handlers run under `read_only` (a write through the
repository raises). The one write a query request causes happens before, in authentication: a
passkey (`X-Stamp-WebAuthn`) whose authenticator reports a signature counter has its new counter
committed, as for activities. That is kept on purpose: it is what makes a passkey-stamped query
single-use (a replayed assertion no longer has a growing counter and is refused), and it changes
no data a query returns. API-key stamps cause no write at all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

from strongroom.errors import InvalidRequest, NotFound
from strongroom.service import render
from strongroom.service.activities import contracts
from strongroom.service.activities.webhooks import render_endpoint
from strongroom.service.auth import Principal
from strongroom.service.params import JsonObj, obj, opt_str, opt_str_list, req_str
from strongroom.service.pipeline import Pipeline
from strongroom.store.records import Organization, User
from strongroom.store.repository import Repository, address_key, read_only
from strongroom.strictjson import is_ascii_digits

T = TypeVar("T")
QueryFn = Callable[[Organization, Principal, JsonObj], Awaitable[dict[str, Any]]]


def _uuid(value: str, what: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError as err:
        raise InvalidRequest(f"malformed {what} provided") from err
    return value


def _found(p: JsonObj, field: str, what: str, lookup: Callable[[str], T | None]) -> T:
    """The object of this organization that `p[field]` names (a UUID), or NotFound."""
    found_id = _uuid(req_str(p, field, max_len=64), f"{what} ID")
    found = lookup(found_id)
    if found is None:
        raise NotFound(f"no {what} `{found_id}` found in this organization")
    return found


_SUBORG_FILTERS: Final = frozenset({"NAME", "USERNAME", "EMAIL", "PHONE_NUMBER", "CREDENTIAL_ID", "PUBLIC_KEY"})


def _pagination(p: JsonObj) -> tuple[int, str | None, str | None]:
    """`paginationOptions {limit "1".."100" (default 10), before, after}` with object ids as cursors."""
    limit = 10
    before = after = None
    if p.get("paginationOptions") is not None:
        page = obj(p["paginationOptions"], "paginationOptions")
        raw_limit = page.get("limit")
        if raw_limit is not None:
            text = str(raw_limit) if isinstance(raw_limit, str | int) and not isinstance(raw_limit, bool) else ""
            if not is_ascii_digits(text) or not 1 <= int(text) <= 100:
                raise InvalidRequest("`paginationOptions.limit` must be a number from 1 to 100")
            limit = int(text)
        before = opt_str(page, "before", "paginationOptions.", max_len=64)
        after = opt_str(page, "after", "paginationOptions.", max_len=64)
        before = _uuid(before, "pagination cursor") if before else None
        after = _uuid(after, "pagination cursor") if after else None
    return limit, before, after


class Queries:
    def __init__(self, repo: Repository, pipeline: Pipeline) -> None:
        self.repo: Final = repo
        self.pipeline: Final = pipeline
        self._bundle_signer: str | None = None
        self._webhook_signer: str | None = None
        by_id = self._by_id
        self.table: Final[dict[str, QueryFn]] = {
            "whoami": self.whoami,
            "get_organization": self.get_organization,
            "get_private_key": by_id("privateKey", repo.private_keys.private_key, render.private_key),
            "list_private_keys": self.list_private_keys,
            "get_activity": by_id("activity", repo.activities.activity, render.activity),
            "list_activities": self.list_activities,
            "get_usage": self.get_usage,  # Strongroom extension: signatures this month and the quota
            "get_policy": by_id("policy", repo.policies.policy, render.policy),
            "list_policies": self.list_policies,
            "list_user_tags": self.list_user_tags,
            "list_private_key_tags": self.list_private_key_tags,
            "get_user": self.get_user,
            "list_users": self.list_users,
            "get_policy_evaluations": self.get_policy_evaluations,
            "get_api_keys": self.get_api_keys,
            "get_api_key": by_id("apiKey", repo.users.api_key, render.api_key),
            "get_authenticators": self.get_authenticators,
            "get_authenticator": by_id("authenticator", repo.users.authenticator, render.authenticator),
            "list_suborgs": self.list_suborgs,
            "get_wallet": by_id("wallet", repo.wallets.wallet, render.wallet),
            "list_wallets": self.list_wallets,
            "get_wallet_account": self.get_wallet_account,
            "list_wallet_accounts": self.list_wallet_accounts,
            "get_bundle_signer": self.get_bundle_signer,  # Strongroom extension: the key that signs bundles
            "get_smart_contract_interface": self.get_smart_contract_interface,
            "list_smart_contract_interfaces": self.list_smart_contract_interfaces,
            "list_webhook_endpoints": self.list_webhook_endpoints,
            "get_webhook_signer": self.get_webhook_signer,  # Strongroom extension: the key that signs webhooks
            "explain_activity": self.explain_activity,  # Strongroom extension: a dry run of the policy decision
            "get_activity_view": self.get_activity_view,  # Strongroom extension: the decoded view, for people
        }

    @staticmethod
    def _by_id(wire: str, find: Callable[[str, str], T | None], show: Callable[[T], dict[str, Any]]) -> QueryFn:
        """`get_<wire>`: `{wire: show(it)}` for the object of the organization that `<wire>Id` names."""
        what = re.sub(r"([A-Z])", r" \1", wire).lower()  # privateKey -> private key

        async def query(org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
            return {wire: show(_found(p, f"{wire}Id", what, lambda i: find(org.id, i)))}

        return query

    async def run(self, name: str, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        fn = self.table.get(name)
        if fn is None:
            raise NotFound(f"unknown query endpoint `{name[:64]}`")
        # The one write a query may cause: a passkey's new signature counter (see module docstring).
        params, org, principal, _now = await self.pipeline.authenticate(headers, body, read=True)
        with read_only(f"query `{name}`"):
            return await fn(org, principal, params)

    def _user_json(self, u: User) -> dict[str, Any]:
        return render.user(u, self.repo.users.api_keys_of_user(u.id), self.repo.users.authenticators_of_user(u.id))

    def _user_in(self, org: Organization, user_id: str) -> User:
        user = self.repo.users.user(_uuid(user_id, "user ID"))
        if user is None or user.organization_id != org.id:
            raise NotFound(f"no user `{user_id}` found in this organization")
        return user

    async def whoami(self, org: Organization, principal: Principal, _p: JsonObj) -> dict[str, Any]:
        return {
            "organizationId": org.id,
            "organizationName": org.name,
            "userId": principal.user.id,
            "username": principal.user.name,
        }

    async def get_organization(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        users = [self._user_json(u) for u in self.repo.users.users(org.id)]
        tags = self.repo.tags.tags(org.id, "TAG_TYPE_USER") + self.repo.tags.tags(org.id, "TAG_TYPE_PRIVATE_KEY")
        return {
            "organizationData": {
                "organizationId": org.id,
                "name": org.name,
                "users": users,
                "policies": [render.policy(p) for p in self.repo.policies.policies(org.id)],
                "privateKeys": [render.private_key(k) for k in self.repo.private_keys.private_keys(org.id)],
                "invitations": [],
                "tags": [render.tag(t) for t in tags],
                "rootQuorum": render.root_quorum(org),
                "features": [],
                "wallets": [render.wallet(w) for w in self.repo.wallets.wallets(org.id)],
                "smartContractInterfaceReferences": [
                    {"smartContractInterfaceId": c.id, "smartContractAddress": c.address, "digest": c.digest}
                    for c in self.repo.contracts.interfaces(org.id)
                ],
            }
        }

    async def get_bundle_signer(self, _org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        """`{publicKey}`: the token's P-256 key that signs export and import bundles (uncompressed hex),
        what `@turnkey/crypto` takes as `dangerouslyOverrideSignerPublicKey`. Pin it out of band:
        `strongroom bundle-key` prints it from the token."""
        if self._bundle_signer is None:
            self._bundle_signer = await self.pipeline.deps.keys.bundle_public_key()
        return {"publicKey": self._bundle_signer}

    async def get_smart_contract_interface(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        found = _found(
            p,
            "smartContractInterfaceId",
            "smart contract interface",
            lambda i: self.repo.contracts.interface(org.id, i),
        )
        return {"smartContractInterface": contracts.render(found, render.timestamp)}

    async def list_smart_contract_interfaces(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        items = self.repo.contracts.interfaces(org.id)
        return {"smartContractInterfaces": [contracts.render(c, render.timestamp) for c in items]}

    async def list_webhook_endpoints(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        return {"webhookEndpoints": [render_endpoint(e) for e in self.repo.webhooks.endpoints(org.id)]}

    async def get_webhook_signer(self, _org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        """`{publicKey, scheme}`: the token's P-256 key that signs webhook events (uncompressed hex);
        receivers verify `X-Strongroom-Signature` with it (docs/webhooks.md). Pin it out of band."""
        if self._webhook_signer is None:
            self._webhook_signer = await self.pipeline.deps.keys.webhook_public_key()
        return {"publicKey": self._webhook_signer, "scheme": "ecdsa-p256-sha256"}

    async def list_wallets(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        return {"wallets": [render.wallet(w) for w in self.repo.wallets.wallets(org.id)]}

    async def get_wallet_account(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        """`{walletId, address? | path?}`: the wallet's account with that address (or at that path)."""
        wallet = _found(p, "walletId", "wallet", lambda i: self.repo.wallets.wallet(org.id, i))
        address = opt_str(p, "address", max_len=256)
        path = opt_str(p, "path", max_len=1024)
        if not address and not path:
            raise InvalidRequest("`address` or `path` is required to find a wallet account")
        for account in self.repo.wallets.accounts(org.id, wallet.id):
            if address and address_key(account.address) != address_key(address):
                continue
            if path and account.path != path:
                continue
            return {"account": render.wallet_account(account)}
        raise NotFound(f"no account with this {'address' if address else 'path'} found in wallet `{wallet.id}`")

    async def list_wallet_accounts(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        """`{walletId?, includeWalletDetails?, paginationOptions?}`: accounts oldest first, by cursor."""
        wallet_id = opt_str(p, "walletId", max_len=64)
        if wallet_id:
            _found(p, "walletId", "wallet", lambda i: self.repo.wallets.wallet(org.id, i))
        details = p.get("includeWalletDetails")
        if details is not None and not isinstance(details, bool):
            raise InvalidRequest("`includeWalletDetails` must be a boolean")
        limit, before, after = _pagination(p)
        accounts = self.repo.wallets.accounts(org.id, wallet_id or None)
        ids = [a.id for a in accounts]
        start, end = 0, len(accounts)
        if after is not None:
            start = ids.index(after) + 1 if after in ids else end
        if before is not None:
            end = ids.index(before) if before in ids else 0
        page = accounts[start:end]
        page = page[-limit:] if before is not None and after is None else page[:limit]
        wallets = {w.id: w for w in self.repo.wallets.wallets(org.id)} if details else {}
        return {"accounts": [render.wallet_account(a, wallets.get(a.wallet_id)) for a in page]}

    async def list_private_keys(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        return {"privateKeys": [render.private_key(k) for k in self.repo.private_keys.private_keys(org.id)]}

    async def get_usage(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        month = opt_str(p, "month", max_len=7)
        if month is not None and not (len(month) == 7 and month[4] == "-" and is_ascii_digits(month[:4] + month[5:])):
            raise InvalidRequest("`month` must look like `2026-11`")
        return {"usage": self.pipeline.meter.usage(org.id, self.pipeline.clock.now_ms(), month)}

    async def list_policies(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        return {"policies": [render.policy(p) for p in self.repo.policies.policies(org.id)]}

    async def list_user_tags(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        return {"userTags": [render.tag(t) for t in self.repo.tags.tags(org.id, "TAG_TYPE_USER")]}

    async def list_private_key_tags(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        return {"privateKeyTags": [render.tag(t) for t in self.repo.tags.tags(org.id, "TAG_TYPE_PRIVATE_KEY")]}

    async def get_user(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        user = self._user_in(org, req_str(p, "userId", max_len=64))
        return {"user": self._user_json(user)}

    async def list_users(self, org: Organization, _pr: Principal, _p: JsonObj) -> dict[str, Any]:
        return {"users": [self._user_json(u) for u in self.repo.users.users(org.id)]}

    async def get_api_keys(self, org: Organization, principal: Principal, p: JsonObj) -> dict[str, Any]:
        """`userId` given: that user's keys; absent: the caller's own keys in this organization."""
        user_id = opt_str(p, "userId", max_len=64)
        if user_id:
            user = self._user_in(org, user_id)
        elif principal.user.organization_id == org.id:
            user = principal.user
        else:
            return {"apiKeys": []}
        return {"apiKeys": [render.api_key(k) for k in self.repo.users.api_keys_of_user(user.id)]}

    async def get_authenticators(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        user = self._user_in(org, req_str(p, "userId", max_len=64))
        return {"authenticators": [render.authenticator(a) for a in self.repo.users.authenticators_of_user(user.id)]}

    async def list_suborgs(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        """`{organizationIds}` of this organization's sub-organizations, oldest first.

        `filterType`/`filterValue`: NAME, USERNAME, EMAIL, PHONE_NUMBER, CREDENTIAL_ID or
        PUBLIC_KEY (of a root or other user's credential); `paginationOptions` as list_activities,
        with sub-organization ids as cursors.
        """
        filter_type = opt_str(p, "filterType", max_len=64) or ""
        filter_value = opt_str(p, "filterValue", max_len=4096) or ""
        if filter_type and filter_type not in _SUBORG_FILTERS:
            raise InvalidRequest(
                f"invalid `filterType` `{filter_type[:64]}`: use one of {', '.join(sorted(_SUBORG_FILTERS))}"
            )
        limit, before, after = _pagination(p)
        ids = self.repo.organizations.sub_organization_ids(org.id)
        if filter_type:
            ids = [i for i in ids if self._suborg_matches(i, filter_type, filter_value)]
        if after is not None:
            ids = ids[ids.index(after) + 1 :] if after in ids else []
        if before is not None:
            ids = ids[: ids.index(before)] if before in ids else []
            ids = ids[-limit:]
        return {"organizationIds": ids[:limit]}

    def _suborg_matches(self, org_id: str, filter_type: str, value: str) -> bool:
        if filter_type == "NAME":
            sub = self.repo.organizations.organization(org_id)
            return sub is not None and sub.name == value
        for u in self.repo.users.users(org_id):
            if (
                (filter_type == "USERNAME" and u.name == value)
                or (filter_type == "EMAIL" and (u.email or "").lower() == value.lower())
                or (filter_type == "PHONE_NUMBER" and u.phone_number == value)
            ):
                return True
            if filter_type == "PUBLIC_KEY" and (
                any(k.public_key == value.lower() for k in self.repo.users.api_keys_of_user(u.id))
                or any(a.public_key == value.lower() for a in self.repo.users.authenticators_of_user(u.id))
            ):
                return True
            if filter_type == "CREDENTIAL_ID" and any(
                a.credential_id == value.rstrip("=") for a in self.repo.users.authenticators_of_user(u.id)
            ):
                return True
        return False

    async def get_policy_evaluations(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        activity = _found(p, "activityId", "activity", lambda i: self.repo.activities.activity(org.id, i))
        last_vote = activity.votes[-1]["id"] if activity.votes else ""
        return {
            "policyEvaluations": [
                {
                    "id": activity.id,
                    "activityId": activity.id,
                    "organizationId": org.id,
                    "voteId": last_vote,
                    "policyEvaluations": [
                        {"policyId": e["policyId"], "outcome": e["outcome"]} for e in activity.policy_evaluations
                    ],
                    "createdAt": render.timestamp(activity.updated_at),
                }
            ]
        }

    async def get_activity_view(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        """`{view}`: the activity `activityId` decoded for people (`service/decoded.py`)."""
        activity = _found(p, "activityId", "activity", lambda i: self.repo.activities.activity(org.id, i))
        return {"view": self.pipeline.views.view(activity)}

    async def explain_activity(self, org: Organization, principal: Principal, p: JsonObj) -> dict[str, Any]:
        """What the policies would decide if the caller submitted this request now, and why.

        Body: `{organizationId, type, parameters}` (an unsigned activity). Nothing is recorded,
        and the token is not touched.
        """
        return await self.pipeline.explain(org, principal, p)

    async def list_activities(self, org: Organization, _pr: Principal, p: JsonObj) -> dict[str, Any]:
        statuses = opt_str_list(p, "filterByStatus")
        types = opt_str_list(p, "filterByType")
        limit, before, after = _pagination(p)
        rows = self.repo.activities.activities(
            org.id, statuses=statuses, types=types, limit=limit, before=before, after=after
        )
        return {"activities": [render.activity(a) for a in rows]}
