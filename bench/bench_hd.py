"""HD wallet derivation cost (crypto/hd.py), run by hand.

Times, on the "abandon ... about" mnemonic: `mnemonic_to_seed` (BIP-39, PBKDF2-HMAC-SHA512 with
2048 rounds), then `derive_secret` for Turnkey's default Ethereum account (m/44'/60'/0'/0/0,
BIP-32 secp256k1: three hardened and two normal levels) and Solana account (m/44'/501'/0'/0',
SLIP-10 ed25519), and `derive_public_key` for both. Prints the median of 7 batches per call.

    .venv/bin/python bench/bench_hd.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from strongroom.crypto import hd
from strongroom.crypto.memory import wipe

MNEMONIC = "abandon " * 11 + "about"
BATCHES = 7


def _median_us(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(BATCHES):
        start = time.perf_counter()
        for _ in range(repeat):
            out = call()
            if isinstance(out, bytearray):
                wipe(out)
        times.append((time.perf_counter() - start) / repeat)
    return statistics.median(times) * 1e6


def main() -> None:
    seed = hd.mnemonic_to_seed(MNEMONIC)
    eth = hd.parse_path("m/44'/60'/0'/0/0", hd.CURVE_SECP256K1)
    sol = hd.parse_path("m/44'/501'/0'/0'", hd.CURVE_ED25519)
    rows = [
        ("mnemonic_to_seed (12 words)", lambda: hd.mnemonic_to_seed(MNEMONIC), 50),
        ("validate_mnemonic (12 words)", lambda: hd.validate_mnemonic(MNEMONIC), 500),
        ("derive_secret secp256k1 m/44'/60'/0'/0/0", lambda: hd.derive_secret(seed, hd.CURVE_SECP256K1, eth), 500),
        ("derive_secret ed25519 m/44'/501'/0'/0'", lambda: hd.derive_secret(seed, hd.CURVE_ED25519, sol), 500),
        (
            "derive_public_key secp256k1 m/44'/60'/0'/0/0",
            lambda: hd.derive_public_key(seed, hd.CURVE_SECP256K1, eth),
            500,
        ),
        ("derive_public_key ed25519 m/44'/501'/0'/0'", lambda: hd.derive_public_key(seed, hd.CURVE_ED25519, sol), 500),
    ]
    try:
        for name, call, repeat in rows:
            print(f"{name:48s} {_median_us(call, repeat):10.1f} µs")
    finally:
        wipe(seed)


if __name__ == "__main__":
    main()
