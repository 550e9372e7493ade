"""Per-stage cost of one stamped sign_raw_payload inside the daemon, without HTTP (diagnostics).

Builds a throw-away data dir (`strongroom init`, optionally with --softhsm-mask), opens the real
service in-process, creates one key, then times each stage of the activity pipeline on its own
(tight loop over distinct pre-stamped bodies, median of batches) and finally the whole
`Pipeline.submit` called one request at a time (so it includes one durable commit each).

    .venv/bin/python bench/stages.py [--curve secp256k1|ed25519] [--fallback] [-n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def timed(name: str, fn: Callable[[int], Any], n: int, results: dict[str, float]) -> None:
    per_batch = []
    batch = max(1, n // 5)
    for b in range(5):
        t0 = time.perf_counter()
        for i in range(b * batch, (b + 1) * batch):
            fn(i)
        per_batch.append((time.perf_counter() - t0) / batch * 1e6)
    results[name] = statistics.median(per_batch)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--curve", choices=("secp256k1", "ed25519"), default="secp256k1")
    ap.add_argument("--fallback", action="store_true", help="mask CKM_EC_KEY_PAIR_GEN/CKM_ECDSA (software keys)")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument(
        "--profile", metavar="FILE", help="cProfile the sequential and concurrent Pipeline.submit loops into FILE"
    )
    ap.add_argument("--concurrency", type=int, default=32, help="requests in flight in the concurrent loop (32)")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="strongroom-stages-"))
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: Path) -> None:
    data = tmp / "data"
    mask = ["--softhsm-mask", "CKM_EC_KEY_PAIR_GEN", "--softhsm-mask", "CKM_ECDSA"] if args.fallback else []
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    out = subprocess.run(
        [sys.executable, "-m", "strongroom", "--data-dir", str(data), "init", *mask],
        check=True,
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    info = json.loads(out.stdout)

    from strongroom.client import ApiKeyStamper
    from strongroom.config import load_settings
    from strongroom.logs import configure_logging, get_logger
    from strongroom.service import auth, render, signing
    from strongroom.service.facade import Strongroom
    from strongroom.store.records import Activity

    sys.stderr.flush()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - structlog writes here for the whole run
    configure_logging("json")
    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=devnull))
    logging.disable(logging.CRITICAL)
    svc = Strongroom.open(load_settings(data))
    stamper = ApiKeyStamper.from_files(Path(info["apiPrivateKeyFile"]).with_suffix(""))
    org_id = info["organizationId"]
    curve = "CURVE_SECP256K1" if args.curve == "secp256k1" else "CURVE_ED25519"
    fmt = "ADDRESS_FORMAT_ETHEREUM" if args.curve == "secp256k1" else "ADDRESS_FORMAT_SOLANA"

    def body_for(params: dict[str, Any], activity: str) -> bytes:
        return json.dumps(
            {
                "type": activity,
                "timestampMs": str(int(time.time() * 1000)),
                "organizationId": org_id,
                "parameters": params,
            }
        ).encode()

    async def go() -> dict[str, float]:
        b = body_for(
            {"privateKeys": [{"privateKeyName": "k", "curve": curve, "privateKeyTags": [], "addressFormats": [fmt]}]},
            "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
        )
        res = await svc.submit("create_private_keys", b, {"X-Stamp": stamper.stamp(b)})
        key_id = res["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
        n = args.n
        bodies: list[bytes] = []
        for i in range(n * 2):
            if args.curve == "secp256k1":
                p = {
                    "signWith": key_id,
                    "payload": os.urandom(32).hex(),
                    "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
                    "hashFunction": "HASH_FUNCTION_NO_OP",
                }
            else:
                p = {
                    "signWith": key_id,
                    "payload": f"stage message {i} {os.urandom(4).hex()}",
                    "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                    "hashFunction": "HASH_FUNCTION_NOT_APPLICABLE",
                }
            bodies.append(body_for(p, "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"))
        headers = [{"X-Stamp": stamper.stamp(x)} for x in bodies]
        pl = svc.pipeline
        repo = svc.repo
        r: dict[str, float] = {}
        stamps = [auth.parse_stamp(h) for h in headers]
        envs = [pl.parse_body(x) for x in bodies]
        now = svc.clock.now_ms()
        timed("parse_stamp (b64 + stdlib json)", lambda i: auth.parse_stamp(headers[i]), n, r)
        timed("verify_stamp (P-256 verify)", lambda i: auth.verify_stamp(stamps[i], bodies[i]), n, r)
        timed("parse_body (orjson)", lambda i: pl.parse_body(bodies[i]), n, r)
        timed("clock.now_ms", lambda i: svc.clock.now_ms(), n, r)
        timed("auth.resolve (2 SELECTs)", lambda i: auth.resolve(repo, stamps[i], org_id, now), n, r)
        timed("pipeline.organization (uuid parse + 2 SELECTs)", lambda i: pl.organization(org_id), n, r)
        timed("check_timestamp", lambda i: pl.check_timestamp(envs[i], now), n, r)
        import hashlib

        timed("sha256 fingerprint", lambda i: hashlib.sha256(bodies[i]).hexdigest(), n, r)
        timed("activity_by_fingerprint (miss)", lambda i: repo.activities.activity_by_fingerprint(str(i)), n, r)
        timed("uuid4 x1", lambda i: uuid.uuid4(), n, r)
        principal = auth.resolve(repo, stamps[0], org_id, now)
        timed(
            "vote: render.user + api_keys_of_user",
            lambda i: render.user(principal.user, repo.users.api_keys_of_user(principal.user.id)),
            n,
            r,
        )
        from strongroom.service.activities.signing import resolve_key

        spec = pl.catalog.by_path["sign_raw_payload"]
        timed("resolve_key (private_keys SELECT)", lambda i: resolve_key(pl.deps, org_id, key_id), n, r)
        key = resolve_key(pl.deps, org_id, key_id)
        ref = key.ref
        ks = svc.keys._ks
        msgs = [
            signing.message_for(
                key.curve,
                envs[i]["parameters"]["hashFunction"],
                signing.decode_payload(envs[i]["parameters"]["payload"], envs[i]["parameters"]["encoding"]),
            )
            for i in range(n)
        ]
        if args.curve == "secp256k1":
            timed("KeyStore.sign_secp256k1 (blocking, caller thread)", lambda i: ks.sign_secp256k1(ref, msgs[i]), n, r)
        else:
            timed("KeyStore.sign_ed25519 (blocking, caller thread)", lambda i: ks.sign_ed25519(ref, msgs[i]), n, r)
        act = Activity(
            str(uuid.uuid4()),
            org_id,
            "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
            "ACTIVITY_STATUS_COMPLETED",
            "f",
            principal.user.id,
            {"signRawPayloadIntentV2": dict(envs[0]["parameters"])},
            {"signRawPayloadResult": {"r": "00" * 32, "s": "00" * 32, "v": "00"}},
            None,
            [
                {
                    "user": render.user(principal.user, repo.users.api_keys_of_user(principal.user.id)),
                    "message": "x" * 300,
                }
            ],
            now,
            now,
        )
        timed(
            "insert_activity ops (orjson + audit entry)",
            lambda i: repo.activities.insert_activity(act, bodies[i], "stamp", "pk"),
            n,
            r,
        )
        from strongroom.service.decide import Voter
        from strongroom.service.pipeline import Context

        assert spec.prepare is not None
        prepared = await spec.prepare(
            pl.deps,
            Context(svc.repo.organizations.organization(org_id), now, "", principal.user.id),
            envs[0]["parameters"],
        )
        voters = [Voter(principal.user, principal.credential, True)]
        org = svc.repo.organizations.organization(org_id)
        params = envs[0]["parameters"]
        t0 = time.perf_counter()
        for _ in range(n):
            await pl._decide(spec, org, params, prepared, voters, now, "")
        r["policy decision (no policies)"] = (time.perf_counter() - t0) / n * 1e6

        import orjson

        timed("render.activity + orjson.dumps", lambda i: orjson.dumps({"activity": render.activity(act)}), n, r)
        log = get_logger("bench")
        timed("structlog info line (to /dev/null)", lambda i: log.info("activity", a=1, b="x", c="y"), n, r)

        # the whole pipeline, one request at a time (each with its own durable commit)
        loop_n = min(n, 1000)
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
        for i in range(n, n + loop_n):
            await pl.submit("sign_raw_payload", bodies[i], headers[i])
        t1, c1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
        r["WHOLE Pipeline.submit, sequential (incl. sign + fsync commit)"] = (t1 - t0) / loop_n * 1e6
        # CPU time, which a busy machine disturbs far less than wall time: the event-loop thread's
        # own (what limits the daemon under load: everything but the sign and the commit), and
        # the whole process's (with the PKCS#11 and writer threads).
        r["  of which event-loop thread CPU"] = (c1 - c0) / loop_n * 1e6
        r["  whole process CPU (all threads)"] = (p1 - p0) / loop_n * 1e6
        # as under load: `--concurrency` requests in flight, so hand-offs and commits are shared
        first = n + loop_n
        conc_n = min(n - loop_n, 1000) if n > loop_n else 0
        if conc_n:
            queue = iter(range(first, first + conc_n))

            async def worker() -> None:
                for i in queue:
                    await pl.submit("sign_raw_payload", bodies[i], headers[i])

            t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            t1, c1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
            label = f"WHOLE Pipeline.submit, {args.concurrency} in flight (per request)"
            r[label] = (t1 - t0) / conc_n * 1e6
            r["  of which event-loop thread CPU "] = (c1 - c0) / conc_n * 1e6
            r["  whole process CPU (all threads) "] = (p1 - p0) / conc_n * 1e6
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        # and the durable commit alone
        from dataclasses import replace

        ins = [
            repo.activities.insert_activity(
                replace(act, id=str(uuid.uuid4()), fingerprint=uuid.uuid4().hex), bodies[i], "s", "pk"
            )
            for i in range(20)
        ]
        t0 = time.perf_counter()
        for ops in ins:
            await svc.db.write(ops)
        r["db.write alone, 1 activity (BEGIN..COMMIT + fsync)"] = (time.perf_counter() - t0) / len(ins) * 1e6
        return r

    try:
        r = asyncio.run(go())
    finally:
        svc.close()
    mode = "software fallback" if args.fallback else "token"
    print(f"stages for {args.curve} ({mode}), median us per call:")
    for k, v in r.items():
        print(f"  {v:9.1f}  {k}")


if __name__ == "__main__":
    main()
