"""Keys in and out: export to a client's key and import from it, in Turnkey's bundle format.

Export (EXPORT_PRIVATE_KEY, EXPORT_WALLET, EXPORT_WALLET_ACCOUNT) encrypts the secret with HPKE
to the caller's `targetPublicKey` and signs the bundle with the token's P-256 bundle key, so
`@turnkey/crypto`'s `decryptExportBundle` opens it (its `dangerouslyOverrideSignerPublicKey` is
that key: `get_bundle_signer`, a Strongroom query, or `strongroom bundle-key`). A private key
generated inside the token is non-extractable and is never exported; software-fallback keys,
imported keys and wallets are. The plaintext exists only inside `hsm` for the call.

Import is two activities, as in Turnkey: INIT_IMPORT_* issues a one-time P-256 target key for a
user (its scalar sealed under the KEK, valid 24 hours) and returns it signed (`importBundle`);
the client encrypts its key or mnemonic to it (`encryptPrivateKeyToBundle`,
`encryptWalletToBundle`) and IMPORT_* decrypts with the user's newest target, checks what it got
(32-byte key valid for the curve; BIP-39 mnemonic) and seals it under the KEK at once. A target
is used once. Policies: `activity.resource` PRIVATE_KEY or WALLET, `activity.action` EXPORT or
IMPORT; `activity.params.target_public_key` for exports.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from strongroom.chains.address_formats import derive_address
from strongroom.crypto import bundles
from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted, UnsupportedAlgorithm
from strongroom.service import signing
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.keys import MAX_PRIVATE_KEYS_PER_ORG, address_formats, key_curve
from strongroom.service.activities.lookups import private_keys_in, user_in, wallet_in
from strongroom.service.activities.schema import JSON_ID, json_array, json_enum, json_object, json_string
from strongroom.service.activities.wallets import ACCOUNTS, derived_accounts, plan_wallet
from strongroom.service.params import JsonObj, opt_str, req_str
from strongroom.service.signing import wallet_probe
from strongroom.store.records import ImportTarget, PrivateKey, Wallet

IMPORT_TARGET_TTL_MS: Final = 24 * 3600 * 1000
MAX_BUNDLE: Final = 64 * 1024
_TARGET: Final = json_string(130)
_BUNDLE: Final = json_string(MAX_BUNDLE)


def _target_key(params: JsonObj) -> str:
    """`targetPublicKey`, checked before any decision: an uncompressed P-256 point, in hex."""
    target = req_str(params, "targetPublicKey", "parameters.", max_len=256)
    try:
        bundles.parse_target_public_key(target)
    except bundles.BundleError as err:
        raise InvalidRequest(f"`parameters.targetPublicKey`: {err}") from None
    return target


# -- export ------------------------------------------------------------------------------------------
async def export_private_key(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    (key,) = private_keys_in(deps, org_id, [req_str(params, "privateKeyId", "parameters.", max_len=64)])
    target = _target_key(params)
    if key.backend == "token":
        raise InvalidRequest(
            f"private key `{key.id}` was generated inside the token as non-extractable: it cannot be exported"
        )
    signer = signing.private_key_signer(key)

    async def run() -> Execution:
        bundle = await deps.keys.export_key(signer.ref, target, org_id)
        ops = [] if key.exported else deps.repo.private_keys.mark_exported(org_id, key.id, ctx.now_ms)
        return Execution({"privateKeyId": key.id, "exportBundle": bundle}, ops)

    return Prepared(run, env=dict(signer.env))


async def export_wallet(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    wallet = wallet_in(deps, org_id, req_str(params, "walletId", "parameters.", max_len=64))
    target = _target_key(params)
    language = opt_str(params, "language", "parameters.", max_len=64)
    if language not in (None, "", "MNEMONIC_LANGUAGE_ENGLISH"):
        raise UnsupportedAlgorithm(f"mnemonic language `{language[:64]}` is not supported: wallets are English")

    async def run() -> Execution:
        bundle = await deps.keys.export_wallet(wallet.id, wallet.sealed_mnemonic, target, org_id)
        ops = [] if wallet.exported else deps.repo.wallets.mark_exported(org_id, wallet.id, ctx.now_ms)
        return Execution({"walletId": wallet.id, "exportBundle": bundle}, ops)

    return Prepared(run, env={"wallet": wallet_probe(wallet)})


async def export_wallet_account(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    address = req_str(params, "address", "parameters.", max_len=256)
    account = deps.repo.wallets.account_by_address(org_id, address)
    if account is None:
        raise NotFound(f"no wallet account `{address[:128]}` found in this organization")
    wallet = wallet_in(deps, org_id, account.wallet_id)
    target = _target_key(params)
    signer = signing.wallet_account_signer(wallet, account)

    async def run() -> Execution:
        bundle = await deps.keys.export_key(signer.ref, target, org_id)
        return Execution({"address": account.address, "exportBundle": bundle}, [])

    return Prepared(run, env=dict(signer.env))


# -- import ------------------------------------------------------------------------------------------
def _init_import(kind: str) -> Any:
    async def init_import(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
        org_id = ctx.organization.id
        user = user_in(deps, org_id, req_str(params, "userId", "parameters.", max_len=64))

        async def run() -> Execution:
            target_id = str(uuid.uuid4())
            public, sealed, bundle = await deps.keys.new_import_target(target_id, org_id, user.id)
            target = ImportTarget(
                target_id, org_id, user.id, kind, public, sealed, ctx.now_ms, ctx.now_ms + IMPORT_TARGET_TTL_MS
            )
            ops = deps.repo.imports.purge_expired(ctx.now_ms) + deps.repo.imports.insert_target(target)
            return Execution({"importBundle": bundle}, ops)

        return Prepared(run)

    return init_import


def _target_for(deps: Deps, ctx: Context, user_id: str, kind: str, init: str) -> ImportTarget:
    target = deps.repo.imports.latest(ctx.organization.id, user_id, kind, ctx.now_ms)
    if target is None:
        raise InvalidRequest(
            f"no import is waiting for user `{user_id}`: call `{init}` first (its target key is valid 24 hours"
            " and used once)"
        )
    return target


def _bundle(params: JsonObj) -> str:
    """`encryptedBundle`, its shape checked before any decision (decrypting it needs the token)."""
    bundle = req_str(params, "encryptedBundle", "parameters.", max_len=MAX_BUNDLE)
    try:
        bundles.parse_encrypted_bundle(bundle)
    except bundles.BundleError as err:
        raise InvalidRequest(f"`parameters.encryptedBundle`: {err}") from None
    return bundle


async def import_private_key(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    p = "parameters."
    user = user_in(deps, org_id, req_str(params, "userId", p, max_len=64))
    name = req_str(params, "privateKeyName", p, max_len=256)
    bundle = _bundle(params)
    curve = key_curve(params, p)
    if "addressFormats" not in params:
        raise InvalidRequest("`parameters.addressFormats` is required")
    formats = address_formats(params, p, curve)
    if deps.repo.private_keys.private_key_name_taken(org_id, name):
        raise InvalidRequest(f"private key name `{name}` is already used in this organization")
    if len(deps.repo.private_keys.private_keys(org_id)) >= MAX_PRIVATE_KEYS_PER_ORG:
        raise ResourceExhausted(f"organization has reached its limit of {MAX_PRIVATE_KEYS_PER_ORG} private keys")
    target = _target_for(deps, ctx, user.id, "PRIVATE_KEY", "init_import_private_key")

    async def run() -> Execution:
        key_id = str(uuid.uuid4())
        ref = await deps.keys.import_private_key(target.id, target.sealed_private, bundle, key_id, curve)
        addresses = tuple((f, derive_address(f, curve.value, ref.public_key)) for f in formats)
        record = PrivateKey(
            key_id,
            org_id,
            name,
            curve.value,
            ref.public_key,
            ref.backend.value,
            ref.wrapped,
            addresses,
            (),
            ctx.now_ms,
            ctx.now_ms,
            imported=True,
        )
        ops = deps.repo.private_keys.insert_private_key(record) + deps.repo.imports.consume(target)
        result = {"privateKeyId": key_id, "addresses": [{"format": f, "address": a} for f, a in addresses]}
        return Execution(result, ops)

    return Prepared(run)


async def import_wallet(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    p = "parameters."
    user = user_in(deps, org_id, req_str(params, "userId", p, max_len=64))
    bundle = _bundle(params)
    plan = plan_wallet(deps, org_id, params, p)  # name, accounts and limits, as for CREATE_WALLET
    name, specs = plan.name, plan.specs
    target = _target_for(deps, ctx, user.id, "WALLET", "init_import_wallet")

    async def run() -> Execution:
        wallet_id = str(uuid.uuid4())
        sealed = await deps.keys.import_wallet(
            target.id, target.sealed_private, bundle, wallet_id, [(s.curve, s.indexes) for s in specs]
        )
        wallet = Wallet(wallet_id, org_id, name, sealed.mnemonic, sealed.seed, True, False, ctx.now_ms, ctx.now_ms)
        accounts = derived_accounts(org_id, wallet_id, specs, sealed.public_keys, ctx.now_ms)
        ops = (
            deps.repo.wallets.insert_wallet(wallet)
            + deps.repo.wallets.insert_accounts(org_id, accounts)
            + deps.repo.imports.consume(target)
        )
        return Execution({"walletId": wallet_id, "addresses": [a.address for a in accounts]}, ops)

    return Prepared(run)


_USER_ONLY: Final = json_object(["userId"], userId=JSON_ID)
ACTIVITIES: Final = (
    activity(
        "ACTIVITY_TYPE_EXPORT_PRIVATE_KEY",
        export_private_key,
        "PRIVATE_KEY",
        "EXPORT",
        json_object(["privateKeyId", "targetPublicKey"], privateKeyId=JSON_ID, targetPublicKey=_TARGET),
    ),
    activity(
        "ACTIVITY_TYPE_EXPORT_WALLET",
        export_wallet,
        "WALLET",
        "EXPORT",
        json_object(
            ["walletId", "targetPublicKey"],
            walletId=JSON_ID,
            targetPublicKey=_TARGET,
            language=json_enum("MNEMONIC_LANGUAGE_ENGLISH"),
        ),
    ),
    activity(
        "ACTIVITY_TYPE_EXPORT_WALLET_ACCOUNT",
        export_wallet_account,
        "WALLET",
        "EXPORT",
        json_object(["address", "targetPublicKey"], address=json_string(256), targetPublicKey=_TARGET),
    ),
    activity("ACTIVITY_TYPE_INIT_IMPORT_PRIVATE_KEY", _init_import("PRIVATE_KEY"), "PRIVATE_KEY", "IMPORT", _USER_ONLY),
    activity(
        "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
        import_private_key,
        "PRIVATE_KEY",
        "IMPORT",
        json_object(
            ["userId", "privateKeyName", "encryptedBundle", "curve", "addressFormats"],
            userId=JSON_ID,
            privateKeyName=json_string(256),
            encryptedBundle=_BUNDLE,
            curve=json_enum("CURVE_SECP256K1", "CURVE_ED25519"),
            addressFormats=json_array(json_string(64), 16),
        ),
    ),
    activity("ACTIVITY_TYPE_INIT_IMPORT_WALLET", _init_import("WALLET"), "WALLET", "IMPORT", _USER_ONLY),
    activity(
        "ACTIVITY_TYPE_IMPORT_WALLET",
        import_wallet,
        "WALLET",
        "IMPORT",
        json_object(
            ["userId", "walletName", "encryptedBundle", "accounts"],
            userId=JSON_ID,
            walletName=json_string(256),
            encryptedBundle=_BUNDLE,
            accounts=ACCOUNTS,
        ),
    ),
)
