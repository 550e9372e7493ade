"""secp256k1: normalisation (low-s + recovery id), key handling and DER verification."""

from __future__ import annotations

import hashlib

import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.crypto import secp256k1
from strongroom.crypto.encoding import der_to_rs, rs_to_der
from strongroom.crypto.keccak import keccak256
from strongroom.crypto.secp256k1 import HALF_N, N, RecoverableSignature
from strongroom.errors import InvalidSignature

SECRET = bytes.fromhex("4646464646464646464646464646464646464646464646464646464646464646")
DIGEST = hashlib.sha256(b"strongroom").digest()
G_COMPRESSED = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")
G_UNCOMPRESSED = bytes.fromhex(
    "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
)


def _cryptography_sign(secret: int, digest: bytes) -> tuple[int, int]:
    """Sign with OpenSSL via cryptography: random nonce, no low-s normalisation."""
    key = ec.derive_private_key(secret, ec.SECP256K1())
    return der_to_rs(key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256()))))


def _recover(digest: bytes, sig: RecoverableSignature) -> bytes:
    recovered = PublicKey.from_signature_and_message(sig.to_bytes65(), digest, hasher=None)
    out: bytes = recovered.format(compressed=False)
    return out


def test_constants() -> None:
    assert N == 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    assert HALF_N == N // 2
    assert HALF_N == 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0


@settings(max_examples=200, deadline=None)
@given(
    secret=st.integers(min_value=1, max_value=N - 1),
    digest=st.binary(min_size=32, max_size=32),
)
def test_normalize_property(secret: int, digest: bytes) -> None:
    secret_bytes = secret.to_bytes(32, "big")
    public_key = secp256k1.public_key_from_secret(secret_bytes)
    r, s = _cryptography_sign(secret, digest)

    sig = secp256k1.normalize(digest, r, s, public_key)

    assert sig.r == r
    assert sig.s in (s, N - s)
    assert 0 < sig.s <= HALF_N
    assert sig.v in (0, 1)
    assert len(sig.to_bytes65()) == 65
    assert _recover(digest, sig) == public_key
    assert address_from_public_key(_recover(digest, sig)) == address_from_public_key(public_key)
    # The compressed form of the key is accepted too and gives the same answer.
    assert secp256k1.normalize(digest, r, s, secp256k1.compress(public_key)) == sig

    with pytest.raises(InvalidSignature, match="secp256k1 signature does not verify"):
        secp256k1.normalize(digest, (r % (N - 1)) + 1, s, public_key)
    tampered_digest = bytes([digest[0] ^ 1]) + digest[1:]
    with pytest.raises(InvalidSignature):
        secp256k1.normalize(tampered_digest, r, s, public_key)


def test_high_s_flips_recovery_id() -> None:
    public_key = secp256k1.public_key_from_secret(SECRET)
    low = secp256k1.sign_digest(SECRET, DIGEST)
    assert low.s <= HALF_N

    high_s = N - low.s
    assert high_s > HALF_N
    # The high-s form recovers the same key only with the opposite recovery id ...
    flipped = RecoverableSignature(r=low.r, s=high_s, v=1 - low.v)
    assert (
        PublicKey.from_signature_and_message(flipped.to_bytes65(), DIGEST, hasher=None).format(compressed=False)
        == public_key
    )
    # ... and normalize turns it back into the low-s form with the low-s recovery id.
    assert secp256k1.normalize(DIGEST, low.r, high_s, public_key) == low


def test_normalize_rejects_wrong_key() -> None:
    sig = secp256k1.sign_digest(SECRET, DIGEST)
    other = secp256k1.public_key_from_secret(b"\x01" * 32)
    with pytest.raises(InvalidSignature):
        secp256k1.normalize(DIGEST, sig.r, sig.s, other)


@pytest.mark.parametrize(("r", "s"), [(0, 1), (1, 0), (N, 1), (1, N), (-1, 1)])
def test_normalize_rejects_out_of_range(r: int, s: int) -> None:
    with pytest.raises(InvalidSignature):
        secp256k1.normalize(DIGEST, r, s, secp256k1.public_key_from_secret(SECRET))


