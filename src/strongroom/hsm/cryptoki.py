"""The module's own CK_FUNCTION_LIST, for the few calls python-pkcs11 cannot make as we need them.

`locking` re-initialises the module with OS locking (`C_Finalize`, `C_Initialize`); `unseal`
decrypts into a buffer we own (`C_DecryptInit`, `C_Decrypt`). Both go through the function list
python-pkcs11 itself calls into (the same `dlopen` handle), fetched once per module.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Final

from strongroom.hsm.errors import exception_for

CKR_OK: Final = 0


class Mechanism(ctypes.Structure):
    _fields_ = (("mechanism", ctypes.c_ulong), ("pParameter", ctypes.c_void_p), ("ulParameterLen", ctypes.c_ulong))


_InitFn = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p)
_DecryptInit = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_ulong, ctypes.POINTER(Mechanism), ctypes.c_ulong)
_Decrypt = ctypes.CFUNCTYPE(
    ctypes.c_ulong, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.POINTER(ctypes.c_ulong)
)

# CK_FUNCTION_LIST (PKCS#11 2.x; 3.0's list has the same prefix): a CK_VERSION, C_Initialize,
# C_Finalize, then these 31 entries, then C_DecryptInit and C_Decrypt.
_UNUSED: Final = (
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
        ("C_Initialize", _InitFn),
        ("C_Finalize", _InitFn),
        *((name, ctypes.c_void_p) for name in _UNUSED),
        ("C_DecryptInit", _DecryptInit),
        ("C_Decrypt", _Decrypt),
    )


_lists: dict[str, Any] = {}
_lock = threading.Lock()


def function_list(module_path: str) -> Any:
    """The module's CK_FUNCTION_LIST (cached per module; the same one python-pkcs11 calls into).

    A failing `C_GetFunctionList` raises the python-pkcs11 exception for its return value."""
    with _lock:
        funcs = _lists.get(module_path)
        if funcs is None:
            so = ctypes.CDLL(module_path)  # same handle as python-pkcs11's dlopen
            get_list = so.C_GetFunctionList
            get_list.restype = ctypes.c_ulong
            get_list.argtypes = (ctypes.POINTER(ctypes.POINTER(_FunctionList)),)
            funcs = ctypes.POINTER(_FunctionList)()
            rv = get_list(ctypes.byref(funcs))
            if rv != CKR_OK:
                raise exception_for(rv)
            _lists[module_path] = funcs
        return funcs.contents


__all__ = ["CKR_OK", "Mechanism", "function_list"]
