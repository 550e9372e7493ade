"""HPKE base mode, DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM: RFC 9180 vector, cross-checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hpke as pyca_hpke
from cryptography.hazmat.primitives.asymmetric import ec

from strongroom.crypto import hpke

VECTORS = Path(__file__).parents[2] / "vectors"
V: dict[str, Any] = json.loads((VECTORS / "rfc9180_hpke_p256_sha256_aes256gcm.json").read_text(encoding="utf-8"))
INFO = bytes.fromhex(V["info"])
AAD = bytes.fromhex(V["aad"])
PLAINTEXT = bytes.fromhex(V["plaintext"])
SK_R = bytes.fromhex(V["skRm"])
PK_R = bytes.fromhex(V["pkRm"])
ENC = bytes.fromhex(V["enc"])
CIPHERTEXT = bytes.fromhex(V["ciphertext"])
PYCA_SUITE = pyca_hpke.Suite(pyca_hpke.KEM.P256, pyca_hpke.KDF.HKDF_SHA256, pyca_hpke.AEAD.AES_256_GCM)


def test_vector_is_for_this_suite() -> None:
    assert (V["mode"], V["kem_id"], V["kdf_id"], V["aead_id"]) == (0, hpke.KEM_ID, hpke.KDF_ID, hpke.AEAD_ID)
    assert hpke.public_key_of(SK_R) == PK_R


def test_key_schedule_matches_the_vector() -> None:
    key, base_nonce = hpke.key_schedule(bytes.fromhex(V["shared_secret"]), INFO)
    assert key.hex() == V["key"]
    assert base_nonce.hex() == V["base_nonce"]


def test_seal_with_the_vector_ephemeral_key_reproduces_enc_and_ciphertext() -> None:
    ephemeral = ec.derive_private_key(int(V["skEm"], 16), ec.SECP256R1())
    enc, ctx = hpke._setup_sender(PK_R, INFO, ephemeral)
    assert enc == ENC
    assert ctx.seal(PLAINTEXT, AAD) == CIPHERTEXT


def test_open_the_vector_ciphertext() -> None:
    out = hpke.open(SK_R, ENC, CIPHERTEXT, INFO, AAD)
    assert isinstance(out, bytearray)
    assert bytes(out) == PLAINTEXT


def test_open_with_an_external_dh_callback() -> None:
    private = ec.derive_private_key(int.from_bytes(SK_R, "big"), ec.SECP256R1())
    calls: list[bytes] = []

    def dh(peer: bytes) -> bytes:
        calls.append(peer)
        return private.exchange(ec.ECDH(), hpke.load_public_key(peer))

    ctx = hpke.setup_receiver_with_dh(dh, PK_R, ENC, INFO)
    assert bytes(ctx.open(CIPHERTEXT, AAD)) == PLAINTEXT
    assert calls == [ENC]


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("ciphertext", lambda b: b[:-1] + bytes([b[-1] ^ 1])),  # tag
        ("ciphertext", lambda b: bytes([b[0] ^ 0x80]) + b[1:]),  # body
        ("aad", lambda b: b + b"x"),
        ("info", lambda b: b[:-1]),
    ],
)
def test_any_change_fails_to_open(field: str, change: Any) -> None:
    args = {"ciphertext": CIPHERTEXT, "aad": AAD, "info": INFO}
    args[field] = change(args[field])
    with pytest.raises(hpke.OpenError):
        hpke.open(SK_R, ENC, args["ciphertext"], args["info"], args["aad"])


def test_wrong_receiver_key_fails_to_open() -> None:
    other, _ = hpke.generate_key_pair()
    with pytest.raises(hpke.OpenError):
        hpke.open(other, ENC, CIPHERTEXT, INFO, AAD)


def test_open_error_is_a_value_error() -> None:
    assert issubclass(hpke.OpenError, ValueError)


def test_round_trip_with_fresh_keys_and_empty_plaintext() -> None:
    sk, pk = hpke.generate_key_pair()
    for message in (b"", b"x", bytes(range(256)) * 5):
        enc, ct = hpke.seal(pk, message, b"turnkey_hpke", b"aad")
        assert len(enc) == hpke.N_ENC
        assert len(ct) == len(message) + hpke.N_T
        assert bytes(hpke.open(sk, enc, ct, b"turnkey_hpke", b"aad")) == message


def test_successive_messages_use_successive_nonces() -> None:
    sk, pk = hpke.generate_key_pair()
    enc, sender = hpke.setup_sender(pk, b"info")
    first, second = sender.seal(b"same"), sender.seal(b"same")
    assert first != second
    receiver = hpke.setup_receiver(sk, enc, b"info")
    with pytest.raises(hpke.OpenError):  # out of order: the receiver expects sequence number 0
        receiver.open(second)
    assert bytes(receiver.open(first)) == b"same"  # a failed open does not advance the sequence
    assert bytes(receiver.open(second)) == b"same"
    with pytest.raises(hpke.OpenError):
        receiver.open(first)


def test_pyca_hpke_opens_ours_and_we_open_pycas() -> None:
    # cryptography's HPKE (a separate implementation) takes no AAD in its public API: empty AAD here.
    sk, pk = hpke.generate_key_pair()
    enc, ct = hpke.seal(pk, b"from strongroom", b"turnkey_hpke", b"")
    assert PYCA_SUITE.decrypt(enc + ct, hpke.load_private_key(sk), info=b"turnkey_hpke") == b"from strongroom"
    blob = PYCA_SUITE.encrypt(b"from pyca", hpke.load_public_key(pk), info=b"turnkey_hpke")
    assert bytes(hpke.open(sk, blob[: hpke.N_ENC], blob[hpke.N_ENC :], b"turnkey_hpke", b"")) == b"from pyca"


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        PK_R[:-1],
        b"\x02" + PK_R[1:33],  # compressed form: RFC 9180 serialises P-256 keys uncompressed
        b"\x04" + bytes(64),  # not on the curve
        b"\x05" + PK_R[1:],
        "04" + PK_R[1:].hex(),  # a str, not bytes
    ],
)
def test_bad_public_keys_are_value_errors(bad: Any) -> None:
    with pytest.raises(ValueError, match="hpke"):
        hpke.seal(bad, b"m", b"", b"")
    with pytest.raises(ValueError, match="hpke"):
        hpke.open(SK_R, bad, CIPHERTEXT, INFO, AAD)


@pytest.mark.parametrize(
    "bad", [b"", bytes(32), bytes(31) + b"\x01" * 2, (hpke._ORDER).to_bytes(32, "big"), b"\xff" * 32, "00" * 32]
)
def test_bad_private_keys_are_value_errors(bad: Any) -> None:
    with pytest.raises(ValueError, match="hpke"):
        hpke.open(bad, ENC, CIPHERTEXT, INFO, AAD)


def test_short_ciphertext_is_an_open_error() -> None:
    with pytest.raises(hpke.OpenError):
        hpke.open(SK_R, ENC, CIPHERTEXT[: hpke.N_T - 1], INFO, AAD)
