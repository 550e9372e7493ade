"""Request stamps, byte-compatible with Turnkey's API-key stampers."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from strongroom.client.errors import ClientError
from strongroom.crypto import ed25519, encoding, p256, secp256k1

SCHEMES: Final = {
    "p256": "SIGNATURE_SCHEME_TK_API_P256",
    "secp256k1": "SIGNATURE_SCHEME_TK_API_SECP256K1",
    "ed25519": "SIGNATURE_SCHEME_TK_API_ED25519",
}


@dataclass(frozen=True, slots=True)
class ApiKeyStamper:
    """An API key: `public_key` as Turnkey encodes it (66 hex, or 64 hex for Ed25519), private as hex."""

    public_key: str
    private_key: str
    curve: str = "p256"  # p256, secp256k1 or ed25519

    def __post_init__(self) -> None:
        if self.curve not in SCHEMES:
            raise ClientError(0, None, f"unknown API key curve `{self.curve}`: use p256, secp256k1 or ed25519")

    def __repr__(self) -> str:  # never show the private key
        return f"ApiKeyStamper({self.public_key!r}, curve={self.curve!r})"

    @classmethod
    def from_files(cls, prefix: Path | str, curve: str | None = None) -> ApiKeyStamper:
        """Turnkey's CLI key files: `<prefix>.public` and `<prefix>.private` (hex)."""
        pub, priv = Path(f"{prefix}.public"), Path(f"{prefix}.private")
        for p in (pub, priv):
            if not p.is_file():
                raise ClientError(0, None, f"API key file not found: {p}")
        public = pub.read_text().strip()
        if curve is None:
            curve = "ed25519" if len(public) == 64 else "p256"
        return cls(public, priv.read_text().strip(), curve)

    @property
    def scheme(self) -> str:
        return SCHEMES[self.curve]

    def signature(self, body: bytes) -> str:
        if self.curve == "p256":
            return p256.sign_sha256_der(self.private_key, body).hex()
        secret = encoding.hex_to_bytes(self.private_key)
        if self.curve == "secp256k1":
            sig = secp256k1.sign_digest(secret, hashlib.sha256(body).digest())
            return encoding.rs_to_der(sig.r, sig.s).hex()
        return ed25519.sign(secret[:32], body).hex()

    def stamp(self, body: bytes) -> str:
        """The `X-Stamp` header value for `body` (base64url JSON, no padding)."""
        data = json.dumps(
            {"publicKey": self.public_key, "scheme": self.scheme, "signature": self.signature(body)},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
