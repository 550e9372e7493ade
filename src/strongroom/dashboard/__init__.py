"""The dashboard: passkey login, read-only sessions, and static pages served by the daemon.

See `server` for the routes and README.md ("Dashboard") for the security model: a session
cookie authorizes reads only; every write is a Turnkey activity stamped in the browser with
`X-Stamp-WebAuthn` over its exact body and submitted to `/public/v1/submit/<name>`.
"""

from strongroom.dashboard.server import SESSIONS, SessionStore, setup_dashboard

__all__ = ["SESSIONS", "SessionStore", "setup_dashboard"]
