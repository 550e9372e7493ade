"""The one PKCS#11-error table (`hsm/errors.py`): the rules themselves, and real token failures
reaching callers through it with the same error classes (and so HTTP statuses) as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pkcs11.exceptions as p11
import pytest
from pkcs11 import ObjectClass

from strongroom.errors import ConfigError, ErrorCode, Grpc, HsmError, StrongroomError, Unavailable
from strongroom.hsm import Capabilities, Curve, KeyStore
from strongroom.hsm.errors import ONCE_ONLY_HINT, RULES, RV_EXCEPTIONS, exception_for, token_error
from strongroom.softhsm import SoftHsmToken

REPO = Path(__file__).resolve().parents[2]

# -- the table -------------------------------------------------------------------------------------------


def test_every_rule_names_a_strongroom_error_and_the_catch_all_is_an_hsm_error() -> None:
    assert RULES[p11.PKCS11Error][0] is HsmError
    for exc, (kind, _template) in RULES.items():
        assert issubclass(exc, p11.PKCS11Error)
        assert issubclass(kind, StrongroomError)


@pytest.mark.parametrize(
    ("err", "kind", "message"),
    [
        (p11.NoSuchToken(), ConfigError, "no pkcs11 token labelled `tok`"),
        (p11.PinIncorrect(), ConfigError, "the token rejected the configured pin"),
        (p11.NoSuchKey(), HsmError, "key `tok` is not in the token"),
        (p11.MultipleObjectsReturned(), HsmError, "the token holds more than one `tok`"),
        (p11.DeviceRemoved(), HsmError, "signing: DeviceRemoved"),
        (p11.PinLocked(), HsmError, "signing: PinLocked"),  # no rule of its own: the catch-all
        (p11.PKCS11Error("Unmapped error code 0x999"), HsmError, "signing: PKCS11Error"),
    ],
)
def test_rules(err: p11.PKCS11Error, kind: type[StrongroomError], message: str) -> None:
    mapped = token_error(err, "signing", "tok")
    assert type(mapped) is kind
    assert mapped.message == message


def test_codes_are_the_ones_clients_saw_before() -> None:
    """HsmError is INTERNAL (HTTP 500, or the activity's failure code 13); ConfigError stops start-up."""
    failed = token_error(p11.DeviceError(), "token signing failed")
    assert (failed.grpc, failed.code) == (Grpc.INTERNAL, ErrorCode.INTERNAL)
    config = token_error(p11.PinIncorrect(), "cannot log in to the token")
    assert (config.grpc, config.code) == (Grpc.FAILED_PRECONDITION, ErrorCode.INTERNAL)


def test_once_only_keys_say_how_to_repair_a_duplicate() -> None:
    mapped = token_error(p11.MultipleObjectsReturned(), "cannot find", "strongroom-kek", once_only=True)
    assert mapped.message == "the token holds more than one `strongroom-kek`" + ONCE_ONLY_HINT
    # the hint is only for duplicates
    assert token_error(p11.DeviceError(), "x", "strongroom-kek", once_only=True).message == "x: DeviceError"


def test_an_error_that_already_left_the_token_layer_keeps_its_class_and_gains_context() -> None:
    inner = token_error(p11.NoSuchKey(), "cannot find a key", "strongroom-kek")
    outer = token_error(inner, "the token does not answer as logged in")
    assert type(outer) is HsmError
    assert outer.message == "the token does not answer as logged in: key `strongroom-kek` is not in the token"
    unavailable = token_error(Unavailable("clock", code=ErrorCode.INVALID_TIME), "ping")
    assert type(unavailable) is Unavailable and unavailable.code is ErrorCode.INVALID_TIME


def test_return_values_map_to_python_pkcs11s_exceptions() -> None:
    assert type(exception_for(0x40)) is p11.EncryptedDataInvalid
    assert type(exception_for(0x82)) is p11.ObjectHandleInvalid  # `Token.use_key` retries on it
    assert type(exception_for(0x101)) is p11.UserNotLoggedIn
    unknown = exception_for(0x1234)
    assert type(unknown) is p11.PKCS11Error and "0x1234" in str(unknown)
    assert len(set(RV_EXCEPTIONS.values())) == len(RV_EXCEPTIONS)


# -- real token failures -----------------------------------------------------------------------------------


@pytest.mark.softhsm
def test_a_missing_key_and_a_broken_seal_are_hsm_errors(token: Any) -> None:
    with pytest.raises(HsmError, match=r"^key `no-such-key` is not in the token$"):
        token.use_key("no-such-key", ObjectClass.PRIVATE_KEY, lambda k: k)
    ks = KeyStore(token, Capabilities(secp256k1=False, ed25519=False, aes_gcm=True, mechanisms=frozenset()))
    ref = ks.generate(str(uuid.uuid4()), Curve.ED25519)
    assert ref.wrapped is not None
    tampered = replace(ref, wrapped=ref.wrapped[:-1] + bytes([ref.wrapped[-1] ^ 1]))
    with pytest.raises(HsmError, match=rf"^cannot unseal key `{ref.key_id}`: \w+$"):  # SoftHSM2 says GeneralError
        ks.sign_ed25519(tampered, b"m")


_OPEN = """
import json, sys
from strongroom.errors import StrongroomError
from strongroom.hsm import Token
out = []
for label, pin in json.loads(sys.argv[1]):
    try:
        Token(sys.argv[2], label, pin).close()
        out.append(["ok", ""])
    except StrongroomError as err:
        out.append([type(err).__name__, err.message])
print(json.dumps(out))
"""


@pytest.mark.softhsm
def test_a_wrong_label_or_pin_stops_start_up_with_a_config_error(softhsm_token: SoftHsmToken) -> None:
    """In a process of its own: login is per application, and this one is logged in already."""
    env = {**os.environ, **softhsm_token.env()}
    cases = [["no-such-token", "1234"], [softhsm_token.label, "not-the-pin"], [softhsm_token.label, ""]]
    run = subprocess.run(
        [sys.executable, "-c", _OPEN, json.dumps(cases), softhsm_token.module],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    results = json.loads(run.stdout)
    assert results[0] == ["ConfigError", "no pkcs11 token labelled `no-such-token`"]
    assert results[1] == ["ConfigError", "the token rejected the configured pin"]
    assert results[2][0] in ("ConfigError", "HsmError")  # an empty PIN: refused either way
