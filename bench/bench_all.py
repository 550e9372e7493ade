"""`make bench`: the three benchmarks in turn, then one summary of what each measured.

Runs `bench_sign.py` (with the arguments given here, e.g. `--workers 2`), `bench_policy.py` and
`bench_scale.py`, printing their output as it comes, and ends with:

    token_secp256k1 e2e_rps=N floor_rps=N ratio=R e2e_p99_ms=N floor_p99_ms=N
    fallback_secp256k1 ...
    token_ed25519 ...
    policies_100_ms=N
    <the scale table>

Exits non-zero if any of them failed (after running the others).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def run(script: str, args: list[str]) -> tuple[int, list[str]]:
    """Run one benchmark; its stdout is echoed and returned, its stderr passes through."""
    proc = subprocess.Popen([sys.executable, str(BENCH / script), *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line.rstrip("\n"))
    return proc.wait(), lines


def scale_table(lines: list[str]) -> list[str]:
    """From `scale (SQLite ...` to the line before the blank one that precedes the query plans."""
    start = next((i for i, line in enumerate(lines) if line.startswith("scale (")), None)
    if start is None:
        return []
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def main() -> int:
    failed: list[str] = []
    summary: list[str] = []
    for script, args in (("bench_sign.py", sys.argv[1:]), ("bench_policy.py", []), ("bench_scale.py", [])):
        code, lines = run(script, args)
        if code != 0:
            failed.append(f"{script} exited with {code}")
        if script == "bench_sign.py":
            summary += [line for line in lines if " e2e_rps=" in line]
        elif script == "bench_policy.py":
            summary += [line for line in lines if line.startswith("policies_100_ms=")]
        else:
            summary += scale_table(lines)
    print("\n== summary ==")
    print("\n".join(summary))
    for why in failed:
        print(f"BENCH FAILED: {why}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
