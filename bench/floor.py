"""The floor: a bare aiohttp endpoint doing only the unavoidable work of a stamped raw-payload sign.

Per request: read the body, decode the X-Stamp header and verify its P-256 signature over the
raw body bytes (strongroom.crypto.p256.verify_sha256_der), parse the body (orjson), decode the
payload and hash it as asked (NO_OP: it must be a 32-byte digest; NOT_APPLICABLE: the UTF-8
text itself), sign once on the same backend as the daemon (strongroom.hsm.AsyncKeyStore over
the same token, same thread count, so low-s / recovery id / verify are included), reply JSON.
No credential lookup, no policy, no idempotency cache, no activity record, no logging.

Run it on a daemon's data directory while that daemon is stopped:

    python bench/floor.py --data-dir D --port P --key-id KEY_ID

Same HTTP settings as `strongroom serve`: default asyncio loop, access log off, backlog 1024,
same client_max_size, the start-up heap frozen out of the garbage collector's sight once it
accepts connections (`settle_heap`); and the same process layout: `--workers N` (as the daemon's `workers`
setting) forks N processes, each with its own `SO_REUSEPORT` socket on the port and its own
PKCS#11 session opened after the fork, so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import traceback
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from strongroom.config import load_settings
from strongroom.daemon.lifecycle import settle_heap
from strongroom.daemon.workers import opening


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, body=orjson.dumps({"message": message}), content_type="application/json")


def make_app(keys: Any, ref: Any, max_body: int) -> web.Application:
    from strongroom.crypto import encoding, p256
    from strongroom.errors import InvalidSignature
    from strongroom.hsm import Curve

    secp = ref.curve is Curve.SECP256K1

    async def sign(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            stamp = orjson.loads(encoding.b64url_decode(request.headers["X-Stamp"]))
            p256.verify_sha256_der(bytes.fromhex(stamp["publicKey"]), body, bytes.fromhex(stamp["signature"]))
        except (KeyError, ValueError, TypeError, InvalidSignature):
            return _error(401, "could not verify api key signature")
        try:
            params = orjson.loads(body)["parameters"]
            payload = params["payload"]
            if secp:
                digest = bytes.fromhex(payload)  # HASH_FUNCTION_NO_OP: the payload is the digest
                if len(digest) != 32:
                    return _error(400, "HASH_FUNCTION_NO_OP needs a 32-byte payload")
            else:
                message = payload.encode("utf-8")  # HASH_FUNCTION_NOT_APPLICABLE
        except (KeyError, ValueError, TypeError):
            return _error(400, "bad request body")
        if secp:
            sig = await keys.sign_secp256k1(ref, digest)
            out = {"r": f"{sig.r:064x}", "s": f"{sig.s:064x}", "v": f"{sig.v:02x}"}
        else:
            raw = await keys.sign_ed25519(ref, message)
            out = {"r": raw[:32].hex(), "s": raw[32:].hex(), "v": "00"}
        body_out = orjson.dumps({"activity": {"status": "ACTIVITY_STATUS_COMPLETED", "result": out}})
        return web.Response(body=body_out, content_type="application/json")

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(body=b'{"ready":true}', content_type="application/json")

    app = web.Application(client_max_size=max_body)
    app.router.add_post("/public/v1/submit/sign_raw_payload", sign)
    app.router.add_get("/readyz", ready)
    return app


async def _serve(app: web.Application, sock: socket.socket) -> None:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock, backlog=1024)
    await site.start()
    settle_heap()  # as the daemon does once it accepts connections (strongroom.daemon.lifecycle)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", required=True, type=int)
    ap.add_argument("--key-id", required=True, help="id of a key created through the daemon")
    ap.add_argument("--workers", type=int, default=1, help="serving processes, as the daemon's `workers` (1)")
    args = ap.parse_args()
    waited = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}

    settings = load_settings(args.data_dir)
    if settings.token.softhsm2_conf is not None:
        # SoftHSM2 reads its configuration when the module initialises: set it before Token().
        os.environ["SOFTHSM2_CONF"] = str(settings.token.softhsm2_conf)
    from strongroom.hsm import AsyncKeyStore, Backend, Curve, KeyRef, KeyStore, Token

    with sqlite3.connect(f"file:{settings.database_path}?mode=ro", uri=True) as db:
        row = db.execute(
            "SELECT id, curve, public_key, backend, wrapped FROM private_keys WHERE id = ?", (args.key_id,)
        ).fetchone()
    if row is None:
        raise SystemExit(f"key {args.key_id} not found in {settings.database_path}")
    ref = KeyRef(row[0], Curve(row[1]), bytes(row[2]), Backend(row[3]), None if row[4] is None else bytes(row[4]))

    socks = []
    for _ in range(args.workers):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((args.host, args.port))
        sock.listen(1024)
        socks.append(sock)

    def serve(sock: socket.socket) -> None:
        # The token is opened here, in the serving process: never before a fork; one process at a
        # time, as the daemon's workers do (SoftHSM2 is not safe against concurrent logins).
        with opening(settings.data_dir):
            token = Token(settings.token.module, settings.token.label, settings.token.read_pin(os.environ))
            capabilities = token.probe()  # as the daemon does at start-up
        keystore = KeyStore(token, capabilities)
        keys = AsyncKeyStore(keystore, threads=settings.token.threads)
        try:
            asyncio.run(_serve(make_app(keys, ref, settings.max_body_bytes), sock))
        finally:
            keys.close()
            token.close()

    if args.workers == 1:
        serve(socks[0])
        return
    children = []
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)  # the parent waits for them (sigwait)
    for sock in socks:
        pid = os.fork()
        if pid == 0:
            code = 0
            signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)
            try:
                serve(sock)
            except BaseException:  # reported, then this child ends
                traceback.print_exc()
                code = 1
            os._exit(code)
        children.append(pid)
    for sock in socks:
        sock.close()
    stop = signal.sigwait(waited)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    if stop == signal.SIGCHLD or any(codes):
        raise SystemExit(f"floor workers exited: {codes}")


if __name__ == "__main__":
    main()
