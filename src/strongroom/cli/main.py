"""`strongroom` command line: operator commands (init, serve, org, audit, usage) and a stamped API client.

Output is for people by default; `--json` prints one JSON document for scripts. Exit codes:
0 success, 1 the daemon answered with an error (or an activity did not complete), 2 a usage or
local problem (missing key file, bad config, bad argument), 3 the daemon could not be reached.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

from strongroom import __version__
from strongroom.cli import completion
from strongroom.errors import StrongroomError
from strongroom.strictjson import is_ascii_digits

EXIT_API_ERROR = 1
EXIT_LOCAL = 2
EXIT_UNREACHABLE = 3


@dataclass
class Output:
    """What a command prints: `human` on a terminal, `data` with --json."""

    human: str
    data: Any
    code: int = 0


class LocalError(Exception):
    pass


def _count(text: str) -> int:
    """An argparse type: a whole number, 0 or more (argparse turns the ValueError into exit code 2)."""
    if not is_ascii_digits(text):
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number (0 or more)")
    return int(text)


def _positive(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    if not is_ascii_digits(text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a whole number of 1 or more")
    return int(text)


DURATION_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(text: str) -> int:
    """An argparse type: `30d`, `12h`, `90m`, `2w`, `3600s` or plain seconds; returns seconds."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in DURATION_UNITS else (text, "s")
    if not is_ascii_digits(number) or int(number) < 1:
        raise argparse.ArgumentTypeError(f"`{text}` is not a duration (examples: 30d, 12h, 90m, 3600)")
    return int(number) * DURATION_UNITS[unit]


API_KEY_CURVES: Final = {
    "p256": "API_KEY_CURVE_P256",
    "secp256k1": "API_KEY_CURVE_SECP256K1",
    "ed25519": "API_KEY_CURVE_ED25519",
}
ACCESS_TYPES: Final = {"api": "ACCESS_TYPE_API", "web": "ACCESS_TYPE_WEB", "all": "ACCESS_TYPE_ALL"}


ACTIVITY_STATUSES: Final = {
    "created": ("ACTIVITY_STATUS_CREATED",),
    # Waiting for something: Turnkey's PENDING, and (what Strongroom's activities wait for) votes.
    "pending": ("ACTIVITY_STATUS_PENDING", "ACTIVITY_STATUS_CONSENSUS_NEEDED"),
    "consensus_needed": ("ACTIVITY_STATUS_CONSENSUS_NEEDED",),
    "completed": ("ACTIVITY_STATUS_COMPLETED",),
    "failed": ("ACTIVITY_STATUS_FAILED",),
    "rejected": ("ACTIVITY_STATUS_REJECTED",),
}


# -- operator commands (local, no daemon call) ------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> Output:
    from strongroom.cli.bootstrap import init

    result = init(Path(args.data_dir), tuple(args.softhsm_mask or ()))
    profile = Path(args.data_dir) / "client.json"
    if not profile.exists():
        profile.write_text(
            json.dumps(
                {
                    "baseUrl": "http://127.0.0.1:8080",
                    "organizationId": result.organization_id,
                    "apiKey": str(result.api_private_key_file.with_suffix("")),
                },
                indent=2,
            )
            + "\n"
        )
    data = result.as_json()
    # init always prints its JSON: `make serve` and scripts read it.
    return Output(json.dumps(data), data)


def cmd_serve(args: argparse.Namespace) -> Output:
    from dataclasses import replace

    from strongroom.config import load_settings
    from strongroom.daemon.main import serve
    from strongroom.daemon.workers import StartFailed

    settings = load_settings(Path(args.data_dir))
    if args.host is not None:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        settings = replace(settings, port=args.port)
    profile = Path(args.data_dir) / "client.json"
    if profile.is_file() and settings.port != 0:
        # The local CLI profile follows the address the daemon actually serves on.
        data = json.loads(profile.read_text())
        data["baseUrl"] = f"http://{settings.host}:{settings.port}"
        profile.write_text(json.dumps(data, indent=2) + "\n")
    try:
        serve(settings)
    except OSError as err:  # e.g. the port is taken: one line, not a traceback
        raise LocalError(f"cannot serve on {settings.host}:{settings.port}: {err.strerror or err}") from None
    except StartFailed as err:
        raise LocalError(f"cannot start {settings.workers} workers: {err}") from None
    return Output("", None)


def cmd_org_create(args: argparse.Namespace) -> Output:
    from strongroom.cli.bootstrap import create_top_level_organization

    data = create_top_level_organization(Path(args.data_dir), args.name).as_json()
    return Output(json.dumps(data), data)


def cmd_org_list(args: argparse.Namespace) -> Output:
    from strongroom.cli.bootstrap import list_top_level_organizations

    orgs = list_top_level_organizations(Path(args.data_dir))
    return Output("\n".join(f"{o['organizationId']}  {o['name']}" for o in orgs), orgs)


def cmd_api_key_generate(args: argparse.Namespace) -> Output:
    from strongroom.cli.bootstrap import ensure_key_files

    public_hex, pub, priv = ensure_key_files(Path(args.dir), args.name)
    data = {"publicKey": public_hex, "publicKeyFile": str(pub), "privateKeyFile": str(priv)}
    return Output(f"public key {public_hex}\n  {pub}\n  {priv} (keep it secret)", data)


def cmd_audit_verify(args: argparse.Namespace) -> Output:
    from strongroom.config import load_settings
    from strongroom.store.audit_verify import PINNED_KEY_NAME, read_pinned, verified_marker, verify_database

    data_dir = Path(args.data_dir)
    source: Path | str
    if args.database_url:
        source = args.database_url
    else:
        settings = load_settings(data_dir)
        source = settings.database_url or settings.database_path
        if isinstance(source, Path) and not source.is_file():
            raise LocalError(f"no database at {source}")
    pinned = read_pinned(Path(args.pinned_key) if args.pinned_key else data_dir / PINNED_KEY_NAME)
    # the last checkpoint this data dir verified, when it is this data dir's store
    marker = None if args.database_url else verified_marker(data_dir)
    report = verify_database(
        source, pinned, allow_unsigned=args.allow_unsigned, expect=None if marker is None else marker[:2]
    )
    data = {
        "ok": report.ok,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "activitiesChecked": report.activities_checked,
        "firstBrokenEntry": report.first_broken,
        "unsignedTail": None if report.unsigned_tail is None else list(report.unsigned_tail),
        "pinnedKey": pinned.text(),
        "problems": report.problems,
        "warnings": report.warnings,
    }
    lines = [
        f"audit log {'intact' if report.ok else 'BROKEN'}: {report.entries} entries, "
        f"{report.checkpoints} signed checkpoints, {report.activities_checked} activities cross-checked",
        f"checkpoints checked against the pinned key: {pinned.text()}",
        *(f"problem: {p}" for p in report.problems),
        *([f"first entry that cannot be trusted: {report.first_broken}"] if report.first_broken else []),
        *(f"warning: {w}" for w in report.warnings),
    ]
    return Output("\n".join(lines), data, 0 if report.ok else EXIT_API_ERROR)


def cmd_audit_export_key(args: argparse.Namespace) -> Output:
    from strongroom.cli.bootstrap import open_token
    from strongroom.config import load_settings
    from strongroom.hsm import KeyStore
    from strongroom.store.audit_verify import PinnedKey

    token = open_token(load_settings(Path(args.data_dir)))
    try:
        public = KeyStore(token, token.probe()).audit_public_key()
    finally:
        token.close()
    key = PinnedKey("none", b"") if public is None else PinnedKey(*public)
    return Output(key.text(), {"scheme": key.scheme, "publicKey": key.public_key.hex(), "pinned": key.text()})


def cmd_clock_acknowledge(args: argparse.Namespace) -> Output:
    from strongroom.clock import SystemClock
    from strongroom.store.audit_verify import CLOCK_ACK_NAME, verified_marker, write_json

    data_dir = Path(args.data_dir)
    marker = verified_marker(data_dir)
    at = None if marker is None else marker[2]
    now = SystemClock().now_ms()
    data = {"acknowledgedAtMs": now, "checkpointAtMs": at}
    write_json(data_dir / CLOCK_ACK_NAME, data)
    human = (
        f"acknowledged: the wall clock may be earlier than the last signed checkpoint ({at} ms); "
        "the next start trusts it"
    )
    return Output(human, data)


