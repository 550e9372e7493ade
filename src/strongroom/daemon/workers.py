"""Several worker processes on one token and one store (`workers` > 1): the pre-fork parent.

The parent loads nothing but the settings: it never opens the token (a PKCS#11 library must not
be initialised in a process that forks) nor the store, and it starts no thread. It makes the
sockets, then forks the workers; each worker opens its own PKCS#11 session, its own database
connections and group-commit writer, and serves (`lifecycle.run`).

Sockets, made once by the parent and inherited:

- the API port: one `SO_REUSEPORT` socket per worker, all bound to the same address, so the
  kernel spreads new connections over the workers (by a hash of the connection's addresses).
  The parent keeps every worker's socket open, so connections that arrive while a worker is
  being restarted wait in its queue instead of being refused;
- the local Unix socket and the metrics address: one listening socket each, shared by every
  worker (whichever accepts first serves the connection). The parent creates the Unix socket
  (mode 0600 in a 0700 directory, as one process does) and removes it when it stops.

Start-up: worker 0 starts alone (it creates what a first start creates: the token's webhook and
notary keys, pinned audit key, login decoy key, schema migrations), then the others; a worker
opens the token and the store holding a lock (`opening`), so two never initialise SoftHSM2 at
the same moment, at the first start or at a restart. If a
worker exits before it is ready, the parent stops the others and fails with one line naming the
worker and its error. Afterwards a worker that dies is restarted (after a pause that grows while
it keeps dying young). SIGTERM or SIGINT to the parent stops every worker cleanly, then the
parent. If the parent itself is killed, the kernel sends each worker SIGTERM
(`PR_SET_PDEATHSIG`), so no worker outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from strongroom.api.local import prepare_socket_path
from strongroom.config import Settings
from strongroom.daemon.lifecycle import Listeners
from strongroom.errors import StrongroomError
from strongroom.logs import flush_logs, get_logger

log = get_logger("strongroom.daemon")

STOP_TIMEOUT_S: Final = 30.0
"""How long the parent waits for the workers to stop after SIGTERM before it kills them."""
RESTART_PAUSE_S: Final = (0.1, 5.0)
"""The pause before restarting a worker that died young: doubled each time, within these bounds."""
YOUNG_S: Final = 10.0
"""A worker that dies within this long of its start died young (the pause grows)."""
_PR_SET_PDEATHSIG: Final = 1


OPEN_LOCK_NAME: Final = ".workers-open.lock"
"""In the data directory: held by a worker while it opens the token and the store."""


@contextlib.contextmanager
def opening(data_dir: Path) -> Iterator[None]:
    """One worker at a time opens the token (initialise, log in, probe) and the store.

    SoftHSM2 is not safe against two processes initialising and logging in at the same moment:
    measured here, one of them then fails to find the token or to load the module most of the
    time (a login rewrites the token's file while the other reads it). Once open, concurrent
    use (signing, making and destroying keys in one process while another starts) is fine.
    Serialising the start also means a first start's lazy creations (keys, files) happen once.
    """
    fd = os.open(data_dir / OPEN_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class StartFailed(Exception):
    """The workers could not start (the message is one line)."""


def listen_tcp(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` listening sockets on one address (`SO_REUSEPORT`); port 0 picks one port for all."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(1024)
            sock.set_inheritable(True)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def listen_unix(path: os.PathLike[str]) -> socket.socket:
    """The local socket: mode 0600 from birth, in a private directory (as `api.local` makes it)."""
    prepare_socket_path(Path(path))
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(os.fspath(path))
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


@dataclass
class _Worker:
    index: int
    pid: int = 0
    started: float = 0.0
    ready_fd: int = -1  # the read end of its readiness pipe, until it reports
    ready: bool = False
    early_deaths: int = 0
    restart_at: float | None = None
    error: bytearray = field(default_factory=bytearray)


WorkerMain = Callable[[Settings, Listeners, Callable[[], None]], None]
"""What a worker runs: open the service and serve on `listeners`; call the callback once ready."""


class Parent:
    def __init__(self, settings: Settings, worker_main: WorkerMain) -> None:
        self.settings = settings
        self.worker_main = worker_main
        self.workers = [_Worker(i) for i in range(settings.workers)]
        self.api: list[socket.socket] = []
        self.unix: socket.socket | None = None
        self.metrics: socket.socket | None = None
        self.stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    # -- sockets -----------------------------------------------------------------------------
    def listen(self) -> None:
        s = self.settings
        self.api = listen_tcp(s.host, s.port, s.workers)
        if s.unix_socket is not None:
            self.unix = listen_unix(s.unix_socket)
        if s.metrics_address is not None:
            host, port = s.metrics_address
            self.metrics = socket.create_server((host, port), backlog=128)
            self.metrics.set_inheritable(True)

    @property
    def port(self) -> int:
        return int(self.api[0].getsockname()[1])

    def close_sockets(self) -> None:
        for sock in [*self.api, self.unix, self.metrics]:
            if sock is not None:
                sock.close()
        if self.unix is not None and self.settings.unix_socket is not None:
            self.settings.unix_socket.unlink(missing_ok=True)

    # -- signals -----------------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stopping = True

    def install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(sig, self._on_signal)

    # -- workers -----------------------------------------------------------------------------
    def spawn(self, w: _Worker) -> None:
        ready_r, ready_w = os.pipe()
        parent_pid = os.getpid()
        flush_logs()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(ready_r)
            code = self._child(w.index, ready_w, parent_pid)
            os._exit(code)
        os.close(ready_w)
        os.set_blocking(ready_r, False)
        w.pid, w.started, w.ready_fd, w.ready, w.restart_at = pid, time.monotonic(), ready_r, False, None
        w.error.clear()
        log.info("worker_started", worker=w.index, pid=pid)

    def _child(self, index: int, ready_w: int, parent_pid: int) -> int:
        reported: list[bool] = []  # ready (or not) was written, and `ready_w` closed
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            os.close(self._wake_r)
            os.close(self._wake_w)
            for other in self.workers:
                if other.ready_fd >= 0:
                    os.close(other.ready_fd)
            _die_with_parent(parent_pid)
            listeners = Listeners(index, self.api[index], self.unix, self.metrics)
            for i, sock in enumerate(self.api):
                if i != index:
                    sock.close()

            def ready() -> None:
                if not reported:
                    reported.append(True)
                    os.write(ready_w, b"R")
                    os.close(ready_w)

            self.worker_main(self.settings, listeners, ready)
            return 0
        except BaseException as err:  # noqa: BLE001 - reported to the parent, then this process ends
            message = getattr(err, "message", None) or str(err) or type(err).__name__
            if isinstance(err, OSError) and err.strerror:
                message = err.strerror
            if not isinstance(err, StrongroomError | OSError | StartFailed):
                traceback.print_exc()
            if not reported:
                with contextlib.suppress(OSError):
                    os.write(ready_w, b"E" + " ".join(message.split()).encode()[:1000])
            return 1
        finally:
            flush_logs()
            sys.stdout.flush()
            sys.stderr.flush()

    def _read_ready(self, w: _Worker) -> None:
        try:
            data = os.read(w.ready_fd, 4096)
        except BlockingIOError:
            return
        if data.startswith(b"R"):
            w.ready = True
            os.close(w.ready_fd)
            w.ready_fd = -1
            log.info("worker_ready", worker=w.index, pid=w.pid)
        elif data.startswith(b"E"):
            w.error += data[1:]
        elif not data:
            os.close(w.ready_fd)
            w.ready_fd = -1

    def _reap(self) -> list[tuple[_Worker, int]]:
        dead: list[tuple[_Worker, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return dead
            if pid == 0:
                return dead
            for w in self.workers:
                if w.pid == pid:
                    if w.ready_fd >= 0:
                        with contextlib.suppress(BlockingIOError):
                            w.error += os.read(w.ready_fd, 4096).removeprefix(b"E")
                        os.close(w.ready_fd)
                        w.ready_fd = -1
                    w.pid = 0
                    dead.append((w, status))

    def _wait(self, timeout: float) -> None:
        fds = [self._wake_r] + [w.ready_fd for w in self.workers if w.ready_fd >= 0]
        try:
            readable, _, _ = select.select(fds, [], [], max(timeout, 0.0))
        except InterruptedError:
            return
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 512):
                    pass
        for w in self.workers:
            if w.ready_fd >= 0 and w.ready_fd in readable:
                self._read_ready(w)

    def start(self, group: list[_Worker]) -> bool:
        """Start `group` and wait until each is ready (False: a signal asked to stop first);
        `StartFailed` if one dies first."""
        for w in group:
            self.spawn(w)
        while not all(w.ready for w in group):
            if self.stopping:
                return False
            self._wait(0.5)
            for w, status in self._reap():
                why = w.error.decode(errors="replace").strip() or _describe(status)
                raise StartFailed(f"worker {w.index} could not start: {why}")
        return True

    def supervise(self) -> None:
        while not self.stopping:
            now = time.monotonic()
            due = [w.restart_at for w in self.workers if w.restart_at is not None]
            self._wait(min([0.5, *(t - now for t in due)]))
            for w, status in self._reap():
                young = time.monotonic() - w.started < YOUNG_S or not w.ready
                w.early_deaths = w.early_deaths + 1 if young else 0
                pause = min(RESTART_PAUSE_S[0] * 2 ** max(w.early_deaths - 1, 0), RESTART_PAUSE_S[1])
                w.restart_at = time.monotonic() + pause
                log.error(
                    "worker_died",
                    worker=w.index,
                    status=_describe(status),
                    error=w.error.decode(errors="replace").strip() or None,
                    restart_in_s=round(pause, 2),
                )
            now = time.monotonic()
            for w in self.workers:
                if not self.stopping and w.pid == 0 and w.restart_at is not None and w.restart_at <= now:
                    self.spawn(w)

    def stop(self) -> None:
        """SIGTERM to every worker, wait (kill what is left after `STOP_TIMEOUT_S`)."""
        self.stopping = True
        for w in self.workers:
            if w.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(w.pid for w in self.workers):
            if time.monotonic() > deadline:
                for w in self.workers:
                    if w.pid:
                        log.error("worker_killed", worker=w.index, pid=w.pid, note="did not stop in time")
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(w.pid, signal.SIGKILL)
                deadline = float("inf")
            self._wait(0.2)
            self._reap()
        for w in self.workers:
            if w.ready_fd >= 0:
                os.close(w.ready_fd)
                w.ready_fd = -1


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _die_with_parent(parent_pid: int) -> None:
    """Have the kernel send this process SIGTERM when the parent dies (Linux); if it already has
    (this process was re-parented before the call), stop now."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    if os.getppid() != parent_pid:
        raise StartFailed("the parent exited while this worker was starting")


def run(settings: Settings, worker_main: WorkerMain) -> None:
    """Serve with `settings.workers` processes until SIGTERM or SIGINT (`StartFailed`, `OSError`)."""
    parent = Parent(settings, worker_main)
    try:
        parent.listen()
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise OSError(err.errno, "address already in use") from None
        raise
    parent.install_signals()
    log.info("workers_starting", workers=settings.workers, port=parent.port, parent_pid=os.getpid())
    try:
        # Worker 0 alone: it creates what a first start creates.
        if parent.start(parent.workers[:1]) and parent.start(parent.workers[1:]):
            log.info("workers_ready", workers=settings.workers, port=parent.port)
            parent.supervise()
        log.info("shutting_down", workers=settings.workers)
    finally:
        parent.stop()
        parent.close_sockets()
        flush_logs()
