"""deploy/Containerfile, read instruction by instruction: Debian slim, SoftHSM2, the package from the
lock with --require-hashes, a non-root user, the PIN from the environment or a secret (never an
image layer), a health check on /readyz, the API port exposed, and files that exist. The entrypoint
itself is run for real in tests/e2e/test_container_entrypoint.py; the image was built with podman
by hand (README, "Container")."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from strongroom.config import Settings, TokenSettings

ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
ENTRYPOINT = ROOT / "deploy" / "container-entrypoint.sh"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in CONTAINERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        word, _, rest = text.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "the file ends inside a continued instruction"
    return out


def args(name: str) -> list[str]:
    return [rest for word, rest in instructions() if word == name]


def test_every_instruction_is_known_and_the_image_starts_from_debian_slim() -> None:
    known = {"ARG", "FROM", "ENV", "RUN", "COPY", "USER", "WORKDIR", "VOLUME", "EXPOSE", "STOPSIGNAL"}
    known |= {"HEALTHCHECK", "ENTRYPOINT", "CMD", "LABEL"}
    assert {word for word, _ in instructions()} <= known
    base = dict(a.split("=", 1) for a in args("ARG") if "=" in a)["BASE"]
    assert re.fullmatch(r"docker\.io/library/debian:[a-z]+-slim", base)
    assert args("FROM") == ["${BASE}"]
    assert instructions()[0][0] == "ARG"  # BASE is declared before FROM


def test_softhsm2_and_python_come_from_debian() -> None:
    apt = next(r for r in args("RUN") if "apt-get install" in r)
    packages = shlex.split(apt.split("apt-get install", 1)[1].split("&&")[0])
    assert {"softhsm2", "python3", "python3-venv"} <= set(packages)
    assert "--no-install-recommends" in packages
    assert "rm -rf /var/lib/apt/lists/*" in apt


def test_the_package_is_installed_from_the_lock_with_hashes() -> None:
    runs = args("RUN")
    lock_install = next(r for r in runs if "--require-hashes" in r)
    assert "-r /tmp/strongroom/requirements/${LOCK}.lock" in lock_install
    lock = dict(a.split("=", 1) for a in args("ARG") if "=" in a)["LOCK"]
    assert (ROOT / "requirements" / f"{lock}.lock").is_file()
    assert "psycopg==" in (ROOT / "requirements" / f"{lock}.lock").read_text()  # database_url works in the image
    package_install = next(r for r in runs if "pip install --no-deps /tmp/strongroom" in r)
    assert runs.index(lock_install) < runs.index(package_install)  # nothing is resolved again
    for copy in args("COPY"):
        *sources, _dest = shlex.split(copy)
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"


def test_it_runs_as_a_non_root_user_with_the_secret_outside_the_image() -> None:
    (user,) = args("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert re.search(r"useradd --system --uid 10001 .* strongroom", " ".join(args("RUN")))
    env = " ".join(args("ENV"))
    assert "STRONGROOM_TOKEN_PIN_FILE=/run/secrets/strongroom_token_pin" in env
    assert "STRONGROOM_TOKEN_PIN=" not in env.replace("STRONGROOM_TOKEN_PIN_FILE=", "")  # no PIN baked in
    assert args("VOLUME") == ['["/var/lib/strongroom"]']
    (entry,) = args("ENTRYPOINT")
    assert entry == '["/usr/local/bin/strongroom-entrypoint"]'
    assert "deploy/container-entrypoint.sh /usr/local/bin/strongroom-entrypoint" in args("COPY")


def test_the_api_port_is_exposed_and_health_is_readyz() -> None:
    env = " ".join(args("ENV"))
    port = re.search(r"STRONGROOM_PORT=(\d+)", env)
    assert port is not None and args("EXPOSE") == [port.group(1)]
    assert "STRONGROOM_HOST=0.0.0.0" in env
    (health,) = args("HEALTHCHECK")
    assert "/readyz" in health and "--timeout=" in health
    assert args("STOPSIGNAL") == ["SIGTERM"]  # the daemon signs a last checkpoint on SIGTERM


def test_the_environment_names_real_settings() -> None:
    """Every STRONGROOM_<SETTING> the image sets is one the daemon reads (an unknown one is ignored)."""
    settings = {f.upper() for f in Settings.__dataclass_fields__} | {"DATA_DIR"}
    token = {f"TOKEN_{f.upper()}" for f in TokenSettings.__dataclass_fields__}
    entrypoint_only = {"SOFTHSM_TOKENDIR"}
    for name in re.findall(r"STRONGROOM_([A-Z_]+)=", " ".join(args("ENV"))):
        assert name in settings | token | entrypoint_only, f"STRONGROOM_{name} is not a setting"
        if name in entrypoint_only:
            assert f"STRONGROOM_{name}" in ENTRYPOINT.read_text()


def test_the_entrypoint_is_posix_sh() -> None:
    assert ENTRYPOINT.stat().st_mode & 0o111, "the entrypoint is not executable"
    assert ENTRYPOINT.read_text().startswith("#!/bin/sh\n")
    for shell in ("sh", "dash", "bash"):
        out = subprocess.run([shell, "-n", str(ENTRYPOINT)], capture_output=True, text=True, check=False)
        assert out.returncode == 0, f"{shell}: {out.stderr}"


def test_the_pin_is_never_written_to_the_settings() -> None:
    """The PIN goes to softhsm2-util once, at the token's creation; strongroom.toml names where it is read."""
    text = ENTRYPOINT.read_text()
    toml = text.split("<<TOML", 1)[1].split("\nTOML", 1)[0]
    assert not re.search(r"\$\{?(so_)?pin\b(?!_)", toml), toml
    assert 'pin_env = "STRONGROOM_TOKEN_PIN"' in toml and 'pin_file = "$pin_file"' in toml
    assert "unset pin so_pin" in text
