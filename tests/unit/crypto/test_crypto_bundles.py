"""Turnkey export/import bundles: a real Turnkey bundle, round trips, strict parsing (with a fuzz test)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.crypto import bundles, hpke, p256
from strongroom.crypto.bundles import BundleError, BundleSigner
from strongroom.crypto.encoding import der_to_rs, rs_to_der

VECTORS = Path(__file__).parents[2] / "vectors"
TK: dict[str, Any] = json.loads((VECTORS / "turnkey_export_bundle.json").read_text(encoding="utf-8"))
ORG = "f9a31c64-d604-42e4-9bef-a773096afad7"
USER = "2b4ad8b2-2c4c-4e1a-9a8e-1d3c9b8f0a11"


def _signer() -> tuple[BundleSigner, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    return BundleSigner(
        hpke._serialize_public(public).hex(), lambda data: key.sign(data, ec.ECDSA(hashes.SHA256()))
    ), public


SIGNER, SIGNER_KEY = _signer()


def test_opens_a_real_turnkey_export_bundle() -> None:
    out = bundles.open_export_bundle(
        TK["export_bundle"], bytes.fromhex(TK["embedded_private_key"]), TK["organization_id"],
        TK["production_signer_public_key"],
    )  # fmt: skip
    assert out.decode("utf-8") == TK["mnemonic"]


def test_real_bundle_refused_for_another_signer_or_organization() -> None:
    key = bytes.fromhex(TK["embedded_private_key"])
    with pytest.raises(BundleError, match="unexpected key"):
        bundles.open_export_bundle(TK["export_bundle"], key, TK["organization_id"], SIGNER.public_key)
    with pytest.raises(BundleError, match="another organization"):
        bundles.open_export_bundle(TK["export_bundle"], key, "other-org", TK["production_signer_public_key"])


def test_export_bundle_shape_and_signature() -> None:
    sk, pk = hpke.generate_key_pair()
    text = bundles.build_export_bundle(b"\x01" * 32, pk.hex(), ORG, SIGNER)
    outer = json.loads(text)
    assert list(outer) == ["version", "data", "dataSignature", "enclaveQuorumPublic"]
    assert outer["version"] == "v1.0.0"
    assert outer["enclaveQuorumPublic"] == SIGNER.public_key
    data = bytes.fromhex(outer["data"])
    inner = json.loads(data)
    assert list(inner) == ["encappedPublic", "ciphertext", "organizationId"]
    assert inner["organizationId"] == ORG
    assert len(bytes.fromhex(inner["encappedPublic"])) == 65
    assert len(bytes.fromhex(inner["ciphertext"])) == 32 + 16
    p256.verify_sha256_der(bytes.fromhex(SIGNER.public_key), data, bytes.fromhex(outer["dataSignature"]))
    _, s = der_to_rs(bytes.fromhex(outer["dataSignature"]))
    assert s <= p256.N // 2  # low-s, accepted by every verifier
    assert bytes(bundles.open_export_bundle(text, sk, ORG, SIGNER.public_key)) == b"\x01" * 32


def test_export_bundle_aad_binds_the_target_key() -> None:
    sk, pk = hpke.generate_key_pair()
    inner = json.loads(bytes.fromhex(json.loads(bundles.build_export_bundle(b"secret", pk.hex(), ORG, SIGNER))["data"]))
    enc, ct = bytes.fromhex(inner["encappedPublic"]), bytes.fromhex(inner["ciphertext"])
    assert bytes(hpke.open(sk, enc, ct, b"turnkey_hpke", enc + pk)) == b"secret"
    with pytest.raises(hpke.OpenError):
        hpke.open(sk, enc, ct, b"turnkey_hpke", b"")


def test_high_s_from_the_signer_is_normalised() -> None:
    key = ec.generate_private_key(ec.SECP256R1())

    def high_s(data: bytes) -> bytes:
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return rs_to_der(r, s if s > p256.N // 2 else p256.N - s)

    signer = BundleSigner(hpke._serialize_public(key.public_key()).hex(), high_s)
    outer = json.loads(bundles.build_import_bundle(hpke.generate_key_pair()[1], ORG, USER, signer))
    _, s = der_to_rs(bytes.fromhex(outer["dataSignature"]))
    assert s <= p256.N // 2


def test_a_signer_whose_signature_does_not_verify_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    bad = BundleSigner(SIGNER.public_key, lambda data: other.sign(data, ec.ECDSA(hashes.SHA256())))
    with pytest.raises(RuntimeError, match="does not verify"):
        bundles.build_import_bundle(hpke.generate_key_pair()[1], ORG, USER, bad)


def test_raw_signature_to_der() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    r, s = decode_dss_signature(key.sign(b"m", ec.ECDSA(hashes.SHA256())))
    der = bundles.raw_signature_to_der(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    assert der_to_rs(der) == (r, s)
    for bad in (b"", bytes(64), b"\x01" * 63, (p256.N).to_bytes(32, "big") + b"\x01" * 32):
        with pytest.raises(ValueError):
            bundles.raw_signature_to_der(bad)


def test_digest_for_signing_is_what_the_signature_covers() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    def prehashed(data: bytes) -> bytes:
        return key.sign(bundles.digest_for_signing(data), ec.ECDSA(Prehashed(hashes.SHA256())))

    signer = BundleSigner(hpke._serialize_public(key.public_key()).hex(), prehashed)
    bundles.build_import_bundle(hpke.generate_key_pair()[1], ORG, USER, signer)  # verified inside


def test_import_bundle_shape() -> None:
    _, target = hpke.generate_key_pair()
    outer = json.loads(bundles.build_import_bundle(target, ORG, USER, SIGNER))
    assert list(outer) == ["version", "data", "dataSignature", "enclaveQuorumPublic"]
    inner = json.loads(bytes.fromhex(outer["data"]))
    assert inner == {"organizationId": ORG, "userId": USER, "targetPublic": target.hex()}


def _encrypted_bundle(target: bytes, plaintext: bytes) -> str:
    # What @turnkey/crypto's encryptPrivateKeyToBundle returns (formatHpkeBuf), built with our HPKE.
    enc, ctx = hpke.setup_sender(target, b"turnkey_hpke")
    ct = ctx.seal(plaintext, enc + target)
    return json.dumps({"encappedPublic": enc.hex(), "ciphertext": ct.hex()})


def test_open_import_bundle_round_trip_and_with_dh() -> None:
    sk, pk = hpke.generate_key_pair()
    text = _encrypted_bundle(pk, b"\x07" * 32)
    assert bytes(bundles.open_import_bundle(text, sk)) == b"\x07" * 32
    private = hpke.load_private_key(sk)
    out = bundles.open_import_bundle_with_dh(
        text, lambda peer: private.exchange(ec.ECDH(), hpke.load_public_key(peer)), pk
    )
    assert bytes(out) == b"\x07" * 32


def test_import_bundle_for_another_target_does_not_open() -> None:
    _, pk = hpke.generate_key_pair()
    other, _ = hpke.generate_key_pair()
    with pytest.raises(BundleError, match="does not decrypt"):
        bundles.open_import_bundle(_encrypted_bundle(pk, b"k" * 32), other)


@pytest.mark.parametrize(
    ("plaintext", "expected"),
    [
        (b"abandon ability able", ("abandon ability able", None)),
        (b"abandon ability able\n--PASS--\nhunter2", ("abandon ability able", "hunter2")),
        (b"abandon\n--PASS--\n", ("abandon", "")),
    ],
)
def test_split_wallet_plaintext(plaintext: bytes, expected: tuple[str, str | None]) -> None:
    assert bundles.split_wallet_plaintext(plaintext) == expected


def test_split_wallet_plaintext_refuses_non_utf8() -> None:
    with pytest.raises(BundleError):
        bundles.split_wallet_plaintext(b"\xff\xfe")


VALID_TARGET = hpke.generate_key_pair()[1].hex()


@pytest.mark.parametrize(
    "bad",
    [
        None,
        12,
        "",
        VALID_TARGET[2:],  # no prefix byte
        "0x" + VALID_TARGET,
        VALID_TARGET[:66].replace("04", "02", 1),  # compressed
        "04" + "00" * 64,  # not on the curve
        VALID_TARGET[:-1] + "g",
        VALID_TARGET + "00",
        " " + VALID_TARGET[1:],
        "\u0660" * 130,  # Arabic-Indic digits: not hex
    ],
)
def test_bad_target_public_keys(bad: Any) -> None:
    with pytest.raises(BundleError, match="targetPublicKey"):
        bundles.parse_target_public_key(bad)
    with pytest.raises(BundleError, match="targetPublicKey"):
        bundles.build_export_bundle(b"x", bad, ORG, SIGNER)


def test_uppercase_target_is_accepted() -> None:
    assert bundles.parse_target_public_key(VALID_TARGET.upper()) == bytes.fromhex(VALID_TARGET)


def _good_encrypted() -> str:
    return _encrypted_bundle(bytes.fromhex(VALID_TARGET), b"k" * 32)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (None, "JSON string"),
        (b"{}", "JSON string"),
        ("", "not valid JSON"),
        ("[]", "JSON object"),
        ('"x"', "JSON object"),
        ("{}", "lacks `ciphertext`"),
        ('{"encappedPublic": "00"}', "lacks `ciphertext`"),
        ('{"encappedPublic": NaN, "ciphertext": "00"}', "not valid JSON"),
        ('{"ciphertext": "00", "ciphertext": "00", "encappedPublic": "00"}', "duplicate key"),
        ('{"encappedPublic": "' + VALID_TARGET + '", "ciphertext": "00", "x": 1}', "unexpected fields"),
        ('{"encappedPublic": 4, "ciphertext": "00"}', "encappedPublic"),
        ('{"encappedPublic": "' + VALID_TARGET + '", "ciphertext": ""}', "ciphertext"),
        ('{"encappedPublic": "' + VALID_TARGET + '", "ciphertext": "abc"}', "ciphertext"),
        ('{"encappedPublic": "' + VALID_TARGET + '", "ciphertext": "' + "00" * 16 + '"}', "too short"),
        ("[" * 100_000, "longer than"),
        ("[" * 60_000, "not valid JSON"),
        ('{"a":' * 10_000 + "1" + "}" * 10_000, "not valid JSON"),
    ],
)
def test_malformed_encrypted_bundles(bad: Any, message: str) -> None:
    sk, _ = hpke.generate_key_pair()
    with pytest.raises(BundleError, match=message):
        bundles.open_import_bundle(bad, sk)


def test_good_encrypted_bundle_parses() -> None:
    enc, ct = bundles.parse_encrypted_bundle(_good_encrypted())
    assert len(enc) == 65
    assert len(ct) == 32 + 16


@st.composite
def _mutated(draw: st.DrawFn, text: str) -> str:
    """`text` with one to eight characters replaced, deleted or inserted."""
    chars = list(text)
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["replace", "delete", "insert"]))
        i = draw(st.integers(0, max(len(chars) - 1, 0)))
        c = draw(st.characters(codec="utf-8") | st.sampled_from(list('{}[]",:0123456789abcdef\\')))
        if op == "replace" and chars:
            chars[i] = c
        elif op == "delete" and chars:
            del chars[i]
        else:
            chars.insert(i, c)
    return "".join(chars)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4),
    max_leaves=12,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "encappedPublic": st.sampled_from([VALID_TARGET, VALID_TARGET.upper()]) | st.text(max_size=140) | _JSON,
        "ciphertext": st.text(alphabet="0123456789abcdefABCDEF", max_size=200) | _JSON,
        "organizationId": st.text(max_size=10),
    },
)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        _JSON.map(json.dumps),
        _FIELDS.map(json.dumps),
        st.builds(_good_encrypted).flatmap(_mutated),
        _JSON,
        st.binary(max_size=50),
    )
)
def test_fuzz_open_import_bundle_raises_only_bundle_error(bad: Any) -> None:
    sk, _ = hpke.generate_key_pair()
    # only a bundle truly encrypted to sk can open, and no fuzz input is; messages stay short
    with pytest.raises(BundleError) as info:
        bundles.open_import_bundle(bad, sk)
    assert 0 < len(str(info.value)) <= 200


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _JSON, st.binary(max_size=80), _mutated(VALID_TARGET)))
def test_fuzz_target_public_key_raises_only_bundle_error(bad: Any) -> None:
    try:
        out = bundles.parse_target_public_key(bad)
    except BundleError:
        return
    assert len(out) == 65  # a mutation may land on another valid point: then it must be one


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300),
        _JSON.map(json.dumps),
        _mutated(TK["export_bundle"]),
    )
)
def test_fuzz_open_export_bundle_raises_only_bundle_error(bad: Any) -> None:
    with contextlib.suppress(BundleError):  # a harmless mutation (e.g. whitespace) may still open
        bundles.open_export_bundle(
            bad, bytes.fromhex(TK["embedded_private_key"]), TK["organization_id"], TK["production_signer_public_key"]
        )


def test_signer_key_must_be_lowercase_uncompressed_hex() -> None:
    for public in (SIGNER.public_key.upper(), SIGNER.public_key[:66], "zz" * 65):
        with pytest.raises(ValueError):
            bundles.build_import_bundle(hpke.generate_key_pair()[1], ORG, USER, BundleSigner(public, SIGNER.sign))


@pytest.mark.parametrize("bad", ["", "x" * 257, "tab\there", None])
def test_bad_organization_or_user_ids(bad: Any) -> None:
    _, target = hpke.generate_key_pair()
    with pytest.raises(BundleError, match="organizationId"):
        bundles.build_export_bundle(b"k", target.hex(), bad, SIGNER)
    with pytest.raises(BundleError, match="userId"):
        bundles.build_import_bundle(target, ORG, bad, SIGNER)
