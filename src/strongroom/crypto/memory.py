"""Secret buffers: made in place, handed to C without copies, zeroed when done.

Python cannot promise that a secret leaves no trace (docs/api.md, "Secrets in memory"),
but it can avoid making copies and can wipe the buffers it owns:

* a secret lives in a :class:`bytearray` (mutable, so it can be zeroed; its buffer is not moved
  while :func:`c_buffer` exports it);
* :func:`random_buffer` fills a new bytearray in place with libsodium's CSPRNG (no intermediate
  ``bytes`` as ``os.urandom`` would make);
* :func:`c_buffer` exposes a bytearray to a cffi call (coincurve, libsodium) without a copy;
* :func:`wipe` zeroes a bytearray in place.
"""

from __future__ import annotations

import ctypes
from typing import Any

from nacl._sodium import ffi, lib


def c_buffer(buf: bytearray, via: Any = ffi) -> Any:
    """An ``unsigned char[]`` cdata over ``buf``'s own memory (no copy).

    ``via`` is the cffi FFI of the library it is passed to (cdata do not cross FFI instances):
    PyNaCl's by default, coincurve's for libsecp256k1.
    """
    return via.from_buffer("unsigned char[]", buf)


def random_buffer(size: int) -> bytearray:
    """A new bytearray of ``size`` random bytes, written in place by libsodium."""
    buf = bytearray(size)
    lib.randombytes(c_buffer(buf), size)
    return buf


def wipe(buf: bytearray) -> None:
    """Zero ``buf`` in place (its length is kept)."""
    if buf:
        # A call into libc's memset through ctypes: nothing can optimise it away.
        ctypes.memset((ctypes.c_char * len(buf)).from_buffer(buf), 0, len(buf))


__all__ = ["c_buffer", "random_buffer", "wipe"]
