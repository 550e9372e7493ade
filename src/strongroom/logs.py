"""Structured logging: JSON in production, readable on a terminal, secrets redacted.

The redaction processor runs last before rendering, on every event: values under sensitive
keys are replaced, and raw bytes are never rendered (only their length).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final, TextIO

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


def redact(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        norm = key.lower().replace("-", "_")
        value = event[key]
        if norm in SENSITIVE_KEYS:
            event[key] = REDACTED
        elif isinstance(value, bytes | bytearray | memoryview):
            event[key] = f"<{len(value)} bytes>"
    return event


def configure_logging(fmt: str = "auto", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=False) if fmt == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
