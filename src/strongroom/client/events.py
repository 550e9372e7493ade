"""The event stream's pieces both clients share (docs/events.md): its events, their check, SSE."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from strongroom.crypto import p256


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of `Client.events`: `data` is the signed envelope {eventId, eventType, timestamp,
    signature, body}; `event` is `body` decoded (the webhook body: id, type, organizationId,
    activity, timestampMs). Check it with `verify_event` and the key of `get_webhook_signer`."""

    id: str
    type: str
    data: dict[str, Any]

    @property
    def event(self) -> Any:
        return json.loads(self.data["body"])


def verify_event(public_key_hex: str, data: dict[str, Any]) -> Any:
    """The event of a stream envelope whose signature (the webhook key's, over `timestamp.body`)
    verifies; raises ValueError otherwise. Freshness is up to the caller (`data["timestamp"]`)."""
    body = str(data["body"]).encode()
    message = str(data["timestamp"]).encode() + b"." + body
    try:
        p256.verify_sha256_der(bytes.fromhex(public_key_hex), message, bytes.fromhex(data["signature"]))
    except Exception as err:
        raise ValueError("the event's signature does not verify") from err
    event = json.loads(body)
    if event.get("id") != data.get("eventId"):
        raise ValueError("event id mismatch")
    return event


class SseParser:
    """Server-sent events, one line at a time (here each `data` is one line of JSON); comments
    (`: keepalive`) and `retry:` are skipped."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def line(self, raw: bytes) -> StreamEvent | None:
        """Feed one line; the event it completes, if any."""
        text = raw.decode().rstrip("\r\n")
        if not text:
            fields, self._fields = self._fields, {}
            if "data" not in fields:
                return None
            return StreamEvent(fields.get("id", ""), fields.get("event", "message"), json.loads(fields["data"]))
        if not text.startswith(":"):
            name, _, value = text.partition(":")
            self._fields[name] = value.removeprefix(" ")
        return None
