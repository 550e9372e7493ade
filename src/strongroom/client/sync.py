"""The synchronous client (standard library only: http.client, over TCP or a Unix socket)."""

from __future__ import annotations

import http.client
import json
import socket
import time
from typing import Any

from strongroom.client import calls
from strongroom.client.base import Methods
from strongroom.client.errors import ActivityError, Unreachable, raise_for
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
