"""HD wallets (crypto/hd.py) against the published vectors: BIP-39 (trezor's English vectors),
BIP-32 test vectors 1-4, SLIP-10 ed25519 vectors 1-2, and Turnkey's default Ethereum and
Solana accounts of the "abandon ... about" mnemonic; then every refusal."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from strongroom.chains.address_formats import ADDRESS_FORMAT_ETHEREUM, ADDRESS_FORMAT_SOLANA, derive_address
from strongroom.crypto import ed25519, hd, secp256k1
from strongroom.crypto.base58 import b58check_decode
from strongroom.crypto.hd import CURVE_ED25519, CURVE_SECP256K1, HARDENED, DerivationError

VECTORS = Path(__file__).parents[2] / "vectors"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


BIP39 = _load("bip39_trezor_english.json")
BIP32 = _load("bip32.json")["vectors"]
SLIP10 = _load("slip10_ed25519.json")["vectors"]
ABANDON = "abandon " * 11 + "about"


def _path(path: str, curve: str) -> tuple[int, ...]:
    """The vectors write the master key as "m", which parse_path refuses (an account is never the master)."""
    return () if path == "m" else hd.parse_path(path, curve)


def _xkey(encoded: str) -> tuple[bytes, bytes]:
    """(chain code, key data) of a BIP-32 serialised extended key (xprv: 00 || k; xpub: SEC1 compressed)."""
    raw = b58check_decode(encoded)
    assert len(raw) == 78
    return raw[13:45], raw[45:78]


# --- BIP-39 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", BIP39["vectors"], ids=lambda v: v["entropy"][:8] + f"-{len(v['entropy'])}")
def test_bip39_vectors(vector: dict[str, str]) -> None:
    mnemonic = vector["mnemonic"]
    assert hd._mnemonic_from_entropy(bytes.fromhex(vector["entropy"])) == mnemonic.encode()
    assert hd.validate_mnemonic(mnemonic) == len(mnemonic.split())
    for form in (mnemonic, mnemonic.encode(), bytearray(mnemonic.encode())):
        assert hd.mnemonic_to_seed(form, BIP39["passphrase"]).hex() == vector["seed"]
    # The vector's xprv is the BIP-32 master key of that seed.
    seed = bytes.fromhex(vector["seed"])
    _, key = _xkey(vector["xprv"])
    assert hd.derive_secret(seed, CURVE_SECP256K1, ()) == key[1:]


def _fullwidth(ascii_letters: str) -> str:
    """The FULLWIDTH LATIN forms (U+FF41...) of lowercase ASCII letters."""
    return "".join(chr(ord(c) + 0xFEE0) for c in ascii_letters)


def test_bip39_normalisation_gives_the_canonical_seed() -> None:
    canonical = hd.mnemonic_to_seed(ABANDON)
    assert canonical.hex() == (
        "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1"
        "9a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4"
    )  # BIP-39 seed of "abandon ... about" with an empty passphrase (the published Ethereum/Solana test seed)
    messy = "\t" + ABANDON.replace(" ", "  \n ") + " \r\n"
    fullwidth_spaces = ABANDON.replace(" ", "\u3000")  # NFKD turns an ideographic space into a space
    for form in (messy, messy.encode(), fullwidth_spaces, fullwidth_spaces.encode()):
        assert hd.validate_mnemonic(form) == 12
        assert hd.mnemonic_to_seed(form) == canonical
    compatibility = (_fullwidth("abandon") + " ") * 11 + "about"  # NFKD gives the ASCII letters back
    assert unicodedata.normalize("NFKD", compatibility) == ABANDON
    assert hd.mnemonic_to_seed(compatibility) == canonical
    # the passphrase is NFKD-normalised too
    assert hd.mnemonic_to_seed(ABANDON, _fullwidth("pass")) == hd.mnemonic_to_seed(ABANDON, "pass") != canonical


@pytest.mark.parametrize("words", hd.MNEMONIC_LENGTHS)
def test_generate_mnemonic(words: int) -> None:
    first, second = hd.generate_mnemonic(words), hd.generate_mnemonic(words)
    assert type(first) is bytearray and first != second
    text = first.decode("ascii")
    assert text == " ".join(text.split()) and len(text.split()) == words
    assert hd.validate_mnemonic(first) == words
    assert len(hd.mnemonic_to_seed(first)) == 64


@pytest.mark.parametrize("words", [0, 1, 11, 13, 16, 25, 48, -12, True, 12.0, "12", None])
def test_generate_mnemonic_refuses_other_lengths(words: Any) -> None:
    with pytest.raises(DerivationError, match="12, 15, 18, 21 or 24 words"):
        hd.generate_mnemonic(words)


def _with_word(mnemonic: str, position: int, word: str) -> str:
    words = mnemonic.split()
    words[position] = word
    return " ".join(words)


@pytest.mark.parametrize(
    ("mnemonic", "message"),
    [
        (_with_word(ABANDON, 11, "abandon"), "checksum"),  # 12 known words, wrong checksum
        (_with_word(BIP39["vectors"][-1]["mnemonic"], 0, "zoo"), "checksum"),  # a 24-word one
        (" ".join(reversed(BIP39["vectors"][3]["mnemonic"].split())), "checksum"),  # words out of order
        (_with_word(ABANDON, 4, "abandom"), "word 5 is not in the BIP-39 English wordlist"),
        (_with_word(ABANDON, 0, "Abandon"), "word 1 is not"),  # case-sensitive: the seed would differ
        (_with_word(ABANDON, 11, "zzzz"), "word 12 is not"),  # past the last word of the list
        (_with_word(ABANDON, 11, "abou"), "word 12 is not"),  # prefixes are not expanded
        (_with_word(ABANDON, 2, "abandon\u00e9"), "word 3 is not"),  # NFKD decomposes it, still not a word
        (ABANDON.replace("about", "ab out"), "not 13"),
        ("abandon " * 10 + "about", "not 11"),
        ("abandon " * 23 + "art " * 2, "not 25"),
        ("", "not 0"),
        (" \t\n", "not 0"),
        ("x" * 5000, "too long"),
    ],
)
def test_invalid_mnemonics(mnemonic: str, message: str) -> None:
    for form in (mnemonic, mnemonic.encode()):
        with pytest.raises(DerivationError, match=message):
            hd.validate_mnemonic(form)
        with pytest.raises(DerivationError, match=message):
            hd.mnemonic_to_seed(form)


@pytest.mark.parametrize("vector", BIP39["vectors"], ids=lambda v: v["entropy"][:8] + f"-{len(v['entropy'])}")
def test_every_checksum_bit_counts(vector: dict[str, str]) -> None:
    """The last word's low bits are checksum bits (4 to 8 of them): flipping any one is refused."""
    words = vector["mnemonic"].split()
    last = hd._WORDS.index(words[-1].encode())
    for bit in range(len(words) // 3):
        flipped = _with_word(vector["mnemonic"], len(words) - 1, hd._WORDS[last ^ (1 << bit)].decode())
        with pytest.raises(DerivationError, match="checksum"):
            hd.validate_mnemonic(flipped)


def test_error_messages_never_quote_the_mnemonic() -> None:
    with pytest.raises(DerivationError) as caught:
        hd.validate_mnemonic(_with_word(ABANDON, 3, "secretword"))
    assert "secretword" not in str(caught.value) and "abandon" not in str(caught.value)


def test_invalid_mnemonic_types_and_encodings() -> None:
    with pytest.raises(DerivationError, match="UTF-8"):
        hd.validate_mnemonic(b"abandon \xff" + b" abandon" * 10)
    with pytest.raises(DerivationError, match="string"):
        hd.validate_mnemonic(12)  # type: ignore[arg-type]
    with pytest.raises(DerivationError, match="passphrase"):
        hd.mnemonic_to_seed(ABANDON, b"TREZOR")  # type: ignore[arg-type]
    with pytest.raises(DerivationError, match="16, 20, 24, 28 or 32 bytes"):
        hd._mnemonic_from_entropy(bytes(17))


def test_mnemonic_buffers_are_left_as_given() -> None:
    buf = bytearray(ABANDON.encode())
    hd.mnemonic_to_seed(buf)
    hd.validate_mnemonic(buf)
    assert buf == ABANDON.encode()


# --- BIP-32 and SLIP-10 -------------------------------------------------------------------------


def _bip32_cases() -> list[Any]:
    return [
        pytest.param(v["seed"], c["path"], c["xprv"], c["xpub"], id=f"{v['name']}:{c['path']}")
        for v in BIP32
        for c in v["chains"]
    ]


@pytest.mark.parametrize(("seed", "path", "xprv", "xpub"), _bip32_cases())
def test_bip32_vectors(seed: str, path: str, xprv: str, xpub: str) -> None:
    _, prv = _xkey(xprv)
    _, pub = _xkey(xpub)
    indices = _path(path, CURVE_SECP256K1)
    for form in (bytes.fromhex(seed), bytearray.fromhex(seed)):
        secret = hd.derive_secret(form, CURVE_SECP256K1, indices)
        assert type(secret) is bytearray and prv == b"\x00" + secret
        public = hd.derive_public_key(form, CURVE_SECP256K1, indices)
        assert len(public) == 65 and public == secp256k1.decompress(pub)


def _slip10_cases() -> list[Any]:
    return [
        pytest.param(v["seed"], c["path"], c["private"], c["public"], id=f"{v['name']}:{c['path']}")
        for v in SLIP10
        for c in v["chains"]
    ]


@pytest.mark.parametrize(("seed", "path", "private", "public"), _slip10_cases())
def test_slip10_ed25519_vectors(seed: str, path: str, private: str, public: str) -> None:
    indices = _path(path, CURVE_ED25519)
    secret = hd.derive_secret(bytes.fromhex(seed), CURVE_ED25519, indices)
    assert type(secret) is bytearray and secret.hex() == private
    assert public.startswith("00")  # SLIP-10 prefixes ed25519 public keys with a 0x00 byte
    assert hd.derive_public_key(bytes.fromhex(seed), CURVE_ED25519, indices).hex() == public[2:]
    assert ed25519.public_key_from_seed(secret).hex() == public[2:]


def test_turnkey_default_accounts_of_the_abandon_mnemonic() -> None:
    """Turnkey's DEFAULT_ETHEREUM_ACCOUNTS and DEFAULT_SOLANA_ACCOUNTS paths.

    The Ethereum address is the widely published one for this mnemonic (MetaMask, ethers, Hardhat
    tests). The Solana address HAgk14... is the one Phantom-compatible wallets show for this
    mnemonic at m/44'/501'/0'/0'; tests/unit/differential/test_diff_hd.py derives it again with
    bip-utils.
    """
    seed = hd.mnemonic_to_seed(ABANDON)
    eth = hd.derive_public_key(seed, CURVE_SECP256K1, hd.parse_path("m/44'/60'/0'/0/0", CURVE_SECP256K1))
    assert derive_address(ADDRESS_FORMAT_ETHEREUM, CURVE_SECP256K1, eth) == "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    sol = hd.derive_public_key(seed, CURVE_ED25519, hd.parse_path("m/44'/501'/0'/0'", CURVE_ED25519))
    assert derive_address(ADDRESS_FORMAT_SOLANA, CURVE_ED25519, sol) == "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk"


def test_bip32_skips_an_index_whose_child_is_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    """BIP-32: if parse256(IL) >= n or the child key is 0, proceed with the next index.

    Neither happens by chance (probability about 2**-127), so the HMAC is made to return each
    bad IL once, for index 7 under the master key.
    """
    seed = bytes(range(32))
    master = hd.derive_secret(seed, CURVE_SECP256K1, ())
    expected = hd.derive_secret(seed, CURVE_SECP256K1, (8,))
    real = hd._hmac_sha512
    n = secp256k1.N
    zero_child = n - int.from_bytes(master, "big")  # master + IL = n: a zero child key
    for bad_il in (n.to_bytes(32, "big"), (2**256 - 1).to_bytes(32, "big"), zero_child.to_bytes(32, "big")):
        calls: list[bytes] = []

        def fake(
            key: bytes | bytearray, data: bytes | bytearray, bad: bytes = bad_il, calls: list[bytes] = calls
        ) -> bytearray:
            out = real(key, data)
            calls.append(bytes(data[-4:]))
            if bytes(data[-4:]) == (7).to_bytes(4, "big"):
                out[:32] = bad
            return out

        monkeypatch.setattr(hd, "_hmac_sha512", fake)
        assert hd.derive_secret(seed, CURVE_SECP256K1, (7,)) == expected
        assert calls[1:] == [(7).to_bytes(4, "big"), (8).to_bytes(4, "big")]  # after the master key's HMAC
    monkeypatch.setattr(hd, "_hmac_sha512", real)
    assert hd.derive_secret(seed, CURVE_SECP256K1, (7,)) != expected


def test_bip32_refuses_when_the_last_index_has_no_valid_child(monkeypatch: pytest.MonkeyPatch) -> None:
    real = hd._hmac_sha512

    def fake(key: bytes | bytearray, data: bytes | bytearray) -> bytearray:
        out = real(key, data)
        if bytes(data[-4:]) == b"\xff\xff\xff\xff":
            out[:32] = secp256k1.N.to_bytes(32, "big")
        return out

    monkeypatch.setattr(hd, "_hmac_sha512", fake)
    with pytest.raises(DerivationError, match="no valid BIP-32 child"):
        hd.derive_secret(bytes(16), CURVE_SECP256K1, (0xFFFFFFFF,))


def test_bip32_refuses_a_seed_with_an_invalid_master_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (bytes(32), secp256k1.N.to_bytes(32, "big")):
        monkeypatch.setattr(hd, "_hmac_sha512", lambda key, data, bad=bad: bytearray(bad + bytes(32)))
        with pytest.raises(DerivationError, match="invalid BIP-32 master key"):
            hd.derive_secret(bytes(16), CURVE_SECP256K1, ())
        # SLIP-10 ed25519 takes any 32 bytes as a key, zero included
        assert hd.derive_secret(bytes(16), CURVE_ED25519, ()) == bad


def test_derive_secret_leaves_the_seed_intact_and_returns_a_new_buffer() -> None:
    seed = bytearray(range(64))
    for curve, path in ((CURVE_SECP256K1, (44 + HARDENED, 0)), (CURVE_ED25519, (HARDENED,))):
        first = hd.derive_secret(seed, curve, path)
        second = hd.derive_secret(seed, curve, path)
        assert first == second and first is not second
        assert seed == bytearray(range(64))


@pytest.mark.parametrize(
    ("seed", "curve", "path", "message"),
    [
        (bytes(15), CURVE_SECP256K1, (), "16 to 64 bytes"),
        (bytes(65), CURVE_ED25519, (), "16 to 64 bytes"),
        ("00" * 32, CURVE_SECP256K1, (), "16 to 64 bytes"),
        (bytes(32), "CURVE_P256", (), "curve must be"),
        (bytes(32), "secp256k1", (), "curve must be"),
        (bytes(32), CURVE_ED25519, (0,), "hardened"),
        (bytes(32), CURVE_ED25519, (HARDENED, 5), "hardened"),
        (bytes(32), CURVE_SECP256K1, (2**32,), r"0 to 2\^32 - 1"),
        (bytes(32), CURVE_SECP256K1, (-1,), r"0 to 2\^32 - 1"),
        (bytes(32), CURVE_SECP256K1, (True,), r"0 to 2\^32 - 1"),
        (bytes(32), CURVE_SECP256K1, [0, 1], "tuple"),
        (bytes(32), CURVE_SECP256K1, (0,) * 256, "tuple of at most 255"),
    ],
)
def test_derive_refuses(seed: Any, curve: str, path: Any, message: str) -> None:
    with pytest.raises(DerivationError, match=message):
        hd.derive_secret(seed, curve, path)
    with pytest.raises(DerivationError, match=message):
        hd.derive_public_key(seed, curve, path)


# --- Paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "curve", "expected"),
    [
        ("m/44'/60'/0'/0/0", CURVE_SECP256K1, (44 + HARDENED, 60 + HARDENED, HARDENED, 0, 0)),
        ("m/44h/60H/0'/1/2147483647", CURVE_SECP256K1, (44 + HARDENED, 60 + HARDENED, HARDENED, 1, 2**31 - 1)),
        ("m/2147483647'", CURVE_SECP256K1, (2**32 - 1,)),
        ("m/44'/501'/0'/0'", CURVE_ED25519, (44 + HARDENED, 501 + HARDENED, HARDENED, HARDENED)),
        ("m/0h/1H", CURVE_ED25519, (HARDENED, 1 + HARDENED)),
        ("m" + "/0" * 255, CURVE_SECP256K1, (0,) * 255),
        ("m" + "/7'" * 255, CURVE_ED25519, (7 + HARDENED,) * 255),
    ],
)
def test_parse_path(path: str, curve: str, expected: tuple[int, ...]) -> None:
    assert hd.parse_path(path, curve) == expected


