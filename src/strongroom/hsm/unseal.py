"""AES-GCM decryption in the token, straight into a buffer we own.

python-pkcs11's `decrypt` has the token write the plaintext into an 8 KiB buffer of its own, which
it frees without wiping, and returns it as an immutable `bytes` copy: neither can be reliably
zeroed from Python, and the freed buffer was measured to keep a whole fallback secret after a
signature (docs/api.md, "Secrets in memory"). Here `C_DecryptInit` / `C_Decrypt` are called
through the module's own function list (`cryptoki`, as `locking.py` does for `C_Initialize`), with the session
and key handles python-pkcs11 already holds, and the token writes into a `bytearray` the caller
wipes. The session is the calling thread's own (`Token.session`), so no other operation can be
active on it.
"""

from __future__ import annotations

import ctypes
from typing import Final

from strongroom.crypto.memory import wipe
from strongroom.hsm.cryptoki import CKR_OK, Mechanism, function_list
from strongroom.hsm.errors import exception_for

_CKM_AES_GCM: Final = 0x1087
_CKR_BUFFER_TOO_SMALL: Final = 0x150


class _GcmParams(ctypes.Structure):
    # CK_GCM_PARAMS with ulIvBits, as python-pkcs11 0.10 lays it out.
    _fields_ = (
        ("pIv", ctypes.c_char_p),
        ("ulIvLen", ctypes.c_ulong),
        ("ulIvBits", ctypes.c_ulong),
        ("pAAD", ctypes.c_char_p),
        ("ulAADLen", ctypes.c_ulong),
        ("ulTagBits", ctypes.c_ulong),
    )


def aes_gcm_decrypt_into_buffer(
    module_path: str, session_handle: int, key_handle: int, nonce: bytes, aad: bytes, ciphertext: bytes
) -> bytearray:
    """Decrypt `ciphertext` (with its 16-byte tag) with the AES key `key_handle`, in the token.

    Returns the plaintext in a new bytearray that the caller must wipe. Raises the python-pkcs11
    exception for the token's error (EncryptedDataInvalid for a wrong tag or associated data).
    """
    funcs = function_list(module_path)
    params = _GcmParams(nonce, len(nonce), len(nonce) * 8, aad, len(aad), 128)
    mechanism = Mechanism(_CKM_AES_GCM, ctypes.cast(ctypes.byref(params), ctypes.c_void_p), ctypes.sizeof(params))
    rv = funcs.C_DecryptInit(session_handle, ctypes.byref(mechanism), key_handle)
    if rv != CKR_OK:
        raise exception_for(rv)
    out = bytearray(max(len(ciphertext) - 16, 1))
    while True:
        out_len = ctypes.c_ulong(len(out))
        view = (ctypes.c_char * len(out)).from_buffer(out)
        try:
            rv = funcs.C_Decrypt(session_handle, ciphertext, len(ciphertext), ctypes.addressof(view), out_len)
        finally:
            del view
        if rv == _CKR_BUFFER_TOO_SMALL and out_len.value > len(out):
            # The operation stays active: call again with the size the token asked for.
            wipe(out)
            out = bytearray(out_len.value)
            continue
        if rv != CKR_OK:
            wipe(out)
            raise exception_for(rv)
        break
    if out_len.value == len(out):
        return out
    # The token asked for a larger buffer than the plaintext: move it into one of the exact size
    # (memmove; slice assignment from a memoryview would make a temporary, unwiped copy).
    exact = bytearray(out_len.value)
    dst = (ctypes.c_char * len(exact)).from_buffer(exact)
    src = (ctypes.c_char * len(out)).from_buffer(out)
    ctypes.memmove(dst, src, len(exact))
    del dst, src
    wipe(out)
    return exact


__all__ = ["aes_gcm_decrypt_into_buffer"]
