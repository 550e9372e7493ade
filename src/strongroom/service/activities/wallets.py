"""HD wallets: create them (BIP-39 seed made and sealed in the token's care), derive accounts,
rename and delete them.

A wallet's mnemonic and seed are made by `hsm` and sealed at once under the token's
non-extractable KEK (`KeyStore.create_wallet`); the store keeps only the sealed blobs. An
account is a BIP-32 (secp256k1) or SLIP-10 (Ed25519) path of the wallet: its public key and
address are derived when it is created, its private key for each signature (`Backend.WALLET`).
Policies see `wallet` ({id, label, imported, exported}) and, when signing with an account,
`wallet_account` ({address}).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from strongroom.chains.address_formats import SUPPORTED_FORMATS, derive_address
from strongroom.crypto import hd
from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted, UnsupportedAlgorithm
from strongroom.hsm import Curve
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.lookups import unexported_refusal, wallet_in
from strongroom.service.activities.schema import JSON_ID, json_array, json_enum, json_object, json_string
from strongroom.service.params import JsonObj, obj, opt_str, req_list, req_str, str_list
from strongroom.service.signing import wallet_probe
from strongroom.store.records import Wallet, WalletAccount

MAX_WALLETS_PER_ORG: Final = 100  # Turnkey's limit for HD wallets
MAX_ACCOUNTS_PER_REQUEST: Final = 100
MAX_ACCOUNTS_PER_WALLET: Final = 10_000
DEFAULT_MNEMONIC_LENGTH: Final = 12
PATH_FORMAT: Final = "PATH_FORMAT_BIP32"

ACCOUNT: Final = json_object(
    ["curve", "pathFormat", "path", "addressFormat"],
    curve=json_enum("CURVE_SECP256K1", "CURVE_ED25519"),
    pathFormat=json_enum(PATH_FORMAT),
    path=json_string(1024),
    addressFormat=json_string(64),
    name=json_string(256),
)
ACCOUNTS: Final = json_array(ACCOUNT, MAX_ACCOUNTS_PER_REQUEST)
WALLET: Final = json_object(
    ["walletName", "accounts"],
    walletName=json_string(256),
    accounts=ACCOUNTS,
    mnemonicLength={"type": "integer", "enum": list(hd.MNEMONIC_LENGTHS)},
)


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One account asked for: where in the wallet (curve and path) and how to show its address."""

    curve: Curve
    path: str
    indexes: tuple[int, ...]
    address_format: str
    name: str | None


def account_specs(params: JsonObj, where: str) -> list[AccountSpec]:
    """`accounts` (v1WalletAccountParams), validated: curve, BIP-32 path, an address format of the curve."""
    items = req_list(params, "accounts", where, max_items=MAX_ACCOUNTS_PER_REQUEST)
    out: list[AccountSpec] = []
    seen: set[tuple[str, str]] = set()
    for i, raw in enumerate(items):
        at = f"{where}accounts[{i}]."
        item = obj(raw, at.rstrip("."))
        curve_name = req_str(item, "curve", at, max_len=64)
        try:
            curve = Curve(curve_name)
        except ValueError:
            if curve_name == "CURVE_P256":
                raise UnsupportedAlgorithm("curve `CURVE_P256` is not supported for wallet accounts") from None
            raise InvalidRequest(f"invalid curve `{curve_name[:64]}` (`{at}curve`)") from None
        path_format = req_str(item, "pathFormat", at, max_len=64)
        if path_format != PATH_FORMAT:
            raise InvalidRequest(f"invalid path format `{path_format[:64]}`: only `{PATH_FORMAT}` is supported")
        path = req_str(item, "path", at, max_len=1024)
        try:
            indexes = hd.parse_path(path, curve.value)
        except hd.DerivationError as err:
            raise InvalidRequest(f"`{at}path`: {err}") from None
        fmt = req_str(item, "addressFormat", at, max_len=64)
        if fmt not in SUPPORTED_FORMATS[curve.value]:
            raise InvalidRequest(f"invalid address format `{fmt[:64]}` for curve `{curve.value}` (`{at}addressFormat`)")
        if (path, fmt) in seen:
            raise InvalidRequest(f"`{at}path`: the account `{path}` ({fmt}) is asked for twice")
        seen.add((path, fmt))
        out.append(AccountSpec(curve, path, indexes, fmt, opt_str(item, "name", at, max_len=256) or None))
    return out


def mnemonic_length(params: JsonObj, where: str) -> int:
    raw = params.get("mnemonicLength")
    if raw is None:
        return DEFAULT_MNEMONIC_LENGTH
    if isinstance(raw, bool) or not isinstance(raw, int) or raw not in hd.MNEMONIC_LENGTHS:
        raise InvalidRequest(f"`{where}mnemonicLength` must be one of 12, 15, 18, 21 or 24")
    return raw


