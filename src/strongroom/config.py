"""One settings object: `<data-dir>/strongroom.toml`, then `STRONGROOM_*` environment overrides.

Every setting is typed and validated at start; an unknown or invalid one fails with a message
naming the key. Secrets are referenced, never embedded: the token PIN comes from a file
(`token.pin_file`) or an environment variable (`token.pin_env`), never from the command line.
The token can be named by a PKCS#11 URI (RFC 7512), e.g. `uri = "pkcs11:token=strongroom"`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from strongroom.errors import ConfigError
from strongroom.strictjson import is_ascii_digits

CONFIG_NAME: Final = "strongroom.toml"


@dataclass(frozen=True, slots=True)
class TokenSettings:
    module: str
    label: str
    pin_file: Path | None = None
    pin_env: str | None = None
    threads: int = 2
    # SoftHSM2 only: its config file, exported as SOFTHSM2_CONF before the module is loaded
    softhsm2_conf: Path | None = None

    def read_pin(self, environ: Mapping[str, str]) -> str:
        if self.pin_env:
            pin = environ.get(self.pin_env)
            if pin:
                return pin
            if self.pin_file is None:
                raise ConfigError(f"token pin variable `{self.pin_env}` is not set")
        if self.pin_file is None:
            raise ConfigError("set `token.pin_file` or `token.pin_env`")
        try:
            pin = self.pin_file.read_text().strip()
        except OSError as err:
            raise ConfigError(f"cannot read token pin file `{self.pin_file}`: {err.strerror}") from err
        if not pin:
            raise ConfigError(f"token pin file `{self.pin_file}` is empty")
        return pin


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    token: TokenSettings
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1  # processes serving the API (daemon/workers.py); one token, one store
    database: Path | None = None
    database_url: str | None = None  # postgresql://...: several replicas share this database
    max_body_bytes: int = 256 * 1024
    timestamp_max_age_ms: int = 60 * 60 * 1000
    timestamp_max_future_ms: int = 5 * 60 * 1000
    log_format: str = "auto"  # "json", "console" or "auto" (console on a terminal)
    log_level: str = "info"  # "debug", "info", "warning" or "error"
    rate_limit_per_second: float = 60.0  # per client IP; 0 turns the limit off
    rate_limit_burst: int | None = None  # bucket size; defaults to one second's worth
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For is believed (IPs or CIDRs)
    unix_socket: Path | None = None  # the local signing socket (mode 0600 in a 0700 directory)
    unix_socket_allowed_uids: tuple[int, ...] = ()  # empty: any local user who can open the socket
    public_url: str | None = None  # where people reach the daemon behind a proxy: https://vault.example.com
    webauthn_rp_id: str | None = None  # relying party of passkeys; None: public_url's host, else localhost
    webauthn_origins: tuple[str, ...] | None = None  # None: the dashboard's own address (`passkey_origins`)
    max_pending_activities: int = 100  # CONSENSUS_NEEDED activities per organization (within the vote window)
    login_challenges_max: int = 10_000  # dashboard login challenges pending at once, in all
    login_challenges_per_email: int = 5  # ... for one email
    login_challenges_per_client: int = 50  # ... from one client address
    metrics_per_organization: bool = False  # per-organization series (label organization_id) on /metrics
    metrics_listen: str | None = None  # "host:port": serve /metrics there only, not on the API address
    webhook_timeout_s: float = 5.0  # one webhook POST, connection included (docs/webhooks.md)
    webhook_backoff_base_ms: int = 2000  # the wait after a failed attempt, doubled after each failure ...
    webhook_backoff_max_ms: int = 3600 * 1000  # ... up to this
    webhook_max_attempts: int = 20  # then the delivery is left as failed
    max_event_streams_per_user: int = 4  # open event streams (docs/events.md) per user at once
    event_stream_heartbeat_s: float = 15.0  # a `: keepalive` comment after this much silence
    eth_upstream_url: str | None = None  # http(s) URL of an Ethereum node: /eth/rpc passes the node's methods to it
    eth_upstream_timeout_s: float = 10.0  # one call to that node, connection included
    eth_rpc_max_batch: int = 20  # calls in one JSON-RPC batch to /eth/rpc
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """`metrics_listen` as (host, port), or None: /metrics is then served on the API address."""
        if self.metrics_listen is None:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]"), int(port)

    @property
    def rp_id(self) -> str:
        """The relying party passkeys are bound to: `webauthn_rp_id`, else `public_url`'s host, else
        localhost."""
        if self.webauthn_rp_id is not None:
            return self.webauthn_rp_id
        if self.public_url is not None:
            return urllib.parse.urlsplit(self.public_url).hostname or "localhost"
        return "localhost"

    @property
    def passkey_origins(self) -> tuple[str, ...]:
        """Where passkey assertions may come from: `webauthn_origins`; else `public_url`'s origin (the
        address a proxy serves the dashboard at); else the address the dashboard is served on, which
        follows the port (`make serve PORT=...`). The host is the relying party, not 127.0.0.1:
        browsers refuse a passkey for `localhost` on an IP origin."""
        if self.webauthn_origins is not None:
            return self.webauthn_origins
        if self.public_url is not None:
            parts = urllib.parse.urlsplit(self.public_url)
            return (f"{parts.scheme}://{parts.netloc}",)
        return (f"http://{self.rp_id}:{self.port}",)

    @property
    def dashboard_url(self) -> str:
        return f"{self.passkey_origins[0]}/dashboard/"

    @property
    def database_path(self) -> Path:
        return self.database or self.data_dir / "strongroom.sqlite3"


def _int(key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and is_ascii_digits(value.strip().removeprefix("-")):
            return int(value)
        raise ConfigError(f"`{key}` must be an integer")
    return value


def _positive(key: str, value: object) -> int:
    n = _int(key, value)
    if n < 1:
        raise ConfigError(f"`{key}` must be at least 1")
    return n


def _str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"`{key}` must be a string")
    return value


def _number(key: str, value: object) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"`{key}` must be a number >= 0")
    return float(value)


def _str_list(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):  # from the environment: comma-separated
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"`{key}` must be a list of strings")
    return tuple(value)


def _proxies(key: str, value: object) -> tuple[str, ...]:
    proxies = _str_list(key, value)
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError as err:
            raise ConfigError(f"`{key}` entry `{proxy}` is not an IP address or network") from err
    return proxies


def _uids(key: str, value: object) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise ConfigError(f"`{key}` must be a list of user ids")
    return tuple(_int(key, v) for v in value)


def _database_url(key: str, value: object) -> str:
    text = _str(key, value).strip()
    if not text.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"`{key}` must be a `postgresql://` URL")
    return text


def _log_format(key: str, value: object) -> str:
    text = _str(key, value)
    if text not in ("json", "console", "auto"):
        raise ConfigError(f"`{key}` must be `json`, `console` or `auto`")
    return text


LOG_LEVELS: Final = ("debug", "info", "warning", "error")


def _log_level(key: str, value: object) -> str:
    text = _str(key, value).lower()
    if text not in LOG_LEVELS:
        raise ConfigError(f"`{key}` must be one of {', '.join(f'`{v}`' for v in LOG_LEVELS)}")
    return text


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "false", "0", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ConfigError(f"`{key}` must be true or false")


def _listen(key: str, value: object) -> str:
    text = _str(key, value).strip()
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"`{key}` must be `host:port`, e.g. `127.0.0.1:9100`")
    return text


def _http_url(key: str, value: object) -> str:
    text = _str(key, value).strip()
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"`{key}` must be an `http://` or `https://` URL")
    return text


def _public_url(key: str, value: object) -> str:
    """An origin people open (scheme, host, optional port), with no path, query or credentials."""
    text = _http_url(key, value).rstrip("/")
    parts = urllib.parse.urlsplit(text)
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"`{key}` must be an origin such as `https://vault.example.com`: no path, query or user")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number or out of range
    except ValueError:
        raise ConfigError(f"`{key}` has an invalid port") from None
    return text


def _port(key: str, value: object) -> int:
    n = _int(key, value)
    if not 0 <= n <= 65535:
        raise ConfigError(f"`{key}` must be between 0 and 65535")
    return n


MAX_WORKERS: Final = 64


def _workers(key: str, value: object) -> int:
    n = _positive(key, value)
    if n > MAX_WORKERS:
        raise ConfigError(f"`{key}` must be at most {MAX_WORKERS}")
    return n


# setting -> parser; the path-valued ones are resolved against the data directory
_TOP: Final[dict[str, Callable[[str, object], Any]]] = {
    "host": _str,
    "port": _port,
    "workers": _workers,
    "database": _str,
    "database_url": _database_url,
    "max_body_bytes": _positive,
    "timestamp_max_age_ms": _positive,
    "timestamp_max_future_ms": _positive,
    "log_format": _log_format,
    "log_level": _log_level,
    "rate_limit_per_second": _number,
    "rate_limit_burst": _positive,
    "trusted_proxies": _proxies,
    "unix_socket": _str,
    "unix_socket_allowed_uids": _uids,
    "webauthn_rp_id": _str,
    "public_url": _public_url,
    "webauthn_origins": _str_list,
    "max_pending_activities": _positive,
    "login_challenges_max": _positive,
    "login_challenges_per_email": _positive,
    "login_challenges_per_client": _positive,
    "metrics_per_organization": _bool,
    "metrics_listen": _listen,
    "webhook_timeout_s": _number,
    "webhook_backoff_base_ms": _positive,
    "webhook_backoff_max_ms": _positive,
    "webhook_max_attempts": _positive,
    "max_event_streams_per_user": _positive,
    "event_stream_heartbeat_s": _number,
    "eth_upstream_url": _http_url,
    "eth_upstream_timeout_s": _number,
    "eth_rpc_max_batch": _positive,
}
_PATHS: Final = {"database", "unix_socket"}
_TOKEN: Final = {"module", "label", "uri", "pin_file", "pin_env", "threads", "softhsm2_conf"}


def parse_pkcs11_uri(uri: str) -> dict[str, str]:
    """The path attributes of an RFC 7512 PKCS#11 URI (`pkcs11:token=x;manufacturer=y?...`)."""
    if not uri.startswith("pkcs11:"):
        raise ConfigError("`token.uri` must start with `pkcs11:`")
    path = uri[len("pkcs11:") :].split("?", 1)[0]
    attrs: dict[str, str] = {}
    for part in filter(None, path.split(";")):
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise ConfigError(f"`token.uri` has a malformed attribute `{part}`")
        attrs[name] = urllib.parse.unquote(value)
    return attrs


