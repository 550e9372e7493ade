"""The only bridge from async code to the blocking token: a dedicated, bounded thread pool.

Each pool thread owns one PKCS#11 session (see `Token.session`). python-pkcs11 releases the
GIL inside C_Sign, so signing runs beside the event loop on the second core.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Final

from strongroom.crypto.secp256k1 import RecoverableSignature
from strongroom.hsm.keystore import KeyStore
from strongroom.hsm.types import Capabilities, Curve, KeyRef


class AsyncKeyStore:
    def __init__(self, keystore: KeyStore, threads: int = 2) -> None:
        self._ks: Final = keystore
        self._pool: Final = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pkcs11")

    @property
    def capabilities(self) -> Capabilities:
        return self._ks.capabilities

    async def generate(self, key_id: str, curve: Curve) -> KeyRef:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._ks.generate, key_id, curve)

    async def destroy(self, ref: KeyRef) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self._ks.destroy, ref)

    async def sign_secp256k1(self, ref: KeyRef, digest: bytes) -> RecoverableSignature:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._ks.sign_secp256k1, ref, digest)

    async def sign_ed25519(self, ref: KeyRef, message: bytes) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._ks.sign_ed25519, ref, message)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
