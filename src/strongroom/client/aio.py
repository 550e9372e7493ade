"""The asynchronous client (aiohttp, over TCP or a Unix socket)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from strongroom.client import calls
from strongroom.client.base import Methods
from strongroom.client.errors import ActivityError, Unreachable, raise_for
from strongroom.client.events import SseParser, StreamEvent
from strongroom.client.stamp import ApiKeyStamper


class AsyncClient(Methods):
    """Use as `async with AsyncClient(...) as c:`, or call `close()`."""

    def __init__(self, base_url: str, stamper: ApiKeyStamper, organization_id: str, timeout: float = 30.0) -> None:
        self._target(base_url, stamper, organization_id)
        self._root = "http://localhost" if self._unix else self.base_url
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.UnixConnector(path=self._unix) if self._unix else None
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post_raw(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        h = {"Content-Type": "application/json", "X-Stamp": self.stamper.stamp(body), **(headers or {})}
        try:
            async with self._get_session().post(self._root + path, data=body, headers=h) as resp:
                raw = await resp.read()
                status = resp.status
        except (TimeoutError, aiohttp.ClientConnectionError) as err:
            raise Unreachable(0, None, f"daemon not reachable at {self._where()}: {err}") from err
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    async def _send(self, path: str, body: dict[str, Any]) -> Any:
        status, data = await self.post_raw(path, json.dumps(body).encode())
        raise_for(status, data)
        return data

    def _call(self, path: str, body: dict[str, Any]) -> Any:
        return self._send(path, body)

    async def events(
        self,
        after: str | None = None,
        filters: dict[str, Any] | None = None,
        *,
        read_timeout: float = 60.0,
        headers: dict[str, str] | None = None,
        on_open: Callable[[], None] | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """`Client.events`, asynchronously: `async for item in client.events(): ...`."""
        path, body = calls.stream(self.organization_id, after, filters)
        raw = json.dumps(body).encode()
        h = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "X-Stamp": self.stamper.stamp(raw),
            **(headers or {}),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_read=read_timeout)
        try:
            async with self._get_session().post(self._root + path, data=raw, headers=h, timeout=timeout) as resp:
                if resp.status != 200 or not resp.content_type.startswith("text/event-stream"):
                    text = await resp.read()
                    try:
                        data: Any = json.loads(text)
                    except ValueError:
                        data = text.decode(errors="replace")
                    raise_for(resp.status if resp.status != 200 else 502, data)
                if on_open is not None:
                    on_open()
                parser = SseParser()
                while line := await resp.content.readline():
                    event = parser.line(line)
                    if event is not None:
                        yield event
        except (TimeoutError, aiohttp.ClientConnectionError) as err:
            raise Unreachable(0, None, f"daemon not reachable at {self._where()}: {err}") from err

    async def wait(self, activity: dict[str, Any], timeout: float = 30.0, interval: float = 0.5) -> dict[str, Any]:
        """Poll until the activity is COMPLETED (returned), FAILED/REJECTED or out of time (raised)."""
        deadline = time.monotonic() + timeout
        while activity["status"] not in calls.TERMINAL:
            if time.monotonic() >= deadline:
                raise ActivityError(f"activity {activity['id']} is still {activity['status']}", activity)
            await asyncio.sleep(interval)
            activity = (await self.get_activity(activity["id"]))["activity"]
        if activity["status"] != "ACTIVITY_STATUS_COMPLETED":
            raise ActivityError(f"activity {activity['id']} ended {activity['status']}", activity)
        return activity
