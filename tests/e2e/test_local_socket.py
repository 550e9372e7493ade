"""The local signing socket: same API, stamped, peer credentials logged, uid allow-list, safe socket files."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import uuid
from pathlib import Path

import pytest
from coincurve import PublicKey

from conftest import Daemon, start_daemon
from strongroom.api.local import prepare_socket_path
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.client import ApiError, ApiKeyStamper, AsyncClient, Client, Unreachable
from strongroom.crypto.keccak import keccak256
from strongroom.errors import ConfigError

pytestmark = [pytest.mark.e2e, pytest.mark.softhsm]


def socket_url(d: Daemon) -> str:
    return f"unix://{d.data_dir / 'run' / 'strongroom.sock'}"


def test_socket_file_is_private(daemon: Daemon) -> None:
    sock = daemon.data_dir / "run" / "strongroom.sock"
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700


def test_sync_and_async_clients_sign_over_the_socket(daemon: Daemon) -> None:
    stamper = ApiKeyStamper.from_files(daemon.key_prefix)
    c = Client(socket_url(daemon), stamper, daemon.organization_id)
    assert c.whoami()["organizationId"] == daemon.organization_id
    key = c.create_private_key(f"sock-{uuid.uuid4()}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    address = key["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["addresses"][0]["address"]

    async def sign_async() -> dict[str, str]:
        async with AsyncClient(socket_url(daemon), stamper, daemon.organization_id) as ac:
            out = await ac.sign_raw_payload(
                address, "over the socket", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256"
            )
            activity = await ac.wait(out["activity"])
            result: dict[str, str] = activity["result"]["signRawPayloadResult"]
            return result

    res = asyncio.run(sign_async())
    pub = PublicKey.from_signature_and_message(
        bytes.fromhex(res["r"] + res["s"] + res["v"]), keccak256(b"over the socket"), hasher=None
    )
    assert address_from_public_key(pub.format(compressed=False)) == address
    # Requests over the socket are still stamped: a wrong key is refused.
    other = ApiKeyStamper(*reversed(__import__("strongroom.crypto.p256", fromlist=["x"]).generate_private_key()))
    with pytest.raises(ApiError) as err:
        Client(socket_url(daemon), other, daemon.organization_id).whoami()
    assert err.value.status == 401
    assert err.value.turnkey_code == "PUBLIC_KEY_NOT_FOUND"
    logs = daemon.logs(wait_for='"peer_uid"')
    line = next(json.loads(x) for x in logs.splitlines() if '"peer_uid"' in x)
    assert line["peer_uid"] == os.getuid()
    assert line["peer_pid"] > 0


def test_unreachable_is_a_typed_error(tmp_path: Path) -> None:
    c = Client(f"unix://{tmp_path / 'nothing.sock'}", ApiKeyStamper("02" + "11" * 32, "22" * 32), str(uuid.uuid4()))
    with pytest.raises(Unreachable, match="daemon not reachable"):
        c.whoami()


PROBE = """
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("EACCES")
    sys.exit(0)
s.sendall(b"POST /public/v1/query/whoami HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\n\\r\\n{}")
print(s.recv(4096).decode(errors="replace"))
"""


@pytest.mark.skipif(
    os.getuid() != 0 or shutil.which("useradd") is None, reason="needs root to create a second local user"
)
def test_a_local_user_not_on_the_allow_list_is_refused() -> None:
    name = f"sr{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    data = Path("/tmp") / f"strongroom-{name}"  # outside pytest's root-only temp tree, so paths are traversable
    try:
        other_uid = pwd.getpwnam(name).pw_uid
        d = start_daemon(data, config=f"rate_limit_per_second = 10000\nunix_socket_allowed_uids = [{os.getuid()}]\n")
        try:
            sock = d.data_dir / "run" / "strongroom.sock"

            def as_other_user() -> str:
                return subprocess.run(
                    ["/usr/bin/python3", "-c", PROBE, str(sock)],
                    user=other_uid,
                    capture_output=True,
                    text=True,
                    timeout=20,
                    check=True,
                ).stdout

            # The socket is 0600 in a 0700 directory: another user cannot even connect...
            assert as_other_user().strip() == "EACCES"
            # ...and where an operator opens it up (e.g. to a group), the uid allow-list still refuses them.
            os.chmod(data, 0o711)
            os.chmod(sock.parent, 0o711)
            os.chmod(sock, 0o666)
            answer = as_other_user()
            assert answer.startswith("HTTP/1.1 403"), answer
            assert f"local user {other_uid} may not use this socket" in answer
            logs = d.logs(wait_for="local_peer_refused")
            refused = [json.loads(x) for x in logs.splitlines() if "local_peer_refused" in x]
            assert refused[0]["peer_uid"] == other_uid
            # The owner is still served.
            assert Client(f"unix://{sock}", ApiKeyStamper.from_files(d.key_prefix), d.organization_id).whoami()
        finally:
            d.stop()
    finally:
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(data, ignore_errors=True)


def test_stale_and_foreign_socket_files(tmp_path: Path) -> None:
    path = tmp_path / "run" / "s.sock"
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # a crashed daemon leaves its socket file behind
    prepare_socket_path(path)
    assert not path.exists()
    live = socket.socket(socket.AF_UNIX)
    live.bind(str(path))
    live.listen()
    try:
        with pytest.raises(ConfigError, match="another process is serving"):
            prepare_socket_path(path)
    finally:
        live.close()
        path.unlink()
    path.write_text("not a socket")
    with pytest.raises(ConfigError, match="is not a socket"):
        prepare_socket_path(path)
