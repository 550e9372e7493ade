"""Schema fuzzing over HTTP: no request body, however bad, gets a 5xx or a non-Turnkey error.

Bodies come from the daemon's own `/openapi.json` (schemathesis over each operation's request
schema: three in four conform to it, one in four is made not to). Most are then made to pass
authentication (the real organization id, a fresh `timestampMs`, an `X-Stamp` of the root
user's API key over the exact bytes), so they reach the handlers; the rest are sent as generated
(wrong organization, stale or missing timestamp; the root's stamp, a stranger's or none).

The short run is part of `make test`; `make fuzz` sets STRONGROOM_FUZZ_CASES (total cases, spread
over every operation) for the long one. The test prints the cases run and the count of 5xx.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, Phase, given, seed, settings
from openapi_spec_validator import validate
from schemathesis.generation import GenerationMode

from strongroom.api.app import make_app
from strongroom.cli.bootstrap import create_organization
from strongroom.client import ApiKeyStamper
from strongroom.clock import SystemClock
from strongroom.config import Settings, TokenSettings
from strongroom.crypto import p256
from strongroom.hsm import Token
from strongroom.service.facade import Strongroom
from strongroom.softhsm import SoftHsmToken

pytestmark = [pytest.mark.softhsm, pytest.mark.fuzz]

# The short run (in `make test`): about 10 bodies per operation. `make fuzz` raises it.
DEFAULT_CASES = 460
CASES = int(os.environ.get("STRONGROOM_FUZZ_CASES", DEFAULT_CASES))
SEED = int(os.environ.get("STRONGROOM_FUZZ_SEED", random.randrange(1 << 32)))
VALID_FRACTION = 0.85  # share of bodies given the real organization, a fresh timestamp and a valid stamp


@dataclass
class Daemon:
    client: TestClient[Any, Any]
    org_id: str
    root: ApiKeyStamper
    stranger: ApiKeyStamper
    root_user_id: str
    # Real ids put into a share of the valid bodies, so handlers get past "not found".
    real: dict[str, list[str]] = field(default_factory=dict)


@pytest.fixture(name="daemon")
async def daemon_fixture(softhsm_token: SoftHsmToken, tmp_path: Path) -> AsyncIterator[Daemon]:
    settings = Settings(
        data_dir=tmp_path,
        token=TokenSettings(softhsm_token.module, softhsm_token.label, pin_file=softhsm_token.pin_file),
        rate_limit_per_second=100_000.0,
    )
    token = Token(softhsm_token.module, softhsm_token.label, softhsm_token.read_pin())
    service = Strongroom(settings, token, token.probe(), SystemClock(2_000))
    priv, pub = p256.generate_private_key()
    org_id, root_id = create_organization(service.repo, "fuzz", "root", pub, time.time_ns() // 1_000_000)
    client = TestClient(TestServer(make_app(service)))
    await client.start_server()
    other_priv, other_pub = p256.generate_private_key()
    yield Daemon(client, org_id, ApiKeyStamper(pub, priv), ApiKeyStamper(other_pub, other_priv), root_id)
    await client.close()
    service.close()


async def openapi(daemon: Daemon) -> dict[str, Any]:
    resp = await daemon.client.get("/openapi.json")
    assert resp.status == 200
    doc: dict[str, Any] = json.loads(await resp.read())
    return doc


def operations(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every POST operation (the stamped API), as schemathesis sees it."""
    schema = schemathesis.openapi.from_dict(doc)
    return [(path, schema[path]["POST"]) for path, item in sorted(doc["paths"].items()) if "post" in item]


