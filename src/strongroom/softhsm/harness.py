"""Create and describe SoftHSM2 tokens in a directory of our own.

Each token lives in its own directory with its own `softhsm2.conf` (selected with the
`SOFTHSM2_CONF` environment variable), so nothing touches the system-wide token store.
Mechanisms can be masked with SoftHSM2's `slots.mechanisms` setting: that is how tests make a
real token lack EdDSA or ECDSA and force the software fallback.

This is development tooling. `softhsm2-util` only takes PINs as arguments, so the harness
passes them that way while initialising a throwaway token; the daemon itself reads its PIN
from a file or an environment variable only.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from strongroom.errors import ConfigError

MODULE_CANDIDATES: Final = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)

# Mechanism sets that force each software fallback path.
MASK_EDDSA: Final = ("CKM_EC_EDWARDS_KEY_PAIR_GEN", "CKM_EDDSA")
MASK_ECDSA: Final = ("CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA")

_MANIFEST: Final = "token.json"


def find_module() -> str:
    """Path of the SoftHSM2 PKCS#11 module (Debian package `libsofthsm2`)."""
    env = os.environ.get("SOFTHSM2_MODULE")
    for candidate in ((env,) if env else ()) + MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    raise ConfigError("softhsm2 module not found: install Debian's `softhsm2` package")


@dataclass(frozen=True, slots=True)
class SoftHsmToken:
    """A token created by the harness. `pin_file` holds the user PIN (mode 0600)."""

    directory: Path
    module: str
    label: str
    pin_file: Path
    masked: tuple[str, ...]

    @property
    def conf_path(self) -> Path:
        return self.directory / "softhsm2.conf"

    def env(self) -> dict[str, str]:
        """Environment a process needs to see this token."""
        return {"SOFTHSM2_CONF": str(self.conf_path)}

    def read_pin(self) -> str:
        return self.pin_file.read_text().strip()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _conf_text(token_dir: Path, masked: Iterable[str]) -> str:
    masked = list(masked)
    # The leading "-" makes the whole list a deny-list. SoftHSM 2.6.1 does not strip it from the
    # first entry (which then names no mechanism and is ignored), so the list starts empty: "-,A,B".
    # A SoftHSM that parses the first entry correctly ignores the empty name just the same.
    mechanisms = "-," + ",".join(masked) if masked else "ALL"
    return (
        "# written by strongroom.softhsm; one token store per directory\n"
        f"directories.tokendir = {token_dir}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
        f"slots.mechanisms = {mechanisms}\n"
    )


def load_token(directory: Path) -> SoftHsmToken | None:
    """The token previously created in `directory`, or None."""
    manifest = directory / _MANIFEST
    if not manifest.is_file():
        return None
    data = json.loads(manifest.read_text())
    return SoftHsmToken(
        directory=directory,
        module=data["module"],
        label=data["label"],
        pin_file=directory / "user.pin",
        masked=tuple(data.get("masked", ())),
    )


def create_token(
    directory: Path,
    label: str = "strongroom",
    *,
    masked: Iterable[str] = (),
    module: str | None = None,
) -> SoftHsmToken:
    """Create (or return the existing) token in `directory`.

    Idempotent: if the directory already holds a token, it is returned unchanged.
    """
    directory = directory.resolve()
    existing = load_token(directory)
    if existing is not None:
        return existing
    util = shutil.which("softhsm2-util")
    if util is None:
        raise ConfigError("softhsm2-util not found: install Debian's `softhsm2` package")
    module = module or find_module()
    masked = tuple(masked)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    token_dir = directory / "tokens"
    token_dir.mkdir(exist_ok=True, mode=0o700)
    _write_private(directory / "softhsm2.conf", _conf_text(token_dir, masked))
    pin = secrets.token_hex(16)
    so_pin = secrets.token_hex(16)
    _write_private(directory / "user.pin", pin + "\n")
    _write_private(directory / "so.pin", so_pin + "\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(directory / "softhsm2.conf")}
    subprocess.run(
        [util, "--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin],
        env=env,
        check=True,
        capture_output=True,
    )
    _write_private(
        directory / _MANIFEST,
        json.dumps({"module": module, "label": label, "masked": list(masked)}, indent=2) + "\n",
    )
    return SoftHsmToken(directory, module, label, directory / "user.pin", masked)