def cmd_usage_set_quota(args: argparse.Namespace) -> Output:
    from strongroom.cli.bootstrap import operator_store
    from strongroom.config import load_settings

    settings = load_settings(Path(args.data_dir))
    if args.signatures == "none":
        quota = None
    elif is_ascii_digits(args.signatures):
        quota = int(args.signatures)
    else:
        raise LocalError("--signatures must be a number >= 0 or `none`")
    with operator_store(settings) as repo:
        if repo.organizations.organization(args.organization) is None:
            raise LocalError(f"no organization `{args.organization}` in the store")
        repo.write_sync(repo.usage.set_signature_quota(args.organization, quota))
    data = {"organizationId": args.organization, "monthlySignatureQuota": None if quota is None else str(quota)}
    return Output(f"monthly signature quota: {'none' if quota is None else quota}", data)


def cmd_migrate(args: argparse.Namespace) -> Output:
    from strongroom.cli.bootstrap import notarise_existing

    if not args.notarise:
        raise LocalError(
            "the schema is migrated when the daemon starts; `strongroom migrate --notarise` notarises "
            "organizations that predate notarisation (run it only on a database you know is intact)"
        )
    done = notarise_existing(Path(args.data_dir))
    text = f"notarised {len(done)} organization(s)" + "".join(f"\n  {o}" for o in done)
    return Output(text, {"notarised": done})


def cmd_tx_eth_transfer(args: argparse.Namespace) -> Output:
    from strongroom.chains.ethereum import rlp
    from strongroom.chains.ethereum.address import is_address
    from strongroom.chains.ethereum.tx import parse_unsigned_transaction
    from strongroom.cli.units import parse_amount

    if not is_address(args.to):
        raise LocalError(f"--to `{args.to}` is not an Ethereum address (0x + 40 hex, valid checksum if mixed case)")
    try:
        value, max_fee, priority = (parse_amount(x) for x in (args.value, args.max_fee, args.priority_fee))
        data = bytes.fromhex(args.data.removeprefix("0x")) if args.data else b""
    except ValueError as err:
        raise LocalError(str(err)) from err
    if priority > max_fee:
        raise LocalError("--priority-fee cannot be larger than --max-fee")
    u = rlp.encode_uint
    fields = [u(args.chain_id), u(args.nonce), u(priority), u(max_fee), u(args.gas)]
    unsigned = b"\x02" + rlp.encode([*fields, bytes.fromhex(args.to[2:]), u(value), data, []])
    parse_unsigned_transaction(unsigned.hex())  # what the daemon will accept
    hex_tx = "0x" + unsigned.hex()
    summary = {"to": args.to, "value": str(value), "chainId": args.chain_id, "nonce": args.nonce, "gas": args.gas}
    return Output(hex_tx, {"unsignedTransaction": hex_tx, **summary})


# -- client commands --------------------------------------------------------------------------------
def _client(args: argparse.Namespace) -> Any:
    from strongroom.client import ApiKeyStamper, Client

    profile: dict[str, Any] = {}
    path = Path(args.data_dir) / "client.json"
    if path.is_file():
        profile = json.loads(path.read_text())
    url = args.url or os.environ.get("STRONGROOM_URL") or profile.get("baseUrl") or "http://127.0.0.1:8080"
    if args.socket:
        url = f"unix://{Path(args.socket).resolve()}"
    org = args.org or os.environ.get("STRONGROOM_ORGANIZATION_ID") or profile.get("organizationId")
    key = args.key or os.environ.get("STRONGROOM_API_KEY") or profile.get("apiKey")
    if not org:
        raise LocalError(f"no organization id: pass --org or run `strongroom --data-dir {args.data_dir} init`")
    if not key:
        raise LocalError("no API key: pass --key PREFIX (the files PREFIX.public and PREFIX.private)")
    return Client(url, ApiKeyStamper.from_files(Path(key), args.key_curve), org)


def _activity_output(out: dict[str, Any], result_key: str, human: str | None = None) -> Output:
    activity = out["activity"]
    status = activity["status"]
    if status != "ACTIVITY_STATUS_COMPLETED":
        text = f"activity {activity['id']} is {status}"
        if status == "ACTIVITY_STATUS_CONSENSUS_NEEDED":
            text += f": more approvals are needed (fingerprint {activity['fingerprint']})"
        return Output(text, out, EXIT_API_ERROR)
    result = activity["result"].get(result_key, {})
    return Output(human if human is not None else json.dumps(result, indent=2), result)


def cmd_whoami(args: argparse.Namespace) -> Output:
    me = _client(args).whoami()
    return Output(
        f"user {me['username']} ({me['userId']})\norganization {me['organizationName']} ({me['organizationId']})", me
    )


def _key_line(k: dict[str, Any]) -> str:
    lines = [f"{k['privateKeyId']}  {k.get('privateKeyName', '')}  {k.get('curve', '')}".rstrip()]
    lines += [f"    {a['format'].removeprefix('ADDRESS_FORMAT_')}: {a['address']}" for a in k.get("addresses", [])]
    return "\n".join(lines)


def cmd_keys_create(args: argparse.Namespace) -> Output:
    curve = {"secp256k1": "CURVE_SECP256K1", "ed25519": "CURVE_ED25519"}[args.curve]
    formats = args.address_format or (
        ["ADDRESS_FORMAT_ETHEREUM"] if curve == "CURVE_SECP256K1" else ["ADDRESS_FORMAT_SOLANA"]
    )
    out = _activity_output(_client(args).create_private_key(args.name, curve, formats), "createPrivateKeysResultV2")
    if out.code:
        return out
    key = out.data["privateKeys"][0]
    if args.print == "id":
        return Output(key["privateKeyId"], key)
    if args.print == "address":
        return Output(key["addresses"][0]["address"] if key["addresses"] else "", key)
    return Output("created " + _key_line(key), key)


def cmd_keys_list(args: argparse.Namespace) -> Output:
    keys = _client(args).list_private_keys()["privateKeys"]
    return Output("\n".join(_key_line(k) for k in keys) or "no private keys", keys)


def cmd_keys_get(args: argparse.Namespace) -> Output:
    """By id, as the API takes it; or by name or address, looked up in the organization's keys."""
    client = _client(args)
    wanted = args.key_ref
    try:
        uuid.UUID(wanted)
    except ValueError:
        for key in client.list_private_keys()["privateKeys"]:
            addresses = {a["address"].lower() for a in key.get("addresses", [])}
            if key["privateKeyName"] == wanted or wanted.lower() in addresses:
                return Output(_key_line(key), key)
        raise LocalError(f"no private key with the name or address `{wanted}`") from None
    key = client.get_private_key(wanted)["privateKey"]
    return Output(_key_line(key), key)


def cmd_keys_delete(args: argparse.Namespace) -> Output:
    out = _client(args).delete_private_keys([args.key_id], without_export=args.without_export)
    result = _activity_output(out, "deletePrivateKeysResult")
    return result if result.code else Output(f"deleted private key {args.key_id}", result.data)


def account_spec(text: str) -> dict[str, Any]:
    """`ethereum[:N]`, `solana[:N]` (Turnkey's default paths, account N) or `CURVE:PATH:ADDRESS_FORMAT`."""
    from strongroom.client.calls import wallet_account

    name, _, rest = text.partition(":")
    if name in ("ethereum", "solana"):
        if rest and not rest.isdigit():
            raise LocalError(f"`{text}`: the account number after `{name}:` must be a number")
        n = int(rest or 0)
        if name == "ethereum":
            return wallet_account("CURVE_SECP256K1", f"m/44'/60'/0'/0/{n}", "ADDRESS_FORMAT_ETHEREUM")
        return wallet_account("CURVE_ED25519", f"m/44'/501'/{n}'/0'", "ADDRESS_FORMAT_SOLANA")
    parts = text.split(":")
    if len(parts) != 3:
        raise LocalError(
            f"`{text}`: an account is `ethereum[:N]`, `solana[:N]` or `CURVE:PATH:ADDRESS_FORMAT`"
            " (e.g. CURVE_SECP256K1:m/44'/60'/0'/0/0:ADDRESS_FORMAT_ETHEREUM)"
        )
    return wallet_account(*parts)


