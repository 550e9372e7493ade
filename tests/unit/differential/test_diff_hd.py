"""Differential tests: HD wallets (crypto/hd.py) against bip-utils (``Bip39MnemonicGenerator``,
``Bip39MnemonicValidator``, ``Bip39SeedGenerator``, ``Bip32Slip10Secp256k1``,
``Bip32Slip10Ed25519``, ``Bip32PathParser``), and trezor's ``mnemonic`` for the BIP-39 checksum.

Inputs: random entropy, passphrases and seeds; random paths of both curves (random hardened
markers, depths up to 12); mnemonics with one word replaced, words swapped or dropped.

Allow-listed disagreements:

- ``uppercase-word`` (only bip-utils accepts): bip-utils lowercases every word before looking it
  up and hashing. Strongroom refuses a word that is not the wordlist's lowercase word: BIP-39
  hashes the sentence as written, so other wallets give "ABANDON ..." a different seed, and a
  wallet imported here must give the seed every other wallet gives.
"""

from __future__ import annotations

from bip_utils import (
    Bip32PathParser,
    Bip32Slip10Ed25519,
    Bip32Slip10Secp256k1,
    Bip39MnemonicGenerator,
    Bip39MnemonicValidator,
    Bip39SeedGenerator,
    EthAddrEncoder,
)
from diffkit import Outcome, run
from hypothesis import given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic

from strongroom.chains.address_formats import ADDRESS_FORMAT_SOLANA, derive_address
from strongroom.crypto import hd
from strongroom.crypto.hd import CURVE_ED25519, CURVE_SECP256K1, HARDENED

TREZOR = Mnemonic("english")
WORDLIST = TREZOR.wordlist
entropies = st.sampled_from([16, 20, 24, 28, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
seeds = st.binary(min_size=16, max_size=64)


@st.composite
def paths(draw: st.DrawFn, curve: str) -> str:
    """A path string with random markers ('/h/H) and a mix of small, BIP-44-like and extreme indices."""
    levels = []
    for _ in range(draw(st.integers(1, 12))):
        index = draw(
            st.one_of(st.integers(0, 20), st.sampled_from([44, 60, 501, 2**31 - 1]), st.integers(0, 2**31 - 1))
        )
        hardened = curve == CURVE_ED25519 or draw(st.booleans())
        levels.append(f"{index}{draw(st.sampled_from(['h', 'H', chr(39)]))}" if hardened else str(index))
    return "/".join(["m", *levels])


def _reference_node(seed: bytes, curve: str, path: str) -> Bip32Slip10Secp256k1 | Bip32Slip10Ed25519:
    cls = Bip32Slip10Secp256k1 if curve == CURVE_SECP256K1 else Bip32Slip10Ed25519
    return cls.FromSeed(seed).DerivePath(path)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([CURVE_SECP256K1, CURVE_ED25519]).flatmap(lambda c: st.tuples(st.just(c), seeds, paths(c))))
def test_derivation_matches(case: tuple[str, bytes, str]) -> None:
    curve, seed, path = case
    indices = hd.parse_path(path, curve)
    reference_path = path.replace("H", "h")  # bip-utils takes ' h p as markers, not H
    assert indices == tuple(int(i) for i in Bip32PathParser.Parse(reference_path))
    node = _reference_node(seed, curve, reference_path)
    assert hd.derive_secret(seed, curve, indices) == node.PrivateKey().Raw().ToBytes()
    public = hd.derive_public_key(seed, curve, indices)
    if curve == CURVE_SECP256K1:
        assert public == node.PublicKey().RawUncompressed().ToBytes()
    else:  # bip-utils' ed25519 public key carries SLIP-10's 0x00 prefix
        assert b"\x00" + public == node.PublicKey().RawCompressed().ToBytes()


@settings(max_examples=100, deadline=None)
@given(entropies, st.text(max_size=12))
def test_bip39_matches(entropy: bytes, passphrase: str) -> None:
    mnemonic = hd._mnemonic_from_entropy(entropy)
    assert mnemonic.decode() == str(Bip39MnemonicGenerator().FromEntropy(entropy)) == TREZOR.to_mnemonic(entropy)
    assert hd.validate_mnemonic(mnemonic) == len(entropy) * 3 // 4
    expected = Bip39SeedGenerator(mnemonic.decode()).Generate(passphrase)
    assert expected == TREZOR.to_seed(mnemonic.decode(), passphrase)
    assert hd.mnemonic_to_seed(mnemonic, passphrase) == expected


@st.composite
def edited_mnemonics(draw: st.DrawFn) -> str:
    words = hd._mnemonic_from_entropy(draw(entropies)).decode().split()
    op = draw(st.sampled_from(["replace", "swap", "drop", "append", "upper"]))
    at = draw(st.integers(0, len(words) - 1))
    if op == "replace":
        words[at] = draw(
            st.one_of(st.sampled_from(WORDLIST), st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9))
        )
    elif op == "swap":
        other = draw(st.integers(0, len(words) - 1))
        words[at], words[other] = words[other], words[at]
    elif op == "drop":
        del words[at]
    elif op == "append":
        words.append(draw(st.sampled_from(WORDLIST)))
    else:
        words[at] = words[at].upper()
    return " ".join(words)


