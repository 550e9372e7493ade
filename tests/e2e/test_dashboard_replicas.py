"""Dashboard sessions and login challenges shared by two replicas on one PostgreSQL, and kept
across a restart: they live in the store (migration 7), not in one process's memory.

Both replicas answer for one public origin (as behind a load balancer); the tests talk to each
replica directly and carry the cookie themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from test_dashboard_api import SoftPasskey, create_web_user, http, init_on_postgres, unb64url
from test_replicas import WARM_UP, _second_data_dir

from conftest import REPO, Daemon, start_daemon
from store.pg_cluster import PgCluster

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]

ORIGIN = "http://localhost:8443"  # the one origin both replicas serve (behind a load balancer)


@dataclass
class Pair:
    a: Daemon
    b: Daemon
    config: str
    passkey: SoftPasskey
    email: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    c = PgCluster()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, cluster: PgCluster) -> Iterator[Pair]:
    url = cluster.create_database()
    tmp_path = tmp_path_factory.mktemp("dash-replicas")
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    init_on_postgres(a_dir, url)
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    # The token's audit key is made on first use; make it now, before two replicas could race.
    subprocess.run([sys.executable, "-c", WARM_UP, str(a_dir)], check=True, capture_output=True, env=env, cwd=REPO)
    _second_data_dir(a_dir, b_dir)
    config = (
        'webauthn_rp_id = "localhost"\n'
        f'webauthn_origins = ["{ORIGIN}"]\n'
        "rate_limit_per_second = 10000\n"
        "rate_limit_burst = 10000\n"
        f'database_url = "{url}"\n'
    )
    daemons: list[Daemon] = []
    pair: Pair | None = None
    try:
        daemons.append(start_daemon(a_dir, config=config))
        daemons.append(start_daemon(b_dir, config=config))
        passkey = SoftPasskey(ORIGIN)
        email = f"web-{uuid.uuid4().hex[:6]}@example.com"
        create_web_user(daemons[0].client(), passkey, email)
        pair = Pair(daemons[0], daemons[1], config, passkey, email)
        yield pair
    finally:
        for d in daemons + ([pair.b] if pair is not None else []):
            d.stop()


def options(d: Daemon, email: str) -> bytes:
    status, _, data = http("POST", f"{d.url}/dashboard/api/login/options", {"email": email})
    assert status == 200, data
    return unb64url(data["challenge"])


def finish(d: Daemon, assertion: dict[str, str]) -> tuple[int, str]:
    status, headers, data = http("POST", f"{d.url}/dashboard/api/login", {"assertion": assertion})
    cookie = headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1] if status == 200 else ""
    return status, cookie


def who(d: Daemon, cookie: str) -> int:
    return http("GET", f"{d.url}/dashboard/api/session", cookie=cookie)[0]


def test_challenges_and_sessions_are_shared_by_the_replicas(pair: Pair) -> None:
    a, b, passkey = pair.a, pair.b, pair.passkey
    # A challenge issued by A completes on B.
    status, on_b = finish(b, passkey.assertion(options(a, pair.email)))
    assert status == 200
    # A session opened on B is valid on A; a session opened on A is valid on B.
    assert who(a, on_b) == 200 and who(b, on_b) == 200
    status, on_a = finish(a, passkey.assertion(options(b, pair.email)))
    assert status == 200 and who(b, on_a) == 200
    # Logout on B ends the session on A too.
    status, _, data = http("POST", f"{b.url}/dashboard/api/logout", {}, cookie=on_a)
    assert (status, data) == (200, {"loggedOut": True})
    assert who(a, on_a) == 401 and who(b, on_a) == 401
    status, _, data = http("POST", f"{a.url}/dashboard/api/logout", {}, cookie=on_a)
    assert (status, data) == (200, {"loggedOut": False})
    assert who(a, on_b) == 200  # the other session lives on


def test_one_challenge_opens_one_session_when_both_replicas_race(pair: Pair) -> None:
    for _ in range(5):
        assertion = pair.passkey.assertion(options(pair.a, pair.email))
        with ThreadPoolExecutor(4) as pool:
            replicas = [pair.a, pair.b, pair.a, pair.b]
            results = list(pool.map(finish, replicas, [assertion] * len(replicas)))
        assert sorted(status for status, _ in results) == [200, 401, 401, 401], results


def test_a_session_and_a_pending_login_survive_a_restart(pair: Pair) -> None:
    status, cookie = finish(pair.b, pair.passkey.assertion(options(pair.b, pair.email)))
    assert status == 200
    pending = pair.passkey.assertion(options(pair.b, pair.email))  # a login under way
    pair.b.stop()
    pair.b = start_daemon(pair.b.data_dir, config=pair.config)  # A keeps serving meanwhile
    assert who(pair.b, cookie) == 200
    assert finish(pair.b, pending)[0] == 200  # the challenge issued before the restart completes
    assert http("GET", f"{pair.b.url}/dashboard/api/activities", cookie=cookie)[0] == 200
