"""`make bench`: end-to-end stamped sign_raw_payload throughput/latency against a bare floor.

For each path (token secp256k1, software-fallback secp256k1, token ed25519):

1. `strongroom init` a fresh data dir in a temp dir (fallback: token created with CKM_EC_KEY_PAIR_GEN
   and CKM_ECDSA masked), start `strongroom serve`, create one key through the API.
2. Pre-generate distinct stamped request bodies (own payload, own X-Stamp each), write them to a
   file that bench/stamped.lua replays (thread k sends lines i with i % threads == k).
3. e2e: warm-up, then `wrk -tT -cC -dD --latency` against the daemon; check in SQLite that every
   200 answer left exactly one COMPLETED activity. Stop the daemon.
4. floor: bench/floor.py on the same data dir (same token, same key), same warm-up and run.

`--workers N` runs the daemon with `workers = N` and the floor with N processes as well (each
with its own SO_REUSEPORT socket and token session), so the ratio compares like with like;
`--loop uvloop` runs both servers on uvloop (installed separately: `pip install uvloop`).

Ends with one line per path:
`PATH e2e_rps=N floor_rps=N ratio=R e2e_p99_ms=N floor_p99_ms=N`.
Never part of the test suite; run by hand (`make bench`, or `--quick` for ~3 s runs).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
LUA = BENCH / "stamped.lua"
SUBMIT_PATH = "/public/v1/submit/sign_raw_payload"
FALLBACK_MASK = ("CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA")
WORKERS = 1
"""Processes of the daemon (`workers`) and of the floor, the same for both."""


@dataclass(frozen=True)
class BenchPath:
    name: str
    curve: str
    address_format: str
    mask: tuple[str, ...]
    backend: str  # expected backend column of the created key


PATHS = (
    BenchPath("token_secp256k1", "CURVE_SECP256K1", "ADDRESS_FORMAT_ETHEREUM", (), "token"),
    BenchPath("fallback_secp256k1", "CURVE_SECP256K1", "ADDRESS_FORMAT_ETHEREUM", FALLBACK_MASK, "software"),
    BenchPath("token_ed25519", "CURVE_ED25519", "ADDRESS_FORMAT_SOLANA", (), "token"),
)


class BenchError(Exception):
    pass


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non200: int
    wrapped: int
    server_cores: float
    raw: dict[str, Any] = field(default_factory=dict)
    threads: dict[str, float] = field(default_factory=dict)  # CPU seconds per thread name (--thread-cpu)


@dataclass
class Procs:
    """Every child process we started, so they can all be stopped on any exit."""

    live: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, cmd: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        # own session: a Ctrl-C reaches only this script, which then stops its children in order
        p: subprocess.Popen[bytes] = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.live.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes], timeout: float = 15) -> None:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)

    def stop_all(self) -> None:
        for p in list(reversed(self.live)):
            self.stop(p, timeout=5)


# -- helpers ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) and of its live children (workers), from /proc."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (utime + stime) per thread name, over the process and its live children (the
    workers, whose threads of one name are summed). The daemon names its threads in the operating
    system (`pkcs11_0`, `sqlite-writer`, ...: `strongroom.logs.name_os_thread`); a process's own
    first thread is `main`."""
    out: dict[str, float] = {}
    hz = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if stat.parent.name != str(pid) and fields[1] != str(pid):
                continue
            for task in (stat.parent / "task").iterdir():
                name = "main" if task.name == stat.parent.name else (task / "comm").read_text().strip()
                t = (task / "stat").read_text().rsplit(")", 1)[1].split()
                out[name] = out.get(name, 0.0) + (int(t[11]) + int(t[12])) / hz
        except OSError:
            continue  # gone
    return out


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError(f"server exited early (rc={proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"server did not become ready:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def ensure_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found: installing the Debian package `wrk` ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        rc = subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=False).returncode
        if rc != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True)
        wrk = shutil.which("wrk")
        if wrk:
            return wrk
    raise BenchError("wrk is not installed: run `sudo apt-get install wrk` (Debian/Ubuntu) and retry")


def python_cmd(args: argparse.Namespace, target: str) -> list[str]:
    """`python -m strongroom` / `python floor.py`, optionally with another GIL switch interval
    (diagnostics) or on uvloop (`--loop uvloop`: its policy is installed before anything runs, so
    every `asyncio.run`, in every worker, runs on it)."""
    if args.switch_interval is None and args.loop == "asyncio":
        return [sys.executable, "-m", target] if target == "strongroom" else [sys.executable, target]
    run = f"runpy.run_module({target!r}, run_name='__main__')"
    if target != "strongroom":
        run = f"runpy.run_path({target!r}, run_name='__main__')"
    setup = "import runpy, sys; "
    if args.switch_interval is not None:
        setup += f"sys.setswitchinterval({args.switch_interval}); "
    if args.loop == "uvloop":
        setup += "import uvloop; uvloop.install(); "
    return [sys.executable, "-c", f"{setup}sys.argv[0] = {target!r}; {run}"]