def derived_accounts(
    org_id: str, wallet_id: str, specs: list[AccountSpec], publics: tuple[bytes, ...], now_ms: int, first: int = 0
) -> list[WalletAccount]:
    """The accounts' records; `first` is the position of the first one in its wallet."""
    return [
        WalletAccount(
            str(uuid.uuid4()),
            org_id,
            wallet_id,
            spec.name,
            spec.curve.value,
            PATH_FORMAT,
            spec.path,
            spec.address_format,
            derive_address(spec.address_format, spec.curve.value, public),
            public,
            now_ms,
            now_ms,
            first + i,
        )
        for i, (spec, public) in enumerate(zip(specs, publics, strict=True))
    ]


@dataclass(frozen=True, slots=True)
class NewWallet:
    """A wallet a request will create: checked by the reader, made by `make` in the executor."""

    org_id: str
    name: str
    words: int
    specs: list[AccountSpec]

    async def make(self, deps: Deps, now_ms: int) -> tuple[dict[str, Any], list[Any]]:
        """(`{walletId, addresses}`, the writes): the seed is made and sealed in the token's care."""
        wallet_id = str(uuid.uuid4())
        sealed = await deps.keys.create_wallet(wallet_id, self.words, [(s.curve, s.indexes) for s in self.specs])
        wallet = Wallet(wallet_id, self.org_id, self.name, sealed.mnemonic, sealed.seed, False, False, now_ms, now_ms)
        accounts = derived_accounts(self.org_id, wallet_id, self.specs, sealed.public_keys, now_ms)
        ops = deps.repo.wallets.insert_wallet(wallet) + deps.repo.wallets.insert_accounts(self.org_id, accounts)
        return {"walletId": wallet_id, "addresses": [a.address for a in accounts]}, ops


def plan_wallet(deps: Deps, org_id: str, params: JsonObj, where: str, *, new_org: bool = False) -> NewWallet:
    """Validate `{walletName, accounts, mnemonicLength?}` for a wallet of `org_id` (nothing is made)."""
    name = req_str(params, "walletName", where, max_len=256)
    words = mnemonic_length(params, where)
    specs = account_specs(params, where)
    if not new_org:
        if deps.repo.wallets.wallet_name_taken(org_id, name):
            raise InvalidRequest(f"wallet name `{name}` is already used in this organization")
        if deps.repo.wallets.wallet_count(org_id) >= MAX_WALLETS_PER_ORG:
            raise ResourceExhausted(f"organization has reached its limit of {MAX_WALLETS_PER_ORG} HD wallets")
    return NewWallet(org_id, name, words, specs)


