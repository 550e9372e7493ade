"""aiohttp application: Turnkey's routes over the domain services. No key material here.

Every response is `Content-Type: application/json` exactly (no charset: the Rust SDK compares
the MIME type verbatim), errors included.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
import structlog
from aiohttp import web

from strongroom.api.dashboard import setup_dashboard
from strongroom.api.errors import http_error, render_error
from strongroom.api.ethupstream import HttpUpstream
from strongroom.api.guard import request_id_of, unexpected
from strongroom.api.local import peer_of
from strongroom.api.openapi import document
from strongroom.api.ratelimit import RATE_LIMIT_MESSAGE, RateLimiter
from strongroom.errors import PermissionDenied, ResourceExhausted, StrongroomError
from strongroom.logs import get_logger
from strongroom.service import Strongroom

SERVICE: Final = web.AppKey("strongroom", Strongroom)
log = get_logger("strongroom.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


LIMITER: Final = web.AppKey("rate_limiter", RateLimiter)
# (query names, activity endpoint names), fixed at start-up: metric labels use only these
ENDPOINTS: Final = web.AppKey("endpoints", tuple)


@web.middleware
async def api_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything every request goes through, outermost first (one middleware, not four: each
    layer cost an aiohttp wrapper and a coroutine on every request):

    1. the request id, and Turnkey's error shape for whatever the steps below let escape;
    2. the Unix socket: the peer's pid/uid/gid logged with the request, uids not allowed refused;
    3. the rate limit: Turnkey's headers on every response, errors included; 429 before
       anything else is done;
    4. errors rendered in Turnkey's shape, the request counted, one log line per request.
    """
    structlog.contextvars.clear_contextvars()
    request_id = request_id_of(request)
    structlog.contextvars.bind_contextvars(request_id=request_id)
    try:
        response = await _peer_checked(request, handler)
    except Exception as err:  # noqa: BLE001 - the guard: logged and counted by `unexpected`
        status, body = unexpected(request, err, request.app[SERVICE].metrics)
        response = json_response(status, body)
    response.headers["X-Request-Id"] = request_id
    return response


async def _peer_checked(request: web.Request, handler: Handler) -> web.StreamResponse:
    peer = peer_of(request)
    if peer is not None:
        structlog.contextvars.bind_contextvars(peer_pid=peer.pid, peer_uid=peer.uid, peer_gid=peer.gid)
        allowed = request.app[SERVICE].settings.unix_socket_allowed_uids
        if allowed and peer.uid not in allowed:
            log.warning("local_peer_refused", peer_uid=peer.uid, peer_pid=peer.pid)
            status, body = render_error(PermissionDenied(f"local user {peer.uid} may not use this socket"))
            return json_response(status, body)
    limiter = request.app[LIMITER]
    remote = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For")
    if remote and request.path.startswith(("/public/", "/eth/", "/dashboard/api/login")):
        verdict = limiter.check(remote, forwarded)
    else:  # the Unix socket (no peer address) and health probes are not IP-limited
        verdict = None
    headers = {
        "x-rate-limit-request-forwarded-for": forwarded or "",
        "x-rate-limit-request-remote-addr": remote,
    }
    if verdict is not None:
        headers["ratelimit-limit"] = str(verdict.limit)
        headers["ratelimit-remaining"] = str(verdict.remaining)
        if not verdict.allowed:
            request.app[SERVICE].metrics.rate_limited.inc()
            log.info("rate_limited", client_ip=verdict.client_ip, path=request.path)
            status, body = render_error(ResourceExhausted(RATE_LIMIT_MESSAGE))
            return json_response(status, body, headers)
    response = await _handled(request, handler)
    response.headers.update(headers)
    return response


