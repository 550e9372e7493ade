"""deploy/strongroom.service is a unit systemd accepts, whose command is the real CLI's serve."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.cli.main import build_parser

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "strongroom.service"


def _exec_start() -> list[str]:
    line = next(x for x in UNIT.read_text().splitlines() if x.startswith("ExecStart="))
    return line.removeprefix("ExecStart=").split()


def test_the_unit_runs_the_cli_serve_command() -> None:
    argv = _exec_start()
    assert argv[0].endswith("/bin/strongroom")
    args = build_parser().parse_args(argv[1:])
    assert args.fn.__name__ == "cmd_serve"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # The unit names a user and an install path this machine does not have: verify the rest.
    text = UNIT.read_text().replace(_exec_start()[0], str(Path(sys.executable).parent / "strongroom"))
    text = text.replace("User=strongroom", "User=root").replace("Group=strongroom", "Group=root")
    unit = tmp_path / "strongroom.service"
    unit.write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    problems = [line for line in (out.stdout + out.stderr).splitlines() if str(unit) in line or "rror" in line]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr
