"""`strongroom completion bash|zsh|fish`: scripts generated from the argparse tree, run in the real shells.

Each script is loaded by its shell (bash sources it, zsh runs its completion function with the
completion system's builtins stubbed, fish answers `complete -C`), and what it completes is
compared with the parser: subcommands at every level, options, an option's choices, and nothing
mistaken for a subcommand after an option that takes a value. `scripts/bootstrap ... dev` installs
Debian's zsh and fish.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.cli import completion
from strongroom.cli.main import build_parser

TOP = [
    "init",
    "serve",
    "org",
    "api-key",
    "whoami",
    "keys",
    "wallets",
    "sign",
    "tx",
    "policies",
    "contracts",
    "activities",
    "users",
    "dashboard",
    "root-quorum",
    "audit",
    "clock",
    "usage",
    "migrate",
    "completion",
    "request",
]


def printed(shell: str) -> str:
    """The script as the installed command prints it."""
    cli = Path(sys.executable).parent / "strongroom"
    out = subprocess.run([str(cli), "completion", shell], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout


def test_the_tree_is_the_parsers() -> None:
    tree = {c.path: c for c in completion.walk(build_parser())}
    assert tree["strongroom"].commands == TOP
    assert tree["strongroom wallets"].commands == ["create", "list", "accounts", "export", "import", "delete"]
    assert "--curve" in tree["strongroom keys create"].valued
    assert tree["strongroom keys create"].choices["--curve"] == ["secp256k1", "ed25519"]
    assert "--json" in tree["strongroom keys list"].options and "--json" not in tree["strongroom keys list"].valued
    assert tree["strongroom completion"].choices == {}  # a positional, not an option
    with pytest.raises(SystemExit):
        build_parser().parse_args(["completion", "tcsh"])


BASH = """
source "$1"
t() { COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _strongroom; echo "${COMPREPLY[*]}"; }
t strongroom ""
t strongroom wal
t strongroom wallets ""
t strongroom --data-dir wallets k
t strongroom keys create --curve ""
t strongroom keys create --cu
t strongroom --key-curve s
t strongroom keys create --name wallets ""
complete -p strongroom
"""


def test_bash_completes_subcommands_options_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "strongroom.bash"
    script.write_text(printed("bash"))
    out = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", BASH, "test", str(script)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = out.stdout.splitlines()
    assert lines == [
        " ".join(TOP),
        "wallets",
        "create list accounts export import delete",
        "keys",  # --data-dir took `wallets` as its value: still at the top
        "secp256k1 ed25519",
        "--curve",
        "secp256k1",
        "",  # after `keys create`: no subcommand, so bash completes file names
        "complete -o default -F _strongroom strongroom",
    ], out.stderr


ZSH = """
compadd() { [[ $1 == -- ]] && shift; print -r -- "$*"; }
_files() { print -r -- FILES; }
compdef() { print -r -- "compdef $*"; }
source "$1"
t() { words=("$@"); CURRENT=$#; _strongroom; }
t strongroom wal
t strongroom wallets ""
t strongroom --org wallets ""
t strongroom keys create --curve ""
t strongroom keys create --c
t strongroom audit verify --pinned-key ""
"""


@pytest.mark.skipif(
    shutil.which("zsh") is None, reason="zsh is not installed (scripts/bootstrap .venv dev installs it)"
)
def test_zsh_completes_subcommands_options_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "_strongroom"
    script.write_text(printed("zsh"))
    assert script.read_text().startswith("#compdef strongroom\n")
    out = subprocess.run(
        ["zsh", "-f", "-c", ZSH, "test", str(script)], capture_output=True, text=True, check=True, timeout=60
    )
    lines = out.stdout.splitlines()
    assert lines[0] == "compdef _strongroom strongroom"
    assert lines[1] == " ".join(TOP)  # compadd is given every candidate; zsh filters by the prefix
    assert lines[2] == "create list accounts export import delete"
    assert lines[3] == " ".join(TOP)
    assert lines[4] == "secp256k1 ed25519"
    assert "--curve" in lines[5].split() and "--address-format" in lines[5].split()
    assert lines[6] == "FILES"
    assert len(lines) == 7, out.stdout + out.stderr


@pytest.mark.skipif(
    shutil.which("fish") is None, reason="fish is not installed (scripts/bootstrap .venv dev installs it)"
)
def test_fish_completes_subcommands_options_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "strongroom.fish"
    script.write_text(printed("fish"))

    def complete(line: str) -> list[str]:
        command = f"source {script}; complete -C '{line}'"
        out = subprocess.run(
            ["fish", "--no-config", "-c", command], capture_output=True, text=True, check=True, timeout=60
        )
        return sorted(c.split("\t")[0] for c in out.stdout.splitlines())  # fish sorts them

    assert complete("strongroom wal") == ["wallets"]
    assert complete("strongroom wallets ") == sorted(["create", "list", "accounts", "export", "import", "delete"])
    assert complete("strongroom --org wallets k") == ["keys"]
    assert complete("strongroom keys create --curve ") == ["ed25519", "secp256k1"]
    assert "--curve" in complete("strongroom keys create --c")
    assert complete(f"strongroom audit verify --pinned-key {script.parent}/strongroom.f") == [str(script)]


def test_an_unknown_shell_is_refused() -> None:
    with pytest.raises(ValueError, match="tcsh"):
        completion.script(build_parser(), "tcsh")