def generate(operation: Any, n: int, seed_value: int) -> list[Any]:
    """`n` bodies for `operation`, most conforming, some not (generation only: no shrinking, no database)."""
    bodies: list[Any] = []
    for mode, count in ((GenerationMode.POSITIVE, n - n // 4), (GenerationMode.NEGATIVE, n // 4)):
        if count == 0:
            continue

        @settings(
            max_examples=count,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(seed_value)
        @given(operation.as_strategy(generation_mode=mode))
        def draw(case: Any) -> None:
            bodies.append(case.body)

        draw()
    return bodies


async def make_real_keys(daemon: Daemon) -> None:
    """A secp256k1 and an Ed25519 key, whose ids and addresses fuzzed bodies may then sign with."""
    keys = [
        {"privateKeyName": "k1", "curve": "CURVE_SECP256K1", "addressFormats": ["ADDRESS_FORMAT_ETHEREUM"]},
        {"privateKeyName": "ed", "curve": "CURVE_ED25519", "addressFormats": []},
    ]
    body = {
        "type": "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        "timestampMs": str(_now_ms()),
        "organizationId": daemon.org_id,
        "parameters": {"privateKeys": keys},
    }
    raw = json.dumps(body).encode()
    resp = await daemon.client.post(
        "/public/v1/submit/create_private_keys", data=raw, headers={"X-Stamp": daemon.root.stamp(raw)}
    )
    data = json.loads(await resp.read())
    assert resp.status == 200, data
    created = data["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"]
    ids = [k["privateKeyId"] for k in created]
    addresses = [a["address"] for k in created for a in k["addresses"]]
    # Scalar fields only, and never the root's own user id: the fuzz must not lock itself out.
    daemon.real.update(signWith=ids + addresses, privateKeyId=ids)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def prepare(body: Any, daemon: Daemon, rng: random.Random) -> tuple[bytes, dict[str, str]]:
    """Most bodies get past authentication; the rest keep what was generated, in several ways."""
    if isinstance(body, bytes | bytearray | memoryview):  # negative mode: a body that is not JSON at all
        body = bytes(body)
        return body, {"X-Stamp": daemon.root.stamp(body), "Content-Type": "application/json"}
    if isinstance(body, dict) and rng.random() < VALID_FRACTION:
        body = {**body, "organizationId": daemon.org_id}
        if rng.random() < 0.5:
            target = body.get("parameters") if isinstance(body.get("parameters"), dict) else body
            for key, values in daemon.real.items():
                if key in target:
                    target[key] = rng.choice(values)
        if "timestampMs" in body or "type" in body:  # a submit envelope (queries may carry one too)
            body["timestampMs"] = str(_now_ms())
        raw = json.dumps(body).encode()
        return raw, {"X-Stamp": daemon.root.stamp(raw), "Content-Type": "application/json"}
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    choice = rng.randrange(3)
    if choice == 0:
        headers["X-Stamp"] = daemon.root.stamp(raw)
    elif choice == 1:
        headers["X-Stamp"] = daemon.stranger.stamp(raw)
    return raw, headers


def check(path: str, status: int, payload: bytes, failures: list[str]) -> None:
    where = f"{path} -> {status}: {payload[:300]!r}"
    if status >= 500:
        failures.append(f"5xx: {where}")
        return
    if 400 <= status < 500:
        try:
            err = json.loads(payload)
        except ValueError:
            failures.append(f"not JSON: {where}")
            return
        shaped = (
            isinstance(err, dict)
            and isinstance(err.get("code"), int)
            and not isinstance(err.get("code"), bool)
            and isinstance(err.get("message"), str)
            and isinstance(err.get("details"), list)
        )
        if not shaped:
            failures.append(f"not Turnkey's error shape: {where}")


async def test_openapi_document_is_valid_openapi_3(daemon: Daemon) -> None:
    doc = await openapi(daemon)
    validate(doc)
    for path, item in doc["paths"].items():
        if path.startswith("/public/v1/submit/"):
            schema = item["post"]["requestBody"]["content"]["application/json"]["schema"]
            params = schema["properties"]["parameters"]
            assert params.get("properties"), f"{path}: the parameters the handler reads are not described"
            assert len(schema["properties"]["type"]["enum"]) == 1


# aiohttp's client warns when it sends a body of more than 1 MiB from bytes; large bodies are the point here.
@pytest.mark.filterwarnings("ignore:Sending a large body directly:ResourceWarning")
async def test_no_generated_request_gets_a_5xx_or_a_non_turnkey_error(
    daemon: Daemon, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = await openapi(daemon)
    ops = operations(doc)
    await make_real_keys(daemon)
    per_op = max(1, -(-CASES // len(ops)))  # at least CASES in total
    rng = random.Random(SEED)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    cases = 0
    started = time.monotonic()
    print(f"schema fuzz seed {SEED}")
    for i, (path, operation) in enumerate(ops):
        for body in generate(operation, per_op, SEED + i):
            raw, headers = prepare(body, daemon, rng)
            assert isinstance(raw, bytes), (type(body), type(raw))
            resp = await daemon.client.post(path, data=raw, headers=headers)
            if resp.status == 200 and resp.content_type == "text/event-stream":
                # An accepted event stream (docs/events.md) does not end: its opening, then let it go.
                first = await resp.content.readline()
                resp.close()
                assert first == b": stream open\n", (path, first)
                cases += 1
                statuses[200] += 1
                continue
            payload = await resp.read()
            cases += 1
            statuses[resp.status] += 1
            check(path, resp.status, payload, failures)
    server_errors = sum(n for s, n in statuses.items() if s >= 500)
    with capsys.disabled():
        print(
            f"\nschema fuzz: {cases} cases over {len(ops)} operations in {time.monotonic() - started:.1f} s,"
            f" {server_errors} 5xx, seed {SEED}, statuses {dict(sorted(statuses.items()))}"
        )
    # Most bodies must get past authentication, or the handlers are not being fuzzed.
    assert sum(n for s, n in statuses.items() if s not in (401, 403)) > cases // 2, statuses
    assert not failures, "\n".join(failures[:20])