@pytest.mark.parametrize(
    "path",
    [
        "m",
        "",
        "m/",
        "m//1",
        "m/1/",
        "/1",
        "44'/60'",
        "M/44'",
        " m/44'",
        "m/44' ",
        "m/2147483648",
        "m/2147483648'",
        "m/4294967295",
        "m/99999999999999999999",
        "m/-1",
        "m/+1",
        "m/1''",
        "m/1'h",
        "m/'1",
        "m/1.0",
        "m/0x10",
        "m/01",
        "m/1_0",
        "m/\u0661",  # ARABIC-INDIC DIGIT ONE: a unicode digit int() would take
        "m/\uff11",  # FULLWIDTH DIGIT ONE
        "m/1\u2032",  # PRIME instead of an apostrophe
        "m/44\u2019",  # RIGHT SINGLE QUOTATION MARK
        "m\\44'",
        "m" + "/0" * 256,
        "m/" + "0" * 5000,
    ],
)
@pytest.mark.parametrize("curve", [CURVE_SECP256K1, CURVE_ED25519])
def test_parse_path_refuses_malformed_paths(path: str, curve: str) -> None:
    with pytest.raises(DerivationError, match="invalid derivation path"):
        hd.parse_path(path, curve)


@pytest.mark.parametrize("path", ["m/44'/501'/0'/0", "m/0", "m/44'/501'/0/0'"])
def test_ed25519_paths_must_be_hardened(path: str) -> None:
    assert hd.parse_path(path, CURVE_SECP256K1)  # fine for secp256k1
    with pytest.raises(DerivationError, match=r"ed25519 \(SLIP-10\) derives hardened levels only"):
        hd.parse_path(path, CURVE_ED25519)


def test_parse_path_refuses_bad_arguments() -> None:
    with pytest.raises(DerivationError, match="curve must be"):
        hd.parse_path("m/0", "CURVE_P256")
    with pytest.raises(DerivationError, match="invalid derivation path"):
        hd.parse_path(b"m/0", CURVE_SECP256K1)  # type: ignore[arg-type]
    assert issubclass(DerivationError, ValueError)
