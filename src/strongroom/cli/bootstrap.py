"""`strongroom init`: the embedded default (SoftHSM2 token + SQLite) and a first organization.

Idempotent: a second run changes nothing and prints the same summary. The root user's API key
is made for the *client*: its private half is written to a file for the operator (Turnkey's
CLI convention, mode 0600) and only the public half is recorded by the daemon.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from strongroom.clock import SystemClock
from strongroom.config import CONFIG_NAME, Settings, load_settings
from strongroom.crypto import p256
from strongroom.errors import ConfigError
from strongroom.softhsm import create_token
from strongroom.store import Organization, Repository, open_database
from strongroom.store.notary import adopt_op
from strongroom.store.records import ApiKey, User

if TYPE_CHECKING:
    from strongroom.hsm import Token

DEFAULT_ORG_NAME: Final = "Strongroom"
ROOT_USER_NAME: Final = "root"


@dataclass(frozen=True, slots=True)
class InitResult:
    organization_id: str
    user_id: str
    api_public_key: str
    api_public_key_file: Path
    api_private_key_file: Path
    audit_key: str = ""
    audit_key_file: Path | None = None

    def as_json(self) -> dict[str, str]:
        audit = {"auditKey": self.audit_key, "auditKeyFile": str(self.audit_key_file)} if self.audit_key_file else {}
        return {
            **audit,
            "organizationId": self.organization_id,
            "userId": self.user_id,
            "apiPublicKey": self.api_public_key,
            "apiPublicKeyFile": str(self.api_public_key_file),
            "apiPrivateKeyFile": str(self.api_private_key_file),
        }


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def ensure_key_files(keys_dir: Path, name: str) -> tuple[str, Path, Path]:
    """Turnkey CLI convention: `<name>.private` (64 hex) and `<name>.public` (66 hex), mode 0600."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pub_path, priv_path = keys_dir / f"{name}.public", keys_dir / f"{name}.private"
    if pub_path.exists() and priv_path.exists():
        return pub_path.read_text().strip(), pub_path, priv_path
    if pub_path.exists() or priv_path.exists():
        raise ConfigError(f"only one half of the api key `{keys_dir / name}` exists; remove it or restore the other")
    private_hex, public_hex = p256.generate_private_key()
    _write_private(priv_path, private_hex)
    _write_private(pub_path, public_hex)
    return public_hex, pub_path, priv_path


def ensure_config(data_dir: Path, softhsm_mask: tuple[str, ...] = ()) -> Settings:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cfg = data_dir / CONFIG_NAME
    if not cfg.exists():
        token = create_token(data_dir / "softhsm", "strongroom", masked=softhsm_mask)
        text = (
            "# Strongroom settings (written by `strongroom init`).\n"
            'host = "127.0.0.1"\n'
            "port = 8080\n"
            "# the local signing socket (mode 0600 in a 0700 directory); unix_socket_allowed_uids = [1000] limits it\n"
            'unix_socket = "run/strongroom.sock"\n\n'
            "[token]\n"
            f'module = "{token.module}"\n'
            f'label = "{token.label}"\n'
            "# the PIN is read from this file (or from the variable named by pin_env), never from argv\n"
            'pin_file = "softhsm/user.pin"\n'
            'softhsm2_conf = "softhsm/softhsm2.conf"\n'
        )
        tmp = cfg.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(cfg)
    return load_settings(data_dir)


def create_organization(repo: Repository, name: str, user_name: str, public_key: str, now_ms: int) -> tuple[str, str]:
    org_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
    org = Organization(org_id, name, None, 1, (user_id,), now_ms, now_ms)
    user = User(user_id, org_id, user_name, None, "ACCESS_TYPE_API", (), now_ms, now_ms)
    key = ApiKey(
        str(uuid.uuid4()),
        user_id,
        org_id,
        f"{user_name} api key",
        public_key,
        "API_KEY_CURVE_P256",
        None,
        now_ms,
        now_ms,
    )
    repo.write_sync(
        [
            *repo.organizations.insert_organization(org),
            *repo.users.insert_user(user),
            *repo.organizations.insert_root_users(org_id, [user_id]),
            *repo.users.insert_api_key(key),
        ]
    )
    return org_id, user_id


def open_token(settings: Settings) -> Token:
    """The configured token, logged in with the configured PIN (the operator commands' view)."""
    from strongroom.hsm import Token

    if settings.token.softhsm2_conf is not None:
        # SoftHSM2 reads its configuration from the environment when the module initialises.
        os.environ["SOFTHSM2_CONF"] = str(settings.token.softhsm2_conf)
    return Token(settings.token.module, settings.token.label, settings.token.read_pin(os.environ))


