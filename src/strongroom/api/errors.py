"""The one table that turns errors into HTTP statuses and Turnkey error bodies.

Body shape (gRPC Status as JSON): `{"code": int, "message": str, "details": [...]}`; the detail
names Turnkey's error code, which clients key on.
"""

from __future__ import annotations

from typing import Any, Final

from strongroom.errors import ErrorCode, Grpc, StrongroomError

HTTP_STATUS: Final[dict[Grpc, int]] = {
    Grpc.INVALID_ARGUMENT: 400,
    Grpc.FAILED_PRECONDITION: 400,
    Grpc.UNAUTHENTICATED: 401,
    Grpc.PERMISSION_DENIED: 403,
    Grpc.NOT_FOUND: 404,
    Grpc.ALREADY_EXISTS: 409,
    Grpc.RESOURCE_EXHAUSTED: 429,
    Grpc.INTERNAL: 500,
    Grpc.UNAVAILABLE: 503,
}

DETAIL_TYPE: Final = "type.googleapis.com/errors.v1.TurnkeyErrorDetail"
REQUEST_INFO_TYPE: Final = "type.googleapis.com/google.rpc.RequestInfo"


def error_body(grpc: Grpc, message: str, code: ErrorCode) -> dict[str, Any]:
    # A message may quote the request: whatever it holds, the body must encode as UTF-8 JSON.
    text = message if message.isascii() else message.encode("utf-8", "replace").decode("utf-8")
    return {"code": int(grpc), "message": text, "details": [{"@type": DETAIL_TYPE, "turnkeyErrorCode": code.value}]}


def render_error(err: StrongroomError) -> tuple[int, dict[str, Any]]:
    return HTTP_STATUS.get(err.grpc, 500), error_body(err.grpc, err.message, err.code)


def internal_error(request_id: str = "") -> tuple[int, dict[str, Any]]:
    """Turnkey's internal error; the request id (also in the log) lets an operator find the cause."""
    body = error_body(Grpc.INTERNAL, "internal server error", ErrorCode.INTERNAL)
    if request_id:
        body["details"].append({"@type": REQUEST_INFO_TYPE, "requestId": request_id})
    return 500, body


def http_error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    """Errors raised by aiohttp itself (routing, body size) in the same shape."""
    grpc = {
        404: Grpc.NOT_FOUND,
        405: Grpc.INVALID_ARGUMENT,
        413: Grpc.INVALID_ARGUMENT,
        400: Grpc.INVALID_ARGUMENT,
    }.get(status, Grpc.INTERNAL if status >= 500 else Grpc.INVALID_ARGUMENT)
    code = ErrorCode.INTERNAL if grpc is Grpc.INTERNAL else ErrorCode.REQUEST_INVALID
    return status, error_body(grpc, message, code)