@pytest.mark.parametrize("digest", [b"", b"\x00" * 31, b"\x00" * 33])
def test_normalize_rejects_bad_digest(digest: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        secp256k1.normalize(digest, 1, 1, secp256k1.public_key_from_secret(SECRET))


def test_sign_digest_is_deterministic_and_verified() -> None:
    first = secp256k1.sign_digest(SECRET, DIGEST)
    assert first == secp256k1.sign_digest(SECRET, DIGEST)
    assert _recover(DIGEST, first) == secp256k1.public_key_from_secret(SECRET)
    with pytest.raises(ValueError):
        secp256k1.sign_digest(SECRET, b"short")


def test_generator_point_round_trip() -> None:
    assert secp256k1.decompress(G_COMPRESSED) == G_UNCOMPRESSED
    assert secp256k1.compress(G_UNCOMPRESSED) == G_COMPRESSED
    assert secp256k1.public_key_from_secret((1).to_bytes(32, "big")) == G_UNCOMPRESSED


def test_key_generation_and_formats() -> None:
    secret = secp256k1.generate_secret()
    assert len(secret) == 32
    assert 0 < int.from_bytes(secret, "big") < N
    uncompressed = secp256k1.public_key_from_secret(secret)
    compressed = secp256k1.public_key_from_secret(secret, compressed=True)
    assert len(uncompressed) == 65
    assert uncompressed[0] == 4
    assert len(compressed) == 33
    assert secp256k1.compress(uncompressed) == compressed
    assert secp256k1.compress(compressed) == compressed
    assert secp256k1.decompress(compressed) == uncompressed
    assert secp256k1.decompress(uncompressed) == uncompressed


@pytest.mark.parametrize("secret", [b"\x00" * 32, N.to_bytes(32, "big"), b"\x01" * 31, b"\xff" * 32])
def test_invalid_secrets(secret: bytes) -> None:
    with pytest.raises(ValueError):
        secp256k1.public_key_from_secret(secret)


@pytest.mark.parametrize(
    "public_key",
    [
        b"",
        b"\x02" + b"\x00" * 32,
        b"\x04" + b"\x00" * 64,
        b"\x05" + b"\x11" * 32,
        b"\x06" + bytes.fromhex("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798") + b"\x00" * 32,
        bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798") + b"\x00",
    ],
)
def test_invalid_points(public_key: bytes) -> None:
    with pytest.raises(ValueError):
        secp256k1.decompress(public_key)
    with pytest.raises(ValueError):
        secp256k1.compress(public_key)


def test_verify_sha256_der_accepts_high_s_and_padding() -> None:
    secret = int.from_bytes(SECRET, "big")
    key = ec.derive_private_key(secret, ec.SECP256K1())
    der = key.sign(b"stamp body", ec.ECDSA(hashes.SHA256()))
    public_key = secp256k1.public_key_from_secret(SECRET, compressed=True)
    secp256k1.verify_sha256_der(public_key, b"stamp body", der)

    r, s = der_to_rs(der)
    twin = rs_to_der(r, N - s)
    secp256k1.verify_sha256_der(public_key, b"stamp body", twin)
    secp256k1.verify_sha256_der(secp256k1.decompress(public_key), b"stamp body", twin)

    padded_r = b"\x00\x00" + r.to_bytes(33, "big")
    padded = b"\x02" + bytes([len(padded_r)]) + padded_r + twin[4 + twin[3] :]
    padded = b"\x30" + bytes([len(padded)]) + padded
    secp256k1.verify_sha256_der(public_key, b"stamp body", padded)

    with pytest.raises(InvalidSignature):
        secp256k1.verify_sha256_der(public_key, b"stamp bodY", der)
    with pytest.raises(InvalidSignature):
        secp256k1.verify_sha256_der(public_key, b"stamp body", der + b"\x00")
    with pytest.raises(InvalidSignature):
        secp256k1.verify_sha256_der(public_key, b"stamp body", rs_to_der(N, s))
    with pytest.raises(ValueError):
        secp256k1.verify_sha256_der(b"\x02" + b"\x00" * 32, b"stamp body", der)


def test_verify_eip191_der() -> None:
    message = b"hello strongroom"
    digest = secp256k1.eip191_digest(message)
    assert digest == keccak256(b"\x19Ethereum Signed Message:\n16" + message)
    sig = secp256k1.sign_digest(SECRET, digest)
    public_key = secp256k1.public_key_from_secret(SECRET)
    secp256k1.verify_eip191_der(public_key, message, rs_to_der(sig.r, sig.s))
    secp256k1.verify_eip191_der(public_key, message, rs_to_der(sig.r, N - sig.s))
    with pytest.raises(InvalidSignature):
        secp256k1.verify_eip191_der(public_key, message + b"!", rs_to_der(sig.r, sig.s))
    with pytest.raises(InvalidSignature):
        secp256k1.verify_sha256_der(public_key, message, rs_to_der(sig.r, sig.s))
