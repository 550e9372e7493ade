"""The synchronous client (standard library only: http.client, over TCP or a Unix socket)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from strongroom.client import calls
from strongroom.client.base import Methods
from strongroom.client.errors import ActivityError, Unreachable, raise_for
from strongroom.client.events import SseParser, StreamEvent
from strongroom.client.stamp import ApiKeyStamper


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Client(Methods):
    def __init__(self, base_url: str, stamper: ApiKeyStamper, organization_id: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._parsed = self._target(base_url, stamper, organization_id)
        self._prefix = "" if self._unix else self._parsed.path

    def _connection(self) -> http.client.HTTPConnection:
        if self._unix is not None:
            return _UnixConnection(self._unix, self.timeout)
        cls = http.client.HTTPSConnection if self._parsed.scheme == "https" else http.client.HTTPConnection
        return cls(self._parsed.hostname or "localhost", self._parsed.port, timeout=self.timeout)

    def post_raw(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """POST exactly `body` (stamped); returns (status, decoded JSON or text)."""
        conn = self._connection()
        try:
            conn.request(
                "POST",
                self._prefix + path,
                body=body,
                headers={"Content-Type": "application/json", "X-Stamp": self.stamper.stamp(body), **(headers or {})},
            )
            resp = conn.getresponse()
            raw = resp.read()
        except OSError as err:
            raise Unreachable(0, None, f"daemon not reachable at {self._where()}: {err}") from err
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")

    def events(
        self,
        after: str | None = None,
        filters: dict[str, Any] | None = None,
        *,
        read_timeout: float = 60.0,
        headers: dict[str, str] | None = None,
        on_open: Callable[[], None] | None = None,
    ) -> Iterator[StreamEvent]:
        """The organization's events as they are committed (docs/events.md), after event `after`
        (its id) or from now; `filters` {eventTypes?, activityTypes?}. A refusal raises `ApiError`;
        `on_open` is called once the daemon has accepted the stream (from then on, no event is
        missed); the stream ends when the daemon closes it (resume with the last id seen)."""
        path, body = calls.stream(self.organization_id, after, filters)
        raw = json.dumps(body).encode()
        conn = self._connection()
        conn.timeout = read_timeout  # longer than the daemon's keepalive
        try:
            try:
                conn.request(
                    "POST",
                    self._prefix + path,
                    body=raw,
                    headers={
                        "Content-Type": "application/json",
                        "Accept": "text/event-stream",
                        "X-Stamp": self.stamper.stamp(raw),
                        **(headers or {}),
                    },
                )
                resp = conn.getresponse()
            except OSError as err:
                raise Unreachable(0, None, f"daemon not reachable at {self._where()}: {err}") from err
            if resp.status != 200 or not resp.getheader("Content-Type", "").startswith("text/event-stream"):
                text = resp.read()
                try:
                    data: Any = json.loads(text)
                except ValueError:
                    data = text.decode(errors="replace")
                raise_for(resp.status if resp.status != 200 else 502, data)
            if on_open is not None:
                on_open()
            yield from _sse(resp)
        finally:
            conn.close()

    def _call(self, path: str, body: dict[str, Any]) -> Any:
        status, data = self.post_raw(path, json.dumps(body).encode())
        raise_for(status, data)
        return data

    def wait(self, activity: dict[str, Any], timeout: float = 30.0, interval: float = 0.5) -> dict[str, Any]:
        """Poll until the activity is COMPLETED (returned), FAILED/REJECTED or out of time (raised)."""
        deadline = time.monotonic() + timeout
        while activity["status"] not in calls.TERMINAL:
            if time.monotonic() >= deadline:
                raise ActivityError(f"activity {activity['id']} is still {activity['status']}", activity)
            time.sleep(interval)
            activity = self.get_activity(activity["id"])["activity"]
        if activity["status"] != "ACTIVITY_STATUS_COMPLETED":
            raise ActivityError(f"activity {activity['id']} ended {activity['status']}", activity)
        return activity


def _sse(resp: http.client.HTTPResponse) -> Iterator[StreamEvent]:
    parser = SseParser()
    while line := resp.readline():
        event = parser.line(line)
        if event is not None:
            yield event
