"""The one error tree. Leaf module: imports nothing from strongroom.

Every error carries a gRPC status code and a Turnkey error code; `api/errors.py` is the only
place that turns them into an HTTP status and a Turnkey error body. Messages never contain
secret material: they are shown to clients and written to logs.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Final


class Grpc(IntEnum):
    """gRPC status codes, as Turnkey puts them in the `code` field of an error body."""

    OK = 0
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


class ErrorCode(StrEnum):
    """Turnkey's `turnkeyErrorCode` detail values (clients key on these)."""

    UNSPECIFIED = "UNSPECIFIED"
    INTERNAL = "INTERNAL"
    ORGANIZATION_NOT_FOUND = "ORGANIZATION_NOT_FOUND"
    REQUEST_NOT_AUTHORIZED = "REQUEST_NOT_AUTHORIZED"
    PUBLIC_KEY_NOT_FOUND = "PUBLIC_KEY_NOT_FOUND"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    SIGNATURE_MISSING = "SIGNATURE_MISSING"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    CREDENTIAL_NOT_FOUND = "CREDENTIAL_NOT_FOUND"
    API_KEY_EXPIRED = "API_KEY_EXPIRED"
    REQUEST_INVALID = "REQUEST_INVALID"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNSUPPORTED_TRANSACTION_TYPE = "UNSUPPORTED_TRANSACTION_TYPE"
    INVALID_TRANSACTION = "INVALID_TRANSACTION"
    INVALID_ORGANIZATION_ID = "INVALID_ORGANIZATION_ID"
    INVALID_TIME = "INVALID_TIME"


class StrongroomError(Exception):
    """Root of every error Strongroom raises on purpose."""

    grpc: Grpc = Grpc.INTERNAL
    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, *, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        self.message: Final = message
        if code is not None:
            self.code = code


class InvalidRequest(StrongroomError):
    """The request is malformed or asks for something impossible (HTTP 400)."""

    grpc = Grpc.INVALID_ARGUMENT
    code = ErrorCode.REQUEST_INVALID


class Unauthenticated(StrongroomError):
    """No valid stamp, or the stamp's key is unknown or expired (HTTP 401)."""

    grpc = Grpc.UNAUTHENTICATED
    code = ErrorCode.UNAUTHENTICATED


class PermissionDenied(StrongroomError):
    """Authenticated, but not allowed (HTTP 403)."""

    grpc = Grpc.PERMISSION_DENIED
    code = ErrorCode.REQUEST_NOT_AUTHORIZED


class NotFound(StrongroomError):
    """The named resource does not exist where the caller may see it (HTTP 404)."""

    grpc = Grpc.NOT_FOUND
    code = ErrorCode.UNSPECIFIED


class Conflict(StrongroomError):
    """A uniqueness rule would be broken (HTTP 409)."""

    grpc = Grpc.ALREADY_EXISTS
    code = ErrorCode.REQUEST_INVALID


class ResourceExhausted(StrongroomError):
    """A quota or rate limit is exceeded (HTTP 429)."""

    grpc = Grpc.RESOURCE_EXHAUSTED
    code = ErrorCode.RATE_LIMIT_EXCEEDED


class Unavailable(StrongroomError):
    """A guard is not satisfied right now: token not ready, clock not trusted (HTTP 503)."""

    grpc = Grpc.UNAVAILABLE
    code = ErrorCode.INTERNAL


class InvalidSignature(StrongroomError):
    """A signature did not verify. Raised by the crypto layer; callers decide what it means."""

    grpc = Grpc.UNAUTHENTICATED
    code = ErrorCode.SIGNATURE_INVALID


class UnsupportedAlgorithm(StrongroomError):
    """A curve, mechanism or format is not available on this backend."""

    grpc = Grpc.INVALID_ARGUMENT
    code = ErrorCode.REQUEST_INVALID


class HsmError(StrongroomError):
    """The PKCS#11 token failed. Details go to the log, never to the client."""

    grpc = Grpc.INTERNAL
    code = ErrorCode.INTERNAL


class ConfigError(StrongroomError):
    """Configuration is missing or invalid; raised at start-up."""

    grpc = Grpc.FAILED_PRECONDITION
    code = ErrorCode.INTERNAL


__all__ = [
    "Conflict",
    "ConfigError",
    "ErrorCode",
    "Grpc",
    "HsmError",
    "InvalidRequest",
    "InvalidSignature",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "StrongroomError",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedAlgorithm",
]
