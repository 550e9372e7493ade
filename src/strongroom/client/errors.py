"""Typed client errors."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Anything that went wrong on the client side of a call."""

    def __init__(self, status: int, code: int | None, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body

    @property
    def turnkey_code(self) -> str | None:
        """Turnkey's `turnkeyErrorCode` detail (what clients should key on), if the daemon sent one."""
        if isinstance(self.body, dict):
            for detail in self.body.get("details") or []:
                if isinstance(detail, dict) and "turnkeyErrorCode" in detail:
                    return str(detail["turnkeyErrorCode"])
        return None


class ApiError(ClientError):
    """The daemon answered with an error in Turnkey's shape."""


class Unreachable(ClientError):
    """The daemon could not be reached at all."""


class ActivityError(ClientError):
    """An activity ended FAILED or REJECTED, or did not finish in time."""

    def __init__(self, message: str, activity: dict[str, Any]) -> None:
        super().__init__(0, None, message, activity)
        self.activity = activity


def raise_for(status: int, data: Any) -> None:
    if status == 200:
        return
    if isinstance(data, dict):
        raise ApiError(status, data.get("code"), str(data.get("message")), data)
    raise ApiError(status, None, str(data), data)
