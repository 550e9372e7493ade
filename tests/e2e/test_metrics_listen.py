"""`metrics_listen`: a real daemon serves /metrics on its own address only (no organization ids)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import conftest
from conftest import start_daemon

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def test_metrics_are_served_on_the_metrics_address_only(tmp_path: Path) -> None:
    port = conftest.free_port()
    d = start_daemon(tmp_path, config=f'rate_limit_per_second = 10000\nmetrics_listen = "127.0.0.1:{port}"\n')
    try:
        d.client().query("whoami")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(d.url + "/metrics", timeout=5)
        assert refused.value.code == 404
        assert set(json.loads(refused.value.read())) == {"code", "message", "details"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
        assert 'route="/public/v1/query/whoami"' in text
        assert d.organization_id not in text  # no organization ids by default
    finally:
        d.stop()
