"""Kill -9, restart: completed activities survive, the audit chain verifies, replays return originals."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

import pytest
from test_daemon import run_cli

from conftest import start_daemon

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def test_kill_9_then_restart(tmp_path: Path) -> None:
    data = tmp_path / "d"
    d = start_daemon(data)
    bodies: list[tuple[bytes, dict[str, object]]] = []
    try:
        c = d.client()
        key = c.create_private_key(f"k-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
        key_id = key["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
        for i in range(20):
            body = json.dumps(
                {
                    "type": "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
                    "timestampMs": str(int(time.time() * 1000)),
                    "organizationId": d.organization_id,
                    "parameters": {
                        "signWith": key_id,
                        "payload": f"payload {i}",
                        "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                        "hashFunction": "HASH_FUNCTION_KECCAK256",
                    },
                }
            ).encode()
            status, out = c.post_raw("/public/v1/submit/sign_raw_payload", body)
            assert status == 200
            bodies.append((body, out["activity"]))
    finally:
        d.process.send_signal(signal.SIGKILL)  # no shutdown: no final checkpoint, no flush
        d.process.wait()
        d.log_file.close()

    report = run_cli("audit", "verify", "--json", data_dir=data)
    result = json.loads(report.stdout)
    assert result["ok"], result
    # 21 activities (a key, 20 signatures) and two notarised state changes (init's organization, the key)
    assert result["entries"] == 21 + 2
    assert result["activitiesChecked"] == 21

    d = start_daemon(data)
    try:
        c = d.client()
        listed = c.query("list_activities", paginationOptions={"limit": "100"})["activities"]
        assert {a["id"] for _, a in bodies} <= {a["id"] for a in listed}
        for body, original in bodies:
            status, out = c.post_raw("/public/v1/submit/sign_raw_payload", body)  # the same stamped body again
            assert status == 200
            assert out["activity"]["id"] == original["id"]
            assert out["activity"]["result"] == original["result"]
        usage = c.query("get_usage")["usage"]
        assert usage["signatures"] == "20"  # the replays signed nothing
    finally:
        d.stop()
    report = run_cli("audit", "verify", data_dir=data)
    assert "audit log intact" in report.stdout
    assert "signed checkpoints" in report.stdout
    assert json.loads(run_cli("audit", "verify", "--json", data_dir=data).stdout)["checkpoints"] >= 1
