"""Dashboard routes: static files, passkey login, read-only sessions.

Security model (issue 8):

- Login is a WebAuthn assertion over a server-issued, short-lived, single-use challenge, for a
  user whose access type allows the web (ACCESS_TYPE_WEB or ACCESS_TYPE_ALL). It opens a
  server-side session (256-bit random id, kept in memory here, with an expiry); the cookie is
  HttpOnly, SameSite=Strict, Path=/dashboard, Secure over TLS.
- A session authorizes the GET/POST read endpoints under `/dashboard/api/` only. There is no
  dashboard endpoint that writes: writes are Turnkey activities the browser stamps with
  `X-Stamp-WebAuthn` over the exact body and posts to `/public/v1/submit/<name>`, which never
  looks at cookies. A forged cross-site request cannot carry a fresh passkey signature.
- Every dashboard response carries a strict Content-Security-Policy.

Login challenges are a shared, unauthenticated resource, so their table is bounded fairly
(settings `login_challenges_*`): a challenge lives two minutes; one client address holds at most
`login_challenges_per_client` at once, and one email at most `login_challenges_per_email`
(of which one address at most two: asking again replaces that address's own oldest challenge for
the email, never someone else's); the whole table holds `login_challenges_max`, and when full it
drops expired challenges first, then refuses. Every refusal is a 429 ResourceExhausted that names
the limit. Nobody's issued challenge is ever dropped early, so filling the table needs many
addresses, and keeping one email from logging in needs several.

`login/options` does not say who exists: an email with no web user behind it (unknown, API-only
or without passkeys) gets the same answer shape, with decoy credential ids derived from an HMAC of
the email under a secret kept in `<data_dir>/login-decoy.key` (stable across requests, restarts
and replicas that share the file), and is limited exactly like a real one.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from aiohttp import web
from webauthn import verify_authentication_response
from webauthn.helpers.exceptions import WebAuthnException

from strongroom import strictjson
from strongroom.api.errors import http_error, render_error
from strongroom.api.guard import unexpected
from strongroom.api.ratelimit import RateLimiter
from strongroom.config import Settings
from strongroom.crypto import encoding
from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted, StrongroomError, Unauthenticated
from strongroom.logs import get_logger
from strongroom.policy import check_policy
from strongroom.service import render
from strongroom.service import webauthn as webauthn_stamp
from strongroom.service.auth import ACCESS_ALL, ACCESS_WEB, Principal, Stamp
from strongroom.service.facade import Strongroom
from strongroom.store.records import Authenticator, Organization, User

log = get_logger("strongroom.dashboard")

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
COOKIE: Final = "strongroom_session"
SESSION_TTL_S: Final = 30 * 60
CHALLENGE_TTL_S: Final = 120
MAX_PENDING: Final = 10_000
PER_EMAIL_PER_CLIENT: Final = 2  # one address's share of an email's challenges
DECOY_KEY_FILE: Final = "login-decoy.key"
DECOY_ID_LENGTHS: Final = (16, 20, 32, 64)  # bytes: what common authenticators use
WEB_ACCESS: Final = frozenset({ACCESS_WEB, ACCESS_ALL})
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


@dataclass(slots=True)
class Session:
    user_id: str
    organization_id: str
    authenticator_id: str
    expires_at: float


@dataclass(slots=True)
class _Challenge:
    user_id: str | None
    email: str
    client: str
    expires_at: float


class SessionStore:
    """Sessions and login challenges, in memory (a restart logs everyone out)."""

    def __init__(
        self,
        ttl_s: float = SESSION_TTL_S,
        *,
        max_pending: int = MAX_PENDING,
        per_email: int = 5,
        per_client: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_pending = max_pending
        self.per_email = per_email
        self.per_client = per_client
        self._sessions: dict[str, Session] = {}
        self._challenges: dict[str, _Challenge] = {}  # insertion order = issue order
        self._by_email: dict[str, list[str]] = {}
        self._by_client: dict[str, list[str]] = {}

    @staticmethod
    def _prune(table: dict[str, Any], now: float, expiry: Callable[[Any], float]) -> None:
        for k in [k for k, v in table.items() if expiry(v) <= now]:
            del table[k]

    def _drop(self, challenge: str) -> _Challenge | None:
        found = self._challenges.pop(challenge, None)
        if found is not None:
            for index, key in ((self._by_email, found.email), (self._by_client, found.client)):
                group = index.get(key)
                if group is not None:
                    with contextlib.suppress(ValueError):
                        group.remove(challenge)
                    if not group:
                        del index[key]
        return found

    def _live(self, index: dict[str, list[str]], key: str, now: float) -> list[str]:
        """The unexpired challenges of one email or client (expired ones are dropped on the way)."""
        for challenge in list(index.get(key, ())):
            if self._challenges[challenge].expires_at <= now:
                self._drop(challenge)
        return list(index.get(key, ()))

    def issue_challenge(self, user_id: str | None, email: str = "", client: str = "") -> str:
        """A new challenge, or ResourceExhausted (429) naming the limit; never drops another's challenge."""
        now = self.clock()
        email = email.lower()
        for_email = self._live(self._by_email, email, now)
        mine = [c for c in for_email if self._challenges[c].client == client]
        if len(mine) >= min(PER_EMAIL_PER_CLIENT, self.per_email):
            self._drop(mine[0])  # this address asks again for this email: its oldest one goes
        elif len(for_email) >= self.per_email:
            raise ResourceExhausted(
                f"too many pending passkey logins for this email: the limit is {self.per_email} at a time;"
                f" use a challenge already issued or try again within {CHALLENGE_TTL_S} s"
            )
        if len(self._live(self._by_client, client, now)) >= self.per_client:
            raise ResourceExhausted(
                f"too many pending passkey logins from this address: the limit is {self.per_client} at a time;"
                f" try again within {CHALLENGE_TTL_S} s"
            )
        if len(self._challenges) >= self.max_pending:
            for challenge in [c for c, v in self._challenges.items() if v.expires_at <= now]:
                self._drop(challenge)
            if len(self._challenges) >= self.max_pending:
                raise ResourceExhausted(
                    f"too many pending passkey logins on this server: the limit is {self.max_pending} at a time;"
                    f" try again within {CHALLENGE_TTL_S} s"
                )
        challenge = encoding.b64url_encode(secrets.token_bytes(32))
        self._challenges[challenge] = _Challenge(user_id, email, client, now + CHALLENGE_TTL_S)
        self._by_email.setdefault(email, []).append(challenge)
        self._by_client.setdefault(client, []).append(challenge)
        return challenge

    def take_challenge(self, challenge: str) -> str | None:
        """Single use: the user the challenge was issued for, or None (unknown, expired or anonymous)."""
        found = self._drop(challenge)
        if found is None or found.expires_at <= self.clock():
            return None
        return found.user_id

    def pending_challenges(self) -> int:
        return len(self._challenges)

    def open(self, user: User, authenticator: Authenticator) -> tuple[str, Session]:
        now = self.clock()
        self._prune(self._sessions, now, lambda s: s.expires_at)
        session_id = secrets.token_urlsafe(32)  # 256 bits
        session = Session(user.id, user.organization_id, authenticator.id, now + self.ttl_s)
        self._sessions[session_id] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self.clock():
            del self._sessions[session_id]
            return None
        return session

    def close(self, session_id: str) -> bool:
        return self._sessions.pop(session_id, None) is not None

    def __len__(self) -> int:
        return len(self._sessions)


