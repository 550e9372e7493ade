"""The daemon's entry: settings -> logging -> the service -> `lifecycle.run` -> clean up.

With `workers` > 1 the process becomes the pre-fork parent (`daemon/workers.py`) and each
worker runs `_worker` on the parent's sockets.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from strongroom.clock import Clock
from strongroom.config import Settings
from strongroom.daemon import lifecycle, workers
from strongroom.logs import configure_logging, flush_logs
from strongroom.service import Strongroom

SWITCH_INTERVAL_S = 0.0005
"""The interpreter's thread switch interval in the daemon (CPython's default is 5 ms).

The event loop hands work to threads (PKCS#11 workers, the group-commit writer) and takes their
results back; while the loop is busy, a thread that has finished waits for the GIL for up to one
switch interval. Policy evaluation yields to the loop every few hundred microseconds, so that one
organization's expensive policies do not hold up another's requests; with the default interval,
each thread hand-off of those requests could still wait 5 ms behind them.
"""


def serve(settings: Settings, clock: Clock | None = None) -> None:
    """Serve until stopped; `clock` replaces the system's trusted clock (tests move time with it).

    Several workers: `workers.StartFailed` if they cannot start (its message is one line)."""
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    if settings.workers > 1:
        configure_logging(settings.log_format, level)  # the parent logs little: unbuffered

        def worker(settings: Settings, listeners: lifecycle.Listeners, ready: Callable[[], None]) -> None:
            _serve(settings, clock, listeners, ready)

        workers.run(settings, worker)
        return
    _serve(settings, clock)


def _serve(
    settings: Settings,
    clock: Clock | None,
    listeners: lifecycle.Listeners | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    configure_logging(settings.log_format, level, buffered=True)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        if listeners is None:
            service = Strongroom.open(settings, clock=clock)
        else:
            with workers.opening(settings.data_dir):
                service = Strongroom.open(settings, clock=clock)
        try:
            asyncio.run(lifecycle.run(settings, service, listeners, ready))
        finally:
            service.close()
    finally:
        flush_logs()
