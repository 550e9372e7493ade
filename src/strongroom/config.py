"""One settings object, loaded from `<data-dir>/strongroom.toml` plus environment overrides.

Secrets are referenced, never embedded: the token PIN comes from a file (`pin_file`) or an
environment variable (`pin_env`), never from the command line.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from strongroom.errors import ConfigError

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
    database: Path | None = None
    max_body_bytes: int = 256 * 1024
    timestamp_max_age_ms: int = 60 * 60 * 1000
    timestamp_max_future_ms: int = 5 * 60 * 1000
    log_format: str = "auto"  # "json", "console" or "auto" (console on a terminal)
    rate_limit_per_second: float = 60.0  # per client IP; 0 turns the limit off
    rate_limit_burst: int | None = None  # bucket size; defaults to one second's worth
    trusted_proxies: tuple[str, ...] = ()  # peers whose X-Forwarded-For is believed (IPs or CIDRs)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def database_path(self) -> Path:
        return self.database or self.data_dir / "strongroom.sqlite3"


_TOP: Final = {
    "host",
    "port",
    "database",
    "max_body_bytes",
    "timestamp_max_age_ms",
    "timestamp_max_future_ms",
    "log_format",
    "token",
    "rate_limit_per_second",
    "rate_limit_burst",
    "trusted_proxies",
}
_TOKEN: Final = {"module", "label", "pin_file", "pin_env", "threads", "softhsm2_conf"}


def _typed(section: str, key: str, value: object, kind: type) -> Any:
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"`{section}{key}` must be an integer")
    if not isinstance(value, kind):
        raise ConfigError(f"`{section}{key}` must be of type {kind.__name__}")
    return value


def load_settings(data_dir: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read `<data_dir>/strongroom.toml`; `STRONGROOM_HOST`/`STRONGROOM_PORT` override."""
    environ = os.environ if environ is None else environ
    data_dir = data_dir.resolve()
    path = data_dir / CONFIG_NAME
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigError(f"`{path}` not found: run `strongroom init --data-dir {data_dir}` first") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"`{path}` is not valid TOML: {err}") from err
    unknown = set(raw) - _TOP
    if unknown:
        raise ConfigError(f"unknown setting `{sorted(unknown)[0]}` in `{path}`")
    tok = raw.get("token")
    if not isinstance(tok, dict):
        raise ConfigError(f"`{path}` needs a [token] table")
    unknown = set(tok) - _TOKEN
    if unknown:
        raise ConfigError(f"unknown setting `token.{sorted(unknown)[0]}` in `{path}`")
    for key in ("module", "label"):
        if key not in tok:
            raise ConfigError(f"missing setting `token.{key}` in `{path}`")

    def rel(p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else data_dir / q

    token = TokenSettings(
        module=_typed("token.", "module", tok["module"], str),
        label=_typed("token.", "label", tok["label"], str),
        pin_file=rel(_typed("token.", "pin_file", tok["pin_file"], str)) if "pin_file" in tok else None,
        pin_env=_typed("token.", "pin_env", tok["pin_env"], str) if "pin_env" in tok else None,
        threads=_typed("token.", "threads", tok.get("threads", 2), int),
        softhsm2_conf=rel(_typed("token.", "softhsm2_conf", tok["softhsm2_conf"], str))
        if "softhsm2_conf" in tok
        else None,
    )
    if token.threads < 1:
        raise ConfigError("`token.threads` must be at least 1")
    kw: dict[str, Any] = {}
    for key, kind in (
        ("host", str),
        ("port", int),
        ("max_body_bytes", int),
        ("timestamp_max_age_ms", int),
        ("timestamp_max_future_ms", int),
        ("log_format", str),
    ):
        if key in raw:
            kw[key] = _typed("", key, raw[key], kind)
    if "rate_limit_per_second" in raw:
        value = raw["rate_limit_per_second"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError("`rate_limit_per_second` must be a number >= 0")
        kw["rate_limit_per_second"] = float(value)
    if "rate_limit_burst" in raw:
        kw["rate_limit_burst"] = _typed("", "rate_limit_burst", raw["rate_limit_burst"], int)
    if "trusted_proxies" in raw:
        proxies = raw["trusted_proxies"]
        if not isinstance(proxies, list) or not all(isinstance(p, str) for p in proxies):
            raise ConfigError("`trusted_proxies` must be a list of IP addresses or networks")
        for proxy in proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError as err:
                raise ConfigError(f"`trusted_proxies` entry `{proxy}` is not an IP address or network") from err
        kw["trusted_proxies"] = tuple(proxies)
    if "database" in raw:
        kw["database"] = rel(_typed("", "database", raw["database"], str))
    if "STRONGROOM_HOST" in environ:
        kw["host"] = environ["STRONGROOM_HOST"]
    if "STRONGROOM_PORT" in environ:
        try:
            kw["port"] = int(environ["STRONGROOM_PORT"])
        except ValueError as err:
            raise ConfigError("`STRONGROOM_PORT` must be an integer") from err
    settings = Settings(data_dir=data_dir, token=token, **kw)
    if settings.log_format not in ("json", "console", "auto"):
        raise ConfigError("`log_format` must be `json`, `console` or `auto`")
    if not 0 <= settings.port <= 65535:
        raise ConfigError("`port` must be between 0 and 65535")
    return settings
