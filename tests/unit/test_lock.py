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


def declared(*extras: str) -> list[str]:
    """The dependencies with these extras; an extra may name the project's own others (`strongroom[eth]`)."""
    out = list(PROJECT["dependencies"])
    todo, seen = list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for spec in PROJECT["optional-dependencies"][extra]:
            req = Requirement(spec)
            if canonicalize_name(req.name) == canonicalize_name(PROJECT["name"]):
                todo.extend(req.extras)
            else:
                out.append(spec)
    return out


LOCKS = {"runtime.lock": (), "postgres.lock": ("postgres",), "dev.lock": ("dev",)}


@pytest.mark.parametrize(("lock", "declared"), [(lock, declared(*extras)) for lock, extras in LOCKS.items()])
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
    for lock in LOCKS:
        text = (ROOT / "requirements" / lock).read_text()
        blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2])
        for block in blocks:
            if PIN.match(block):
                assert "--hash=sha256:" in block, f"{lock}: {block.splitlines()[0]} has no hash"


@pytest.mark.parametrize("lock", ["runtime.lock", "postgres.lock"])
def test_what_is_served_is_what_the_tests_ran(lock: str) -> None:
    """Every runtime pin is the dev lock's pin: `make serve` runs the versions `make test` tested."""
    runtime, dev = pins(lock), pins("dev.lock")
    assert {name: v for name, v in runtime.items() if dev.get(name) != v} == {}


def test_the_extras_stay_out_of_the_runtime_lock() -> None:
    """A SQLite daemon installs no PostgreSQL driver and no browser driver; the postgres lock adds the driver."""
    runtime, postgres, dev = pins("runtime.lock"), pins("postgres.lock"), pins("dev.lock")
    assert "psycopg" not in runtime and "psycopg-binary" not in runtime
    assert "playwright" not in runtime and "playwright" not in postgres
    assert "psycopg" in postgres and "psycopg-binary" in postgres
    assert {"psycopg", "playwright", "eth-account"} <= set(dev)