def prepare_token(settings: Settings) -> tuple[str, Path]:
    """Create the token's own keys once, here, rather than lazily in whichever daemon needs them
    first: replicas starting together on a fresh token would otherwise each create one.

    Pins the audit key's public half outside the database (`audit-key.pub`) and returns it."""
    from strongroom.hsm import KeyStore
    from strongroom.hsm.keystore import Notary
    from strongroom.service.audit_trust import pin_audit_key
    from strongroom.store.audit_verify import PINNED_KEY_NAME

    token = open_token(settings)
    try:
        keystore = KeyStore(token, token.probe())
        if keystore.capabilities.aes_gcm:
            keystore.ensure_kek()
        keystore.ensure_audit_key()
        keystore.ensure_webhook_key()
        Notary(token).ensure_key()
        token_key, pinned, _ = pin_audit_key(settings.data_dir, keystore)
    finally:
        token.close()
    path = settings.data_dir / PINNED_KEY_NAME
    if token_key != pinned:
        raise ConfigError(f"the token's audit key ({token_key.text()}) is not the key pinned in {path}")
    return pinned.text(), path


@contextlib.contextmanager
def operator_store(settings: Settings) -> Iterator[Repository]:
    """The store as the operator's commands see it (SQLite or PostgreSQL, as configured), with
    the token's notary: what they read is verified, what they write is notarised."""
    from strongroom.hsm.keystore import Notary

    token = open_token(settings)
    try:
        db = open_database(settings.database_url, settings.database_path)
        try:
            repo = Repository(db)
            repo.set_notary(Notary(token))
            yield repo
        finally:
            db.close()
    finally:
        token.close()


def notarise_existing(data_dir: Path) -> list[str]:
    """`strongroom migrate --notarise`: vouch, once, for organizations that have no notarised
    state yet (a database that predates notarisation). The operator's explicit consent: rows are
    taken as they are, so this must only be run on a database known to be intact."""
    settings = load_settings(data_dir.resolve())
    with operator_store(settings) as repo:
        have = set(repo.organizations.notarised_organization_ids())
        todo = [i for i in repo.organizations.organization_ids() if i not in have]
        for org_id in todo:
            repo.write_sync([adopt_op(org_id)])
        return todo


def init(data_dir: Path, softhsm_mask: tuple[str, ...] = ()) -> InitResult:
    data_dir = data_dir.resolve()
    settings = ensure_config(data_dir, softhsm_mask)
    audit_key, audit_key_file = prepare_token(settings)
    public_hex, pub_path, priv_path = ensure_key_files(data_dir / "keys", ROOT_USER_NAME)
    with operator_store(settings) as repo:
        first = repo.organizations.first_organization_id()
        if first is not None:
            # Found without verifying it: init only reports which organization the root key belongs
            # to; the daemon verifies everything at start and says what is wrong (e.g. a database
            # that predates notarisation: `strongroom migrate --notarise`).
            org_id = first
            found = repo.users.user_id_of_api_key(org_id, public_hex)
            if found is None:
                raise ConfigError(f"`{pub_path}` does not belong to a user of organization `{org_id}`")
            user_id = found
        else:
            org_id, user_id = create_organization(
                repo, DEFAULT_ORG_NAME, ROOT_USER_NAME, public_hex, SystemClock().now_ms()
            )
    return InitResult(org_id, user_id, public_hex, pub_path, priv_path, audit_key, audit_key_file)


def _slug(name: str) -> str:
    text = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return "-".join(filter(None, text.split("-")))[:40] or "org"


def create_top_level_organization(data_dir: Path, name: str) -> InitResult:
    """`strongroom org create`: another organization that shares nothing with the others.

    Works on the local data directory (no daemon call): its own root user and P-256 API key,
    whose private half is written for the operator as `keys/<name>-<id>.private`.
    """
    data_dir = data_dir.resolve()
    name = name.strip()
    if not name or len(name) > 256:
        raise ConfigError("an organization name must be 1 to 256 characters")
    settings = load_settings(data_dir)
    org_hint = uuid.uuid4().hex[:8]
    public_hex, pub_path, priv_path = ensure_key_files(data_dir / "keys", f"{_slug(name)}-{org_hint}")
    with operator_store(settings) as repo:
        org_id, user_id = create_organization(repo, name, ROOT_USER_NAME, public_hex, SystemClock().now_ms())
    return InitResult(org_id, user_id, public_hex, pub_path, priv_path)


def list_top_level_organizations(data_dir: Path) -> list[dict[str, str]]:
    settings = load_settings(data_dir.resolve())
    with operator_store(settings) as repo:
        return [{"organizationId": o.id, "name": o.name} for o in repo.organizations.organizations()]
