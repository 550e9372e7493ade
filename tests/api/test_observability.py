"""/metrics counters move by the right amounts; /readyz follows the token, clock and store."""

from __future__ import annotations

import ctypes
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from pkcs11 import ObjectClass
from prometheus_client.parser import text_string_to_metric_families
from test_guards import Env, add_user, make_env

from strongroom.softhsm import SoftHsmToken

pytestmark = pytest.mark.softhsm


@pytest.fixture
async def env(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Env]:
    e, service = await make_env(softhsm_token, tmp_path)
    yield e
    await e.client.close()
    service.close()


async def scrape(env: Env) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await env.client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(await resp.text()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def delta(after: dict, before: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


async def test_counters_move_by_the_right_amounts(env: Env) -> None:
    member = add_user(env, root=False)
    before = await scrape(env)
    for _ in range(3):
        assert (await env.post(env.body()))[0] == 200
    assert (await env.post(env.body(), stamper=member))[0] == 403
    after = await scrape(env)
    route = "/public/v1/submit/sign_raw_payload"
    assert delta(after, before, "strongroom_http_requests_total", route=route, status="200") == 3
    assert delta(after, before, "strongroom_http_requests_total", route=route, status="403") == 1
    assert (
        delta(
            after,
            before,
            "strongroom_activities_total",
            type="ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
            status="ACTIVITY_STATUS_COMPLETED",
        )
        == 3
    )
    assert delta(after, before, "strongroom_policy_decisions_total", outcome="ALLOW") == 3
    assert delta(after, before, "strongroom_policy_decisions_total", outcome="DENY_IMPLICIT") == 1
    assert delta(after, before, "strongroom_signing_seconds_count", curve="CURVE_SECP256K1", backend="token") == 3
    assert after[("strongroom_token_ready", ())] == 1.0
    assert after[("strongroom_clock_trusted", ())] == 1.0
    assert after[("strongroom_store_writable", ())] == 1.0
    # Unknown endpoints do not create new label values.
    await env.post(env.body(), "no_such_endpoint")
    final = await scrape(env)
    assert delta(final, after, "strongroom_http_requests_total", route="/public/v1/submit/<unknown>", status="404") == 1


def logout(module: str, session_handle: int) -> None:
    """C_Logout through the module's function list: the whole application loses its login,
    whichever token object logged in (as after a token reset)."""
    fn = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_ulong)

    class FunctionList(ctypes.Structure):
        # CK_VERSION, then C_Initialize ... C_Login (19 entries), then C_Logout
        _fields_ = (
            [("major", ctypes.c_ubyte), ("minor", ctypes.c_ubyte)]
            + [(f"f{i}", ctypes.c_void_p) for i in range(19)]
            + [("C_Logout", fn)]
        )

    so = ctypes.CDLL(module)
    funcs = ctypes.POINTER(FunctionList)()
    assert so.C_GetFunctionList(ctypes.byref(funcs)) == 0
    rv = funcs.contents.C_Logout(session_handle)
    assert rv in (0, 0x101), hex(rv)  # CKR_OK or CKR_USER_NOT_LOGGED_IN


async def test_readyz_follows_the_token(env: Env) -> None:
    service = env.service
    assert await service.check_token()
    ready = await env.client.get("/readyz")
    assert ready.status == 200
    pin_file = service.settings.token.pin_file
    assert pin_file is not None
    hidden = pin_file.with_suffix(".hidden")
    token = service.token
    try:
        # The token loses its login (as after a reset), and the PIN cannot be read to log in again.
        pin_file.rename(hidden)
        logout(token.module, token.session().handle)
        assert not await service.check_token()
        ready = await env.client.get("/readyz")
        body = await ready.json()
        assert ready.status == 503
        assert "does not answer as logged in" in body["checks"]["token"]["state"]
        scraped = await scrape(env)
        assert scraped[("strongroom_token_ready", ())] == 0.0
        status, data, _ = await env.post(env.body())
        assert status == 500 or data["activity"]["status"] == "ACTIVITY_STATUS_FAILED"
    finally:
        if hidden.exists():
            hidden.rename(pin_file)
    # The token is back (the PIN can be read): the next check logs in again.
    assert await service.check_token()
    ready = await env.client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"]["token"]["state"] == "ready"
    status, data, _ = await env.post(env.body())
    assert status == 200, json.dumps(data)


async def test_a_signature_the_token_cannot_make_is_recorded_failed_and_logged_in_the_tokens_words(env: Env) -> None:
    """The key's object is destroyed in the token behind the daemon's back: the signing request is
    accepted and recorded FAILED, and the log line names the token's failure as the activity does
    (no key material), which is what tells a failing token from a wrong request."""
    status, data, _ = await env.post(env.body())
    assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_COMPLETED", data
    env.service.token.session().get_key(object_class=ObjectClass.PRIVATE_KEY, label=env.key_id).destroy()
    with structlog.testing.capture_logs() as logs:
        status, data, _ = await env.post(env.body())
    assert status == 200 and data["activity"]["status"] == "ACTIVITY_STATUS_FAILED", data
    message = data["activity"]["failure"]["message"]
    assert env.key_id in message, message
    failed = [e for e in logs if e.get("event") == "activity_failed"]
    assert [(e["error"], e["detail"]) for e in failed] == [("HsmError", message)], logs


async def test_openapi_document_lists_every_endpoint_that_answers(env: Env) -> None:
    resp = await env.client.get("/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert "/public/v1/submit/sign_raw_payload" in paths
    assert "/public/v1/query/whoami" in paths
    schema = paths["/public/v1/submit/sign_raw_payload"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["type"]["enum"] == ["ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"]
    # Every documented API path is routed (an unstamped call is refused with 401, not 404).
    for path in paths:
        if path.startswith("/public/"):
            r = await env.client.post(path, data=b"{}")
            assert r.status == 401, path
    # The Ethereum JSON-RPC signer: one call or a batch, stamped; it answers JSON-RPC (HTTP 200).
    rpc = paths["/eth/rpc"]["post"]
    assert rpc["security"] == [{"stamp": []}]
    call, calls = rpc["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert call["properties"]["jsonrpc"]["enum"] == ["2.0"] and calls["items"] == call
    assert "eth_sendTransaction" in rpc["description"] and "eth_feeHistory" in rpc["description"]
    r = await env.client.post("/eth/rpc", data=b'{"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"}')
    assert r.status == 200
    assert (await r.json())["error"]["code"] == 4100
