"""AES-GCM unsealing through the module's function list, into a caller-owned buffer."""

from __future__ import annotations

import ctypes
import hashlib
import threading
import uuid
from dataclasses import replace
from typing import Any

import pkcs11
import pytest
from pkcs11 import Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams

from strongroom.crypto import ed25519, secp256k1
from strongroom.errors import HsmError
from strongroom.hsm import Backend, Capabilities, Curve, KeyStore
from strongroom.hsm.cryptoki import function_list
from strongroom.hsm.keystore import KEK_LABEL
from strongroom.hsm.unseal import aes_gcm_decrypt_into_buffer

pytestmark = pytest.mark.softhsm

_FALLBACK = Capabilities(secp256k1=False, ed25519=False, aes_gcm=True, mechanisms=frozenset())


def test_function_list_offsets_match_the_exported_symbols(token: Any) -> None:
    funcs = function_list(token.module)
    so = ctypes.CDLL(token.module)
    for name in ("C_DecryptInit", "C_Decrypt"):
        entry = ctypes.cast(getattr(funcs, name), ctypes.c_void_p).value
        assert entry == ctypes.cast(getattr(so, name), ctypes.c_void_p).value, name


def test_decrypts_what_python_pkcs11_encrypted_into_a_bytearray(token: Any) -> None:
    ks = KeyStore(token, _FALLBACK)
    ks.ensure_kek()
    nonce, aad = bytes(range(12)), b"strongroom/test"
    for plain in (b"\x01" * 32, bytes(range(200))):
        ct = token.use_key(
            KEK_LABEL,
            ObjectClass.SECRET_KEY,
            lambda k, p=plain: bytes(k.encrypt(p, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce, aad))),
        )
        out = token.use_key(
            KEK_LABEL,
            ObjectClass.SECRET_KEY,
            lambda k, c=ct: aes_gcm_decrypt_into_buffer(token.module, k.session.handle, k.handle, nonce, aad, c),
        )
        assert type(out) is bytearray
        assert out == plain
        with pytest.raises(pkcs11.PKCS11Error):  # wrong associated data: the tag does not verify
            token.use_key(
                KEK_LABEL,
                ObjectClass.SECRET_KEY,
                lambda k, c=ct: aes_gcm_decrypt_into_buffer(token.module, k.session.handle, k.handle, nonce, b"x", c),
            )


def test_a_failed_unseal_leaves_the_session_usable(token: Any) -> None:
    ks = KeyStore(token, _FALLBACK)
    ref = ks.generate(str(uuid.uuid4()), Curve.ED25519)
    assert ref.wrapped is not None
    tampered = replace(ref, wrapped=ref.wrapped[:-1] + bytes([ref.wrapped[-1] ^ 1]))
    with pytest.raises(HsmError):
        ks.sign_ed25519(tampered, b"m")
    ed25519.verify(ref.public_key, b"m", ks.sign_ed25519(ref, b"m"))


def test_fallback_signing_from_many_threads(token: Any) -> None:
    ks = KeyStore(token, _FALLBACK)
    refs = [ks.generate(str(uuid.uuid4()), c) for c in (Curve.SECP256K1, Curve.ED25519)]
    assert all(r.backend is Backend.SOFTWARE for r in refs)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(100):
                msg = hashlib.sha256(f"{n}:{i}".encode()).digest()
                if i % 2:
                    ed25519.verify(refs[1].public_key, msg, ks.sign_ed25519(refs[1], msg))
                else:
                    sig = ks.sign_secp256k1(refs[0], msg)
                    secp256k1.normalize(msg, sig.r, sig.s, refs[0].public_key)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
