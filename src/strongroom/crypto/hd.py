"""HD wallets, the pure layer: BIP-39 mnemonics, BIP-32 (secp256k1) and SLIP-10 (ed25519) derivation.

* :func:`generate_mnemonic`, :func:`validate_mnemonic`, :func:`mnemonic_to_seed`: BIP-39 with the
  English wordlist (taken from trezor's ``mnemonic`` package, the reference implementation BIP-39
  links to; only its wordlist is used, the encoding and the checksum are here).
* :func:`parse_path`: ``m/44'/60'/0'/0/0`` into a tuple of child indices.
* :func:`derive_secret`, :func:`derive_public_key`: BIP-32 private derivation for secp256k1 (a
  child whose ``IL`` is not below the group order, or whose key is zero, is skipped for the next
  index, as BIP-32 says) and SLIP-10 for ed25519 (hardened children only; the 32-byte result is
  an RFC 8032 seed, as :mod:`strongroom.crypto.ed25519` takes it).

Mnemonics are normalised before anything else: NFKD, then words separated by single spaces
(leading, trailing and repeated whitespace dropped). Words must be the wordlist's lowercase
words. :func:`mnemonic_to_seed` refuses a mnemonic :func:`validate_mnemonic` refuses and hashes
the normalised form, so a mnemonic pasted with extra spaces gives the seed of the canonical one.

Secrets in memory (docs/api.md, "Secrets in memory"): the mnemonic, the seed, every private key
and chain code along the path live in bytearrays that are wiped once used; returned secrets are
the caller's to wipe. What Python does not let this module wipe:

* each HMAC-SHA512 output (a child key and chain code) and the PBKDF2 output (the seed) come
  back from :mod:`hmac`/:mod:`hashlib` as ``bytes``: they are copied into bytearrays at once
  and dropped, but the ``bytes`` objects' memory is freed without being zeroed;
* a mnemonic or passphrase given as ``str``, and the NFKD-normalised copies of non-ASCII input
  (a mnemonic given as ASCII bytes or bytearray is normalised without any ``str`` copy);
* the SHA-256 digest of the entropy (its first byte is the checksum), and the word indices,
  which pass through Python ints.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from bisect import bisect_left
from typing import Any, Final

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT
from mnemonic import Mnemonic

from strongroom.crypto import ed25519, secp256k1
from strongroom.crypto.memory import c_buffer, random_buffer, wipe

MNEMONIC_LENGTHS: Final = (12, 15, 18, 21, 24)
HARDENED: Final = 0x80000000
MAX_DEPTH: Final = 255
CURVE_SECP256K1: Final = "CURVE_SECP256K1"
CURVE_ED25519: Final = "CURVE_ED25519"

SEED_MIN_SIZE: Final = 16
SEED_MAX_SIZE: Final = 64
PBKDF2_ROUNDS: Final = 2048

_MASTER_KEYS: Final = {CURVE_SECP256K1: b"Bitcoin seed", CURVE_ED25519: b"ed25519 seed"}
_WORDS: Final[tuple[bytes, ...]] = tuple(word.encode("ascii") for word in Mnemonic("english").wordlist)
if len(_WORDS) != 2048 or list(_WORDS) != sorted(set(_WORDS)):  # pragma: no cover - the package's data
    raise ImportError("the BIP-39 English wordlist must be 2048 distinct words in order")
_ASCII_SPACE: Final = frozenset(b for b in range(128) if chr(b).isspace())
_MAX_MNEMONIC_CHARS: Final = 4096
_INDEX: Final = re.compile(r"(0|[1-9][0-9]*)([hH']?)")
_MAX_PATH_CHARS: Final = 2 + MAX_DEPTH * 12
_LENGTHS_TEXT: Final = "12, 15, 18, 21 or 24"


class DerivationError(ValueError):
    """A mnemonic, seed, curve or derivation path that cannot be used.

    The message is written for API clients: short, and it never repeats secret material (a
    mnemonic's words are never quoted, only their positions).
    """


# --- BIP-39 -------------------------------------------------------------------------------------


def _entropy_size(words: int) -> int:
    if isinstance(words, bool) or not isinstance(words, int) or words not in MNEMONIC_LENGTHS:
        raise DerivationError(f"mnemonic length must be {_LENGTHS_TEXT} words")
    return words * 4 // 3


def _bit(buf: bytes | bytearray, i: int) -> int:
    return (buf[i >> 3] >> (7 - (i & 7))) & 1


def _mnemonic_from_entropy(entropy: bytes | bytearray) -> bytearray:
    """The mnemonic of ``entropy`` (16, 20, 24, 28 or 32 bytes), as UTF-8 in a new bytearray."""
    size = len(entropy)
    if size not in (16, 20, 24, 28, 32):
        raise DerivationError("mnemonic entropy must be 16, 20, 24, 28 or 32 bytes")
    checksum = hashlib.sha256(entropy).digest()
    entropy_bits = size * 8
    indices = []
    for word in range(size * 3 // 4):
        index = 0
        for i in range(word * 11, word * 11 + 11):
            bit = _bit(entropy, i) if i < entropy_bits else _bit(checksum, i - entropy_bits)
            index = (index << 1) | bit
        indices.append(index)
    # Sized once, filled in place: growing a bytearray would free copies of it without wiping them.
    out = bytearray(sum(len(_WORDS[i]) for i in indices) + len(indices) - 1)
    at = 0
    for n, index in enumerate(indices):
        if n:
            out[at] = 0x20
            at += 1
        word_bytes = _WORDS[index]
        out[at : at + len(word_bytes)] = word_bytes
        at += len(word_bytes)
    indices.clear()
    return out


def generate_mnemonic(words: int) -> bytearray:
    """A new random BIP-39 English mnemonic of ``words`` words (UTF-8, single spaces).

    The entropy is written in place by libsodium's CSPRNG (the kernel's, like :mod:`secrets`,
    but into a buffer that can be wiped) and wiped once encoded. The caller wipes the result.
    """
    entropy = random_buffer(_entropy_size(words))
    try:
        return _mnemonic_from_entropy(entropy)
    finally:
        wipe(entropy)


def _collapse_ascii(text: bytes | bytearray) -> bytearray:
    """ASCII ``text`` with its words separated by single spaces, in a new bytearray (no other copy)."""
    size = 0
    in_word = False
    for b in text:
        if b in _ASCII_SPACE:
            in_word = False
        else:
            if not in_word and size:
                size += 1
            in_word = True
            size += 1
    out = bytearray(size)
    at = 0
    in_word = False
    for b in text:
        if b in _ASCII_SPACE:
            in_word = False
        else:
            if not in_word and at:
                out[at] = 0x20
                at += 1
            in_word = True
            out[at] = b
            at += 1
    return out


def _normalize(mnemonic: bytes | bytearray | str) -> bytearray:
    """NFKD, single spaces between words, UTF-8: the form BIP-39 hashes and this module checks."""
    if isinstance(mnemonic, bytes | bytearray):
        if len(mnemonic) > _MAX_MNEMONIC_CHARS:
            raise DerivationError("mnemonic is too long")
        if mnemonic.isascii():  # NFKD leaves ASCII as it is
            return _collapse_ascii(mnemonic)
        try:
            text = mnemonic.decode("utf-8")
        except UnicodeDecodeError:
            raise DerivationError("mnemonic is not valid UTF-8") from None
    elif isinstance(mnemonic, str):
        text = mnemonic
    else:
        raise DerivationError("mnemonic must be a string")
    if len(text) > _MAX_MNEMONIC_CHARS:
        raise DerivationError("mnemonic is too long")
    # Non-ASCII (or str) input: Python's str copies here cannot be wiped (module docstring).
    words = unicodedata.normalize("NFKD", text).split()
    encoded = [word.encode("utf-8") for word in words]
    out = bytearray(sum(len(w) for w in encoded) + max(len(encoded) - 1, 0))
    at = 0
    for n, word_bytes in enumerate(encoded):
        if n:
            out[at] = 0x20
            at += 1
        out[at : at + len(word_bytes)] = word_bytes
        at += len(word_bytes)
    return out


def _check(normalized: bytearray) -> int:
    """Raise DerivationError unless ``normalized`` is a valid mnemonic; return its number of words."""
    count = normalized.count(b" ") + 1 if normalized else 0
    if count not in MNEMONIC_LENGTHS:
        raise DerivationError(f"mnemonic must have {_LENGTHS_TEXT} words, not {count}")
    bits = bytearray((count * 11 + 7) // 8)  # entropy || checksum
    entropy_size = count * 4 // 3
    try:
        start = 0
        for position in range(count):
            end = normalized.find(b" ", start)
            if end < 0:
                end = len(normalized)
            word = normalized[start:end]
            index = bisect_left(_WORDS, word)
            found = index < len(_WORDS) and _WORDS[index] == word
            wipe(word)
            if not found:
                raise DerivationError(f"mnemonic word {position + 1} is not in the BIP-39 English wordlist")
            for k in range(11):
                if (index >> (10 - k)) & 1:
                    i = position * 11 + k
                    bits[i >> 3] |= 0x80 >> (i & 7)
            start = end + 1
        with memoryview(bits) as view:  # hashed in place, no copy of the entropy
            expected = hashlib.sha256(view[:entropy_size]).digest()[0]
        if (expected ^ bits[entropy_size]) >> (8 - count // 3):  # the checksum's count // 3 bits
            raise DerivationError("mnemonic checksum is wrong (a word is mistyped or out of order)")
        return count
    finally:
        wipe(bits)


def validate_mnemonic(mnemonic: bytes | bytearray | str) -> int:
    """The number of words of a valid BIP-39 English mnemonic; DerivationError otherwise.

    Refused: not 12, 15, 18, 21 or 24 words, a word outside the wordlist (matched after NFKD,
    case-sensitively: the wordlist is lowercase), a wrong checksum, bytes that are not UTF-8.
    """
    normalized = _normalize(mnemonic)
    try:
        return _check(normalized)
    finally:
        wipe(normalized)


def mnemonic_to_seed(mnemonic: bytes | bytearray | str, passphrase: str = "") -> bytearray:
    """The 64-byte BIP-39 seed: PBKDF2-HMAC-SHA512(NFKD mnemonic, "mnemonic" + NFKD passphrase, 2048).

    The mnemonic must pass :func:`validate_mnemonic` (DerivationError otherwise). The caller
    wipes the result.
    """
    if not isinstance(passphrase, str):
        raise DerivationError("passphrase must be a string")
    normalized = _normalize(mnemonic)
    try:
        _check(normalized)
        salt = bytearray(b"mnemonic" + unicodedata.normalize("NFKD", passphrase).encode("utf-8"))
        try:
            digest = hashlib.pbkdf2_hmac("sha512", normalized, salt, PBKDF2_ROUNDS)
        finally:
            wipe(salt)
        seed = bytearray(digest)
        del digest  # freed, not zeroed: hashlib returns bytes (module docstring)
        return seed
    finally:
        wipe(normalized)


# --- Paths --------------------------------------------------------------------------------------

_PATH_EXAMPLE: Final = "expected m/ followed by numbers, e.g. m/44'/60'/0'/0/0"


def _check_curve(curve: str) -> None:
    if curve not in _MASTER_KEYS:
        raise DerivationError(f"curve must be {CURVE_SECP256K1} or {CURVE_ED25519}")


def parse_path(path: str, curve: str) -> tuple[int, ...]:
    """``m/44'/60'/0'/0/0`` as child indices (hardened ones with :data:`HARDENED` added).

    ``'``, ``h`` and ``H`` mark a hardened level. Each level is a decimal number below 2**31
    without leading zeros; at least one and at most 255 levels. Ed25519 (SLIP-10) has only
    hardened children, so every level of an ed25519 path must be hardened.
    """
    _check_curve(curve)
    if not isinstance(path, str):
        raise DerivationError(f"invalid derivation path: {_PATH_EXAMPLE}")
    if len(path) > _MAX_PATH_CHARS:
        raise DerivationError("invalid derivation path: too long")
    levels = path.split("/")
    if levels[0] != "m" or len(levels) < 2:
        raise DerivationError(f"invalid derivation path: {_PATH_EXAMPLE}")
    if len(levels) - 1 > MAX_DEPTH:
        raise DerivationError(f"invalid derivation path: more than {MAX_DEPTH} levels")
    indices = []
    for n, level in enumerate(levels[1:], start=1):
        match = _INDEX.fullmatch(level)
        if match is None:
            raise DerivationError(
                f"invalid derivation path: level {n} must be a decimal number (no sign, no leading zero), "
                "then ' or h if hardened, e.g. m/44'/60'/0'/0/0"
            )
        index = int(match.group(1))
        if index >= HARDENED:
            raise DerivationError(f"invalid derivation path: level {n} must be below 2^31 (2147483648)")
        if match.group(2):
            index += HARDENED
        elif curve == CURVE_ED25519:
            raise DerivationError(
                "invalid derivation path: ed25519 (SLIP-10) derives hardened levels only, "
                f"so every level needs ', e.g. m/44'/501'/0'/0' (level {n} is not hardened)"
            )
        indices.append(index)
    return tuple(indices)


def _check_indices(path: tuple[int, ...], curve: str) -> None:
    if not isinstance(path, tuple) or len(path) > MAX_DEPTH:
        raise DerivationError(f"derivation path must be a tuple of at most {MAX_DEPTH} indices")
    for index in path:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 2**32:
            raise DerivationError("derivation path indices must be integers from 0 to 2^32 - 1")
        if curve == CURVE_ED25519 and index < HARDENED:
            raise DerivationError("ed25519 (SLIP-10) derives hardened levels only")


# --- BIP-32 / SLIP-10 ---------------------------------------------------------------------------


def _hmac_sha512(key: bytes | bytearray, data: bytes | bytearray) -> bytearray:
    """HMAC-SHA512 into a new bytearray (the ``bytes`` hmac returns is dropped, not wiped)."""
    digest = hmac.digest(key, data, "sha512")
    out = bytearray(digest)
    del digest
    return out


def _split(i: bytearray) -> tuple[bytearray, bytearray]:
    """(I_L, I_R) as new bytearrays; ``i`` is wiped."""
    try:
        return i[:32], i[32:]
    finally:
        wipe(i)


def _master(seed: bytes | bytearray, curve: str) -> tuple[bytearray, bytearray]:
    key, chain = _split(_hmac_sha512(_MASTER_KEYS[curve], seed))
    if curve == CURVE_SECP256K1 and not (any(key) and key < secp256k1.N.to_bytes(32, "big")):
        wipe(key)
        wipe(chain)
        raise DerivationError("this seed gives an invalid BIP-32 master key; use another seed")
    return key, chain


def _tweak_add(key: bytearray, tweak: bytearray) -> bool:
    """``key = key + parse256(tweak[:32]) mod n`` in place; False (key garbage) if BIP-32 calls it invalid.

    libsecp256k1 refuses exactly BIP-32's invalid cases: a tweak not below n, or a zero sum.
    """
    ok: Any = lib.secp256k1_ec_seckey_tweak_add(GLOBAL_CONTEXT.ctx, c_buffer(key, ffi), c_buffer(tweak, ffi))
    return bool(ok)


def _child_secp256k1(key: bytearray, chain: bytearray, index: int) -> tuple[bytearray, bytearray]:
    """BIP-32 CKDpriv; the parent's buffers are left to the caller."""
    data = bytearray(37)
    while True:
        if index >= HARDENED:
            data[0] = 0
            data[1:33] = key
        else:
            data[0:33] = secp256k1.public_key_from_secret(key, compressed=True)
        data[33:37] = index.to_bytes(4, "big")
        i = _hmac_sha512(chain, data)
        child = bytearray(key)
        if _tweak_add(child, i):
            wipe(data)
            new_chain = i[32:]
            wipe(i)
            return child, new_chain
        # BIP-32: "the resulting key is invalid, and one should proceed with the next value for i".
        wipe(child)
        wipe(i)
        index += 1
        if index >= 2**32:
            wipe(data)
            raise DerivationError("no valid BIP-32 child key at the last index of a level")


