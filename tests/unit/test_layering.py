"""Lower layers never import higher ones (checked on the source with `ast`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "strongroom"

FORBIDDEN: dict[str, tuple[str, ...]] = {
    "strongroom.errors": ("strongroom.",),
    "strongroom.crypto": (
        "strongroom.hsm",
        "strongroom.store",
        "strongroom.daemon",
        "strongroom.api",
        "strongroom.policy",
        "strongroom.chains",
        "strongroom.cli",
        "strongroom.logs",
        "pkcs11",
        "aiohttp",
    ),
    "strongroom.chains": (
        "strongroom.hsm",
        "strongroom.store",
        "strongroom.daemon",
        "strongroom.api",
        "strongroom.cli",
        "pkcs11",
        "aiohttp",
        "coincurve",
        "nacl",
        "Crypto",
    ),
    "strongroom.policy": (
        "strongroom.hsm",
        "strongroom.store",
        "strongroom.daemon",
        "strongroom.api",
        "strongroom.cli",
        "aiohttp",
        "pkcs11",
        "asyncio",
        "time",
        "datetime",
    ),
    "strongroom.hsm": (
        "aiohttp",
        "strongroom.api",
        "strongroom.policy",
        "strongroom.daemon",
        "strongroom.store",
        "strongroom.cli",
        "strongroom.softhsm",
    ),
    "strongroom.store": (
        "strongroom.hsm",
        "strongroom.api",
        "strongroom.daemon",
        "strongroom.cli",
        "pkcs11",
        "aiohttp",
    ),
    "strongroom.api": (
        "pkcs11",
        "coincurve",
        "nacl",
        "Crypto",
        "cryptography",
        "strongroom.hsm",
        "strongroom.crypto",
        "strongroom.store",
        "strongroom.softhsm",
    ),
    "strongroom.daemon": ("strongroom.cli",),
    "strongroom.softhsm": ("strongroom.daemon", "strongroom.api", "strongroom.store", "pkcs11"),
}
# Only these third-party crypto libraries' users: the hazmat layer.
CRYPTO_LIBS = ("coincurve", "nacl", "cryptography", "Crypto")
CRYPTO_ALLOWED = ("strongroom.crypto",)
# The daemon's composition root alone wires the HTTP app; the bootstrap alone creates a SoftHSM2 token.
EXCEPTIONS = {("strongroom.daemon.main", "strongroom.api")}


def modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out.append((".".join(parts), path))
    return out


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _matches(name: str, prefix: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_layering(module: str, path: Path) -> None:
    bad = []
    for imp in imports(path):
        for layer, forbidden in FORBIDDEN.items():
            if not _matches(module, layer):
                continue
            for prefix in forbidden:
                if _matches(imp, prefix) and (module, prefix) not in EXCEPTIONS:
                    bad.append(imp)
        if any(_matches(imp, lib) for lib in CRYPTO_LIBS) and not any(_matches(module, a) for a in CRYPTO_ALLOWED):
            bad.append(imp)
    assert not bad, f"{module} imports {sorted(set(bad))}"


def test_policy_never_reads_the_clock() -> None:
    pattern = re.compile(r"\b(time\.time|datetime\.now|datetime\.utcnow|monotonic)\b")
    for path in (SRC / "policy").rglob("*.py"):
        assert not pattern.search(path.read_text()), path
