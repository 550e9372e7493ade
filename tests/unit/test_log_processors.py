"""The log processors of every line: the UTC timestamp, and redaction of secrets and raw bytes."""

from __future__ import annotations

import datetime
import re

from strongroom import logs


def test_the_timestamp_is_utc_iso_8601_with_microseconds() -> None:
    before = datetime.datetime.now(datetime.UTC)
    stamped = logs.timestamp(None, "info", {})["timestamp"]
    after = datetime.datetime.now(datetime.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamped), stamped
    assert before - datetime.timedelta(microseconds=1) <= datetime.datetime.fromisoformat(stamped) <= after


def test_redaction_ignores_case_and_dashes_and_renders_no_bytes() -> None:
    event = {"X-Stamp": "s", "Private_Key": "k", "so-pin": "1", "name": "n", "blob": b"\x00" * 3}
    assert logs.redact(None, "info", dict(event)) == {
        "X-Stamp": logs.REDACTED,
        "Private_Key": logs.REDACTED,
        "so-pin": logs.REDACTED,
        "name": "n",
        "blob": "<3 bytes>",
    }