def _child_ed25519(key: bytearray, chain: bytearray, index: int) -> tuple[bytearray, bytearray]:
    """SLIP-10 CKDpriv for ed25519 (hardened only); the parent's buffers are left to the caller."""
    data = bytearray(37)
    try:
        data[1:33] = key
        data[33:37] = index.to_bytes(4, "big")
        return _split(_hmac_sha512(chain, data))
    finally:
        wipe(data)


def derive_secret(seed: bytes | bytearray, curve: str, path: tuple[int, ...]) -> bytearray:
    """The private key at ``path`` from a BIP-39 seed: a secp256k1 scalar (BIP-32) or an ed25519
    seed (SLIP-10), 32 bytes in a new bytearray the caller wipes.

    ``path`` is :func:`parse_path`'s tuple (``()`` is the master key).
    """
    _check_curve(curve)
    if not isinstance(seed, bytes | bytearray) or not SEED_MIN_SIZE <= len(seed) <= SEED_MAX_SIZE:
        raise DerivationError(f"seed must be {SEED_MIN_SIZE} to {SEED_MAX_SIZE} bytes")
    _check_indices(path, curve)
    child = _child_secp256k1 if curve == CURVE_SECP256K1 else _child_ed25519
    key, chain = _master(seed, curve)
    try:
        for index in path:
            new_key, new_chain = child(key, chain, index)
            wipe(key)
            wipe(chain)
            key, chain = new_key, new_chain
    except BaseException:
        wipe(key)
        raise
    finally:
        wipe(chain)
    return key


def derive_public_key(seed: bytes | bytearray, curve: str, path: tuple[int, ...]) -> bytes:
    """The public key at ``path``: 65-byte uncompressed SEC1 (secp256k1) or 32 raw bytes (ed25519).

    The private key is derived, used and wiped here.
    """
    secret = derive_secret(seed, curve, path)
    try:
        if curve == CURVE_SECP256K1:
            return secp256k1.public_key_from_secret(secret)
        return ed25519.public_key_from_seed(secret)
    finally:
        wipe(secret)


__all__ = [
    "CURVE_ED25519",
    "CURVE_SECP256K1",
    "HARDENED",
    "MAX_DEPTH",
    "MNEMONIC_LENGTHS",
    "DerivationError",
    "derive_public_key",
    "derive_secret",
    "generate_mnemonic",
    "mnemonic_to_seed",
    "parse_path",
    "validate_mnemonic",
]
