"""The token layer against a real SoftHSM2 token."""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import Any

import pytest
from coincurve import PublicKey

from strongroom.crypto import ed25519, secp256k1
from strongroom.errors import InvalidSignature
from strongroom.hsm import Backend, Capabilities, Curve, KeyStore

pytestmark = pytest.mark.softhsm


@pytest.fixture(scope="module")
def keystore(token: Any) -> KeyStore:
    return KeyStore(token, token.probe())


def test_probe_finds_both_curves_in_softhsm(token: Any) -> None:
    caps: Capabilities = token.probe()
    assert caps.secp256k1
    assert caps.ed25519
    assert caps.aes_gcm
    assert {"CKM_ECDSA", "CKM_EDDSA", "CKM_AES_GCM"} <= caps.mechanisms


def test_token_key_is_sensitive_non_extractable_persistent(keystore: KeyStore, token: Any) -> None:
    from pkcs11 import Attribute, ObjectClass

    ref = keystore.generate(str(uuid.uuid4()), Curve.SECP256K1)
    assert ref.backend is Backend.TOKEN
    assert ref.wrapped is None
    priv = token.session().get_key(object_class=ObjectClass.PRIVATE_KEY, label=ref.key_id)
    assert priv[Attribute.SENSITIVE] is True
    assert priv[Attribute.EXTRACTABLE] is False
    assert priv[Attribute.TOKEN] is True
    assert priv[Attribute.PRIVATE] is True
    assert priv[Attribute.ID] == ref.key_id.encode()


def test_token_secp256k1_signatures_are_low_s_recoverable_and_verify(keystore: KeyStore) -> None:
    ref = keystore.generate(str(uuid.uuid4()), Curve.SECP256K1)
    vs = set()
    for i in range(2000):
        digest = hashlib.sha256(i.to_bytes(4, "big")).digest()
        sig = keystore.sign_secp256k1(ref, digest)
        assert 0 < sig.s <= secp256k1.HALF_N
        recovered = PublicKey.from_signature_and_message(sig.to_bytes65(), digest, hasher=None)
        assert recovered.format(compressed=False) == ref.public_key
        vs.add(sig.v)
    assert vs == {0, 1}  # both recovery ids occur, so the trial recovery is exercised


def test_token_ed25519_matches_an_independent_verifier(keystore: KeyStore) -> None:
    from nacl.signing import VerifyKey

    ref = keystore.generate(str(uuid.uuid4()), Curve.ED25519)
    assert ref.backend is Backend.TOKEN
    assert len(ref.public_key) == 32
    for msg in (b"", b"hello", bytes(range(256)) * 4):
        sig = keystore.sign_ed25519(ref, msg)
        VerifyKey(ref.public_key).verify(msg, sig)


def test_concurrent_signing_on_many_threads(keystore: KeyStore) -> None:
    """Thousands of signatures from 4 threads, each on its own session: no crash, all valid."""
    refs = [keystore.generate(str(uuid.uuid4()), c) for c in (Curve.SECP256K1, Curve.ED25519)]
    errors: list[BaseException] = []
    counts = [0] * 4

    def work(n: int) -> None:
        try:
            for i in range(600):
                msg = hashlib.sha256(f"{n}:{i}".encode()).digest()
                if i % 2:
                    keystore.sign_ed25519(refs[1], msg)
                else:
                    keystore.sign_secp256k1(refs[0], msg)
                counts[n] += 1
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(counts) == 2400


def test_software_fallback_seals_secret_under_token_kek(token: Any) -> None:
    caps = Capabilities(secp256k1=False, ed25519=False, aes_gcm=True, mechanisms=frozenset())
    ks = KeyStore(token, caps)
    for curve in (Curve.SECP256K1, Curve.ED25519):
        ref = ks.generate(str(uuid.uuid4()), curve)
        assert ref.backend is Backend.SOFTWARE
        assert ref.wrapped is not None
        assert len(ref.wrapped) == 12 + 32 + 16
        digest = hashlib.sha256(b"fallback").digest()
        if curve is Curve.SECP256K1:
            sig = ks.sign_secp256k1(ref, digest)
            secp256k1.normalize(digest, sig.r, sig.s, ref.public_key)
        else:
            ed25519.verify(ref.public_key, digest, ks.sign_ed25519(ref, digest))


def test_sealed_secret_is_bound_to_its_key_id(token: Any) -> None:
    """The key id is AES-GCM associated data: a blob moved to another key does not open."""
    from dataclasses import replace

    from strongroom.errors import HsmError

    ks = KeyStore(token, Capabilities(secp256k1=False, ed25519=False, aes_gcm=True, mechanisms=frozenset()))
    ref = ks.generate(str(uuid.uuid4()), Curve.SECP256K1)
    moved = replace(ref, key_id=str(uuid.uuid4()))
    with pytest.raises(HsmError):
        ks.sign_secp256k1(moved, bytes(32))
    tampered = replace(ref, wrapped=ref.wrapped[:-1] + bytes([ref.wrapped[-1] ^ 1]) if ref.wrapped else None)
    with pytest.raises(HsmError):
        ks.sign_secp256k1(tampered, bytes(32))


def test_signature_is_verified_before_release(keystore: KeyStore) -> None:
    """A signature that does not match the recorded public key is never returned."""
    from dataclasses import replace

    ref = keystore.generate(str(uuid.uuid4()), Curve.SECP256K1)
    other = keystore.generate(str(uuid.uuid4()), Curve.SECP256K1)
    wrong = replace(ref, public_key=other.public_key)
    with pytest.raises(InvalidSignature):
        keystore.sign_secp256k1(wrong, bytes(range(32)))


def test_a_duplicated_kek_is_refused_not_guessed(token: Any) -> None:
    """Two KEKs with the same label (two daemons on a fresh token) must stop the fallback: picking
    one would leave secrets sealed under the other unopenable."""
    from pkcs11 import Attribute, KeyType

    from strongroom.errors import HsmError
    from strongroom.hsm.keystore import KEK_LABEL

    ks = KeyStore(token, Capabilities(secp256k1=False, ed25519=False, aes_gcm=True, mechanisms=frozenset()))
    ks.ensure_kek()
    duplicate = token.session().generate_key(
        KeyType.AES,
        256,
        store=True,
        label=KEK_LABEL,
        template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
    )
    try:
        fresh = KeyStore(token, ks.capabilities)
        with pytest.raises(HsmError, match="more than one `strongroom-kek`"):
            fresh.ensure_kek()
    finally:
        duplicate.destroy()
    KeyStore(token, ks.capabilities).ensure_kek()  # one again: fine
