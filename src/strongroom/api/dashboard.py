"""Dashboard routes: static files, passkey login, read-only sessions (HTTP only).

The domain (login challenges and their limits, decoys, the assertion check, sessions in the
store, the reads) is `strongroom.service.Dashboard`; see its module for the security model.
Here: the cookie (HttpOnly, SameSite=Strict, Path=/dashboard, Secure over TLS), the routes, and
a strict Content-Security-Policy (with the other security headers) on every dashboard response,
errors included. Errors are rendered by the application's one error middleware (`api/app.py`).

A session authorizes the GET/POST read endpoints under `/dashboard/api/` only. The one dashboard
endpoint that writes needs no session: `/dashboard/api/invite` redeems a passkey invite, whose
secret authorizes it, by submitting the Turnkey activity it stamps (`service/invites.py`). Other
writes are Turnkey activities the browser stamps with
`X-Stamp-WebAuthn` over the exact body and posts to `/public/v1/submit/<name>`, which never
looks at cookies. A forged cross-site request cannot carry a fresh passkey signature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web

from strongroom import strictjson
from strongroom.api.errors import http_error
from strongroom.api.ratelimit import RateLimiter
from strongroom.errors import InvalidRequest, NotFound
from strongroom.service import Dashboard, Strongroom, Viewer

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
COOKIE: Final = "strongroom_session"
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self';"
        " object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
CONTENT_TYPES: Final = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

DASHBOARD: Final = web.AppKey("dashboard", Dashboard)
_CLIENTS: Final = web.AppKey("dashboard_clients", RateLimiter)


def _json(status: int, data: Any) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every dashboard response gets them, whoever made it (a handler, the error middleware, a 429)."""
    if request.path == "/dashboard" or request.path.startswith("/dashboard/"):
        response.headers.update(SECURITY_HEADERS)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = strictjson.loads(await request.read() or b"{}")
    except strictjson.StrictJsonError as err:
        raise InvalidRequest(f"the request body must be JSON: {err.reason}") from err
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def _static_files() -> dict[str, tuple[bytes, str]]:
    out: dict[str, tuple[bytes, str]] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in CONTENT_TYPES:
            out[path.name] = (path.read_bytes(), CONTENT_TYPES[path.suffix])
    return out


async def _viewer(request: web.Request) -> Viewer:
    return await request.app[DASHBOARD].viewer(request.cookies.get(COOKIE, ""))


def _set_cookie(request: web.Request, response: web.Response, session_id: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=max_age,
        path="/dashboard",
        httponly=True,
        secure=request.secure,
        samesite="Strict",
    )


# -- login ----------------------------------------------------------------------------------------------


async def login_options(request: web.Request) -> web.Response:
    data = await _body(request)
    client = request.app[_CLIENTS].client_ip(request.remote or "", request.headers.get("X-Forwarded-For"))
    return _json(200, await request.app[DASHBOARD].login_options(data.get("email"), client))


async def login(request: web.Request) -> web.Response:
    data = await _body(request)
    opened = await request.app[DASHBOARD].login(data.get("assertion"))
    response = _json(200, opened.body)
    _set_cookie(request, response, opened.session_id, opened.ttl_s)
    return response


async def logout(request: web.Request) -> web.Response:
    ended = await request.app[DASHBOARD].logout(request.cookies.get(COOKIE, ""))
    response = _json(200, {"loggedOut": ended})
    _set_cookie(request, response, "", 0)
    return response


async def register_options(request: web.Request) -> web.Response:
    return _json(200, request.app[DASHBOARD].register_options())


async def invite(request: web.Request) -> web.Response:
    """A passkey invite: POST {invite} checks it is still valid; with `email` and `authenticator`, redeems it."""
    data = await _body(request)
    if "authenticator" not in data:
        return _json(200, request.app[DASHBOARD].invite(data.get("invite")))
    return _json(200, await request.app[DASHBOARD].redeem_invite(data))


# -- reads ----------------------------------------------------------------------------------------------


async def session_info(request: web.Request) -> web.Response:
    return _json(200, request.app[DASHBOARD].session_info(await _viewer(request)))


async def overview(request: web.Request) -> web.Response:
    return _json(200, await request.app[DASHBOARD].overview(await _viewer(request)))


async def users(request: web.Request) -> web.Response:
    return _json(200, await request.app[DASHBOARD].users(await _viewer(request)))


async def private_keys(request: web.Request) -> web.Response:
    return _json(200, await request.app[DASHBOARD].private_keys(await _viewer(request)))


async def policies(request: web.Request) -> web.Response:
    return _json(200, await request.app[DASHBOARD].policies(await _viewer(request)))


async def activities(request: web.Request) -> web.Response:
    return _json(200, await request.app[DASHBOARD].activities(await _viewer(request), request.query))


async def activity_detail(request: web.Request) -> web.Response:
    viewer = await _viewer(request)
    return _json(200, await request.app[DASHBOARD].activity(viewer, request.match_info["activity_id"]))


async def suborgs(request: web.Request) -> web.Response:
    return _json(200, request.app[DASHBOARD].sub_organizations(await _viewer(request)))


async def check(request: web.Request) -> web.Response:
    await _viewer(request)
    data: dict[str, Any] = dict(request.query) if request.method == "GET" else await _body(request)
    return _json(200, request.app[DASHBOARD].check_policy(data))


# -- wiring ---------------------------------------------------------------------------------------------


def setup_dashboard(app: web.Application, service: Strongroom) -> None:
    app[DASHBOARD] = service.dashboard
    app[_CLIENTS] = RateLimiter(0, None, service.settings.trusted_proxies)  # only its client-address rule
    app.on_response_prepare.append(_security_headers)
    files = _static_files()

    async def index(_request: web.Request) -> web.Response:
        body, content_type = files["index.html"]
        return web.Response(body=body, content_type=content_type, charset="utf-8")

    async def static(request: web.Request) -> web.Response:
        found = files.get(request.match_info["file"])
        if found is None:
            raise NotFound("no such dashboard file")
        return web.Response(body=found[0], content_type=found[1], charset="utf-8")

    async def redirect(_request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/dashboard/"})

    async def api_not_found(request: web.Request) -> web.Response:
        status, body = http_error(404 if request.method in ("GET", "HEAD") else 405, "no such dashboard endpoint")
        return _json(status, body)

    r = app.router
    r.add_get("/", redirect)  # where a browser lands: the API itself lives under /public/v1/
    r.add_get("/dashboard", redirect)
    r.add_get("/dashboard/", index)
    r.add_get("/dashboard/static/{file}", static)
    r.add_post("/dashboard/api/login/options", login_options)
    r.add_post("/dashboard/api/login", login)
    r.add_post("/dashboard/api/logout", logout)
    r.add_post("/dashboard/api/register/options", register_options)
    r.add_post("/dashboard/api/invite", invite)
    r.add_get("/dashboard/api/session", session_info)
    r.add_get("/dashboard/api/overview", overview)
    r.add_get("/dashboard/api/users", users)
    r.add_get("/dashboard/api/private-keys", private_keys)
    r.add_get("/dashboard/api/policies", policies)
    r.add_get("/dashboard/api/activities", activities)
    r.add_get("/dashboard/api/activities/{activity_id}", activity_detail)
    r.add_get("/dashboard/api/suborgs", suborgs)
    r.add_get("/dashboard/api/check-policy", check)
    r.add_post("/dashboard/api/check-policy", check)
    r.add_route("*", "/dashboard/{tail:.*}", api_not_found)


__all__ = ["COOKIE", "DASHBOARD", "SECURITY_HEADERS", "setup_dashboard"]
