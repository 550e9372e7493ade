"""The process's life: sites up, background duties, a signal, an orderly stop.

What runs in the background is scheduled here; what each duty does belongs to the service
(`check_token`, `retry_store`, `expire_activities`, `checkpoint`, `deliver_webhooks`). Webhooks
run in a task of their own, so a slow receiver delays no other duty; this room makes their
HTTP requests (the service does no HTTP).
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
from aiohttp import web

from strongroom.api.app import make_app, make_metrics_app
from strongroom.api.local import start_unix_site
from strongroom.config import Settings
from strongroom.errors import Conflict, StrongroomError
from strongroom.logs import flush_logs, get_logger
from strongroom.service import Strongroom

log = get_logger("strongroom.daemon")

WORKER_HEADER = "Strongroom-Worker"
"""With several workers, each response names the worker (0 .. workers-1) that served it."""


@dataclass(frozen=True, slots=True)
class Listeners:
    """Sockets a worker serves on, made by the parent (`daemon/workers.py`) before it forked:
    the API port (this worker's own `SO_REUSEPORT` socket), and the local socket and the metrics
    address (one listening socket, shared by every worker)."""

    worker: int
    api: socket.socket
    unix: socket.socket | None = None
    metrics: socket.socket | None = None


async def maintain(
    service: Strongroom,
    checkpoint_every_s: float = 1.0,
    token_every_s: float = 2.0,
    expiry_every_s: float = 1.0,
    *,
    checkpoints: bool = True,
) -> None:
    """Background duties: watch the token (and log in again), retry a failed store (so signing
    resumes), end the vote windows that have passed (every replica and worker runs it: each
    activity is expired once), and sign audit checkpoints (`checkpoints`: of a daemon's workers,
    only worker 0 does, so they do not sign the same head twice)."""
    last = 0.0
    last_expiry = 0.0
    last_token = time.monotonic()
    while True:
        await asyncio.sleep(0.5)
        if time.monotonic() - last_token >= token_every_s:
            last_token = time.monotonic()
            await service.check_token()
        if not await service.retry_store():
            continue
        if time.monotonic() - last_expiry >= expiry_every_s:
            last_expiry = time.monotonic()
            try:
                await service.expire_activities()
            except Exception as err:  # noqa: BLE001 - the next run tries again; the other duties go on
                why = err.message if isinstance(err, StrongroomError) else type(err).__name__
                log.error("activity_expiry_failed", error=why)
        if checkpoints and time.monotonic() - last >= checkpoint_every_s:
            last = time.monotonic()
            await checkpoint(service)


async def checkpoint(service: Strongroom) -> None:
    """Sign the audit head; another process (replica, worker) that signed the same head first is
    not a failure."""
    try:
        await service.checkpoint()
    except Conflict:
        log.info("audit_checkpoint_taken", note="another process signed this head first")
    except StrongroomError as err:
        log.error("audit_checkpoint_failed", error=err.message)


def webhook_poster(session: aiohttp.ClientSession) -> Callable[[str, bytes, Mapping[str, str], float], Awaitable[int]]:
    """How a webhook is POSTed: no redirect followed (a 3xx is a failed attempt), a total timeout,
    the response body neither read into memory beyond the connection's needs nor logged; no
    answer (refused, reset, timed out, bad URL) raises OSError."""

    async def post(url: str, body: bytes, headers: Mapping[str, str], timeout_s: float) -> int:
        try:
            async with session.post(
                url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s, connect=timeout_s),
            ) as resp:
                return resp.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise OSError(type(err).__name__) from err

    return post


async def deliver_webhooks(service: Strongroom, every_s: float = 0.25) -> None:
    """The webhook duty: post what is due, then look again (every replica runs it: each
    delivery is claimed by one)."""
    async with aiohttp.ClientSession(trust_env=False, cookie_jar=aiohttp.DummyCookieJar()) as session:
        post = webhook_poster(session)
        while True:
            try:
                await service.deliver_webhooks(post)
            except Exception as err:  # noqa: BLE001 - the next run tries again; the pipeline is not concerned
                why = err.message if isinstance(err, StrongroomError) else type(err).__name__
                log.error("webhook_delivery_failed", error=why)
            await asyncio.sleep(every_s)


def settle_heap() -> None:
    """Move everything made while starting (modules, the catalog, compiled tables: hundreds of
    thousands of objects that live as long as the process) out of the garbage collector's sight.

    Requests in flight outlive the youngest generations, so the collector's oldest generation
    grows with them and is collected every couple of thousand requests; each such collection
    walked the whole start-up heap, holding the event loop for 30-50 ms (measured with
    `gc.callbacks` under `bench/bench_sign.py`: every request in flight then waited that long,
    which set the p99). Frozen objects are not walked; what requests leave behind still is.
    """
    gc.collect()
    gc.freeze()


async def run(
    settings: Settings,
    service: Strongroom,
    listeners: Listeners | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then stop in order: sites, background duties, a last checkpoint.

    `listeners`: serve on the parent's sockets, as one of several workers; `ready` is called once
    every site accepts connections.
    """
    app = make_app(service)
    if listeners is not None:
        worker = str(listeners.worker)

        async def name_worker(request: web.Request, response: web.StreamResponse) -> None:
            response.headers[WORKER_HEADER] = worker

        app.on_response_prepare.append(name_worker)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site: web.BaseSite
    if listeners is None:
        site = web.TCPSite(runner, settings.host, settings.port, backlog=1024)
    else:
        site = web.SockSite(runner, listeners.api, backlog=1024)
    await site.start()
    server: Any = site._server  # the only way to learn the port when 0 was asked for
    port = server.sockets[0].getsockname()[1] if server is not None and server.sockets else settings.port
    log.info(
        "listening",
        url=f"http://{settings.host}:{port}",
        dashboard=replace(settings, port=port).dashboard_url,
        data_dir=str(settings.data_dir),
        **({} if listeners is None else {"worker": listeners.worker}),
    )
    if settings.unix_socket is not None:
        if listeners is None:
            await start_unix_site(runner, settings.unix_socket)
        else:
            assert listeners.unix is not None
            await web.SockSite(runner, listeners.unix).start()
        log.info(
            "listening_local", socket=str(settings.unix_socket), allowed_uids=list(settings.unix_socket_allowed_uids)
        )
    metrics_runner: web.AppRunner | None = None
    if settings.metrics_address is not None:
        metrics_runner = web.AppRunner(make_metrics_app(service), access_log=None, handle_signals=False)
        await metrics_runner.setup()
        if listeners is None:
            metrics_host, metrics_port = settings.metrics_address
            await web.TCPSite(metrics_runner, metrics_host, metrics_port).start()
        else:
            assert listeners.metrics is not None
            await web.SockSite(metrics_runner, listeners.metrics).start()
        log.info("listening_metrics", address=settings.metrics_listen)
    settle_heap()
    if ready is not None:
        ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def flusher() -> None:
        while True:
            await asyncio.sleep(0.2)
            flush_logs()

    flushing = asyncio.create_task(flusher())
    maintaining = asyncio.create_task(maintain(service, checkpoints=listeners is None or listeners.worker == 0))
    delivering = asyncio.create_task(deliver_webhooks(service))
    try:
        await stop.wait()
    finally:
        log.info("shutting_down")
        service.stop_streams()  # event streams end now: the sites' cleanup does not wait for them
        flushing.cancel()
        maintaining.cancel()
        delivering.cancel()
        await runner.cleanup()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        if settings.unix_socket is not None and listeners is None:
            settings.unix_socket.unlink(missing_ok=True)  # (the workers' parent removes its own)
        await checkpoint(service)  # leave the log with a signed head
        flush_logs()