def _allowed(ours: Outcome, ref: Outcome, mnemonic: str) -> str | None:
    if ref.ok and not ours.ok and mnemonic != mnemonic.lower() and hd.validate_mnemonic(mnemonic.lower()):
        return "uppercase-word"
    return None


@settings(max_examples=300, deadline=None)
@given(edited_mnemonics())
def test_mnemonic_validity_agrees(mnemonic: str) -> None:
    ours = run(lambda: hd.validate_mnemonic(mnemonic))
    ref = run(lambda: Bip39MnemonicValidator().Validate(mnemonic))
    if ours.ok != ref.ok:
        who = "Strongroom" if not ours.ok else "bip-utils"
        assert _allowed(ours, ref, mnemonic) is not None, f"only {who} refuses {mnemonic!r}"
    if mnemonic == mnemonic.lower():
        assert ours.ok == TREZOR.check(mnemonic)
    if ours.ok:
        assert hd.mnemonic_to_seed(mnemonic) == Bip39SeedGenerator(mnemonic).Generate("")


def test_allow_listed_uppercase_word() -> None:
    upper = "ABANDON " + "abandon " * 10 + "about"
    ours = run(lambda: hd.validate_mnemonic(upper))
    ref = run(lambda: Bip39MnemonicValidator().Validate(upper))
    assert ref.ok and not ours.ok
    assert _allowed(ours, ref, upper) == "uppercase-word"
    assert not TREZOR.check(upper)  # trezor's reference refuses it too


def test_turnkey_default_accounts_with_bip_utils() -> None:
    """The Ethereum (m/44'/60'/0'/0/0) and Solana (m/44'/501'/0'/0') addresses of "abandon ... about",
    computed by bip-utils alone, then by Strongroom."""
    mnemonic = "abandon " * 11 + "about"
    seed = Bip39SeedGenerator(mnemonic).Generate("")
    eth_public = _reference_node(seed, CURVE_SECP256K1, "m/44'/60'/0'/0/0").PublicKey().RawUncompressed().ToBytes()
    assert EthAddrEncoder.EncodeKey(eth_public) == "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
    eth_path = (44 | HARDENED, 60 | HARDENED, HARDENED, 0, 0)
    assert hd.derive_public_key(hd.mnemonic_to_seed(mnemonic), CURVE_SECP256K1, eth_path) == eth_public
    public = _reference_node(seed, CURVE_ED25519, "m/44'/501'/0'/0'").PublicKey().RawCompressed().ToBytes()[1:]
    reference = derive_address(ADDRESS_FORMAT_SOLANA, CURVE_ED25519, public)
    assert reference == "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk"
    ours = hd.derive_public_key(
        hd.mnemonic_to_seed(mnemonic), CURVE_ED25519, (44 | HARDENED, 501 | HARDENED, HARDENED, HARDENED)
    )
    assert ours == public
