"""`strongroom` command line: operator commands (init, serve) and a stamped API client.

Exit codes: 0 success, 1 the daemon answered with an error, 2 usage or local problem
(missing key file, bad config), 3 the daemon could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from strongroom.errors import StrongroomError

EXIT_API_ERROR = 1
EXIT_LOCAL = 2
EXIT_UNREACHABLE = 3


def _print(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def cmd_init(args: argparse.Namespace) -> int:
    from strongroom.daemon.bootstrap import init

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
    sys.stdout.write(json.dumps(result.as_json()) + "\n")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from strongroom.config import load_settings
    from strongroom.daemon.main import serve

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
    serve(settings)
    return 0


def cmd_api_key_generate(args: argparse.Namespace) -> int:
    from strongroom.daemon.bootstrap import ensure_key_files

    public_hex, pub, priv = ensure_key_files(Path(args.dir), args.name)
    _print({"publicKey": public_hex, "publicKeyFile": str(pub), "privateKeyFile": str(priv)})
    return 0


def _client(args: argparse.Namespace) -> Any:
    from strongroom.client import ApiKeyStamper, Client, ClientError

    profile: dict[str, Any] = {}
    path = Path(args.data_dir) / "client.json"
    if path.is_file():
        profile = json.loads(path.read_text())
    url = args.url or os.environ.get("STRONGROOM_URL") or profile.get("baseUrl") or "http://127.0.0.1:8080"
    org = args.org or os.environ.get("STRONGROOM_ORGANIZATION_ID") or profile.get("organizationId")
    key = args.key or os.environ.get("STRONGROOM_API_KEY") or profile.get("apiKey")
    if not org:
        raise ClientError(
            0, None, f"no organization id: pass --org or run `strongroom init --data-dir {args.data_dir}`"
        )
    if not key:
        raise ClientError(0, None, "no api key: pass --key PREFIX (files PREFIX.public and PREFIX.private)")
    return Client(url, ApiKeyStamper.from_files(Path(key)), org)


def cmd_whoami(args: argparse.Namespace) -> int:
    _print(_client(args).whoami())
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    curve = {"secp256k1": "CURVE_SECP256K1", "ed25519": "CURVE_ED25519"}[args.curve]
    formats = args.address_format or (
        ["ADDRESS_FORMAT_ETHEREUM"] if curve == "CURVE_SECP256K1" else ["ADDRESS_FORMAT_SOLANA"]
    )
    out = _client(args).create_private_key(args.name, curve, formats)
    result = out["activity"]["result"].get("createPrivateKeysResultV2", {})
    _print(result.get("privateKeys", out) if not args.raw else out)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    _print(_client(args).query("list_private_keys")["privateKeys"])
    return 0


def cmd_keys_get(args: argparse.Namespace) -> int:
    _print(_client(args).query("get_private_key", privateKeyId=args.key_id)["privateKey"])
    return 0


def cmd_sign_raw(args: argparse.Namespace) -> int:
    out = _client(args).sign_raw_payload(
        args.sign_with,
        args.payload,
        f"PAYLOAD_ENCODING_{args.encoding.upper()}",
        f"HASH_FUNCTION_{args.hash.upper()}",
    )
    activity = out["activity"]
    if args.raw:
        _print(out)
    else:
        _print({"status": activity["status"], **activity["result"].get("signRawPayloadResult", {})})
    return 0 if activity["status"] == "ACTIVITY_STATUS_COMPLETED" else EXIT_API_ERROR


def cmd_request(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        body = json.loads(args.body)
    except ValueError as err:
        sys.stderr.write(f"error: --body is not valid JSON: {err}\n")
        return EXIT_LOCAL
    _print(client.request(args.path, body))
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from strongroom.config import load_settings
    from strongroom.daemon.audit_verify import verify_database

    settings = load_settings(Path(args.data_dir))
    if not settings.database_path.is_file():
        sys.stderr.write(f"error: no database at {settings.database_path}\n")
        return EXIT_LOCAL
    report = verify_database(settings.database_path)
    out = {
        "ok": report.ok,
        "entries": report.entries,
        "checkpoints": report.checkpoints,
        "activitiesChecked": report.activities_checked,
        "problems": report.problems,
        "warnings": report.warnings,
    }
    if args.json:
        _print(out)
    else:
        verdict = "intact" if report.ok else "BROKEN"
        sys.stdout.write(
            f"audit log {verdict}: {report.entries} entries, {report.checkpoints} signed checkpoints, "
            f"{report.activities_checked} activities cross-checked\n"
        )
        for line in report.problems:
            sys.stdout.write(f"problem: {line}\n")
        for line in report.warnings:
            sys.stdout.write(f"warning: {line}\n")
    return 0 if report.ok else EXIT_API_ERROR


def cmd_usage_set_quota(args: argparse.Namespace) -> int:
    from strongroom.config import load_settings
    from strongroom.store import Repository, SqliteDatabase

    settings = load_settings(Path(args.data_dir))
    quota = None if args.signatures == "none" else int(args.signatures)
    if quota is not None and quota < 0:
        sys.stderr.write("error: --signatures must be a number >= 0 or `none`\n")
        return EXIT_LOCAL
    db = SqliteDatabase(settings.database_path)
    try:
        repo = Repository(db)
        if repo.organization(args.organization) is None:
            sys.stderr.write(f"error: no organization `{args.organization}` in {settings.database_path}\n")
            return EXIT_LOCAL
        repo.write_sync(repo.set_signature_quota(args.organization, quota))
    finally:
        db.close()
    _print({"organizationId": args.organization, "monthlySignatureQuota": None if quota is None else str(quota)})
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="strongroom", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--data-dir", default=os.environ.get("STRONGROOM_DATA_DIR", "var"), help="data directory (./var)")
    p.add_argument("--url", help="daemon base URL (default from <data-dir>/client.json)")
    p.add_argument("--org", help="organization id")
    p.add_argument("--key", help="API key file prefix: PREFIX.public and PREFIX.private")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("init", help="create the embedded default: SoftHSM2 token, SQLite, organization, API key")
    s.add_argument(
        "--softhsm-mask",
        action="append",
        metavar="CKM_NAME",
        help="development: hide a mechanism from the new SoftHSM2 token (forces the software fallback)",
    )
    s.set_defaults(fn=cmd_init)

    s = sub.add_parser("serve", help="serve the API")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.set_defaults(fn=cmd_serve)

    ak = sub.add_parser("api-key", help="API key files").add_subparsers(dest="sub", required=True)
    s = ak.add_parser("generate", help="write a new P-256 API key in Turnkey's file format")
    s.add_argument("--name", required=True)
    s.add_argument("--dir", default=str(Path.home() / ".config" / "strongroom" / "keys"))
    s.set_defaults(fn=cmd_api_key_generate)

    s = sub.add_parser("whoami", help="who the API key is")
    s.set_defaults(fn=cmd_whoami)

    keys = sub.add_parser("keys", help="private keys").add_subparsers(dest="sub", required=True)
    s = keys.add_parser("create")
    s.add_argument("--name", required=True)
    s.add_argument("--curve", choices=["secp256k1", "ed25519"], required=True)
    s.add_argument("--address-format", action="append", help="ADDRESS_FORMAT_* (repeatable)")
    s.add_argument("--raw", action="store_true", help="print the whole activity")
    s.set_defaults(fn=cmd_keys_create)
    s = keys.add_parser("list")
    s.set_defaults(fn=cmd_keys_list)
    s = keys.add_parser("get")
    s.add_argument("key_id")
    s.set_defaults(fn=cmd_keys_get)

    sign = sub.add_parser("sign", help="signing").add_subparsers(dest="sub", required=True)
    s = sign.add_parser("raw", help="sign a raw payload")
    s.add_argument("--sign-with", required=True, help="private key id or address")
    s.add_argument("--payload", required=True)
    s.add_argument("--encoding", choices=["hexadecimal", "text_utf8"], default="text_utf8")
    s.add_argument("--hash", choices=["keccak256", "sha256", "no_op", "not_applicable"], default="keccak256")
    s.add_argument("--raw", action="store_true", help="print the whole activity")
    s.set_defaults(fn=cmd_sign_raw)

    aud = sub.add_parser("audit", help="the tamper-evident audit log").add_subparsers(dest="sub", required=True)
    s = aud.add_parser("verify", help="check the whole chain offline; names the first broken link")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_audit_verify)

    use = sub.add_parser("usage", help="signature metering").add_subparsers(dest="sub", required=True)
    s = use.add_parser("set-quota", help="operator: monthly signature quota of an organization (local)")
    s.add_argument("--organization", required=True)
    s.add_argument("--signatures", required=True, help="a number, or `none` for no quota")
    s.set_defaults(fn=cmd_usage_set_quota)

    s = sub.add_parser("request", help="stamp and send any API call (like tkcli request)")
    s.add_argument("--path", required=True, help="e.g. /public/v1/query/whoami")
    s.add_argument("--body", required=True, help="JSON body")
    s.set_defaults(fn=cmd_request)
    return p


def main(argv: list[str] | None = None) -> int:
    from strongroom.client import ClientError

    args = build_parser().parse_args(argv)
    try:
        code: int = args.fn(args)
    except ClientError as err:
        if err.status:
            sys.stderr.write(f"error: the daemon answered {err.status}: {err.message}\n")
            return EXIT_API_ERROR
        sys.stderr.write(f"error: {err.message}\n")
        return EXIT_UNREACHABLE if "not reachable" in err.message else EXIT_LOCAL
    except StrongroomError as err:
        sys.stderr.write(f"error: {err.message}\n")
        return EXIT_LOCAL
    return code
