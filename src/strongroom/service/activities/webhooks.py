"""Webhook endpoints: create, update, delete (Turnkey's `*_WEBHOOK_ENDPOINT` activities).

An endpoint is where an organization's activity events are POSTed, signed by the token
(`service/webhooks.py`, docs/webhooks.md). Its URL decides where approval notices go, so the rows
are notarised like every row that decides authorisation (an edited URL is refused on read), and
changing one is an activity: policies decide who may (`activity.resource == 'WEBHOOK_ENDPOINT'`).

URLs: `http` or `https` only, with a host and no user name or password (they would be stored and
shown by `list_webhook_endpoints`). Private, loopback and link-local hosts are allowed on purpose:
a self-hosted daemon legitimately notifies services on its own network, and whoever may create
an endpoint could already reach that network through the daemon's operator. Restrict egress at
the network if that is not wanted (docs/webhooks.md).
"""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any, Final

from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.schema import JSON_ID, json_array, json_object, json_string
from strongroom.service.params import JsonObj, obj, opt_str, req_list, req_str
from strongroom.service.webhooks import parse_filters_json
from strongroom.store.records import WebhookEndpoint

MAX_ENDPOINTS: Final = 10
"""Endpoints per organization."""
MAX_URL: Final = 2048
SUBSCRIPTION_TYPES: Final = ("ACTIVITY_UPDATES",)
"""Turnkey's subscription event types that Strongroom serves (balance updates it does not track)."""

_SUBSCRIPTION: Final = json_object(
    ["eventType"],
    eventType=json_string(64),
    filtersJson=json_string(4096),
    isActive={"type": "boolean"},
)
CREATE_PARAMS: Final = json_object(
    ["url", "name"],
    url=json_string(MAX_URL),
    name=json_string(256),
    subscriptions=json_array(_SUBSCRIPTION, max_items=len(SUBSCRIPTION_TYPES)),
)
UPDATE_PARAMS: Final = json_object(
    ["endpointId"],
    endpointId=JSON_ID,
    url=json_string(MAX_URL),
    name=json_string(256),
    isActive={"type": "boolean"},
    subscriptions=json_array(_SUBSCRIPTION, max_items=len(SUBSCRIPTION_TYPES)),
)
DELETE_PARAMS: Final = json_object(["endpointId"], endpointId=JSON_ID)


def check_url(url: str) -> str:
    """An http(s) URL with a host and no credentials; InvalidRequest otherwise."""
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise InvalidRequest("`parameters.url` must not contain spaces or control characters")
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as err:
        raise InvalidRequest("`parameters.url` is not a valid URL") from err
    if parts.scheme not in ("http", "https"):
        raise InvalidRequest("`parameters.url` must be an http:// or https:// URL")
    if not host:
        raise InvalidRequest("`parameters.url` must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidRequest("`parameters.url` must not carry a user name or password")
    return url


def _opt_bool(params: JsonObj, key: str) -> bool | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidRequest(f"`parameters.{key}` must be a boolean")
    return value


def _subscriptions(params: JsonObj) -> list[dict[str, Any]]:
    if params.get("subscriptions") is None:
        return []
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(req_list(params, "subscriptions", "parameters.", max_items=len(SUBSCRIPTION_TYPES))):
        where = f"parameters.subscriptions[{i}]."
        sub = obj(raw, where.rstrip("."))
        event_type = req_str(sub, "eventType", where, max_len=64)
        if event_type not in SUBSCRIPTION_TYPES:
            raise InvalidRequest(f"`{where}eventType` must be one of {', '.join(SUBSCRIPTION_TYPES)}")
        if any(s["eventType"] == event_type for s in out):
            raise InvalidRequest(f"`{where}eventType` `{event_type}` is subscribed twice")
        entry: dict[str, Any] = {"eventType": event_type}
        filters = opt_str(sub, "filtersJson", where, max_len=4096)
        if filters:
            parse_filters_json(filters, f"{where}filtersJson")  # refused now, not ignored at delivery
            entry["filtersJson"] = filters
        active = sub.get("isActive")
        if active is not None and not isinstance(active, bool):
            raise InvalidRequest(f"`{where}isActive` must be a boolean")
        entry["isActive"] = True if active is None else active
        out.append(entry)
    return out


def render_endpoint(e: WebhookEndpoint) -> dict[str, Any]:
    """Turnkey's v1WebhookEndpointData."""
    return {
        "endpointId": e.id,
        "organizationId": e.organization_id,
        "url": e.url,
        "name": e.name,
        "isActive": e.is_active,
        "subscriptions": list(e.subscriptions),
    }


def _endpoint(deps: Deps, ctx: Context, params: JsonObj) -> WebhookEndpoint:
    endpoint_id = req_str(params, "endpointId", "parameters.", max_len=64)
    try:
        uuid.UUID(endpoint_id)
    except ValueError as err:
        raise InvalidRequest("malformed webhook endpoint ID provided") from err
    found = deps.repo.webhooks.endpoint(ctx.organization.id, endpoint_id)
    if found is None:
        raise NotFound(f"no webhook endpoint `{endpoint_id}` found in this organization")
    return found


async def create(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    url = check_url(req_str(params, "url", "parameters.", max_len=MAX_URL))
    name = req_str(params, "name", "parameters.", max_len=256)
    subscriptions = _subscriptions(params)
    if len(deps.repo.webhooks.endpoints(ctx.organization.id)) >= MAX_ENDPOINTS:
        raise ResourceExhausted(f"organization has reached its limit of {MAX_ENDPOINTS} webhook endpoints")
    endpoint = WebhookEndpoint(
        str(uuid.uuid4()), ctx.organization.id, name, url, True, subscriptions, ctx.now_ms, ctx.now_ms
    )

    async def run() -> Execution:
        ops = deps.repo.webhooks.insert_endpoint(endpoint)
        return Execution({"endpointId": endpoint.id, "webhookEndpoint": render_endpoint(endpoint)}, ops)

    return Prepared(run)


async def update(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    current = _endpoint(deps, ctx, params)
    url = opt_str(params, "url", "parameters.", max_len=MAX_URL)
    name = opt_str(params, "name", "parameters.", max_len=256)
    active = _opt_bool(params, "isActive")
    subscriptions = current.subscriptions if params.get("subscriptions") is None else _subscriptions(params)
    changed = WebhookEndpoint(
        current.id,
        current.organization_id,
        current.name if name is None else name,
        current.url if url is None else check_url(url),
        current.is_active if active is None else active,
        subscriptions,
        current.created_at,
        ctx.now_ms,
    )

    async def run() -> Execution:
        ops = deps.repo.webhooks.update_endpoint(changed)
        return Execution({"endpointId": changed.id, "webhookEndpoint": render_endpoint(changed)}, ops)

    return Prepared(run)


async def delete(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    current = _endpoint(deps, ctx, params)

    async def run() -> Execution:
        ops = deps.repo.webhooks.delete_endpoint(ctx.organization.id, current.id)
        return Execution({"endpointId": current.id}, ops)

    return Prepared(run)


ACTIVITIES: Final = (
    activity("ACTIVITY_TYPE_CREATE_WEBHOOK_ENDPOINT", create, "WEBHOOK_ENDPOINT", "CREATE", CREATE_PARAMS),
    activity("ACTIVITY_TYPE_UPDATE_WEBHOOK_ENDPOINT", update, "WEBHOOK_ENDPOINT", "UPDATE", UPDATE_PARAMS),
    activity("ACTIVITY_TYPE_DELETE_WEBHOOK_ENDPOINT", delete, "WEBHOOK_ENDPOINT", "DELETE", DELETE_PARAMS),
)
