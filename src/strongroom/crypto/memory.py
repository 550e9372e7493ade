"""Secret buffers: made in place, handed to C without copies, zeroed when done.

Python cannot promise that a secret leaves no trace (docs/api.md, "Secrets in memory"),
but it can avoid making copies and can wipe the buffers it owns:

* a secret lives in a :class:`bytearray` (mutable, so it can be zeroed; its buffer is not moved
  while :func:`c_buffer` exports it);
* :func:`random_buffer` fills a new bytearray in place with libsodium's CSPRNG (no intermediate
  ``bytes`` as ``os.urandom`` would make);
* :func:`c_buffer` exposes a bytearray to a cffi call (coincurve, libsodium) without a copy;
* :func:`wipe` zeroes a bytearray in place;
* :func:`wipe_bytes` is the last resort for an immutable ``bytes`` object we were handed by a
  library (python-pkcs11 returns plaintext as ``bytes``): it overwrites the object's buffer in
  place, which is only sound for an object nobody else holds. It refuses anything that might be
  shared (objects of length 0 or 1, which CPython caches, subclasses, and non-CPython runtimes).
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any, Final

from nacl._sodium import ffi, lib

# Offset of a bytes object's data (ob_sval) from its address: the struct size less the NUL.
_BYTES_DATA_OFFSET: Final = bytes.__basicsize__ - 1
_CPYTHON: Final = sys.implementation.name == "cpython"


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


def wipe_bytes(data: bytes) -> bool:
    """Overwrite an immutable ``bytes`` object's buffer with zeros; False if it is not safe to.

    Only for a ``bytes`` object this code received from a library call and never shared: after
    this call the object reads as zeros, so any other holder of it would see its value change.
    Objects of length 0 and 1 are cached singletons in CPython and are never touched.
    """
    if not _CPYTHON or type(data) is not bytes or len(data) < 2:
        return False
    ctypes.memset(id(data) + _BYTES_DATA_OFFSET, 0, len(data))
    return True


__all__ = ["c_buffer", "random_buffer", "wipe", "wipe_bytes"]
