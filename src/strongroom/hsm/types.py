"""Value types shared by the token layer and its callers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Curve(StrEnum):
    SECP256K1 = "CURVE_SECP256K1"
    ED25519 = "CURVE_ED25519"


class Backend(StrEnum):
    """Where a key's secret lives."""

    TOKEN = "token"  # noqa: S105 - generated inside the token, sensitive and non-extractable
    SOFTWARE = "software"  # software curve; secret stored only encrypted under the token's KEK
    WALLET = "wallet"  # an HD wallet account: derived per signing call from a seed sealed under the KEK


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the token can do for us, found by probing it at start-up."""

    secp256k1: bool
    ed25519: bool
    aes_gcm: bool
    mechanisms: frozenset[str]
    notes: tuple[str, ...] = ()

    def in_token(self, curve: Curve) -> bool:
        return self.secp256k1 if curve is Curve.SECP256K1 else self.ed25519

    def as_dict(self) -> dict[str, object]:
        return {
            "secp256k1": self.secp256k1,
            "ed25519": self.ed25519,
            "aesGcm": self.aes_gcm,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class KeyRef:
    """Everything needed to sign with a key; persisted by the store.

    `public_key` is the uncompressed SEC1 point (65 bytes) for secp256k1 and the raw 32 bytes
    for Ed25519. `wrapped` is `nonce || AES-GCM ciphertext` for software keys, else None. For a
    wallet account (`Backend.WALLET`), `key_id` is the wallet's id, `wrapped` its sealed seed and
    `path` the account's BIP-32 path (hardened indexes carry bit 31).
    """

    key_id: str
    curve: Curve
    public_key: bytes
    backend: Backend
    wrapped: bytes | None = None
    path: tuple[int, ...] = ()

    def __repr__(self) -> str:  # never show the wrapped blob
        return f"KeyRef({self.key_id!r}, {self.curve.value}, {self.backend.value})"
