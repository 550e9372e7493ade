"""The lock files pin every dependency pyproject.toml declares, within its declared range.

`scripts/bootstrap` (so `make serve`, `make test` and CI) installs from `requirements/*.lock` with
`--require-hashes`; `make lock` writes them. A dependency added to pyproject.toml but not locked
would never be installed: this test says so before a fresh machine does.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def pins(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    found = {canonicalize_name(name): version for name, version in PIN.findall(text)}
    assert found, f"{lock} pins nothing"
    return found


@pytest.mark.parametrize(
    ("lock", "declared"),
    [
        ("runtime.lock", PROJECT["dependencies"]),
        ("dev.lock", PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]),
    ],
)
def test_every_declared_dependency_is_locked_within_its_range(lock: str, declared: list[str]) -> None:
    pinned = pins(lock)
    for spec in declared:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is declared in pyproject.toml but not pinned in {lock}: run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {req.name}=={pinned[name]}, outside pyproject.toml's `{req.specifier}`: run `make lock`"
        )


def test_every_pin_has_a_hash() -> None:
    for lock in ("runtime.lock", "dev.lock"):
        text = (ROOT / "requirements" / lock).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        for block in blocks:
            if PIN.match(block):
                assert "--hash=sha256:" in block, f"{lock}: {block.splitlines()[0]} has no hash"


def test_what_is_served_is_what_the_tests_ran() -> None:
    """Every runtime pin is the dev lock's pin: `make serve` runs the versions `make test` tested."""
    runtime, dev = pins("runtime.lock"), pins("dev.lock")
    assert {name: v for name, v in runtime.items() if dev.get(name) != v} == {}
