"""The last line: an exception no handler turned into a Turnkey error still gets Turnkey's shape.

- A body aiohttp cannot read (bad `Content-Encoding`, broken chunked transfer) is the client's
  error: 400 with code 3, like any other bad body.
- Anything else is a bug: HTTP 500 with `{code: 13, message: "internal server error", details:
  [INTERNAL, RequestInfo{requestId}]}`, never a traceback nor plain text. The same request id
  goes to the log with the exception's type and where it was raised (no traceback: a client
  must not be able to fill the log with them), and `strongroom_internal_errors_total` counts it.
"""

from __future__ import annotations

import random
import re
import traceback
import uuid
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from strongroom.api.errors import http_error, internal_error
from strongroom.logs import get_logger
from strongroom.service import Metrics

log = get_logger("strongroom.api")

REQUEST_ID: Final = web.RequestKey("strongroom_request_id", str)  # the request's id, kept on the request
_GOOD_ID: Final = re.compile(r"[A-Za-z0-9._:/+=-]{1,64}")
UNREADABLE_BODY: Final = "bad request body: it could not be read (content or transfer encoding)"


def request_id_of(request: web.BaseRequest) -> str:
    """The client's `X-Request-Id` when it is a plain token of at most 64 characters, else a new UUID."""
    found = request.get(REQUEST_ID)
    if found is not None:
        return str(found)
    given = request.headers.get("X-Request-Id", "")
    # Not `uuid4()`: its `urandom` syscall releases the GIL, and on the busy event loop getting it
    # back could wait a whole switch interval behind the PKCS#11 threads. A request id only has to
    # be unique in the logs, not unpredictable (`random` is reseeded in a forked child).
    request_id = given if _GOOD_ID.fullmatch(given) else str(uuid.UUID(int=random.getrandbits(128), version=4))
    request[REQUEST_ID] = request_id
    return request_id


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)[-3:]
    return " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames))


def unexpected(request: web.BaseRequest, err: Exception, metrics: Metrics) -> tuple[int, dict[str, Any]]:
    """The status and body for an exception nothing else handled (see the module docstring)."""
    if isinstance(err, web.RequestPayloadError | HttpProcessingError):
        return http_error(400, UNREADABLE_BODY)
    if isinstance(err, web.HTTPException):
        return http_error(err.status, err.reason.lower())
    request_id = request_id_of(request)
    log.error(
        "internal_error", request_id=request_id, error=type(err).__name__, where=_where(err), path=request.path[:128]
    )
    metrics.internal_errors.inc()
    return internal_error(request_id)
