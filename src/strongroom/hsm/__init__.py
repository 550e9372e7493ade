"""PKCS#11 token access, capability probe and the token-protected software fallback.

Knows nothing of HTTP, policy or persistence.
"""

from strongroom.hsm.keystore import KeyStore, SealedWallet
from strongroom.hsm.token import Token
from strongroom.hsm.types import Backend, Capabilities, Curve, KeyRef
from strongroom.hsm.worker import AsyncKeyStore

__all__ = ["AsyncKeyStore", "Backend", "Capabilities", "Curve", "KeyRef", "KeyStore", "SealedWallet", "Token"]