def _wallet_line(w: dict[str, Any]) -> str:
    return f"{w['walletId']}  {w['walletName']}"


def _account_line(a: dict[str, Any]) -> str:
    return f"    {a['addressFormat'].removeprefix('ADDRESS_FORMAT_')}: {a['address']}  ({a['path']})"


def cmd_wallets_create(args: argparse.Namespace) -> Output:
    accounts = [account_spec(a) for a in args.account or ["ethereum"]]
    out = _activity_output(_client(args).create_wallet(args.name, accounts, args.words), "createWalletResult")
    if out.code:
        return out
    made = out.data
    if args.print == "id":
        return Output(made["walletId"], made)
    if args.print == "address":
        return Output(made["addresses"][0] if made["addresses"] else "", made)
    lines = [f"created wallet {made['walletId']}  {args.name}"]
    lines += [f"    {a['addressFormat'].removeprefix('ADDRESS_FORMAT_')}: {addr}  ({a['path']})"
              for a, addr in zip(accounts, made["addresses"], strict=True)]  # fmt: skip
    return Output("\n".join(lines), made)


def cmd_wallets_list(args: argparse.Namespace) -> Output:
    client = _client(args)
    wallets = client.list_wallets()["wallets"]
    accounts = client.list_wallet_accounts()["accounts"] if wallets else []
    lines = []
    for w in wallets:
        lines.append(_wallet_line(w))
        lines += [_account_line(a) for a in accounts if a["walletId"] == w["walletId"]]
    return Output("\n".join(lines) or "no wallets", {"wallets": wallets, "accounts": accounts})


def cmd_wallets_accounts(args: argparse.Namespace) -> Output:
    """List a wallet's accounts; with --add, derive and add accounts first."""
    client = _client(args)
    if args.add:
        out = _activity_output(
            client.create_wallet_accounts(args.wallet_id, [account_spec(a) for a in args.add]),
            "createWalletAccountsResult",
        )
        if out.code:
            return out
    accounts = client.list_wallet_accounts(args.wallet_id)["accounts"]
    return Output("\n".join(_account_line(a).strip() for a in accounts) or "no accounts", accounts)


def _bundle_signer(client: Any, args: argparse.Namespace) -> str:
    """The bundle key to trust: `--signer-key` (pinned by the operator) or what the daemon says."""
    pinned: str | None = args.signer_key
    served: str = client.query("get_bundle_signer")["publicKey"]
    if pinned is not None and pinned.lower() != served:
        raise LocalError("the daemon's bundle key is not the one given with --signer-key: refusing")
    return served


def cmd_wallets_export(args: argparse.Namespace) -> Output:
    """Export a wallet's mnemonic to a key made here for this one call, and print it."""
    from strongroom.crypto import bundles, hpke
    from strongroom.crypto.memory import wipe

    client = _client(args)
    signer = _bundle_signer(client, args)
    private, public = hpke.generate_key_pair()
    try:
        out = _activity_output(
            client.submit(
                "export_wallet",
                "ACTIVITY_TYPE_EXPORT_WALLET",
                {"walletId": args.wallet_id, "targetPublicKey": public.hex()},
            ),
            "exportWalletResult",
        )
        if out.code:
            return out
        plain = bundles.open_export_bundle(out.data["exportBundle"], private, client.organization_id, signer)
    finally:
        wipe(private)
    mnemonic, _, passphrase = bytes(plain).decode().partition("\n")
    wipe(plain)
    data = {"walletId": args.wallet_id, "mnemonic": mnemonic, **({"passphrase": passphrase} if passphrase else {})}
    return Output(mnemonic + (f"\npassphrase: {passphrase}" if passphrase else ""), data)


def cmd_wallets_import(args: argparse.Namespace) -> Output:
    """Import a mnemonic (read from a file or stdin, never from the command line) as a new wallet."""
    from strongroom.crypto import bundles
    from strongroom.crypto.bundle_client import encrypt_to_import_bundle

    text = (sys.stdin.read() if args.mnemonic_file == "-" else _read_file(args.mnemonic_file)).strip()
    if not text:
        raise LocalError("no mnemonic: the file is empty")
    passphrase = _read_file(args.passphrase_file).rstrip("\n") if args.passphrase_file else ""
    plaintext = " ".join(text.split()) + (f"\n--PASS--\n{passphrase}" if passphrase else "")
    client = _client(args)
    signer = _bundle_signer(client, args)
    user_id = client.whoami()["userId"]
    init = _activity_output(
        client.submit("init_import_wallet", "ACTIVITY_TYPE_INIT_IMPORT_WALLET", {"userId": user_id}),
        "initImportWalletResult",
    )
    if init.code:
        return init
    try:
        encrypted = encrypt_to_import_bundle(
            init.data["importBundle"], plaintext.encode(), client.organization_id, user_id, signer
        )
    except bundles.BundleError as err:
        raise LocalError(f"the daemon's import bundle is not acceptable: {err}") from None
    accounts = [account_spec(a) for a in args.account or ["ethereum"]]
    out = _activity_output(
        client.submit(
            "import_wallet",
            "ACTIVITY_TYPE_IMPORT_WALLET",
            {"userId": user_id, "walletName": args.name, "encryptedBundle": encrypted, "accounts": accounts},
        ),
        "importWalletResult",
    )
    if out.code:
        return out
    made = out.data
    lines = [f"imported wallet {made['walletId']}  {args.name}"]
    lines += [f"    {a['addressFormat'].removeprefix('ADDRESS_FORMAT_')}: {addr}  ({a['path']})"
              for a, addr in zip(accounts, made["addresses"], strict=True)]  # fmt: skip
    return Output("\n".join(lines), made)