SESSIONS: Final = web.AppKey("dashboard_sessions", SessionStore)
_SERVICE: Final = web.AppKey("dashboard_service", Strongroom)
_DECOYS: Final = web.AppKey("dashboard_decoys", bytes)
_CLIENTS: Final = web.AppKey("dashboard_clients", RateLimiter)


def decoy_key(data_dir: Path) -> bytes:
    """The secret behind decoy credential ids: `<data_dir>/login-decoy.key` (0600), created once.

    Kept on disk so decoys survive restarts (a changed decoy would tell a real user from a
    missing one); replicas behind one address should share the file. If it cannot be kept, a
    per-process key is used and the reason logged.
    """
    path = data_dir / DECOY_KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("login_decoy_key_unreadable", path=str(path), error=err.strerror)
        return secrets.token_bytes(32)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
    except OSError as err:
        log.warning("login_decoy_key_not_saved", path=str(path), error=err.strerror)
    return key


def decoy_credentials(key: bytes, email: str) -> list[dict[str, Any]]:
    """What `allowCredentials` looks like for an email with no web user: stable, and like real ones."""
    seed = hmac.new(key, b"login-decoy\x00" + email.lower().encode(), hashlib.sha256).digest()
    count = 2 if seed[0] < 32 else 1  # most users have one passkey, some two
    out = []
    for i in range(count):
        length = DECOY_ID_LENGTHS[seed[1 + i] % len(DECOY_ID_LENGTHS)]
        raw = b"".join(hmac.new(seed, bytes([i, block]), hashlib.sha256).digest() for block in range(2))
        out.append({"type": "public-key", "id": encoding.b64url_encode(raw[:length])})
    return out


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json", headers=headers)


