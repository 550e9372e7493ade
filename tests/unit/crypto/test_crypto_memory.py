"""Secret buffers: made in place, used without copies, zeroed."""

from __future__ import annotations

import hashlib

from strongroom.crypto import ed25519, secp256k1
from strongroom.crypto.memory import random_buffer, wipe


def test_random_buffer_is_a_fresh_bytearray() -> None:
    a, b = random_buffer(32), random_buffer(32)
    assert type(a) is bytearray and len(a) == 32
    assert a != b


def test_wipe_zeroes_in_place() -> None:
    buf = bytearray(b"\x5a" * 40)
    wipe(buf)
    assert buf == bytearray(40)
    wipe(bytearray())  # no-op


def test_generators_return_wipeable_buffers() -> None:
    for secret in (secp256k1.generate_secret(), ed25519.generate_seed()):
        assert type(secret) is bytearray and len(secret) == 32
        wipe(secret)


def test_signing_from_a_buffer_matches_bytes_and_leaves_the_buffer_intact() -> None:
    digest = hashlib.sha256(b"m").digest()
    k1 = bytearray(b"\x46" * 32)
    assert secp256k1.sign_digest(k1, digest) == secp256k1.sign_digest(bytes(k1), digest)
    assert secp256k1.public_key_from_secret(k1) == secp256k1.public_key_from_secret(bytes(k1))
    assert k1 == bytearray(b"\x46" * 32)
    seed = bytearray(b"\x07" * 32)
    assert ed25519.sign(seed, b"m") == ed25519.sign(bytes(seed), b"m")
    assert ed25519.public_key_from_seed(seed) == ed25519.public_key_from_seed(bytes(seed))
    assert seed == bytearray(b"\x07" * 32)
