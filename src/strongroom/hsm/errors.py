"""The one table from PKCS#11 failures to Strongroom errors.

python-pkcs11 turns every return value (CKR_*) into one exception class at one choke point
(`map_rv_to_error`); this module is the same choke point one level up, for the whole token layer:

- `exception_for(rv)`: a return value of a function we call through the module's own function list
  (`cryptoki`: unsealing, OS locking) becomes the python-pkcs11 exception python-pkcs11 would raise
  for it, so callers (e.g. `Token.use_key` retrying on a stale handle) see no difference;
- `token_error(err, doing, label)`: a python-pkcs11 exception becomes the Strongroom error that
  leaves the token layer. The call site says what it was doing and on which object; the rule for
  the exception's class says which error that is and how its message reads.

Which Strongroom error (and so which HTTP status) a token failure becomes is decided here only:
a token that fails is `HsmError` (gRPC INTERNAL, recorded as the activity's failure), a token or
PIN that the configuration names wrongly is `ConfigError` (start-up). Messages name the failure's
class and the object's label, never secret material.
"""

from __future__ import annotations

from typing import Final

import pkcs11.exceptions as p11

from strongroom.errors import ConfigError, HsmError, StrongroomError

ONCE_ONLY_HINT: Final = (
    ": two daemons created it at once on a fresh token; keep the one in use and delete the other "
    "(see docs/replicas.md). `strongroom init` creates it once."
)
"""Appended when the duplicated object is one of the token's own once-only keys (KEK, audit, notary)."""

# CKR_* value -> the python-pkcs11 exception for it (the ones a decrypt or an initialise can return);
# anything else: a plain PKCS11Error naming the value.
RV_EXCEPTIONS: Final[dict[int, type[p11.PKCS11Error]]] = {
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

# python-pkcs11 exception class -> (Strongroom error, message). The message may use `{doing}` (what
# the call site was doing), `{label}` (the object it was about), `{name}` (the exception's class)
# and `{hint}`. The most specific class of the exception's MRO that is listed wins.
RULES: Final[dict[type[p11.PKCS11Error], tuple[type[StrongroomError], str]]] = {
    p11.NoSuchToken: (ConfigError, "no pkcs11 token labelled `{label}`"),
    p11.PinIncorrect: (ConfigError, "the token rejected the configured pin"),
    p11.NoSuchKey: (HsmError, "key `{label}` is not in the token"),
    p11.MultipleObjectsReturned: (HsmError, "the token holds more than one `{label}`{hint}"),
    p11.PKCS11Error: (HsmError, "{doing}: {name}"),
}


def exception_for(rv: int) -> p11.PKCS11Error:
    """The python-pkcs11 exception for the return value `rv` of a function called through ctypes."""
    cls = RV_EXCEPTIONS.get(rv)
    return cls() if cls is not None else p11.PKCS11Error(f"CKR 0x{rv:x}")


def token_error(
    err: p11.PKCS11Error | StrongroomError, doing: str, label: str = "", *, once_only: bool = False
) -> StrongroomError:
    """The Strongroom error for `err`, raised while `doing` (on the object `label`).

    A Strongroom error that already left the token layer keeps its class and gains the context
    (`doing: its message`). `once_only` adds, for a duplicated object, how to repair it.
    """
    if isinstance(err, StrongroomError):
        return type(err)(f"{doing}: {err.message}", code=err.code)
    for cls in type(err).__mro__:
        rule = RULES.get(cls)
        if rule is not None:
            kind, template = rule
            hint = ONCE_ONLY_HINT if once_only else ""
            return kind(template.format(doing=doing, label=label, name=type(err).__name__, hint=hint))
    raise AssertionError("unreachable: PKCS11Error has a rule")  # pragma: no cover


__all__ = ["ONCE_ONLY_HINT", "RULES", "RV_EXCEPTIONS", "exception_for", "token_error"]
