"""The filter shared by webhook subscriptions (`filtersJson`) and event streams (docs/events.md)."""

from __future__ import annotations

import json

import pytest

from strongroom.client.events import SseParser
from strongroom.errors import InvalidRequest
from strongroom.service.events import frame
from strongroom.service.webhooks import EVERYTHING, EventFilter, endpoint_filter, parse_filters_json, receives
from strongroom.store.records import WebhookEndpoint

SIGN = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"


def endpoint(subscriptions: list[dict[str, object]], active: bool = True) -> WebhookEndpoint:
    return WebhookEndpoint("e", "o", "n", "http://127.0.0.1/", active, subscriptions, 1, 1)


def test_a_filter_matches_both_lists_and_an_absent_list_matches_everything() -> None:
    f = parse_filters_json(json.dumps({"eventTypes": ["ACTIVITY_COMPLETED"], "activityTypes": [SIGN]}), "f")
    assert f == EventFilter(frozenset({"ACTIVITY_COMPLETED"}), frozenset({SIGN}))
    assert f.matches("ACTIVITY_COMPLETED", SIGN)
    assert not f.matches("ACTIVITY_VOTE_CAST", SIGN)
    assert not f.matches("ACTIVITY_COMPLETED", "ACTIVITY_TYPE_CREATE_WALLET")
    only_types = parse_filters_json('{"eventTypes": ["ACTIVITY_EXPIRED", "ACTIVITY_REJECTED"]}', "f")
    assert only_types.matches("ACTIVITY_EXPIRED", "ACTIVITY_TYPE_ANYTHING")
    assert parse_filters_json("{}", "f") == EVERYTHING


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        '"eventTypes"',
        '{"eventTypes": []}',
        '{"eventTypes": "ACTIVITY_COMPLETED"}',
        '{"eventTypes": ["ACTIVITY_EXPLODED"]}',
        '{"eventTypes": [1]}',
        '{"activityTypes": ["sign"]}',
        '{"activityTypes": ["ACTIVITY_TYPE_X"], "walletIds": []}',
        '{"eventTypes": ["ACTIVITY_COMPLETED"], "eventTypes": ["ACTIVITY_FAILED"]}',  # duplicate key
        json.dumps({"activityTypes": [f"ACTIVITY_TYPE_{i}" for i in range(65)]}),
    ],
)
def test_anything_else_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_filters_json(text, "parameters.subscriptions[0].filtersJson")
    assert "parameters.subscriptions[0].filtersJson" in err.value.message


def test_an_endpoint_receives_what_its_active_subscription_lets_through() -> None:
    filtered = endpoint([{"eventType": "ACTIVITY_UPDATES", "filtersJson": '{"eventTypes": ["ACTIVITY_COMPLETED"]}'}])
    assert receives(filtered, "ACTIVITY_COMPLETED", SIGN)
    assert not receives(filtered, "ACTIVITY_CONSENSUS_NEEDED", SIGN)
    assert receives(filtered)  # still an active endpoint (pending deliveries are not dropped)
    assert endpoint_filter(endpoint([])) == EVERYTHING
    assert endpoint_filter(endpoint([], active=False)) is None
    assert endpoint_filter(endpoint([{"eventType": "ACTIVITY_UPDATES", "isActive": False}])) is None
    # A filter stored before filters were checked, that does not parse, filters nothing (as then).
    legacy = endpoint([{"eventType": "ACTIVITY_UPDATES", "filtersJson": "anything"}])
    assert receives(legacy, "ACTIVITY_VOTE_CAST", SIGN)


def test_a_frame_reads_back_as_one_event() -> None:
    data = json.dumps({"eventId": "i", "body": '{"a": "line\\nbreak"}'}, separators=(",", ":")).encode()
    parser = SseParser()
    got = [parser.line(line + b"\n") for line in b": keepalive\n\nretry: 2000\n\n".split(b"\n")[:-1]]
    assert got == [None, None, None, None]
    lines = frame("i", "ACTIVITY_COMPLETED", data).split(b"\n")[:-1]
    events = [e for e in (parser.line(line + b"\n") for line in lines) if e is not None]
    assert [(e.id, e.type, e.data) for e in events] == [("i", "ACTIVITY_COMPLETED", json.loads(data))]