# -- request generation -----------------------------------------------------------------------------
class Stamper:
    """Same X-Stamp as strongroom.client.ApiKeyStamper, with the P-256 key parsed once."""

    def __init__(self, public_hex: str, private_hex: str) -> None:
        self.public_hex = public_hex
        self.key = ec.derive_private_key(int(private_hex, 16), ec.SECP256R1())

    def stamp(self, body: bytes) -> str:
        sig = self.key.sign(body, ec.ECDSA(hashes.SHA256())).hex()
        data = json.dumps(
            {"publicKey": self.public_hex, "scheme": "SIGNATURE_SCHEME_TK_API_P256", "signature": sig},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def write_requests(path: Path, count: int, stamper: Stamper, org_id: str, key_id: str, curve: str) -> None:
    """`count` distinct bodies (fresh random payload each), one `BODY\\tSTAMP` per line."""
    ts = str(int(time.time() * 1000))
    tag = secrets.token_hex(4)
    with path.open("w") as fh:
        for i in range(count):
            if curve == "CURVE_SECP256K1":
                params = {
                    "signWith": key_id,
                    "payload": secrets.token_hex(32),  # a 32-byte digest, as viem sends it
                    "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
                    "hashFunction": "HASH_FUNCTION_NO_OP",
                }
            else:
                params = {
                    "signWith": key_id,
                    "payload": f"strongroom bench {tag} message {i}",
                    "encoding": "PAYLOAD_ENCODING_TEXT_UTF8",
                    "hashFunction": "HASH_FUNCTION_NOT_APPLICABLE",
                }
            body = json.dumps(
                {
                    "type": "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
                    "timestampMs": ts,
                    "organizationId": org_id,
                    "parameters": params,
                },
                separators=(",", ":"),
            ).encode()
            fh.write(f"{body.decode()}\t{stamper.stamp(body)}\n")


# -- wrk ----------------------------------------------------------------------------------------------
def run_wrk(
    wrk: str, url: str, requests_file: Path, args: argparse.Namespace, duration: float, server_pid: int
) -> WrkResult:
    cmd = [
        wrk,
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        url + SUBMIT_PATH,
        "--",
        str(requests_file),
        str(args.threads),
    ]
    cpu0 = cpu_seconds(server_pid)
    threads0 = thread_cpu(server_pid) if args.thread_cpu else {}
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, start_new_session=True)
    wall = time.monotonic() - t0
    cores = (cpu_seconds(server_pid) - cpu0) / wall
    threads = {k: v - threads0.get(k, 0.0) for k, v in thread_cpu(server_pid).items()} if args.thread_cpu else {}
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise BenchError(f"wrk failed (rc={out.returncode}):\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    if args.verbose:
        print(out.stdout, out.stderr, sep="\n", file=sys.stderr)
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    if raw["non200"] or raw["status_errors"] or socket_errors:
        raise BenchError(
            f"wrk saw {raw['non200']} non-200 answers ({raw['status_errors']} non-2xx/3xx) and "
            f"{socket_errors} socket errors against {url}:\n{out.stderr[-2000:]}"
        )
    return WrkResult(
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        requests=raw["requests"],
        non200=raw["non200"],
        wrapped=raw["wrapped"],
        server_cores=cores,
        raw=raw,
        threads={k: v for k, v in threads.items() if v > 0},
    )


def py_spy(args: argparse.Namespace, procs: Procs, pid: int, name: str, duration: float) -> Any:
    if not args.py_spy:
        return None
    exe = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if exe is None:
        raise BenchError("--py-spy needs py-spy (pip install py-spy)")
    out = Path(args.py_spy) / f"{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(math.ceil(duration)), "--format", "raw"]
    if args.workers > 1:
        cmd.append("--subprocesses")
    cmd += ["--rate", "250", "--threads", "--nonblocking", "--output", str(out)]
    return procs.start(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# -- activities -----------------------------------------------------------------------------------------
def activity_counts(db: Path, after_seq: int) -> tuple[int, dict[str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        seq = conn.execute("SELECT coalesce(max(seq), 0) FROM activities").fetchone()[0]
        rows = conn.execute(
            "SELECT status, count(*) FROM activities WHERE seq > ? GROUP BY status", (after_seq,)
        ).fetchall()
    return int(seq), {str(s): int(n) for s, n in rows}


def settle_activities(db: Path, after_seq: int, quiet_s: float = 1.5) -> dict[str, int]:
    """Counts once the daemon has committed the requests still in flight when wrk stopped: when
    no new activity has appeared for `quiet_s` (on a busy machine a straggler can take far more
    than one poll interval; counted later, a warm-up straggler would look like an extra activity)."""
    last: dict[str, int] | None = None
    quiet_since = time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, counts = activity_counts(db, after_seq)
        if counts != last:
            last, quiet_since = counts, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return counts
        time.sleep(0.1)
    return last or {}


# -- one path -------------------------------------------------------------------------------------------
def bench_path(bp: BenchPath, args: argparse.Namespace, wrk: str, tmp: Path, procs: Procs) -> tuple[Any, Any]:
    from strongroom.client import ApiKeyStamper, Client

    py = sys.executable
    data = tmp / bp.name
    env = {k: v for k, v in os.environ.items() if k != "SOFTHSM2_CONF"}
    init = [py, "-m", "strongroom", "--data-dir", str(data), "init"]
    init += [a for m in bp.mask for a in ("--softhsm-mask", m)]
    out = subprocess.run(init, check=True, capture_output=True, env=env, cwd=REPO)
    # Every guard stays on; the per-IP rate limit is raised so that wrk (one IP) measures signing.
    cfg = data / "strongroom.toml"
    head = f"rate_limit_per_second = 1000000\nworkers = {args.workers}\n"
    cfg.write_text(head + cfg.read_text())  # before the [token] table
    info = json.loads(out.stdout)
    db = data / "strongroom.sqlite3"

    # -- e2e: the real daemon ---------------------------------------------------------------------------
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = data / "daemon.log"
    with log.open("wb") as fh:
        daemon = procs.start(
            [*python_cmd(args, "strongroom"), "--data-dir", str(data), "serve", "--port", str(port)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    wait_ready(url, daemon, log)
    prefix = Path(info["apiPrivateKeyFile"]).with_suffix("")
    api = ApiKeyStamper.from_files(prefix)
    client = Client(url, api, info["organizationId"])
    created = client.create_private_key(f"bench-{bp.name}", bp.curve, [bp.address_format])
    key_id = created["activity"]["result"]["createPrivateKeysResultV2"]["privateKeys"][0]["privateKeyId"]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        backend = conn.execute("SELECT backend FROM private_keys WHERE id = ?", (key_id,)).fetchone()[0]
    if backend != bp.backend:
        raise BenchError(f"{bp.name}: key backend is `{backend}`, expected `{bp.backend}`")

    stamper = Stamper(api.public_key, api.private_key)
    t0 = time.monotonic()
    n_main = math.ceil(args.rate_estimate * args.duration * 1.5)
    n_warm = math.ceil(args.rate_estimate * args.warmup * 1.5)
    warm_file, main_file = data / "warmup.requests", data / "main.requests"
    write_requests(warm_file, n_warm, stamper, info["organizationId"], key_id, bp.curve)
    write_requests(main_file, n_main, stamper, info["organizationId"], key_id, bp.curve)
    print(
        f"  {bp.name}: key {key_id} ({backend}); {n_warm}+{n_main} requests generated in {time.monotonic() - t0:.1f} s",
        file=sys.stderr,
    )

    run_wrk(wrk, url, warm_file, args, args.warmup, daemon.pid)
    settle_activities(db, 0)  # let the warm-up's in-flight requests commit first
    seq0, _ = activity_counts(db, 0)
    spy = py_spy(args, procs, daemon.pid, f"{bp.name}-e2e", args.duration)
    e2e = run_wrk(wrk, url, main_file, args, args.duration, daemon.pid)
    if spy is not None:
        spy.wait(60)
    counts = settle_activities(db, seq0)
    new = sum(counts.values())
    expected = e2e.requests - e2e.non200
    failed = {s: n for s, n in counts.items() if s != "ACTIVITY_STATUS_COMPLETED"}
    if failed:
        raise BenchError(f"{bp.name}: activities not completed: {failed} (see {log})")
    in_flight = new - expected  # answered after wrk stopped counting: at most one per connection
    if not 0 <= in_flight <= args.connections:
        raise BenchError(
            f"{bp.name}: {new} new activities for {expected} completed 200 answers "
            f"(difference {in_flight}, more than the {args.connections} requests that can be in flight)"
        )
    print(
        f"  {bp.name} e2e: {new} new COMPLETED activities = {expected} 200 answers counted by wrk "
        f"+ {in_flight} in flight at cut-off",
        file=sys.stderr,
    )
    if e2e.wrapped:
        print(
            f"  WARNING: {bp.name} e2e: request bodies wrapped around {e2e.wrapped} times: repeats were "
            "answered from the idempotency cache; raise --rate-estimate",
            file=sys.stderr,
        )
    procs.stop(daemon)

    # -- floor: same token, same key, daemon stopped -----------------------------------------------------------
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    flog = data / "floor.log"
    with flog.open("wb") as fh:
        floor = procs.start(
            [
                *python_cmd(args, str(BENCH / "floor.py")),
                "--data-dir",
                str(data),
                "--port",
                str(port),
                "--key-id",
                key_id,
                "--workers",
                str(args.workers),
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    wait_ready(url, floor, flog)
    run_wrk(wrk, url, warm_file, args, args.warmup, floor.pid)
    spy = py_spy(args, procs, floor.pid, f"{bp.name}-floor", args.duration)
    fl = run_wrk(wrk, url, main_file, args, args.duration, floor.pid)
    if spy is not None:
        spy.wait(60)
    if fl.wrapped:
        print(
            f"  note: {bp.name} floor: bodies wrapped around {fl.wrapped} times (harmless: no cache)", file=sys.stderr
        )
    procs.stop(floor)
    return e2e, fl


def main() -> int:
    ap = argparse.ArgumentParser(description="End-to-end sign_raw_payload benchmark against a bare floor.")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measured run (10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each run (2)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    ap.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    ap.add_argument("--quick", action="store_true", help="3 s runs after a 1 s warm-up")
    ap.add_argument("--rate-estimate", type=float, default=4000, help="req/s used to size the body files (4000)")
    ap.add_argument("--paths", default=",".join(p.name for p in PATHS), help="comma-separated subset")
    ap.add_argument("--py-spy", metavar="DIR", help="also record py-spy raw profiles of the servers into DIR")
    ap.add_argument("--switch-interval", type=float, help="diagnostics: sys.setswitchinterval() in both servers")
    ap.add_argument("--workers", type=int, default=WORKERS, help=f"daemon and floor processes ({WORKERS})")
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio", help="event loop of both servers")
    ap.add_argument(
        "--thread-cpu", action="store_true", help="print each server thread's CPU per request (us) for both servers"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print wrk's own output")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.warmup = 3.0, 1.0
    chosen = [p for p in PATHS if p.name in args.paths.split(",")]
    if not chosen:
        ap.error("--paths selects nothing")

    wrk = ensure_wrk()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    procs = Procs()
    tmp = Path(tempfile.mkdtemp(prefix="strongroom-bench-"))
    results: dict[str, tuple[WrkResult, WrkResult]] = {}
    print(
        f"strongroom bench: wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency "
        f"(warm-up {args.warmup:g} s), {args.workers} worker process(es) on the {args.loop} loop for "
        f"the daemon and the floor, {os.cpu_count()} CPUs, data in {tmp}",
        file=sys.stderr,
    )
    try:
        for bp in chosen:
            e2e, fl = bench_path(bp, args, wrk, tmp, procs)
            results[bp.name] = (e2e, fl)
            print(
                f"  {bp.name}: e2e {e2e.rps:.0f} req/s p50 {e2e.p50_ms:.2f} p99 {e2e.p99_ms:.2f} ms "
                f"({e2e.server_cores:.2f} cores) | floor {fl.rps:.0f} req/s p50 {fl.p50_ms:.2f} "
                f"p99 {fl.p99_ms:.2f} ms ({fl.server_cores:.2f} cores)",
                file=sys.stderr,
            )
            for label, run in (("e2e", e2e), ("floor", fl)):
                if run.threads:
                    per_request = sorted(run.threads.items(), key=lambda kv: -kv[1])
                    shown = ", ".join(f"{name} {cpu / run.requests * 1e6:.0f}" for name, cpu in per_request)
                    print(f"  {bp.name} {label} CPU per request (us, by thread): {shown}", file=sys.stderr)
    except BenchError as err:
        print(f"BENCH FAILED: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    for name, (e2e, fl) in results.items():
        print(
            f"{name} e2e_rps={e2e.rps:.0f} floor_rps={fl.rps:.0f} ratio={e2e.rps / fl.rps:.2f} "
            f"e2e_p99_ms={e2e.p99_ms:.2f} floor_p99_ms={fl.p99_ms:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
