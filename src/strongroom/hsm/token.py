"""Synchronous access to one PKCS#11 token: login, per-thread sessions, capability probe.

Thread model: the module is initialised with OS locking (see `locking.py`), one session is
held open for the login (login is per application), and every worker thread gets its own
session. A session is never shared between threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from strongroom.crypto import ed25519, secp256k1
from strongroom.errors import ConfigError, InvalidSignature
from strongroom.hsm.errors import token_error
from strongroom.hsm.locking import enable_os_locking
from strongroom.hsm.types import Capabilities

_T = TypeVar("_T")

SECP256K1_OID: Final = "1.3.132.0.10"
ED25519_OID: Final = "1.3.101.112"

_PROBE_MECHANISMS: Final = {
    "CKM_EC_KEY_PAIR_GEN": Mechanism.EC_KEY_PAIR_GEN,
    "CKM_ECDSA": Mechanism.ECDSA,
    "CKM_EC_EDWARDS_KEY_PAIR_GEN": Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
    "CKM_EDDSA": Mechanism.EDDSA,
    "CKM_AES_KEY_GEN": Mechanism.AES_KEY_GEN,
    "CKM_AES_GCM": Mechanism.AES_GCM,
}


def ec_params(oid: str) -> bytes:
    return bytes(encode_named_curve_parameters(oid))


def decode_ec_point(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point on most tokens; unwrap it."""
    if len(value) >= 2 and value[0] == 0x04 and value[1] == len(value) - 2 and value[1] < 0x80:
        return value[2:]
    if len(value) >= 3 and value[0] == 0x04 and value[1] == 0x81 and value[2] == len(value) - 3:
        return value[3:]
    return value


class Token:
    """An open, logged-in PKCS#11 token."""

    def __init__(self, module: str, label: str, pin: str) -> None:
        if not os.path.isfile(module):
            raise ConfigError(f"pkcs11 module `{module}` does not exist")
        try:
            lib = pkcs11.lib(module)
            enable_os_locking(module)
            self._token = lib.get_token(token_label=label)
        except pkcs11.PKCS11Error as err:
            raise token_error(err, "cannot open pkcs11 module", label) from err
        self._login = self._log_in(pin)
        self.label: Final = label
        self.module: Final = module
        self._local = threading.local()
        self._sessions: list[Any] = []
        self._sessions_lock = threading.Lock()

    def session(self) -> Any:
        """This thread's own session (opened on first use)."""
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._token.open(rw=True)
            self._local.session = s
            self._local.keys = {}
            with self._sessions_lock:
                self._sessions.append(s)
        return s

    def thread_cache(self) -> dict[str, Any]:
        """Per-thread cache of key objects bound to this thread's session."""
        self.session()
        cache: dict[str, Any] = self._local.keys
        return cache

    def mechanisms(self) -> frozenset[str]:
        names = set()
        offered = set(self._token.slot.get_mechanisms())
        for name, mech in _PROBE_MECHANISMS.items():
            if mech in offered:
                names.add(name)
        return frozenset(names)

    def probe(self) -> Capabilities:
        """Find out what the token really does: mechanisms listed *and* a trial key that verifies."""
        mechs = self.mechanisms()
        notes: list[str] = []
        s = self.session()

        def trial(name: str, needs: tuple[str, ...], fn: Callable[[], None]) -> bool:
            missing = [m for m in needs if m not in mechs]
            if missing:
                notes.append(f"{name}: token lacks {', '.join(missing)}")
                return False
            try:
                fn()
            except (pkcs11.PKCS11Error, InvalidSignature, ValueError) as err:
                notes.append(f"{name}: trial failed ({type(err).__name__})")
                return False
            return True

        def secp() -> None:
            pub, priv = s.generate_keypair(
                KeyType.EC,
                store=False,
                public_template={Attribute.EC_PARAMS: ec_params(SECP256K1_OID)},
            )
            point = decode_ec_point(bytes(pub[Attribute.EC_POINT]))
            digest = hashlib.sha256(b"strongroom probe").digest()
            raw = bytes(priv.sign(digest, mechanism=Mechanism.ECDSA))
            secp256k1.normalize(digest, int.from_bytes(raw[:32]), int.from_bytes(raw[32:]), point)

        def ed() -> None:
            pub, priv = s.generate_keypair(
                KeyType.EC_EDWARDS,
                store=False,
                mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                public_template={Attribute.EC_PARAMS: ec_params(ED25519_OID)},
            )
            point = decode_ec_point(bytes(pub[Attribute.EC_POINT]))
            sig = bytes(priv.sign(b"strongroom probe", mechanism=Mechanism.EDDSA))
            ed25519.verify(point, b"strongroom probe", sig)

        return Capabilities(
            secp256k1=trial("secp256k1", ("CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA"), secp),
            ed25519=trial("ed25519", ("CKM_EC_EDWARDS_KEY_PAIR_GEN", "CKM_EDDSA"), ed),
            aes_gcm="CKM_AES_GCM" in mechs and "CKM_AES_KEY_GEN" in mechs,
            mechanisms=mechs,
            notes=tuple(notes),
        )

    def relogin(self, pin: str) -> None:
        """Log in again (after the token was reset or the login session lost).

        The old login session is closed first: python-pkcs11 closes a user session with
        C_Logout, and login is per application, so closing it afterwards would log out the new
        login too.
        """
        with contextlib.suppress(pkcs11.PKCS11Error):
            self._login.close()
        self._login = self._log_in(pin)

    def _log_in(self, pin: str) -> Any:
        """The session that holds this application's login."""
        try:
            return self._token.open(user_pin=pin, rw=True)
        except pkcs11.UserAlreadyLoggedIn:
            # Another Token object in this process already logged in (login is per application).
            return self._token.open(rw=True)
        except pkcs11.PKCS11Error as err:
            raise token_error(err, "cannot log in to the token") from err

    def use_key(self, label: str, object_class: ObjectClass, operation: Callable[[Any], _T]) -> _T:
        """Run `operation` on the key labelled `label`, through this thread's handle cache.

        A cached handle can go stale (the token was reset, the object re-created): then the entry
        is dropped, the key looked up again, and the operation retried once.
        """
        cache = self.thread_cache()
        for attempt in range(2):
            key = cache.get(label)
            if key is None:
                try:
                    key = self.session().get_key(object_class=object_class, label=label)
                except (pkcs11.NoSuchKey, pkcs11.MultipleObjectsReturned) as err:
                    raise token_error(err, "cannot find a key in the token", label) from err
                cache[label] = key
            try:
                return operation(key)
            except pkcs11.ObjectHandleInvalid:
                cache.pop(label, None)
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._sessions_lock:
            for s in self._sessions:
                with contextlib.suppress(pkcs11.PKCS11Error):
                    s.close()
            self._sessions.clear()
        with contextlib.suppress(pkcs11.PKCS11Error):
            self._login.close()