async def _handled(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await handler(request)
    except StrongroomError as err:
        status, body = render_error(err)
        response = json_response(status, body)
    except web.HTTPException as err:
        if err.status == 413:
            message = f"request body is larger than {request.app[SERVICE].settings.max_body_bytes} bytes"
        else:
            message = err.reason.lower()
        status, body = http_error(err.status, message)
        response = json_response(status, body)
    except Exception as err:  # noqa: BLE001 - logged and counted by `unexpected`
        status, body = unexpected(request, err, request.app[SERVICE].metrics)
        response = json_response(status, body)
    request.app[SERVICE].metrics.requests.labels(_route(request), str(response.status)).inc()
    if response.status >= 400 or request.path.startswith(("/public/", "/eth/")):
        # One line per request; the pipeline binds activity_id, status, organization and user.
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
    return response


def _route(request: web.Request) -> str:
    """A bounded label: known endpoint names only."""
    info = request.match_info
    route = info.route.resource.canonical if info.route.resource is not None else "unmatched"
    name = info.get("name")
    if name is None:
        return route if route in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/eth/rpc") else "other"
    known = name in request.app[ENDPOINTS][0 if route.startswith("/public/v1/query") else 1]
    return f"{route.rsplit('/', 1)[0]}/{name if known else '<unknown>'}"


async def openapi(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return json_response(200, document(service.catalog, sorted(service.queries.table)))


async def metrics(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    return web.Response(body=service.metrics.render(), headers={"Content-Type": service.metrics.content_type})


async def submit(request: web.Request) -> web.Response:
    body = await request.read()
    result = await request.app[SERVICE].submit(request.match_info["name"], body, request.headers)
    return json_response(200, result)


async def query(request: web.Request) -> web.Response:
    body = await request.read()
    result = await request.app[SERVICE].query(request.match_info["name"], body, request.headers)
    return json_response(200, result)


async def stream_events(request: web.Request) -> web.StreamResponse:
    """`POST /public/v1/stream/events` (docs/events.md): the organization's events as server-sent
    events. Every refusal (stamp, time, rights, cursor, filters, limits) is raised by `open_stream`
    before the first byte, so it is Turnkey's JSON error; once streaming, an error ends the stream
    and the client resumes with `Last-Event-ID`."""
    service = request.app[SERVICE]
    body = await request.read()
    stream = await service.open_stream(body, request.headers)
    try:
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
                "X-Request-Id": request_id_of(request),
            },
        )
        await response.prepare(request)
        try:
            transport = request.transport

            def connected() -> bool:
                return transport is not None and not transport.is_closing()

            async for chunk in service.stream_frames(stream, connected):
                await response.write(chunk)
        except ConnectionError:
            pass  # the client went away: nothing to answer
        except StrongroomError as err:  # the headers are sent: end the stream, the client resumes
            log.warning("event_stream_ended", error=err.message)
        return response
    finally:
        service.close_stream(stream)


async def eth_rpc(request: web.Request) -> web.Response:
    """Ethereum JSON-RPC signer: always HTTP 200 with a JSON-RPC result or error object."""
    body = await request.read()
    return json_response(200, await request.app[SERVICE].eth_rpc(body, request.headers))


async def health(_request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    ok, checks = request.app[SERVICE].readiness()
    return json_response(200 if ok else 503, {"ready": ok, "checks": checks})


async def not_found(request: web.Request) -> web.Response:
    status, body = http_error(404, f"no route for `{request.path[:128]}`")
    return json_response(status, body)


def make_app(service: Strongroom) -> web.Application:
    settings = service.settings
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[api_middleware])
    app[SERVICE] = service
    app[ENDPOINTS] = (frozenset(service.queries.table), frozenset(service.catalog.by_path))
    app[LIMITER] = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst, settings.trusted_proxies)
    app.router.add_post("/public/v1/submit/{name}", submit)
    app.router.add_post("/public/v1/query/{name}", query)
    app.router.add_post("/public/v1/stream/events", stream_events)
    app.router.add_post("/eth/rpc", eth_rpc)
    if settings.eth_upstream_url is not None:  # the node /eth/rpc passes the node's methods to
        upstream = HttpUpstream(settings.eth_upstream_url, settings.eth_upstream_timeout_s)
        service.use_eth_upstream(upstream)

        async def close_upstream(_app: web.Application) -> None:
            await upstream.close()

        app.on_cleanup.append(close_upstream)
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)
    if settings.metrics_listen is None:  # else only on its own address (make_metrics_app)
        app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    setup_dashboard(app, service)  # /dashboard/: static pages, passkey login, read-only sessions
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def make_metrics_app(service: Strongroom) -> web.Application:
    """`GET /metrics` alone, for `metrics_listen`: a private address for the scraper."""
    app = web.Application()
    app[SERVICE] = service

    async def not_here(_request: web.Request) -> web.Response:
        status, body = http_error(404, "only /metrics is served here")
        return json_response(status, body)

    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", not_here)
    return app