def _read_file(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as err:
        raise LocalError(f"cannot read `{path}`: {err.strerror}") from None


def cmd_wallets_delete(args: argparse.Namespace) -> Output:
    out = _client(args).delete_wallets([args.wallet_id], without_export=args.without_export)
    result = _activity_output(out, "deleteWalletsResult")
    return result if result.code else Output(f"deleted wallet {args.wallet_id}", result.data)


def cmd_sign_raw(args: argparse.Namespace) -> Output:
    out = _client(args).sign_raw_payload(
        args.sign_with, args.payload, f"PAYLOAD_ENCODING_{args.encoding.upper()}", f"HASH_FUNCTION_{args.hash.upper()}"
    )
    result = _activity_output(out, "signRawPayloadResult")
    if result.code:
        return result
    sig = result.data
    return Output(f"r: {sig['r']}\ns: {sig['s']}\nv: {sig['v']}", {"status": out["activity"]["status"], **sig})


def cmd_sign_tx(args: argparse.Namespace) -> Output:
    out = _client(args).sign_transaction(args.sign_with, args.unsigned, f"TRANSACTION_TYPE_{args.type.upper()}")
    result = _activity_output(out, "signTransactionResult")
    if result.code:
        return result
    if args.type == "solana":  # hex as Turnkey returns it, and base64 for a node's sendTransaction
        signed = result.data["signedTransaction"]
        b64 = base64.b64encode(bytes.fromhex(signed)).decode()
        return Output(signed, {"signedTransaction": signed, "base64": b64, "activityId": out["activity"]["id"]})
    signed = "0x" + result.data["signedTransaction"]
    return Output(signed, {"signedTransaction": signed, "activityId": out["activity"]["id"]})


def cmd_policies_list(args: argparse.Namespace) -> Output:
    policies = _client(args).list_policies()["policies"]
    lines = [
        f"{p['policyId']}  {p['effect'].removeprefix('EFFECT_')}  {p['policyName']}\n"
        f"    condition: {p['condition'] or '(any)'}\n    consensus: {p['consensus'] or '(any)'}"
        for p in policies
    ]
    return Output("\n".join(lines) or "no policies", policies)


def cmd_policies_create(args: argparse.Namespace) -> Output:
    out = _client(args).create_policy(
        args.name, f"EFFECT_{args.effect.upper()}", args.condition or "", args.consensus or "", args.notes or ""
    )
    result = _activity_output(out, "createPolicyResult")
    return result if result.code else Output(f"created policy {result.data['policyId']}", result.data)


def cmd_contracts_add(args: argparse.Namespace) -> Output:
    """Upload an Ethereum ABI (a JSON file, or a compiler artifact with `abi`) or a Solana IDL."""
    kind = f"SMART_CONTRACT_INTERFACE_TYPE_{args.type.upper()}"
    params = {
        "smartContractAddress": args.address,
        "smartContractInterface": _read_file(args.file),
        "type": kind,
        "label": args.label or args.address,
        "notes": args.notes or "",
    }
    out = _activity_output(
        _client(args).submit(
            "create_smart_contract_interface", "ACTIVITY_TYPE_CREATE_SMART_CONTRACT_INTERFACE", params
        ),
        "createSmartContractInterfaceResult",
    )
    return out if out.code else Output(f"added {out.data['smartContractInterfaceId']}  {args.address}", out.data)


def cmd_contracts_list(args: argparse.Namespace) -> Output:
    items = _client(args).query("list_smart_contract_interfaces")["smartContractInterfaces"]
    lines = [
        f"{c['smartContractInterfaceId']}  {c['type'].removeprefix('SMART_CONTRACT_INTERFACE_TYPE_')}"
        f"  {c['smartContractAddress']}  {c['label']}"
        for c in items
    ]
    return Output("\n".join(lines) or "no contract interfaces", items)


def cmd_contracts_delete(args: argparse.Namespace) -> Output:
    out = _activity_output(
        _client(args).submit(
            "delete_smart_contract_interface",
            "ACTIVITY_TYPE_DELETE_SMART_CONTRACT_INTERFACE",
            {"smartContractInterfaceId": args.interface_id},
        ),
        "deleteSmartContractInterfaceResult",
    )
    return out if out.code else Output(f"deleted contract interface {args.interface_id}", out.data)


def cmd_policies_delete(args: argparse.Namespace) -> Output:
    result = _activity_output(_client(args).delete_policy(args.policy_id), "deletePolicyResult")
    return result if result.code else Output(f"deleted policy {args.policy_id}", result.data)


def _activity_line(a: dict[str, Any]) -> str:
    return f"{a['id']}  {a['status'].removeprefix('ACTIVITY_STATUS_')}  {a['type'].removeprefix('ACTIVITY_TYPE_')}"


def cmd_activities_list(args: argparse.Namespace) -> Output:
    filters: dict[str, Any] = {}
    if args.status:
        filters["filterByStatus"] = sorted({full for name in args.status for full in ACTIVITY_STATUSES[name]})
    activities = _client(args).list_activities(args.limit, **filters)["activities"]
    none = "no activities" + (f" with status {' or '.join(args.status)}" if args.status else "")
    return Output("\n".join(_activity_line(a) for a in activities) or none, activities)


def cmd_activities_pending(args: argparse.Namespace) -> Output:
    """Activities waiting for votes, newest first: what each asks, and what it still needs."""
    from strongroom.cli.activity_view import summary

    client = _client(args)
    activities = client.list_activities(args.limit, filterByStatus=["ACTIVITY_STATUS_CONSENSUS_NEEDED"])["activities"]
    if args.print == "id":  # for scripts: ACTIVITY=$(strongroom activities pending --print id)
        return Output("\n".join(a["id"] for a in activities), [a["id"] for a in activities])
    lines = []
    for a in activities:
        view = client.get_activity_view(a["id"])["view"]
        approvals = view["approvals"]
        lines.append(
            f"{_activity_line(a)}  {_when(a.get('createdAt'))}  {approvals} approval{'s' * (approvals != 1)}\n"
            f"    {summary(view)}\n"
            + "".join(f"    waiting for: {w}\n" for w in view.get("waitingFor", []))
            + f"    vote window ends: {view['voteWindowEndsAt']}\n"
            f"    fingerprint: {a['fingerprint']}"
        )
    return Output("\n".join(lines) or "no activities waiting for votes", activities)


def _when(ts: Any) -> str:
    """A Turnkey timestamp ({seconds, nanos}) as UTC text."""
    from datetime import UTC, datetime

    try:
        return datetime.fromtimestamp(int(ts["seconds"]), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (KeyError, TypeError, ValueError, OverflowError):
        return "?"


def _activity_text(client: Any, activity_id: str) -> str:
    """What people are shown of an activity: the daemon's decoded view (`get_activity_view`) as text."""
    from strongroom.cli import activity_view

    return activity_view.text(client.get_activity_view(activity_id)["view"])


def cmd_activities_get(args: argparse.Namespace) -> Output:
    client = _client(args)
    activity = client.get_activity(args.activity_id)["activity"]
    return Output(_activity_text(client, activity["id"]), activity)


WAITING_FOR_VOTES: Final = "ACTIVITY_STATUS_CONSENSUS_NEEDED"


def _voted_on(client: Any, args: argparse.Namespace) -> dict[str, Any] | None:
    """The activity a vote is about: by id, or by --fingerprint among those waiting for votes
    (None if it is not among the 100 newest of them)."""
    if args.activity_id:
        activity: dict[str, Any] = client.get_activity(args.activity_id)["activity"]
        if args.fingerprint and args.fingerprint != activity["fingerprint"]:
            raise LocalError(f"activity {activity['id']} does not have the fingerprint {args.fingerprint}")
        return activity
    waiting = client.list_activities(100, filterByStatus=[WAITING_FOR_VOTES])["activities"]
    return next((a for a in waiting if a["fingerprint"] == args.fingerprint), None)


def _vote(args: argparse.Namespace, approve: bool) -> Output:
    """Show what is being voted on (as `activities get` does), ask unless --yes, then vote.

    The question is asked on the terminal: without one (stdin not a TTY) and without --yes the
    command refuses before it sends anything. With --json the view and the question go to
    stderr, so that stdout stays one JSON document.
    """
    verb, done = ("approve", "approved") if approve else ("reject", "rejected")
    if not args.yes and not sys.stdin.isatty():
        raise LocalError(f"stdin is not a terminal, so `activities {verb}` cannot ask: pass --yes to {verb} anyway")
    client = _client(args)
    activity = _voted_on(client, args)
    view = sys.stderr if args.json else sys.stdout
    if activity is None:
        if not args.yes:
            raise LocalError(
                f"no activity waiting for votes has the fingerprint {args.fingerprint}: give its id to see it first,"
                " or pass --yes to vote without seeing it"
            )
        fingerprint = str(args.fingerprint)
    else:
        if not (args.json and args.yes):
            view.write(_activity_text(client, activity["id"]) + "\n")
            view.flush()
        if activity["status"] != WAITING_FOR_VOTES:
            status = activity["status"].removeprefix("ACTIVITY_STATUS_")
            text = f"activity {activity['id']} is {status}: it is not waiting for votes, nothing was sent"
            return Output("" if args.json else text, activity, EXIT_API_ERROR)
        fingerprint = activity["fingerprint"]
    if not args.yes:
        view.write(f"{verb} activity {activity['id'] if activity else fingerprint}? [y/N] ")
        view.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            raise LocalError(f"not {done}: nothing was sent")
    out = client.approve_activity(fingerprint) if approve else client.reject_activity(fingerprint)
    result = out["activity"]
    code = EXIT_API_ERROR if result["status"] == "ACTIVITY_STATUS_FAILED" else 0
    text = f"{done}: activity {result['id']} is now {result['status'].removeprefix('ACTIVITY_STATUS_')}"
    if result.get("failure"):
        text += f" ({result['failure'].get('message', '')})"
    return Output(text, result, code)


def cmd_activities_approve(args: argparse.Namespace) -> Output:
    return _vote(args, True)


def cmd_activities_reject(args: argparse.Namespace) -> Output:
    return _vote(args, False)


def cmd_activities_watch(args: argparse.Namespace) -> Output:
    """Print the organization's events as they are committed (docs/events.md), each checked
    against the webhook key (`get_webhook_signer`); one line each, or one JSON object per line
    with --json. Resume after an event with --after ID."""
    from strongroom.client import verify_event

    client = _client(args)
    signer = client.query("get_webhook_signer")["publicKey"]
    filters: dict[str, Any] = {}
    if args.event_type:
        filters["eventTypes"] = args.event_type
    if args.activity_type:
        filters["activityTypes"] = args.activity_type
    last = args.after
    for seen, item in enumerate(client.events(args.after, filters or None), start=1):
        try:
            event = verify_event(signer, item.data)
        except ValueError as err:
            raise LocalError(f"event {item.id}: {err}") from err
        last = item.id
        if args.json:
            line = json.dumps(event, separators=(",", ":"))
        else:
            activity = event["activity"]
            line = f"{item.id}  {item.type}  {activity['id']}  {activity['type']}  {activity['status']}"
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if args.count and seen >= args.count:
            return Output("", None)
    resume = f": resume with --after {last}" if last else ""
    sys.stderr.write(f"the daemon ended the stream{resume}\n")
    return Output("", None)


def cmd_users_list(args: argparse.Namespace) -> Output:
    """Users, each with its credentials and whether it is in the root quorum."""
    org = _client(args).get_organization()["organizationData"]
    root = set(org["rootQuorum"]["userIds"])
    lines = []
    for u in org["users"]:
        keys, passkeys = len(u.get("apiKeys", [])), len(u.get("authenticators", []))
        badge = "  [root]" if u["userId"] in root else ""
        lines.append(
            f"{_user_line(u)}{badge}\n    {keys} API key{'s' * (keys != 1)}, {passkeys} passkey{'s' * (passkeys != 1)}"
        )
    return Output("\n".join(lines) or "no users", org["users"])


def _user_line(u: dict[str, Any]) -> str:
    return f"{u['userId']}  {u['userName']}  {u.get('userEmail', '')}".rstrip()


def _find_user(client: Any, ref: str) -> dict[str, Any]:
    """A user of the organization by its id, its email (any case) or its name."""
    users: list[dict[str, Any]] = client.list_users()["users"]
    for field, wanted in (("userId", ref), ("userEmail", ref.lower()), ("userName", ref)):
        found = [u for u in users if (str(u.get(field) or "").lower() if field == "userEmail" else u[field]) == wanted]
        if len(found) > 1:
            raise LocalError(f"{len(found)} users are named `{ref}`: give the user's id (see `users list`)")
        if found:
            return found[0]
    raise LocalError(f"no user with the id, email or name `{ref}` (see `users list`)")


def _public_key_file(text: str, curve: str | None) -> tuple[str, str, str]:
    """(name, public key hex, API_KEY_CURVE_*) from a Turnkey-format `PREFIX.public` file.

    Only the public half is read: a `.private` file is refused rather than opened.
    """
    path = Path(text)
    if path.suffix == ".private":
        raise LocalError(f"{text} is a private key file: give its .public file (the private key stays with its owner)")
    if not path.is_file() and Path(f"{text}.public").is_file():
        path = Path(f"{text}.public")
    try:
        public = path.read_text().strip().lower().removeprefix("0x")
    except OSError as err:
        raise LocalError(f"cannot read the public key file {text}: {err.strerror or err}") from None
    if len(public) not in (64, 66) or any(c not in "0123456789abcdef" for c in public):
        raise LocalError(f"{path} does not hold a public key (66 hex characters, or 64 for Ed25519)")
    if curve is None:
        curve = "ed25519" if len(public) == 64 else "p256"
    return path.name.removesuffix(".public"), public, API_KEY_CURVES[curve]


def _done(out: dict[str, Any], result_key: str, human: str) -> Output:
    """A completed activity's result, told as `human`; otherwise what `_activity_output` says (exit 1)."""
    result = _activity_output(out, result_key)
    return result if result.code else Output(human, result.data)


def cmd_users_create(args: argparse.Namespace) -> Output:
    from strongroom.client import calls

    files = [_public_key_file(f, args.curve) for f in args.api_key_file or ()]
    if args.access == "web" and files:
        raise LocalError("--access web: a web user signs in with passkeys only; drop --api-key-file or use all")
    keys = [calls.api_key(name, public, curve) for name, public, curve in files]
    client = _client(args)
    out = client.create_users([calls.user(args.name, args.email, keys)])
    created = _activity_output(out, "createUsersResult")
    if created.code:
        return created
    (user_id,) = created.data["userIds"]
    data = {"userId": user_id, "userName": args.name, "userEmail": args.email, "activityId": out["activity"]["id"]}
    human = f"created user {args.name} ({user_id})"
    # The daemon derives the access type from the credentials (API keys only: api); another is a second step.
    if args.access and args.access != ("api" if keys else "web"):
        updated = _activity_output(
            client.update_user(user_id, accessType=ACCESS_TYPES[args.access]), "updateUserResult"
        )
        if updated.code:
            return Output(f"{human}, but its access type is not set yet: {updated.human}", updated.data, updated.code)
        data["accessType"] = ACCESS_TYPES[args.access]
    return Output(human, data)


def cmd_users_update(args: argparse.Namespace) -> Output:
    fields = {
        k: v
        for k, v in (
            ("userName", args.name),
            ("userEmail", args.email),
            ("accessType", ACCESS_TYPES.get(args.access or "")),
        )
        if v
    }
    if not fields:
        raise LocalError("nothing to change: give --name, --email or --access")
    client = _client(args)
    user = _find_user(client, args.user)
    return _done(client.update_user(user["userId"], **fields), "updateUserResult", f"updated user {user['userId']}")


def cmd_users_delete(args: argparse.Namespace) -> Output:
    client = _client(args)
    user = _find_user(client, args.user)
    out = client.delete_users([user["userId"]])
    return _done(out, "deleteUsersResult", f"deleted user {user['userName']} ({user['userId']})")


def cmd_users_add_api_key(args: argparse.Namespace) -> Output:
    from strongroom.client import calls

    file_name, public, curve = _public_key_file(args.public_key_file, args.curve)
    name = args.name or file_name
    client = _client(args)
    user = _find_user(client, args.user)
    out = client.create_api_keys(user["userId"], [calls.api_key(name, public, curve, args.expires_in)])
    result = _activity_output(out, "createApiKeysResult")
    if result.code:
        return result
    (key_id,) = result.data["apiKeyIds"]
    expiry = f", expires in {args.expires_in} s" if args.expires_in else ""
    data = {"apiKeyId": key_id, "apiKeyName": name, "userId": user["userId"], "publicKey": public}
    return Output(f"added API key {name} ({key_id}) to user {user['userName']}{expiry}", data)


def cmd_users_remove_credential(args: argparse.Namespace) -> Output:
    """An API key or a passkey of the user, by its id or name (or, for an API key, its public key)."""
    client = _client(args)
    user = _find_user(client, args.user)
    ref = args.credential
    keys = [
        k
        for k in user.get("apiKeys", [])
        if ref in (k["apiKeyId"], k["apiKeyName"]) or ref.lower() == k["credential"]["publicKey"]
    ]
    passkeys = [a for a in user.get("authenticators", []) if ref in (a["authenticatorId"], a["authenticatorName"])]
    if len(keys) + len(passkeys) > 1:
        raise LocalError(f"{len(keys) + len(passkeys)} credentials of {user['userName']} match `{ref}`: give its id")
    if keys:
        out = client.delete_api_keys(user["userId"], [keys[0]["apiKeyId"]])
        return _done(out, "deleteApiKeysResult", f"removed API key {keys[0]['apiKeyName']} ({keys[0]['apiKeyId']})")
    if passkeys:
        a = passkeys[0]
        out = client.delete_authenticators(user["userId"], [a["authenticatorId"]])
        return _done(
            out, "deleteAuthenticatorsResult", f"removed passkey {a['authenticatorName']} ({a['authenticatorId']})"
        )
    raise LocalError(f"user {user['userName']} has no API key or passkey with the id or name `{ref}`")


def _dashboard_origin(args: argparse.Namespace, client: Any) -> str:
    """Where the invitee opens the link: --origin, else the first allowed passkey origin
    (`webauthn_origins`, `public_url`, by default http://<relying party>:<the port the CLI talks to>)."""
    from urllib.parse import urlsplit

    from strongroom.config import load_settings

    if args.origin:
        return str(args.origin).rstrip("/")
    try:
        settings = load_settings(Path(args.data_dir))
    except (StrongroomError, OSError):
        settings = None
    if settings is not None and (settings.webauthn_origins or settings.public_url):
        return settings.passkey_origins[0].rstrip("/")
    rp_id = settings.rp_id if settings is not None else "localhost"
    port = urlsplit(client.base_url).port if str(client.base_url).startswith("http") else None
    return f"http://{rp_id}:{port or (settings.port if settings is not None else 8080)}"


def _invite(args: argparse.Namespace, client: Any, user: dict[str, Any], created: bool) -> Output:
    """A passkey invite for `user` (see `strongroom.service.invites`): its key's public half goes
    to the daemon with the operator's stamp; the private half is printed once, in the link."""
    from strongroom.client import calls
    from strongroom.crypto import p256
    from strongroom.service.invites import INVITE_KEY_PREFIX, make_token

    private_hex, public = p256.generate_private_key()
    name = f"{INVITE_KEY_PREFIX}{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"
    key = calls.api_key(name, public, API_KEY_CURVES["p256"], args.expires_in)
    if created:
        out = client.create_users([calls.user(user["userName"], user["userEmail"], [key])])
        result = _activity_output(out, "createUsersResult")
        if result.code:
            return result
        (user_id,) = result.data["userIds"]
        user = {**user, "userId": user_id}
    else:
        result = _activity_output(client.create_api_keys(user["userId"], [key]), "createApiKeysResult")
        if result.code:
            return result
    data: dict[str, Any] = {
        "userId": user["userId"],
        "userName": user["userName"],
        "userEmail": user.get("userEmail"),
        "inviteName": name,
        "expiresInSeconds": args.expires_in,
    }
    lines = [f"{'created' if created else 'invited'} user {user['userName']} ({user['userId']})"]
    if getattr(args, "root", False):
        q = _quorum(client)
        ids = [*q["userIds"], user["userId"]]
        made_root = _activity_output(client.update_root_quorum(q["threshold"], ids), "updateRootQuorumResult")
        if made_root.code:
            return Output(f"{lines[0]}, but not added to the root quorum: {made_root.human}", data, made_root.code)
        data["rootQuorum"] = {"threshold": q["threshold"], "userIds": ids}
        lines.append(f"added to the root quorum ({q['threshold']} of {len(ids)} must approve)")
    link = f"{_dashboard_origin(args, client)}/dashboard/#invite/{make_token(client.organization_id, private_hex)}"
    data["link"] = link
    hours = args.expires_in / 3600
    lines += [
        f"one-time passkey invite for {user.get('userEmail') or user['userName']}, valid {hours:g} h"
        f" (revoke: strongroom users remove-credential {user['userId']} {name}):",
        link,
    ]
    return Output("\n".join(lines), data)


def cmd_dashboard_invite(args: argparse.Namespace) -> Output:
    client = _client(args)
    name = args.name or args.email.split("@", 1)[0]
    return _invite(args, client, {"userName": name, "userEmail": args.email}, created=True)


def cmd_users_add_passkey_invite(args: argparse.Namespace) -> Output:
    client = _client(args)
    user = _find_user(client, args.user)
    if not user.get("userEmail"):
        raise LocalError(f"user {user['userName']} has no email: set one first (users update USER --email …)")
    return _invite(args, client, user, created=False)


def _quorum(client: Any) -> dict[str, Any]:
    org = client.get_organization()["organizationData"]
    by_id = {u["userId"]: u for u in org["users"]}
    quorum = org["rootQuorum"]
    users = [
        {
            k: v
            for k, v in by_id.get(i, {"userId": i, "userName": "(unknown)"}).items()
            if k in ("userId", "userName", "userEmail")
        }
        for i in quorum["userIds"]
    ]
    return {"threshold": quorum["threshold"], "userIds": quorum["userIds"], "users": users}


def _quorum_text(q: dict[str, Any]) -> str:
    head = f"root quorum: {q['threshold']} of {len(q['userIds'])} must approve"
    return "\n".join([head, *("    " + _user_line(u) for u in q["users"])])


def cmd_root_quorum_show(args: argparse.Namespace) -> Output:
    q = _quorum(_client(args))
    return Output(_quorum_text(q), q)


def cmd_root_quorum_set(args: argparse.Namespace) -> Output:
    client = _client(args)
    ids = list(dict.fromkeys(_find_user(client, ref)["userId"] for ref in args.user))
    if args.threshold > len(ids):
        raise LocalError(f"--threshold {args.threshold} is more than the {len(ids)} users given with --user")
    result = _activity_output(client.update_root_quorum(args.threshold, ids), "updateRootQuorumResult")
    if result.code:
        return result
    q = _quorum(client)
    return Output("updated " + _quorum_text(q), q)


def cmd_request(args: argparse.Namespace) -> Output:
    """Like `tkcli request`, without the arithmetic: `organizationId` (the profile's) and, for
    activities, `timestampMs` (now) are filled in when the body leaves them out."""
    text = args.body
    try:
        if text == "-":
            text = sys.stdin.read()
        elif text.startswith("@"):
            text = Path(text[1:]).read_text()
    except OSError as err:
        raise LocalError(f"--body: cannot read {text}: {err.strerror}") from None
    try:
        body = json.loads(text)
    except ValueError as err:
        raise LocalError(f"--body is not valid JSON: {err}") from err
    if not isinstance(body, dict):
        raise LocalError("--body must be a JSON object")
    client = _client(args)
    body.setdefault("organizationId", client.organization_id)
    if "/submit/" in args.path:
        body.setdefault("timestampMs", str(time.time_ns() // 1_000_000))
    data = client.request(args.path, body)
    return Output(json.dumps(data, indent=2), data)


# -- parser -------------------------------------------------------------------------------------------------
def cmd_completion(args: argparse.Namespace) -> Output:
    text = completion.script(build_parser(), args.shell)
    return Output(text.rstrip("\n"), {"shell": args.shell, "script": text})


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line on stderr, naming the command and where its help is; exit 2.
    (argparse's default also prints the whole usage, which buries the one line that matters.)
    Subcommand parsers are made of this class too (`add_subparsers` takes the parent's class)."""

    def error(self, message: str) -> NoReturn:
        if message in ("the following arguments are required: command", "the following arguments are required: sub"):
            commands = next((a.choices for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
            message = f"a command is needed: one of {', '.join(commands or ())}"
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="strongroom", description="Strongroom: keys behind a PKCS#11 token, Turnkey's API.")
    p.add_argument("--data-dir", default=os.environ.get("STRONGROOM_DATA_DIR", "var"), help="data directory (./var)")
    p.add_argument("--url", help="daemon URL: http://host:port or unix:///path (default from <data-dir>/client.json)")
    p.add_argument("--socket", help="talk to the daemon over this Unix socket")
    p.add_argument("--org", help="organization id")
    p.add_argument("--key", help="API key file prefix: PREFIX.public and PREFIX.private")
    p.add_argument(
        "--key-curve", choices=["p256", "secp256k1", "ed25519"], help="curve of the API key (default: guessed)"
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--version", action="version", version=f"strongroom {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def add(parent: Any, name: str, fn: Any, help_text: str) -> argparse.ArgumentParser:
        s: argparse.ArgumentParser = parent.add_parser(name, help=help_text, description=help_text)
        # --json is accepted after the subcommand too; SUPPRESS keeps the top-level value otherwise
        s.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
        s.set_defaults(fn=fn)
        return s

    s = add(sub, "init", cmd_init, "create the embedded default: SoftHSM2 token, SQLite, organization, API key")
    s.add_argument(
        "--softhsm-mask", action="append", metavar="CKM_NAME", help="development: hide a mechanism from the new token"
    )
    s = add(sub, "serve", cmd_serve, "serve the API (TCP and the local socket)")
    s.add_argument("--host")
    s.add_argument("--port", type=_count)

    org = sub.add_parser("org", help="top-level organizations (local)").add_subparsers(dest="sub", required=True)
    s = add(org, "create", cmd_org_create, "create another top-level organization with its own root user and API key")
    s.add_argument("--name", required=True)
    add(org, "list", cmd_org_list, "list the top-level organizations of this data directory")

    ak = sub.add_parser("api-key", help="API key files").add_subparsers(dest="sub", required=True)
    s = add(ak, "generate", cmd_api_key_generate, "write a new P-256 API key in Turnkey's file format")
    s.add_argument("--name", required=True)
    s.add_argument("--dir", default=str(Path.home() / ".config" / "strongroom" / "keys"))

    add(sub, "whoami", cmd_whoami, "who the API key is")

    keys = sub.add_parser("keys", help="private keys").add_subparsers(dest="sub", required=True)
    s = add(keys, "create", cmd_keys_create, "create a private key in the token")
    s.add_argument("--name", required=True)
    s.add_argument("--curve", choices=["secp256k1", "ed25519"], required=True)
    s.add_argument("--address-format", action="append", help="ADDRESS_FORMAT_* (repeatable)")
    s.add_argument("--print", choices=["id", "address"], help="print only the key id or its first address")
    add(keys, "list", cmd_keys_list, "list private keys")
    s = add(keys, "get", cmd_keys_get, "show one private key")
    s.add_argument("key_ref", metavar="KEY", help="its id, name or address")
    s = add(keys, "delete", cmd_keys_delete, "delete a private key for good (its token object is destroyed)")
    s.add_argument("key_id", metavar="KEY_ID")
    s.add_argument(
        "--without-export", action="store_true", help="required: the key was never exported and cannot come back"
    )

    wal = sub.add_parser("wallets", help="HD wallets (BIP-39 seeds sealed by the token)").add_subparsers(
        dest="sub", required=True
    )
    s = add(wal, "create", cmd_wallets_create, "create an HD wallet: a new seed and its first accounts")
    s.add_argument("--name", required=True)
    s.add_argument(
        "--account",
        action="append",
        metavar="SPEC",
        help="ethereum[:N], solana[:N] or CURVE:PATH:ADDRESS_FORMAT (repeatable; default: ethereum)",
    )
    s.add_argument("--words", type=int, choices=[12, 15, 18, 21, 24], help="mnemonic length (default 12)")
    s.add_argument("--print", choices=["id", "address"], help="print only the wallet id or its first address")
    add(wal, "list", cmd_wallets_list, "list wallets and their accounts")
    s = add(wal, "accounts", cmd_wallets_accounts, "list a wallet's accounts (--add derives more)")
    s.add_argument("wallet_id", metavar="WALLET_ID")
    s.add_argument("--add", action="append", metavar="SPEC", help="ethereum[:N], solana[:N] or CURVE:PATH:FORMAT")
    s = add(wal, "export", cmd_wallets_export, "print a wallet's mnemonic (encrypted to a one-time key made here)")
    s.add_argument("wallet_id", metavar="WALLET_ID")
    s.add_argument("--signer-key", help="the daemon's bundle key to insist on (hex; see get_bundle_signer)")
    s = add(wal, "import", cmd_wallets_import, "import a BIP-39 mnemonic as a new wallet (encrypted here)")
    s.add_argument("--name", required=True)
    s.add_argument("--mnemonic-file", required=True, help="a file holding the mnemonic, or - for stdin")
    s.add_argument("--passphrase-file", help="a file holding the BIP-39 passphrase, if the wallet has one")
    s.add_argument("--account", action="append", metavar="SPEC", help="as for `wallets create` (default: ethereum)")
    s.add_argument("--signer-key", help="the daemon's bundle key to insist on (hex; see get_bundle_signer)")
    s = add(wal, "delete", cmd_wallets_delete, "delete a wallet, its accounts and its sealed seed for good")
    s.add_argument("wallet_id", metavar="WALLET_ID")
    s.add_argument(
        "--without-export", action="store_true", help="required: the wallet was never exported and cannot come back"
    )

    sign = sub.add_parser("sign", help="signing").add_subparsers(dest="sub", required=True)
    s = add(sign, "raw", cmd_sign_raw, "sign a raw payload")
    s.add_argument("--sign-with", required=True, help="private key id or address, or a wallet account's address")
    s.add_argument("--payload", required=True)
    s.add_argument("--encoding", choices=["hexadecimal", "text_utf8", "eip712"], default="text_utf8")
    s.add_argument("--hash", choices=["keccak256", "sha256", "no_op", "not_applicable"], default="keccak256")
    s = add(sign, "tx", cmd_sign_tx, "sign an unsigned Ethereum or Solana transaction; prints it signed")
    s.add_argument("--sign-with", required=True, help="private key id or address, or a wallet account's address")
    s.add_argument(
        "--unsigned",
        required=True,
        help="unsigned transaction hex (Solana: the serialised transaction with empty signature slots)",
    )
    s.add_argument("--type", choices=["ethereum", "solana"], default="ethereum", help="transaction type")

    tx = sub.add_parser("tx", help="build transactions (local)").add_subparsers(dest="sub", required=True)
    s = add(tx, "eth-transfer", cmd_tx_eth_transfer, "an unsigned EIP-1559 ETH transfer")
    s.add_argument("--to", required=True)
    s.add_argument("--value", required=True, help="amount: 1000 (wei), 30gwei, 0.01eth")
    s.add_argument("--nonce", type=_count, required=True)
    s.add_argument("--chain-id", type=_count, required=True)
    s.add_argument("--max-fee", required=True, help="max fee per gas, e.g. 30gwei")
    s.add_argument("--priority-fee", required=True, help="max priority fee per gas, e.g. 1gwei")
    s.add_argument("--gas", type=_count, default=21000)
    s.add_argument("--data", help="calldata hex")

    pol = sub.add_parser("policies", help="policies").add_subparsers(dest="sub", required=True)
    add(pol, "list", cmd_policies_list, "list policies")
    s = add(pol, "create", cmd_policies_create, "create a policy (Turnkey's policy language)")
    s.add_argument("--name", required=True)
    s.add_argument("--effect", choices=["allow", "deny"], required=True)
    s.add_argument("--condition")
    s.add_argument("--consensus")
    s.add_argument("--notes")
    s = add(pol, "delete", cmd_policies_delete, "delete a policy")
    s.add_argument("policy_id")

    con = sub.add_parser("contracts", help="contract ABIs and IDLs that policies read calls through").add_subparsers(
        dest="sub", required=True
    )
    s = add(con, "add", cmd_contracts_add, "upload an Ethereum ABI or a Solana IDL for a contract address")
    s.add_argument("--address", required=True, help="0x address (ethereum) or program id (solana)")
    s.add_argument("--file", required=True, help="the ABI / IDL JSON (a compiler artifact with `abi` works)")
    s.add_argument("--type", choices=["ethereum", "solana"], default="ethereum")
    s.add_argument("--label")
    s.add_argument("--notes")
    add(con, "list", cmd_contracts_list, "list contract interfaces")
    s = add(con, "delete", cmd_contracts_delete, "delete a contract interface")
    s.add_argument("interface_id", metavar="INTERFACE_ID")

    act = sub.add_parser("activities", help="activities").add_subparsers(dest="sub", required=True)
    s = add(act, "list", cmd_activities_list, "list activities, newest first")
    s.add_argument("--limit", type=_count, default=10)
    s.add_argument(
        "--status",
        action="append",
        choices=sorted(ACTIVITY_STATUSES),
        help="only these (repeatable); pending = waiting, for votes included",
    )
    s = add(act, "pending", cmd_activities_pending, "activities waiting for votes, newest first")
    s.add_argument("--limit", type=_count, default=50)
    s.add_argument("--print", choices=["id"], help="print only their ids, one a line")
    s = add(act, "get", cmd_activities_get, "show one activity: its decoded intent, votes and result or failure")
    s.add_argument("activity_id")
    for name, fn in (("approve", cmd_activities_approve), ("reject", cmd_activities_reject)):
        s = add(act, name, fn, f"{name} an activity that needs consensus: shows it, asks, then votes")
        s.add_argument("activity_id", nargs="?")
        s.add_argument("--fingerprint")
        s.add_argument("-y", "--yes", action="store_true", help=f"{name} without asking (needed without a terminal)")

    s = add(act, "watch", cmd_activities_watch, "print events (consensus needed, votes, outcomes) as they happen")
    s.add_argument("--after", metavar="EVENT_ID", help="resume right after this event (its id)")
    s.add_argument("--event-type", action="append", help="only these event types (repeatable)")
    s.add_argument("--activity-type", action="append", help="only events of these activity types (repeatable)")
    s.add_argument("--count", type=_count, default=0, help="stop after this many events (0: never)")

    users = sub.add_parser("users", help="users and their credentials").add_subparsers(dest="sub", required=True)
    add(users, "list", cmd_users_list, "list users")
    user_help = "the user's id, email or name"
    curve_help = "curve of the public key (default: guessed, p256 or ed25519)"
    s = add(users, "create", cmd_users_create, "create a user, with API keys from public key files")
    s.add_argument("--name", required=True)
    s.add_argument("--email")
    s.add_argument("--access", choices=sorted(ACCESS_TYPES), help="api (API keys), web (passkeys) or all")
    s.add_argument("--api-key-file", action="append", metavar="PREFIX.public", help="a public key file (repeatable)")
    s.add_argument("--curve", choices=sorted(API_KEY_CURVES), help=curve_help)
    s = add(users, "update", cmd_users_update, "change a user's name, email or access type")
    s.add_argument("user", metavar="USER", help=user_help)
    s.add_argument("--name")
    s.add_argument("--email")
    s.add_argument("--access", choices=sorted(ACCESS_TYPES))
    s = add(users, "delete", cmd_users_delete, "delete a user (not a member of the root quorum)")
    s.add_argument("user", metavar="USER", help=user_help)
    s = add(users, "add-api-key", cmd_users_add_api_key, "add an API key (its public key file) to a user")
    s.add_argument("user", metavar="USER", help=user_help)
    s.add_argument("--public-key-file", required=True, metavar="PREFIX.public")
    s.add_argument("--name", help="the key's name (default: the file's name)")
    s.add_argument("--expires-in", type=_duration, metavar="DURATION", help="e.g. 30d, 12h, 90m (default: never)")
    s.add_argument("--curve", choices=sorted(API_KEY_CURVES), help=curve_help)
    s = add(users, "remove-credential", cmd_users_remove_credential, "remove one of a user's API keys or passkeys")
    s.add_argument("user", metavar="USER", help=user_help)
    s.add_argument("credential", metavar="CREDENTIAL", help="the API key's or passkey's id or name")

    invite_ttl = "how long the link works (default 24h), e.g. 2h, 30m"
    s = add(users, "add-passkey-invite", cmd_users_add_passkey_invite, "print a one-time link that registers a passkey")
    s.add_argument("user", metavar="USER", help=user_help)
    s.add_argument("--expires-in", type=_duration, default=86400, metavar="DURATION", help=invite_ttl)
    s.add_argument("--origin", help="the dashboard's origin in the link (default: the passkey origin)")
    dash = sub.add_parser("dashboard", help="the web dashboard").add_subparsers(dest="sub", required=True)
    s = add(dash, "invite", cmd_dashboard_invite, "create a web user and print a one-time passkey registration link")
    s.add_argument("--email", required=True, help="the invitee's email (their dashboard login)")
    s.add_argument("--name", help="the user's name (default: the email's local part)")
    s.add_argument("--root", action="store_true", help="also add the user to the root quorum")
    s.add_argument("--expires-in", type=_duration, default=86400, metavar="DURATION", help=invite_ttl)
    s.add_argument("--origin", help="the dashboard's origin in the link (default: the passkey origin)")

    rq = sub.add_parser("root-quorum", help="the root quorum").add_subparsers(dest="sub", required=True)
    add(rq, "show", cmd_root_quorum_show, "the root quorum's users and how many must approve")
    s = add(rq, "set", cmd_root_quorum_set, "replace the root quorum (decided by the current root quorum)")
    s.add_argument("--threshold", type=_positive, required=True, help="how many of the users must approve")
    s.add_argument("--user", action="append", required=True, metavar="USER", help=f"{user_help} (repeatable)")

    aud = sub.add_parser("audit", help="the tamper-evident audit log").add_subparsers(dest="sub", required=True)
    s = add(aud, "verify", cmd_audit_verify, "check the whole chain offline; names the first broken link")
    s.add_argument("--pinned-key", help="the pinned audit public key file (default <data-dir>/audit-key.pub)")
    s.add_argument("--database-url", help="verify this PostgreSQL database (default: the data dir's store)")
    s.add_argument(
        "--allow-unsigned", action="store_true", help="accept unsigned checkpoints (a token without ECDSA or EdDSA)"
    )
    add(aud, "export-key", cmd_audit_export_key, "print the token's audit public key, to pin elsewhere")

    clk = sub.add_parser("clock", help="the trusted clock").add_subparsers(dest="sub", required=True)
    add(
        clk,
        "acknowledge",
        cmd_clock_acknowledge,
        "operator: the wall clock is right although earlier than the last signed audit checkpoint",
    )

    use = sub.add_parser("usage", help="signature metering").add_subparsers(dest="sub", required=True)
    s = add(use, "set-quota", cmd_usage_set_quota, "operator: monthly signature quota of an organization (local)")
    s.add_argument("--organization", required=True)
    s.add_argument("--signatures", required=True, help="a number, or `none` for no quota")

    s = add(sub, "migrate", cmd_migrate, "operator: database maintenance (local)")
    s.add_argument(
        "--notarise",
        action="store_true",
        help="notarise organizations that predate notarisation, as they are (explicit consent)",
    )

    s = add(sub, "completion", cmd_completion, "print a shell completion script: bash, zsh or fish")
    s.add_argument("shell", choices=completion.SHELLS)

    s = add(sub, "request", cmd_request, "stamp and send any API call (like tkcli request)")
    s.add_argument("--path", required=True, help="e.g. /public/v1/query/whoami")
    s.add_argument(
        "--body",
        default="{}",
        help="JSON body, @FILE or - (stdin); organizationId and an activity's timestampMs are filled in if absent",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    from strongroom.client import ApiError, ClientError, Unreachable

    args = build_parser().parse_args(argv)
    if getattr(args, "sub", None) in ("approve", "reject") and not (args.activity_id or args.fingerprint):
        sys.stderr.write("error: give an activity id or --fingerprint\n")
        return EXIT_LOCAL
    try:
        out: Output = args.fn(args)
    except Unreachable as err:
        sys.stderr.write(f"error: {err.message}\n")
        return EXIT_UNREACHABLE
    except ApiError as err:
        code = f" ({err.turnkey_code})" if err.turnkey_code else ""
        sys.stderr.write(f"error: the daemon answered {err.status}{code}: {err.message}\n")
        return EXIT_API_ERROR
    except (ClientError, LocalError) as err:
        sys.stderr.write(f"error: {err.message if isinstance(err, ClientError) else err}\n")
        return EXIT_LOCAL
    except StrongroomError as err:
        sys.stderr.write(f"error: {err.message}\n")
        return EXIT_LOCAL
    if out.data is not None or out.human:
        if args.json:
            sys.stdout.write(json.dumps(out.data, indent=2) + "\n")
        elif out.human:
            sys.stdout.write(out.human + "\n")
    return out.code