async def create_wallet(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    plan = plan_wallet(deps, ctx.organization.id, params, "parameters.")

    async def run() -> Execution:
        result, ops = await plan.make(deps, ctx.now_ms)
        return Execution(result, ops)

    return Prepared(run)


async def create_wallet_accounts(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    """`{walletId, accounts, persist?}`; with `persist: false` the addresses are derived, not stored."""
    org_id = ctx.organization.id
    wallet = wallet_in(deps, org_id, req_str(params, "walletId", "parameters.", max_len=64))
    specs = account_specs(params, "parameters.")
    persist = params.get("persist", True)
    if not isinstance(persist, bool):
        raise InvalidRequest("`parameters.persist` must be a boolean")
    existing = deps.repo.wallets.accounts(org_id, wallet.id) if persist else []
    first = max((a.position for a in existing), default=-1) + 1
    if persist:
        taken = {(a.path, a.address_format) for a in existing}
        for spec in specs:
            if (spec.path, spec.address_format) in taken:
                raise InvalidRequest(f"wallet account `{spec.path}` ({spec.address_format}) already exists")
        if len(existing) + len(specs) > MAX_ACCOUNTS_PER_WALLET:
            raise ResourceExhausted(f"a wallet holds at most {MAX_ACCOUNTS_PER_WALLET} accounts")

    async def run() -> Execution:
        publics = await deps.keys.derive_public_keys(
            wallet.id, wallet.sealed_seed, [(s.curve, s.indexes) for s in specs]
        )
        accounts = derived_accounts(org_id, wallet.id, specs, publics, ctx.now_ms, first)
        ops = deps.repo.wallets.insert_accounts(org_id, accounts) if persist and accounts else []
        return Execution({"addresses": [a.address for a in accounts]}, ops)

    return Prepared(run, env={"wallet": wallet_probe(wallet)})


async def update_wallet(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    wallet = wallet_in(deps, org_id, req_str(params, "walletId", "parameters.", max_len=64))
    name = opt_str(params, "walletName", "parameters.", max_len=256)
    if name is not None and not name:
        raise InvalidRequest("`parameters.walletName` must not be empty")
    if name is not None and name != wallet.name and deps.repo.wallets.wallet_name_taken(org_id, name):
        raise InvalidRequest(f"wallet name `{name}` is already used in this organization")

    async def run() -> Execution:
        ops = [] if name is None else deps.repo.wallets.rename_wallet(org_id, wallet.id, name, ctx.now_ms)
        return Execution({"walletId": wallet.id}, ops)

    return Prepared(run, env={"wallet": wallet_probe(wallet)})


def _delete_without_export(params: JsonObj) -> bool:
    flag = params.get("deleteWithoutExport", False)
    if not isinstance(flag, bool):
        raise InvalidRequest("`parameters.deleteWithoutExport` must be a boolean")
    return flag


async def delete_wallets(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    """`{walletIds, deleteWithoutExport?}`: each wallet, its accounts and its sealed seed."""
    org_id = ctx.organization.id
    ids = str_list(params, "walletIds", "parameters.", max_items=MAX_WALLETS_PER_ORG, allow_empty=False)
    wallets = [wallet_in(deps, org_id, i) for i in dict.fromkeys(ids)]
    if not _delete_without_export(params):
        for w in wallets:
            if not w.exported:
                raise unexported_refusal(f"wallet `{w.id}`")

    async def run() -> Execution:
        ops: list[Any] = []
        for w in wallets:
            ops += deps.repo.wallets.delete_wallet(org_id, w.id)
        return Execution({"walletIds": [w.id for w in wallets]}, ops)

    env: dict[str, Any] = {"wallets": [wallet_probe(w) for w in wallets]}
    if len(wallets) == 1:
        env["wallet"] = wallet_probe(wallets[0])
    return Prepared(run, env=env)


async def delete_wallet_accounts(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    """`{walletAccountIds, deleteWithoutExport?}`: the accounts (their wallet and seed stay)."""
    org_id = ctx.organization.id
    ids = str_list(params, "walletAccountIds", "parameters.", max_items=MAX_ACCOUNTS_PER_REQUEST, allow_empty=False)
    accounts = []
    for account_id in dict.fromkeys(ids):
        account = deps.repo.wallets.account(org_id, account_id)
        if account is None:
            raise NotFound(f"no wallet account `{account_id[:64]}` found in this organization")
        accounts.append(account)
    wallets = {a.wallet_id: wallet_in(deps, org_id, a.wallet_id) for a in accounts}
    if not _delete_without_export(params):
        for a in accounts:
            if not wallets[a.wallet_id].exported:
                raise unexported_refusal(f"wallet account `{a.id}`")

    async def run() -> Execution:
        ops: list[Any] = []
        for a in accounts:
            ops += deps.repo.wallets.delete_account(org_id, a.id)
        return Execution({"walletAccountIds": [a.id for a in accounts]}, ops)

    env: dict[str, Any] = {"wallets": [wallet_probe(w) for w in wallets.values()]}
    if len(wallets) == 1:
        env["wallet"] = wallet_probe(next(iter(wallets.values())))
    return Prepared(run, env=env)


ACTIVITIES: Final = (
    activity("ACTIVITY_TYPE_CREATE_WALLET", create_wallet, "WALLET", "CREATE", WALLET),
    activity(
        "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS",
        create_wallet_accounts,
        "WALLET",
        "CREATE",
        json_object(["walletId", "accounts"], walletId=JSON_ID, accounts=ACCOUNTS, persist={"type": "boolean"}),
    ),
    activity(
        "ACTIVITY_TYPE_UPDATE_WALLET",
        update_wallet,
        "WALLET",
        "UPDATE",
        json_object(["walletId"], walletId=JSON_ID, walletName=json_string(256)),
    ),
    activity(
        "ACTIVITY_TYPE_DELETE_WALLETS",
        delete_wallets,
        "WALLET",
        "DELETE",
        json_object(
            ["walletIds"],
            walletIds=json_array(JSON_ID, MAX_WALLETS_PER_ORG, 1),
            deleteWithoutExport={"type": "boolean"},
        ),
    ),
    activity(
        "ACTIVITY_TYPE_DELETE_WALLET_ACCOUNTS",
        delete_wallet_accounts,
        "WALLET",
        "DELETE",
        json_object(
            ["walletAccountIds"],
            walletAccountIds=json_array(JSON_ID, MAX_ACCOUNTS_PER_REQUEST, 1),
            deleteWithoutExport={"type": "boolean"},
        ),
    ),
)
