"""Process lifecycle: settings -> logging -> services -> HTTP site -> wait for a signal -> clean up."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from aiohttp import web

from strongroom.api.app import make_app, make_metrics_app
from strongroom.api.local import start_unix_site
from strongroom.config import Settings
from strongroom.errors import StrongroomError
from strongroom.logs import configure_logging, flush_logs, get_logger
from strongroom.service.facade import Strongroom

log = get_logger("strongroom.daemon")

SWITCH_INTERVAL_S = 0.0005
"""The interpreter's thread switch interval in the daemon (CPython's default is 5 ms).

The event loop hands work to threads (PKCS#11 workers, the group-commit writer) and takes their
results back; while the loop is busy, a thread that has finished waits for the GIL for up to one
switch interval. Policy evaluation yields to the loop every few hundred microseconds, so that one
organization's expensive policies do not hold up another's requests; with the default interval,
each thread hand-off of those requests could still wait 5 ms behind them.
"""


async def _serve(settings: Settings, service: Strongroom) -> None:
    app = make_app(service)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
    await site.start()
    server: Any = site._server  # the only way to learn the port when 0 was asked for
    port = server.sockets[0].getsockname()[1] if server is not None and server.sockets else settings.port
    log.info("listening", url=f"http://{settings.host}:{port}", data_dir=str(settings.data_dir))
    if settings.unix_socket is not None:
        await start_unix_site(runner, settings.unix_socket)
        log.info(
            "listening_local", socket=str(settings.unix_socket), allowed_uids=list(settings.unix_socket_allowed_uids)
        )
    metrics_runner: web.AppRunner | None = None
    if settings.metrics_address is not None:
        metrics_runner = web.AppRunner(make_metrics_app(service), access_log=None, handle_signals=False)
        await metrics_runner.setup()
        metrics_host, metrics_port = settings.metrics_address
        await web.TCPSite(metrics_runner, metrics_host, metrics_port).start()
        log.info("listening_metrics", address=settings.metrics_listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def flusher() -> None:
        while True:
            await asyncio.sleep(0.2)
            flush_logs()

    flushing = asyncio.create_task(flusher())
    maintaining = asyncio.create_task(service.maintain())
    try:
        await stop.wait()
    finally:
        log.info("shutting_down")
        flushing.cancel()
        maintaining.cancel()
        await runner.cleanup()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        if settings.unix_socket is not None:
            settings.unix_socket.unlink(missing_ok=True)
        try:
            await service.checkpoint()  # leave the log with a signed head
        except StrongroomError as err:
            log.error("audit_checkpoint_failed", error=err.message)
        flush_logs()


def serve(settings: Settings) -> None:
    configure_logging(settings.log_format, buffered=True)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        service = Strongroom.open(settings)
        try:
            asyncio.run(_serve(settings, service))
        finally:
            service.close()
    finally:
        flush_logs()
