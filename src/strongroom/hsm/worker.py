"""The only bridge from async code to the blocking token: a dedicated, bounded set of threads.

Each thread owns one PKCS#11 session (see `Token.session`). python-pkcs11 releases the GIL
inside C_Sign, so signing runs beside the event loop on the second core.

Completions are handed back in bursts: a thread that finishes a job queues its result and wakes
the event loop only if no wake-up is already pending, so under load many results cost one
cross-thread wake-up (each is a syscall and a GIL hand-off).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from strongroom.crypto.secp256k1 import RecoverableSignature
from strongroom.hsm.keystore import KeyStore, SealedWallet
from strongroom.hsm.types import Capabilities, Curve, KeyRef
from strongroom.logs import name_os_thread

_T = TypeVar("_T")
_Job = tuple[Callable[..., Any], tuple[Any, ...], "asyncio.Future[Any]", asyncio.AbstractEventLoop]


class _Inbox:
    """Results waiting for one event loop, and whether that loop has been woken for them."""

    def __init__(self) -> None:
        self.items: list[tuple[asyncio.Future[Any], bool, Any]] = []
        self.woken = False


class AsyncKeyStore:
    def __init__(self, keystore: KeyStore, threads: int = 2) -> None:
        self._ks: Final = keystore
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        # Token operations started (tests prove that refused requests never touch the token),
        # and how many are running or queued right now.
        self.operations = 0
        self.in_flight = 0
        # Called with (curve, backend, seconds) after each signature (metrics).
        self.observe: Callable[[str, str, float], None] | None = None
        self._lock = threading.Lock()
        self._inboxes: dict[asyncio.AbstractEventLoop, _Inbox] = {}
        self._threads = [
            threading.Thread(target=self._work, name=f"pkcs11_{i}", daemon=True) for i in range(max(1, threads))
        ]
        for t in self._threads:
            t.start()

    @property
    def capabilities(self) -> Capabilities:
        return self._ks.capabilities

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_T] = loop.create_future()
        self.operations += 1
        self.in_flight += 1
        self._jobs.put((fn, args, fut, loop))
        try:
            return await fut
        finally:
            self.in_flight -= 1

    def _work(self) -> None:
        name_os_thread(threading.current_thread().name)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args, fut, loop = job
            try:
                item = (fut, True, fn(*args))
            except BaseException as err:  # noqa: BLE001 - handed to the awaiting coroutine
                item = (fut, False, err)
            with self._lock:
                inbox = self._inboxes.setdefault(loop, _Inbox())
                inbox.items.append(item)
                wake = not inbox.woken
                inbox.woken = True
            if wake:
                try:
                    loop.call_soon_threadsafe(self._deliver, loop)
                except RuntimeError:  # the loop is closed; nobody awaits these any more
                    with self._lock:
                        self._inboxes.pop(loop, None)

    def _deliver(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            inbox = self._inboxes.pop(loop, None)
        if inbox is None:
            return
        for fut, ok, value in inbox.items:
            if fut.done():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    async def generate(self, key_id: str, curve: Curve) -> KeyRef:
        return await self._run(self._ks.generate, key_id, curve)

    async def destroy(self, ref: KeyRef) -> None:
        await self._run(self._ks.destroy, ref)

    async def create_wallet(
        self, wallet_id: str, words: int, accounts: Sequence[tuple[Curve, tuple[int, ...]]]
    ) -> SealedWallet:
        return await self._run(self._ks.create_wallet, wallet_id, words, accounts)

    async def export_key(self, ref: KeyRef, target_public_key: str, organization_id: str) -> str:
        return await self._run(self._ks.export_key, ref, target_public_key, organization_id)

    async def export_wallet(
        self, wallet_id: str, sealed_mnemonic: bytes, target_public_key: str, organization_id: str
    ) -> str:
        return await self._run(self._ks.export_wallet, wallet_id, sealed_mnemonic, target_public_key, organization_id)

    async def new_import_target(self, target_id: str, organization_id: str, user_id: str) -> tuple[bytes, bytes, str]:
        return await self._run(self._ks.new_import_target, target_id, organization_id, user_id)

    async def import_private_key(
        self, target_id: str, sealed_private: bytes, encrypted_bundle: object, key_id: str, curve: Curve
    ) -> KeyRef:
        return await self._run(self._ks.import_private_key, target_id, sealed_private, encrypted_bundle, key_id, curve)

    async def import_wallet(
        self,
        target_id: str,
        sealed_private: bytes,
        encrypted_bundle: object,
        wallet_id: str,
        accounts: Sequence[tuple[Curve, tuple[int, ...]]],
    ) -> SealedWallet:
        return await self._run(self._ks.import_wallet, target_id, sealed_private, encrypted_bundle, wallet_id, accounts)

    async def webhook_public_key(self) -> str:
        return await self._run(self._ks.webhook_public_key)

    async def sign_webhook(self, message: bytes) -> bytes:
        return await self._run(self._ks.sign_webhook, message)

    async def bundle_public_key(self) -> str:
        """The token's bundle key, which clients pin (created on first use)."""
        return await self._run(self._ks.bundle_public_key)

    async def derive_public_keys(
        self, wallet_id: str, sealed_seed: bytes, accounts: Sequence[tuple[Curve, tuple[int, ...]]]
    ) -> tuple[bytes, ...]:
        return await self._run(self._ks.derive_public_keys, wallet_id, sealed_seed, accounts)

    async def _sign(self, fn: Callable[[KeyRef, bytes], _T], ref: KeyRef, data: bytes) -> _T:
        started = time.perf_counter()
        sig = await self._run(fn, ref, data)
        if self.observe is not None:
            self.observe(ref.curve.value, ref.backend.value, time.perf_counter() - started)
        return sig

    async def sign_secp256k1(self, ref: KeyRef, digest: bytes) -> RecoverableSignature:
        return await self._sign(self._ks.sign_secp256k1, ref, digest)

    async def sign_ed25519(self, ref: KeyRef, message: bytes) -> bytes:
        return await self._sign(self._ks.sign_ed25519, ref, message)

    async def ping(self) -> None:
        await self._run(self._ks.ping)

    def relogin(self, pin: str) -> None:
        self._ks.token.relogin(pin)

    async def sign_audit(self, message: bytes) -> tuple[str, bytes, bytes]:
        return await self._run(self._ks.sign_audit, message)

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join()