def _secured(handler: Handler) -> Handler:
    """Security headers on every dashboard response, errors rendered here (so they get them too)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except StrongroomError as err:
            status, body = render_error(err)
            response = _json(status, body)
        except web.HTTPException as err:
            status, body = http_error(err.status, err.reason.lower())
            response = _json(status, body)
        except Exception as err:  # noqa: BLE001 - logged and counted by `unexpected`
            status, body = unexpected(request, err, request.app[_SERVICE].metrics)
            response = _json(status, body)
        response.headers.update(SECURITY_HEADERS)
        return response

    return wrapped


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = strictjson.loads(await request.read() or b"{}")
    except strictjson.StrictJsonError as err:
        raise InvalidRequest(f"the request body must be JSON: {err.reason}") from err
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


# -- static files -------------------------------------------------------------------------------------


def _static_files() -> dict[str, tuple[bytes, str]]:
    out: dict[str, tuple[bytes, str]] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file() and path.suffix in CONTENT_TYPES:
            out[path.name] = (path.read_bytes(), CONTENT_TYPES[path.suffix])
    return out


# -- the viewer ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Viewer:
    user: User
    organization: Organization
    authenticator: Authenticator

    @property
    def principal(self) -> Principal:
        # Reads need no stamp: the session stands for the passkey assertion made at login.
        stamp = Stamp("", self.authenticator.public_key, webauthn_stamp.SCHEME_WEBAUTHN, "")
        return Principal(self.user, self.authenticator, stamp)


def _viewer(request: web.Request) -> Viewer:
    service = request.app[_SERVICE]
    sessions = request.app[SESSIONS]
    session_id = request.cookies.get(COOKIE, "")
    session = sessions.get(session_id) if session_id else None
    if session is None:
        raise Unauthenticated("no dashboard session: log in with a passkey")
    user = service.repo.users.user(session.user_id)
    org = service.repo.organizations.organization(session.organization_id)
    authenticator = service.repo.users.authenticator(session.organization_id, session.authenticator_id)
    if (
        user is None
        or org is None
        or authenticator is None
        or user.organization_id != org.id
        or user.access_type not in WEB_ACCESS
    ):
        sessions.close(session_id)  # the user, its passkey or its web access is gone
        raise Unauthenticated("dashboard session ended: log in again")
    return Viewer(user, org, authenticator)


async def _query(request: web.Request, viewer: Viewer, name: str, params: dict[str, Any]) -> dict[str, Any]:
    fn = request.app[_SERVICE].queries.table[name]
    return await fn(viewer.organization, viewer.principal, params)


# -- login ----------------------------------------------------------------------------------------------


async def login_options(request: web.Request) -> web.Response:
    service = request.app[_SERVICE]
    data = await _body(request)
    email = data.get("email")
    if not isinstance(email, str) or not 3 <= len(email) <= 320 or "@" not in email:
        raise InvalidRequest("`email` must be an email address")
    user = service.repo.users.user_by_email(email)
    credentials: list[dict[str, Any]] = []
    if user is not None and user.access_type in WEB_ACCESS:
        credentials = [
            {"type": "public-key", "id": a.credential_id} for a in service.repo.users.authenticators_of_user(user.id)
        ]
    user_id = user.id if credentials and user is not None else None
    if not credentials:
        # No web user behind this email: the same answer, with decoy ids, so it does not say who exists.
        credentials = decoy_credentials(request.app[_DECOYS], email)
    client = request.app[_CLIENTS].client_ip(request.remote or "", request.headers.get("X-Forwarded-For"))
    challenge = request.app[SESSIONS].issue_challenge(user_id, email, client)
    return _json(
        200,
        {
            "challenge": challenge,
            "rpId": service.settings.webauthn_rp_id,
            "allowCredentials": credentials,
            "timeoutMs": CHALLENGE_TTL_S * 1000,
            "userVerification": "preferred",
        },
    )


def _cookie_headers(request: web.Request, response: web.Response, session_id: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=max_age,
        path="/dashboard",
        httponly=True,
        secure=request.secure,
        samesite="Strict",
    )


async def login(request: web.Request) -> web.Response:
    service = request.app[_SERVICE]
    sessions = request.app[SESSIONS]
    data = await _body(request)
    raw = data.get("assertion")
    if not isinstance(raw, dict):
        raise InvalidRequest("`assertion` must be the passkey assertion (credentialId, clientDataJson, ...)")
    assertion = webauthn_stamp.parse_assertion(json.dumps(raw))
    refused = Unauthenticated("passkey login failed")
    try:
        challenge = strictjson.loads(assertion.client_data)["challenge"]
        if not isinstance(challenge, str):
            raise TypeError("challenge")
    except (ValueError, KeyError, TypeError) as err:
        raise refused from err
    user_id = sessions.take_challenge(challenge.rstrip("="))
    user = service.repo.users.user(user_id) if user_id else None
    if user is None or user.access_type not in WEB_ACCESS:
        raise refused
    authenticator = service.repo.users.authenticator_by_credential_id(user.organization_id, assertion.credential_id)
    if authenticator is None or authenticator.user_id != user.id:
        raise refused
    credential = webauthn_stamp.credential_json(assertion)
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=encoding.b64url_decode(challenge),
            expected_rp_id=service.settings.webauthn_rp_id,
            expected_origin=list(service.settings.webauthn_origins),
            credential_public_key=authenticator.cose_key,
            credential_current_sign_count=authenticator.sign_count,
            require_user_verification=False,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as err:
        log.info("dashboard_login_refused", user_id=user.id, reason=str(err)[:200])
        raise refused from err
    if verified.new_sign_count:
        await service.repo.write(service.repo.users.advance_sign_count(authenticator.id, int(verified.new_sign_count)))
    session_id, _session = sessions.open(user, authenticator)
    log.info("dashboard_login", user_id=user.id, organization_id=user.organization_id)
    response = _json(200, {"userId": user.id, "organizationId": user.organization_id, "expiresInS": sessions.ttl_s})
    _cookie_headers(request, response, session_id, int(sessions.ttl_s))
    return response


async def logout(request: web.Request) -> web.Response:
    session_id = request.cookies.get(COOKIE, "")
    ended = bool(session_id) and request.app[SESSIONS].close(session_id)
    response = _json(200, {"loggedOut": ended})
    _cookie_headers(request, response, "", 0)
    return response


async def register_options(request: web.Request) -> web.Response:
    """A challenge for navigator.credentials.create(); the resulting attestation is submitted
    (create_users / create_authenticators) by an administrator stamping with their own credential."""
    service = request.app[_SERVICE]
    return _json(
        200,
        {
            "challenge": encoding.b64url_encode(secrets.token_bytes(32)),
            "rpId": service.settings.webauthn_rp_id,
            "rpName": "Strongroom",
        },
    )


# -- reads ----------------------------------------------------------------------------------------------


async def session_info(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    service = request.app[_SERVICE]
    return _json(
        200,
        {
            "userId": viewer.user.id,
            "username": viewer.user.name,
            "email": viewer.user.email,
            "organizationId": viewer.organization.id,
            "organizationName": viewer.organization.name,
            "rpId": service.settings.webauthn_rp_id,
            "credentialIds": [a.credential_id for a in service.repo.users.authenticators_of_user(viewer.user.id)],
        },
    )


async def overview(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    repo = request.app[_SERVICE].repo
    org = viewer.organization
    users = repo.users.users(org.id)
    names = {u.id: u.name for u in users}
    pending = repo.activities.activities(org.id, statuses=["ACTIVITY_STATUS_CONSENSUS_NEEDED"], limit=100)
    usage = await _query(request, viewer, "get_usage", {})
    return _json(
        200,
        {
            "organizationId": org.id,
            "name": org.name,
            "parentOrganizationId": org.parent_id,
            "rootQuorum": {
                "threshold": org.root_quorum_threshold,
                "users": [{"userId": u, "username": names.get(u, "")} for u in org.root_user_ids],
            },
            "counts": {
                "users": len(users),
                "privateKeys": len(repo.private_keys.private_keys(org.id)),
                "policies": len(repo.policies.policies(org.id)),
                "subOrganizations": len(repo.organizations.sub_organization_ids(org.id)),
                "pendingActivities": len(pending),
            },
            "usage": usage["usage"],
        },
    )


async def users(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    data = await _query(request, viewer, "list_users", {})
    tags = await _query(request, viewer, "list_user_tags", {})
    return _json(200, {**data, **tags})


async def private_keys(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    repo = request.app[_SERVICE].repo
    out = []
    for k in repo.private_keys.private_keys(viewer.organization.id):
        item = render.private_key(k)
        item["backend"] = k.backend
        out.append(item)
    tags = await _query(request, viewer, "list_private_key_tags", {})
    return _json(200, {"privateKeys": out, **tags})


async def policies(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    return _json(200, await _query(request, viewer, "list_policies", {}))


def _needs_vote(activity: dict[str, Any], user_id: str) -> bool:
    voted = any((v.get("userId") or v.get("user", {}).get("userId")) == user_id for v in activity.get("votes", []))
    return activity["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED" and not voted


async def activities(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    params: dict[str, Any] = {"paginationOptions": {"limit": request.query.get("limit", "50")}}
    if request.query.get("status"):
        params["filterByStatus"] = [request.query["status"]]
    if request.query.get("type"):
        params["filterByType"] = [request.query["type"]]
    if request.query.get("before"):
        params["paginationOptions"]["before"] = request.query["before"]
    data = await _query(request, viewer, "list_activities", params)
    for a in data["activities"]:
        a["needsMyVote"] = _needs_vote(a, viewer.user.id)
    return _json(200, data)


def _audit_entries(service: Strongroom, org_id: str, activity_id: str) -> list[dict[str, Any]]:
    return [
        {"seq": seq, "hash": h, "entry": entry}
        for seq, h, entry in service.repo.activities.audit_entries_of_activity(org_id, activity_id)
    ]


async def activity_detail(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    activity_id = request.match_info["activity_id"]
    data = await _query(request, viewer, "get_activity", {"activityId": activity_id})
    evaluations = await _query(request, viewer, "get_policy_evaluations", {"activityId": activity_id})
    data["activity"]["needsMyVote"] = _needs_vote(data["activity"], viewer.user.id)
    data["policyEvaluations"] = evaluations["policyEvaluations"]
    data["audit"] = _audit_entries(request.app[_SERVICE], viewer.organization.id, activity_id)
    return _json(200, data)


async def suborgs(request: web.Request) -> web.Response:
    viewer = _viewer(request)
    repo = request.app[_SERVICE].repo
    out = []
    for sub_id in repo.organizations.sub_organization_ids(viewer.organization.id):
        sub = repo.organizations.organization(sub_id)
        if sub is not None:
            out.append(
                {
                    "organizationId": sub.id,
                    "name": sub.name,
                    "users": repo.users.user_count(sub.id),
                    "rootQuorumThreshold": sub.root_quorum_threshold,
                    "createdAt": render.timestamp(sub.created_at),
                }
            )
    return _json(200, {"subOrganizations": out})


async def check(request: web.Request) -> web.Response:
    _viewer(request)
    if request.method == "GET":
        data: dict[str, Any] = dict(request.query)
    else:
        data = await _body(request)
    fields = {}
    for name in ("condition", "consensus", "time"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"`{name}` must be a string")
        if value is not None and len(value) > 65536:
            raise InvalidRequest(f"`{name}` is too long")
        fields[name] = value
    issues = check_policy(fields["condition"], fields["consensus"], fields["time"])
    return _json(
        200,
        {
            "valid": not issues,
            "issues": [{"field": i.field, "line": i.line, "column": i.column, "message": i.message} for i in issues],
        },
    )


# -- wiring ---------------------------------------------------------------------------------------------


def setup_dashboard(app: web.Application, service: Strongroom) -> None:
    settings: Settings = service.settings
    app[SESSIONS] = SessionStore(
        max_pending=settings.login_challenges_max,
        per_email=settings.login_challenges_per_email,
        per_client=settings.login_challenges_per_client,
    )
    app[_SERVICE] = service
    app[_DECOYS] = decoy_key(settings.data_dir)
    app[_CLIENTS] = RateLimiter(0, None, settings.trusted_proxies)  # only its client-address rule
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
        raise web.HTTPFound("/dashboard/")

    async def api_not_found(request: web.Request) -> web.Response:
        status, body = http_error(404 if request.method in ("GET", "HEAD") else 405, "no such dashboard endpoint")
        return _json(status, body)

    r = app.router
    r.add_get("/dashboard", redirect)
    r.add_get("/dashboard/", _secured(index))
    r.add_get("/dashboard/static/{file}", _secured(static))
    r.add_post("/dashboard/api/login/options", _secured(login_options))
    r.add_post("/dashboard/api/login", _secured(login))
    r.add_post("/dashboard/api/logout", _secured(logout))
    r.add_post("/dashboard/api/register/options", _secured(register_options))
    r.add_get("/dashboard/api/session", _secured(session_info))
    r.add_get("/dashboard/api/overview", _secured(overview))
    r.add_get("/dashboard/api/users", _secured(users))
    r.add_get("/dashboard/api/private-keys", _secured(private_keys))
    r.add_get("/dashboard/api/policies", _secured(policies))
    r.add_get("/dashboard/api/activities", _secured(activities))
    r.add_get("/dashboard/api/activities/{activity_id}", _secured(activity_detail))
    r.add_get("/dashboard/api/suborgs", _secured(suborgs))
    r.add_get("/dashboard/api/check-policy", _secured(check))
    r.add_post("/dashboard/api/check-policy", _secured(check))
    r.add_route("*", "/dashboard/{tail:.*}", _secured(api_not_found))


__all__ = ["COOKIE", "SECURITY_HEADERS", "SESSIONS", "SessionStore", "setup_dashboard"]
