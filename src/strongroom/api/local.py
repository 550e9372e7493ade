"""The local signing socket: the same API on a Unix domain socket.

The socket file is created with mode 0600 inside a directory of mode 0700 that we own, so only
this user (and root) can connect at all. A stale socket left by a crashed daemon is removed only
after checking that nothing answers on it; a live one (another daemon) or a non-socket file at
the path stops the start with a clear error. Each request's peer credentials (SO_PEERCRED:
pid, uid, gid) are logged, and an optional allow-list of uids refuses other local users before
the request body is read.
"""

from __future__ import annotations

import os
import socket
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from strongroom.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(request: web.Request) -> Peer | None:
    """The connecting process of a Unix-socket request, or None for TCP."""
    transport = request.transport
    if transport is None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family != socket.AF_UNIX:
        return None
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return Peer(pid, uid, gid)


def prepare_socket_path(path: Path) -> None:
    """Make `path`'s directory private and clear a stale socket; refuse anything unsafe."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = directory.stat()
    if st.st_uid != os.getuid():
        raise ConfigError(f"socket directory `{directory}` belongs to another user")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(directory, 0o700)
    if not path.exists() and not path.is_symlink():
        return
    mode = path.lstat().st_mode
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"`{path}` exists and is not a socket: refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink()  # nobody listens: a stale socket from a daemon that died
        return
    finally:
        probe.close()
    raise ConfigError(f"another process is serving on `{path}`")


async def start_unix_site(runner: web.AppRunner, path: Path) -> web.UnixSite:
    prepare_socket_path(path)
    old = os.umask(0o177)  # the socket is born 0600: no window where others could connect
    try:
        site = web.UnixSite(runner, str(path))
        await site.start()
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return site
