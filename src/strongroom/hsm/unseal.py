"""AES-GCM decryption in the token, straight into a buffer we own.

python-pkcs11's `decrypt` has the token write the plaintext into an 8 KiB buffer of its own, which
it frees without wiping, and returns it as an immutable `bytes` copy: neither can be reliably
zeroed from Python, and the freed buffer was measured to keep a whole fallback secret after a
signature (docs/api.md, "Secrets in memory"). Here `C_DecryptInit` / `C_Decrypt` are called
through the module's own function list (as `locking.py` does for `C_Initialize`), with the session
and key handles python-pkcs11 already holds, and the token writes into a `bytearray` the caller
wipes. The session is the calling thread's own (`Token.session`), so no other operation can be
active on it.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Final

import pkcs11.exceptions as p11

from strongroom.crypto.memory import wipe

_CKM_AES_GCM: Final = 0x1087
_CKR_OK: Final = 0
_CKR_BUFFER_TOO_SMALL: Final = 0x150

# The python-pkcs11 exception for each return value it would map the same way (so callers, e.g.
# `Token.use_key` retrying on a stale handle, see no difference); anything else: PKCS11Error.
_ERRORS: Final[dict[int, type[p11.PKCS11Error]]] = {
    0x02: p11.HostMemory,
    0x05: p11.GeneralError,
    0x06: p11.FunctionFailed,
    0x07: p11.ArgumentsBad,
    0x30: p11.DeviceError,
    0x31: p11.DeviceMemory,
    0x32: p11.DeviceRemoved,
    0x40: p11.EncryptedDataInvalid,
    0x41: p11.EncryptedDataLenRange,
    0x60: p11.KeyHandleInvalid,
    0x63: p11.KeyTypeInconsistent,
    0x70: p11.MechanismInvalid,
    0x71: p11.MechanismParamInvalid,
    0x82: p11.ObjectHandleInvalid,
    0x90: p11.OperationActive,
    0xB0: p11.SessionClosed,
    0xB3: p11.SessionHandleInvalid,
    0xE0: p11.TokenNotPresent,
    0x101: p11.UserNotLoggedIn,
}


def _error(rv: int) -> p11.PKCS11Error:
    cls = _ERRORS.get(rv)
    return cls() if cls is not None else p11.PKCS11Error(f"CKR 0x{rv:x}")


class _Mechanism(ctypes.Structure):
    _fields_ = (
        ("mechanism", ctypes.c_ulong),
        ("pParameter", ctypes.c_void_p),
        ("ulParameterLen", ctypes.c_ulong),
    )


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


_DecryptInit = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_ulong, ctypes.POINTER(_Mechanism), ctypes.c_ulong)
_Decrypt = ctypes.CFUNCTYPE(
    ctypes.c_ulong, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.POINTER(ctypes.c_ulong)
)

# CK_FUNCTION_LIST (PKCS#11 2.x; 3.0's list has the same prefix): a CK_VERSION, then these 33
# entries, then C_DecryptInit and C_Decrypt.
_BEFORE_DECRYPT: Final = (
    "C_Initialize",
    "C_Finalize",
    "C_GetInfo",
    "C_GetFunctionList",
    "C_GetSlotList",
    "C_GetSlotInfo",
    "C_GetTokenInfo",
    "C_GetMechanismList",
    "C_GetMechanismInfo",
    "C_InitToken",
    "C_InitPIN",
    "C_SetPIN",
    "C_OpenSession",
    "C_CloseSession",
    "C_CloseAllSessions",
    "C_GetSessionInfo",
    "C_GetOperationState",
    "C_SetOperationState",
    "C_Login",
    "C_Logout",
    "C_CreateObject",
    "C_CopyObject",
    "C_DestroyObject",
    "C_GetObjectSize",
    "C_GetAttributeValue",
    "C_SetAttributeValue",
    "C_FindObjectsInit",
    "C_FindObjects",
    "C_FindObjectsFinal",
    "C_EncryptInit",
    "C_Encrypt",
    "C_EncryptUpdate",
    "C_EncryptFinal",
)


class _FunctionList(ctypes.Structure):
    _fields_ = (
        ("major", ctypes.c_ubyte),
        ("minor", ctypes.c_ubyte),
        *((name, ctypes.c_void_p) for name in _BEFORE_DECRYPT),
        ("C_DecryptInit", _DecryptInit),
        ("C_Decrypt", _Decrypt),
    )


_lists: dict[str, Any] = {}
_lock = threading.Lock()


def function_list(module_path: str) -> Any:
    """The module's CK_FUNCTION_LIST (cached per module; the same one python-pkcs11 calls into)."""
    with _lock:
        funcs = _lists.get(module_path)
        if funcs is None:
            so = ctypes.CDLL(module_path)  # same handle as python-pkcs11's dlopen
            get_list = so.C_GetFunctionList
            get_list.restype = ctypes.c_ulong
            get_list.argtypes = (ctypes.POINTER(ctypes.POINTER(_FunctionList)),)
            funcs = ctypes.POINTER(_FunctionList)()
            rv = get_list(ctypes.byref(funcs))
            if rv != _CKR_OK:
                raise _error(rv)
            _lists[module_path] = funcs
        return funcs.contents


def aes_gcm_decrypt_into_buffer(
    module_path: str, session_handle: int, key_handle: int, nonce: bytes, aad: bytes, ciphertext: bytes
) -> bytearray:
    """Decrypt `ciphertext` (with its 16-byte tag) with the AES key `key_handle`, in the token.

    Returns the plaintext in a new bytearray that the caller must wipe. Raises the python-pkcs11
    exception for the token's error (EncryptedDataInvalid for a wrong tag or associated data).
    """
    funcs = function_list(module_path)
    params = _GcmParams(nonce, len(nonce), len(nonce) * 8, aad, len(aad), 128)
    mechanism = _Mechanism(_CKM_AES_GCM, ctypes.cast(ctypes.byref(params), ctypes.c_void_p), ctypes.sizeof(params))
    rv = funcs.C_DecryptInit(session_handle, ctypes.byref(mechanism), key_handle)
    if rv != _CKR_OK:
        raise _error(rv)
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
        if rv != _CKR_OK:
            wipe(out)
            raise _error(rv)
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


__all__ = ["aes_gcm_decrypt_into_buffer", "function_list"]
