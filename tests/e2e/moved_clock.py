"""`strongroom serve` on a clock the test moves: a test-only entry, never part of the daemon.

    python tests/e2e/moved_clock.py DATA_DIR PORT OFFSET_FILE

Serves DATA_DIR exactly as `strongroom --data-dir DATA_DIR serve --port PORT` does, except that
the trusted clock (`strongroom.clock.SystemClock`, injected through `daemon.main.serve`) reads the
system's wall and monotonic clocks plus the milliseconds written in OFFSET_FILE (0 if empty or
missing). Both move together, so the clock stays trusted: to the daemon, time has passed. The
file is read at every reading, so a test moves a running daemon's time (several replicas' at
once, when they share the file) without sleeping and without touching the system's clock.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from strongroom.clock import SystemClock
from strongroom.config import load_settings
from strongroom.daemon.main import serve


def offset_ms(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return 0
    return int(text or 0)


def main() -> None:
    data_dir, port, offset_file = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    settings = replace(load_settings(data_dir), port=port)
    clock = SystemClock(
        wall=lambda: time.time_ns() // 1_000_000 + offset_ms(offset_file),
        monotonic=lambda: time.monotonic_ns() // 1_000_000 + offset_ms(offset_file),
    )
    serve(settings, clock)


if __name__ == "__main__":
    main()
