"""Structured logging: JSON in production, readable on a terminal, secrets redacted.

The redaction processor runs last before rendering, on every event: values under sensitive
keys are replaced, and raw bytes are never rendered (only their length).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from collections.abc import MutableMapping
from typing import Any, Final, TextIO

import orjson
import structlog

SENSITIVE_KEYS: Final = frozenset(
    {
        "pin",
        "so_pin",
        "user_pin",
        "password",
        "secret",
        "seed",
        "private_key",
        "privatekey",
        "api_private_key",
        "wrapped",
        "plaintext",
        "authorization",
        "x_stamp",
        "stamp",
        "cookie",
    }
)
REDACTED: Final = "<redacted>"


def _orjson_dumps(obj: Any, **_kw: Any) -> str:
    return orjson.dumps(obj, default=repr).decode()


_sensitive: dict[str, bool] = {}


def _is_sensitive(key: str) -> bool:
    known = _sensitive.get(key)
    if known is None:
        known = key.lower().replace("-", "_") in SENSITIVE_KEYS
        if len(_sensitive) < 4096:  # log keys are a small fixed set; a pure function of the key
            _sensitive[key] = known
    return known


def redact(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if _is_sensitive(key):
            event[key] = REDACTED
        elif isinstance(value, bytes | bytearray | memoryview):
            event[key] = f"<{len(value)} bytes>"
    return event


_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text (one object: threads log too)


def timestamp(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """`timestamp`: UTC, ISO 8601 with microseconds (`2026-12-04T22:26:37.892647Z`); the date
    and time of day are formatted once per second."""
    global _second  # noqa: PLW0603 - a cache, replaced whole
    now = time.time()
    second, text = _second
    if second != int(now):
        second = int(now)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = (second, text)
    event["timestamp"] = f"{text}.{int((now - second) * 1_000_000):06d}Z"
    return event


class BufferedLineLogger:
    """Writes rendered lines to a buffered stream; `flush_logs()` (called a few times a second by
    the daemon, and at exit) pushes them out. Errors are flushed at once. This keeps a write
    syscall per line off the event loop's hot path; the durable record of an activity is the
    database, not the log."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        self._stream.write(message + "\n")

    def error(self, message: str) -> None:
        self._stream.write(message + "\n")
        self._stream.flush()

    log = debug = info = warn = warning = msg
    critical = exception = fatal = error


_buffered: list[TextIO] = []


def flush_logs() -> None:
    for stream in _buffered:
        stream.flush()


def configure_logging(
    fmt: str = "auto", level: int = logging.INFO, stream: TextIO | None = None, *, buffered: bool = False
) -> None:
    flush_logs()
    _buffered.clear()
    stream = stream or sys.stderr
    if buffered and not stream.isatty():
        stream = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(os.dup(stream.fileno()), "w"), buffer_size=1 << 16),
            encoding="utf-8",
            line_buffering=False,
        )
        _buffered.append(stream)
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamp,
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *_args: BufferedLineLogger(stream),
        cache_logger_on_first_use=False,
    )


_prctl: Any = None


def name_os_thread(name: str) -> None:
    """Give the calling thread `name` in the operating system too (Linux: `top -H`, `ps -L`,
    /proc/<pid>/task/<tid>/comm; at most 15 bytes), so a thread's CPU can be told from another's.
    Python 3.11 names threads for itself only. Does nothing where it cannot."""
    global _prctl  # noqa: PLW0603 - looked up once
    if not sys.platform.startswith("linux"):
        return
    try:
        if _prctl is None:
            import ctypes

            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        _prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        return


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
