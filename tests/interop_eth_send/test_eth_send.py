"""`eth_sendTransaction`, the node's methods and batches on `POST /eth/rpc`, against a real chain.

A local anvil (Foundry 1.7.1, from npm with viem 2.57.20 and cast 1.7.1, pinned in this package)
is the daemon's upstream node (`STRONGROOM_ETH_UPSTREAM_URL`). viem's wallet client and
`cast send --unlocked` send transactions through the daemon: it fills them in from the node, signs
them through its policies and broadcasts them. What lands is read from the chain directly, not
from what the daemon said: the allowed transfers are mined, from the daemon's key; the DENY
policy's transfers to BLOCKED are refused (4001), alone, in a batch and from cast, and nothing
reaches BLOCKED.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Daemon, allow_from_deny_to, api_user, free_port, node_project, run_node_script, start_daemon
from strongroom.client import Client

pytestmark = [pytest.mark.interop, pytest.mark.e2e, pytest.mark.softhsm]

HERE = Path(__file__).resolve().parent
TO = "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"
BLOCKED = "0x000000000000000000000000000000000000dEaD"


def chain_rpc(url: str, method: str, params: list[Any]) -> Any:
    """A call to the chain itself (never through the daemon)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer = json.loads(resp.read())
    assert "error" not in answer, answer
    return answer["result"]


@pytest.fixture(scope="module")
def anvil() -> Iterator[str]:
    node_project(HERE)
    port = free_port()
    proc = subprocess.Popen(
        [str(HERE / "node_modules" / ".bin" / "anvil"), "--port", str(port), "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            chain_rpc(url, "eth_chainId", [])
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("anvil did not start") from None
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def upstream_daemon(anvil: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = start_daemon(tmp_path_factory.mktemp("eth-send"), env={"STRONGROOM_ETH_UPSTREAM_URL": anvil})
    yield d
    d.stop()


def test_viem_and_cast_send_through_the_daemon_and_the_policies_hold(upstream_daemon: Daemon, anvil: str) -> None:
    node = node_project(HERE)
    daemon = upstream_daemon
    root = daemon.client()
    out = root.create_private_key(f"send-{uuid.uuid4().hex[:8]}", "CURVE_SECP256K1", ["ADDRESS_FORMAT_ETHEREUM"])
    address = out["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["addresses"][0]["address"]
    chain_rpc(anvil, "anvil_setBalance", [address, hex(10**19)])
    alice = api_user(root, f"alice-{uuid.uuid4().hex[:6]}")
    allow_from_deny_to(root, alice, address, BLOCKED)
    to_before = int(chain_rpc(anvil, "eth_getBalance", [TO, "latest"]), 16)

    result = run_node_script(
        node,
        HERE / "eth_send.mjs",
        daemon,
        extra_env={
            "ADDRESS": address,
            "TO": TO,
            "BLOCKED": BLOCKED,
            "ALICE_PUBLIC_KEY": alice.stamper.public_key,
            "ALICE_PRIVATE_KEY": alice.stamper.private_key,
            "CAST": str(HERE / "node_modules" / ".bin" / "cast"),
        },
    )

    def mined(tx_hash: str, value: int) -> None:
        tx = chain_rpc(anvil, "eth_getTransactionByHash", [tx_hash])
        assert (tx["from"].lower(), tx["to"].lower(), int(tx["value"], 16)) == (address.lower(), TO.lower(), value)
        assert chain_rpc(anvil, "eth_getTransactionReceipt", [tx_hash])["status"] == "0x1"

    # viem, one call per request: filled in by the node (chain 31337), signed, broadcast, mined.
    assert result["chainId"] == 31337
    assert result["sentReceipt"] == "success"
    mined(result["sent"], 10**15)
    # The batch went as one body, and each call was answered on its own.
    assert ["eth_chainId", "eth_getBalance", "eth_sendTransaction", "eth_getBalance"] in result["seen"]["batches"]
    assert result["batch"]["chainId"] == "0x7a69"
    assert int(result["batch"]["balance"], 16) >= to_before + 10**15
    mined(result["batch"]["sent"], 2)
    assert result["batch"]["blockedBalance"] == "0x0"
    # Alice: refused alone and in a batch, where her other transfer went through.
    assert result["denied"]["code"] == 4001, result["denied"]
    assert "policy engine denied request explicitly" in result["denied"]["details"]
    refused, allowed = result["aliceBatch"]
    assert refused["code"] == 4001, refused
    mined(allowed["hash"], 3)
    assert len(result["seen"]["batches"]) >= 2
    # cast send --unlocked: the same endpoint, the same policies.
    assert "receipt" in result["cast"], result["cast"]
    assert result["cast"]["receipt"]["status"] == "0x1"
    mined(result["cast"]["receipt"]["transactionHash"], 5)
    assert result["castDenied"].get("failed"), result["castDenied"]
    assert "policy engine denied request explicitly" in result["castDenied"]["stderr"], result["castDenied"]

    # On the chain: nothing ever reached BLOCKED, and exactly the allowed transfers reached TO.
    assert chain_rpc(anvil, "eth_getBalance", [BLOCKED, "latest"]) == "0x0"
    assert int(chain_rpc(anvil, "eth_getBalance", [TO, "latest"]), 16) == to_before + 10**15 + 2 + 3 + 5
    assert int(chain_rpc(anvil, "eth_getTransactionCount", [address, "latest"]), 16) == 4


def stamped_call(client: Client, method: str, params: list[Any]) -> dict[str, Any]:
    call = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params, "organizationId": client.organization_id}
    status, data = client.post_raw("/eth/rpc", json.dumps(call).encode())
    assert status == 200
    return dict(data)


def test_the_nodes_answers_and_errors_come_back_as_they_are(
    upstream_daemon: Daemon, anvil: str, tmp_path: Path
) -> None:
    client = upstream_daemon.client()
    assert stamped_call(client, "eth_blockNumber", [])["result"] == chain_rpc(anvil, "eth_blockNumber", [])
    assert stamped_call(client, "net_version", [])["result"] == "31337"
    # The node's own error (undecodable raw transaction), not one of the signer's.
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x00"]}).encode()
    direct = json.loads(
        urllib.request.urlopen(urllib.request.Request(anvil, body, {"Content-Type": "application/json"})).read()
    )
    assert stamped_call(client, "eth_sendRawTransaction", ["0x00"])["error"] == direct["error"]
    # The node's methods still need a stamp: the signer is not an open relay.
    unstamped = urllib.request.Request(upstream_daemon.url + "/eth/rpc", body, {"Content-Type": "application/json"})
    assert json.loads(urllib.request.urlopen(unstamped).read())["error"]["code"] == 4100

    # A node that does not answer: -32002, nothing else.
    dead = f"http://127.0.0.1:{free_port()}/secret-key-in-path"
    down = start_daemon(tmp_path / "down", env={"STRONGROOM_ETH_UPSTREAM_URL": dead})
    try:
        error = stamped_call(down.client(), "eth_chainId", [])["error"]
        assert error["code"] == -32002
        assert "upstream Ethereum node did not answer eth_chainId" in error["message"]
        assert "secret-key-in-path" not in down.logs()  # the node's URL is never logged
    finally:
        down.stop()
