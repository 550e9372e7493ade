"""The house rules, checked on the source with `ast` (docs/architecture.md draws them).

- Each room (a subpackage, or a shared module at the top) imports only the rooms below it that
  `MAY_IMPORT` lists: no upward import, and so no cycle between rooms; no cycle between modules.
- Only `cli` creates SoftHSM2 tokens (imports `softhsm`).
- `api` (all of HTTP) reaches the domain through the service facade, `strongroom.service`, only.
- SQL is written only inside `store/`.
- Only `crypto` touches the curve libraries; `policy` never reads the clock.
"""

from __future__ import annotations

import ast
import graphlib
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "strongroom"

SHARED = frozenset({"errors", "strictjson", "clock", "logs", "config", "__version__"})
"""Modules at the top that every room may use (they import only each other, and `errors`)."""

MAY_IMPORT: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "strictjson": frozenset({"errors"}),
    "clock": frozenset({"errors"}),
    "logs": frozenset({"errors"}),
    "config": frozenset({"errors", "strictjson", "logs"}),
    "crypto": frozenset({"errors"}),
    "chains": frozenset({"errors", "strictjson", "crypto"}),
    "policy": frozenset({"errors"}),
    "hsm": SHARED | {"crypto"},
    "store": SHARED | {"crypto"},
    "service": SHARED | {"crypto", "chains", "policy", "hsm", "store"},
    "api": SHARED | {"service"},
    "daemon": SHARED | {"service", "api"},
    "client": SHARED | {"crypto"},
    "eth": SHARED | {"crypto", "chains", "client"},
    "softhsm": frozenset({"errors"}),
    "cli": SHARED | {"crypto", "chains", "hsm", "store", "service", "daemon", "client", "softhsm"},
    "__main__": frozenset({"cli"}),
}
FACADE = "strongroom.service"
"""The one module of the service that `api` imports."""

THIRD_PARTY: dict[str, tuple[str, ...]] = {
    "crypto": ("pkcs11", "aiohttp"),
    "chains": ("pkcs11", "aiohttp"),
    "policy": ("aiohttp", "pkcs11", "asyncio", "time", "datetime"),
    "hsm": ("aiohttp",),
    "store": ("pkcs11", "aiohttp"),
    "service": ("aiohttp", "pkcs11", "sqlite3", "psycopg"),
    "api": ("pkcs11", "sqlite3", "psycopg"),
}
CRYPTO_LIBS = ("coincurve", "nacl", "cryptography", "Crypto")
"""Third-party curve libraries: only the hazmat layer, `crypto`, uses them."""

SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE)\b"
    r"|\bjson_extract\s*\(",
    re.IGNORECASE | re.DOTALL,
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(SRC.rglob("*.py"))}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def imports(module: str) -> frozenset[str]:
    """Every module `module` imports, anywhere in its body (functions included)."""
    path = modules()[module]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, module, path.name == "__init__.py")
            found.add(base)
            # `from strongroom.x import y` may import the module `strongroom.x.y`.
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules())
    return frozenset(found)


def _is(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("module", list(modules()))
def test_rooms_import_only_the_rooms_below(module: str) -> None:
    mine = room(module)
    assert mine in MAY_IMPORT or mine == "__init__", f"{mine}: a room the rules do not know (add it to MAY_IMPORT)"
    allowed = MAY_IMPORT.get(mine, frozenset())
    bad = sorted(
        imp
        for imp in imports(module)
        if _is(imp, "strongroom") and imp != "strongroom" and room(imp) != mine and room(imp) not in allowed
    )
    assert not bad, f"{module} ({mine}) imports {bad}"


@pytest.mark.parametrize("module", [m for m in modules() if room(m) == "api"])
def test_api_reaches_the_domain_through_the_facade_only(module: str) -> None:
    bad = sorted(imp for imp in imports(module) if _is(imp, "strongroom.service") and imp != FACADE)
    assert not bad, f"{module} imports {bad}; use what `{FACADE}` exports"


def test_only_the_cli_creates_softhsm_tokens() -> None:
    users = sorted(
        m
        for m in modules()
        if room(m) not in ("cli", "softhsm") and any(_is(i, "strongroom.softhsm") for i in imports(m))
    )
    assert not users


@pytest.mark.parametrize("module", list(modules()))
def test_third_party_boundaries(module: str) -> None:
    mine = room(module)
    bad = [imp for imp in imports(module) for lib in THIRD_PARTY.get(mine, ()) if _is(imp, lib)]
    if mine != "crypto":
        bad += [imp for imp in imports(module) for lib in CRYPTO_LIBS if _is(imp, lib)]
    assert not bad, f"{module} imports {sorted(set(bad))}"


def _strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "?" for v in node.values)
            yield node.lineno, str(text)


@pytest.mark.parametrize("module", [m for m in modules() if room(m) != "store"])
def test_sql_is_written_only_in_the_store(module: str) -> None:
    tree = ast.parse(modules()[module].read_text())
    found = [f"line {line}: {text[:50]!r}" for line, text in _strings(tree) if SQL.search(text)]
    assert not found, f"{module} writes SQL: {found}"


def test_no_module_import_cycle() -> None:
    """Tarjan's strongly connected components over the module graph (imports anywhere in a body)."""
    graph = {m: sorted(i for i in imports(m) if i in modules() and i != m) for m in modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for m in graph:
        if m not in index:
            visit(m)
    # A package's __init__ that re-exports its own modules is not a cycle of design.
    cycles = [c for c in cycles if not all(room(x) == room(c[0]) and _reexport_only(c) for x in c)]
    assert not cycles, cycles


def _reexport_only(component: list[str]) -> bool:
    packages = [m for m in component if modules()[m].name == "__init__.py"]
    return len(packages) == 1 and all(_is(m, packages[0]) for m in component)


def test_room_graph_is_acyclic() -> None:
    graphlib.TopologicalSorter({k: v - {"__version__"} for k, v in MAY_IMPORT.items()}).prepare()


def test_policy_never_reads_the_clock() -> None:
    pattern = re.compile(r"\b(time\.time|datetime\.now|datetime\.utcnow|monotonic)\b")
    for path in (SRC / "policy").rglob("*.py"):
        assert not pattern.search(path.read_text()), path