def load_settings(data_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `<data_dir>/strongroom.toml`; `STRONGROOM_<SETTING>` variables override top-level settings."""
    environ = os.environ if environ is None else environ
    data_dir = data_dir.resolve()
    path = data_dir / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"`{path}` not found: run `strongroom init --data-dir {data_dir}` first") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"`{path}` is not valid TOML: {err}") from err
    unknown = set(raw) - set(_TOP) - {"token"}
    if unknown:
        raise ConfigError(f"unknown setting `{sorted(unknown)[0]}` in `{path}`")
    for key in _TOP:
        env_value = environ.get(f"STRONGROOM_{key.upper()}")
        if env_value is not None:
            raw[key] = env_value
    # The [token] table too, as STRONGROOM_TOKEN_<SETTING> (a container gets its token this way).
    # STRONGROOM_TOKEN_PIN is not a setting: it is where `pin_env` points by default (the PIN itself).
    token_env = {
        key: environ[f"STRONGROOM_TOKEN_{key.upper()}"]
        for key in _TOKEN
        if f"STRONGROOM_TOKEN_{key.upper()}" in environ
    }
    if token_env:
        table = raw.get("token", {})
        if not isinstance(table, dict):
            raise ConfigError(f"`{path}`: `token` must be a table")
        raw["token"] = {**table, **token_env}

    def rel(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else data_dir / q

    kw: dict[str, Any] = {}
    for key, parse in _TOP.items():
        if key in raw:
            value = parse(key, raw[key])
            kw[key] = rel(value) if key in _PATHS else value
    return Settings(data_dir=data_dir, token=_token(raw.get("token"), path, rel), **kw)


def _token(tok: object, path: Path, rel: Callable[[str], Path]) -> TokenSettings:
    if not isinstance(tok, dict):
        raise ConfigError(f"`{path}` needs a [token] table")
    unknown = set(tok) - _TOKEN
    if unknown:
        raise ConfigError(f"unknown setting `token.{sorted(unknown)[0]}` in `{path}`")
    label = _str("token.label", tok["label"]) if "label" in tok else None
    if "uri" in tok:
        attrs = parse_pkcs11_uri(_str("token.uri", tok["uri"]))
        if "token" in attrs:
            if label is not None and label != attrs["token"]:
                raise ConfigError("`token.label` and the `token=` of `token.uri` disagree")
            label = attrs["token"]
    if "module" not in tok:
        raise ConfigError(f"missing setting `token.module` in `{path}`")
    if label is None:
        raise ConfigError(f"missing setting `token.label` (or `token.uri` with `token=`) in `{path}`")
    return TokenSettings(
        module=_str("token.module", tok["module"]),
        label=label,
        pin_file=rel(_str("token.pin_file", tok["pin_file"])) if "pin_file" in tok else None,
        pin_env=_str("token.pin_env", tok["pin_env"]) if "pin_env" in tok else None,
        threads=_positive("token.threads", tok.get("threads", 2)),
        softhsm2_conf=rel(_str("token.softhsm2_conf", tok["softhsm2_conf"])) if "softhsm2_conf" in tok else None,
    )
