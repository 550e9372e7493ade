"""pyrlp's top-level package is also called ``rlp``; this re-exports its raw codec under another name."""

from __future__ import annotations

from typing import Any

import rlp as _pyrlp


def encode(item: Any) -> bytes:
    """pyrlp's encoding of a nested list of byte strings."""
    out: bytes = _pyrlp.encode(item)
    return out


def decode(data: bytes) -> Any:
    """pyrlp's strict raw decoding (no sedes): bytes or nested lists of bytes."""
    return _pyrlp.decode(data, strict=True)
