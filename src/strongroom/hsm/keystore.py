"""Key generation and signing, in the token where it can, in software where it must.

Token keys are generated inside the token: private objects are sensitive, non-extractable,
persistent, and labelled with the key id. Where the token lacks a curve, the secret is made
with coincurve / PyNaCl and encrypted at once with AES-GCM under a non-extractable AES key
that lives in the token (the KEK), with the key id and curve as associated data; only that
ciphertext is ever stored. It is decrypted inside the token just for one signing call.

Every signature is verified before it is returned: secp256k1 signatures go through
`crypto.secp256k1.normalize` (low-s, recovery id, verify), Ed25519 through `ed25519.verify`.

Everything here is blocking; async callers go through `hsm.worker`.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.mechanisms import GCMParams

from strongroom.crypto import bundles, ed25519, hd, hpke, secp256k1
from strongroom.crypto.memory import wipe
from strongroom.errors import ConfigError, HsmError, InvalidRequest, UnsupportedAlgorithm
from strongroom.hsm.errors import token_error
from strongroom.hsm.token import ED25519_OID, SECP256K1_OID, Token, decode_ec_point, ec_params
from strongroom.hsm.types import Backend, Capabilities, Curve, KeyRef
from strongroom.hsm.unseal import aes_gcm_decrypt_into_buffer

KEK_LABEL: Final = "strongroom-kek"
AUDIT_LABEL: Final = "strongroom-audit"
WEBHOOK_LABEL: Final = "strongroom-webhook"  # signs webhook events (service/webhooks.py)
BUNDLE_LABEL: Final = "strongroom-bundle"  # signs export and import bundles (Turnkey's enclave key)
P256_OID: Final = "1.2.840.10045.3.1.7"
_NONCE_LEN: Final = 12


def ensure_secret_key(token: Token, label: str, key_type: KeyType, uses: dict[Attribute, bool]) -> None:
    """Create the token's 256-bit secret key `label` once: sensitive, non-extractable, persistent,
    allowed only `uses`. A duplicate (two daemons created it at once) is refused, not guessed."""
    s = token.session()
    try:
        s.get_key(object_class=ObjectClass.SECRET_KEY, label=label)
    except pkcs11.NoSuchKey:
        try:
            s.generate_key(
                key_type,
                256,
                store=True,
                label=label,
                template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, **uses},
            )
        except pkcs11.PKCS11Error as err:
            raise token_error(err, f"cannot create `{label}` in the token") from err
    except pkcs11.PKCS11Error as err:
        raise token_error(err, f"cannot find `{label}` in the token", label, once_only=True) from err


def _aad(key_id: str, curve: Curve) -> bytes:
    return f"strongroom/v1/{curve.value}/{key_id}".encode()


def _wallet_aad(wallet_id: str, part: str) -> bytes:
    """Associated data of a wallet's sealed `seed` or `mnemonic`: a blob moved to another wallet,
    or the mnemonic put where the seed belongs, does not open."""
    return f"strongroom/v1/wallet/{part}/{wallet_id}".encode()


def _import_aad(target_id: str) -> bytes:
    return f"strongroom/v1/import-target/{target_id}".encode()


@dataclass(frozen=True, slots=True)
class SealedWallet:
    """A wallet's secrets as stored: the BIP-39 mnemonic (only for export) and the 64-byte seed
    (what signing derives from), each `nonce || AES-GCM ciphertext` under the token's KEK."""

    mnemonic: bytes
    seed: bytes
    public_keys: tuple[bytes, ...]  # of the accounts asked for at creation, in order

    def __repr__(self) -> str:
        return f"SealedWallet(<sealed>, {len(self.public_keys)} accounts)"


class KeyStore:
    """Blocking key operations on one token. Safe to call from several threads at once."""

    def __init__(self, token: Token, capabilities: Capabilities) -> None:
        self.token: Final = token
        self.capabilities: Final = capabilities
        self._kek_ready = False
        self._creating: Final = threading.Lock()  # two worker threads never create one key pair twice

    # -- key encryption key -------------------------------------------------------------
    def ensure_kek(self) -> None:
        """Create the token-resident KEK if the fallback may be needed and it is missing."""
        if self._kek_ready:
            return
        if not self.capabilities.aes_gcm:
            raise ConfigError("the token offers no AES-GCM, so software keys cannot be protected by it")
        ensure_secret_key(
            self.token,
            KEK_LABEL,
            KeyType.AES,
            {Attribute.ENCRYPT: True, Attribute.DECRYPT: True, Attribute.WRAP: False, Attribute.UNWRAP: False},
        )
        self._kek_ready = True

    def _with_kek(self, operation: Callable[[Any], bytes]) -> bytes:
        return self.token.use_key(KEK_LABEL, ObjectClass.SECRET_KEY, operation)

    def _seal(self, key_id: str, curve: Curve, secret: bytearray) -> bytes:
        return self._seal_aad(_aad(key_id, curve), secret)

    def _seal_aad(self, aad: bytes, secret: bytearray) -> bytes:
        nonce = secrets.token_bytes(_NONCE_LEN)
        params = GCMParams(nonce, aad=aad)
        # `_encrypt` is python-pkcs11's one-shot call: it reads the bytearray in place (the public
        # `encrypt` would take a bytearray for an iterable of chunks, or need a bytes copy).
        ct = self._with_kek(
            lambda kek: bytes(kek._encrypt(secret, mechanism=Mechanism.AES_GCM, mechanism_param=params))
        )
        return nonce + bytes(ct)

    def _open(self, ref: KeyRef) -> bytearray:
        """The plaintext secret in a buffer the caller must `wipe` (docs/api.md, "Secrets in memory")."""
        if ref.backend is Backend.WALLET:
            return self._open_aad(ref.key_id, ref.wrapped, _wallet_aad(ref.key_id, "seed"))
        return self._open_aad(ref.key_id, ref.wrapped, _aad(ref.key_id, ref.curve))

    def _open_aad(self, key_id: str, wrapped: bytes | None, aad: bytes) -> bytearray:
        if wrapped is None or len(wrapped) <= _NONCE_LEN:
            raise HsmError(f"software key `{key_id}` has no sealed secret")
        nonce, ct = wrapped[:_NONCE_LEN], wrapped[_NONCE_LEN:]

        def unseal(kek: Any) -> bytearray:
            # Not `kek.decrypt`: python-pkcs11 would leave the plaintext in a freed, unwiped buffer.
            return aes_gcm_decrypt_into_buffer(self.token.module, kek.session.handle, kek.handle, nonce, aad, ct)

        try:
            return self.token.use_key(KEK_LABEL, ObjectClass.SECRET_KEY, unseal)
        except pkcs11.PKCS11Error as err:
            raise token_error(err, f"cannot unseal key `{key_id}`", key_id) from err

    # -- HD wallets ---------------------------------------------------------------------------
    def create_wallet(
        self, wallet_id: str, words: int, accounts: Sequence[tuple[Curve, tuple[int, ...]]]
    ) -> SealedWallet:
        """A new BIP-39 wallet: mnemonic and seed made here, sealed at once under the KEK (never
        stored or returned in plaintext), with the public keys of `accounts` derived from it."""
        self.ensure_kek()
        mnemonic = hd.generate_mnemonic(words)
        try:
            return self._seal_wallet(wallet_id, mnemonic, accounts)
        finally:
            wipe(mnemonic)

    def _seal_wallet(
        self,
        wallet_id: str,
        mnemonic: bytearray,
        accounts: Sequence[tuple[Curve, tuple[int, ...]]],
        seed: bytearray | None = None,
    ) -> SealedWallet:
        """Seal `mnemonic` (what export gives back) and the seed (from `mnemonic` unless given)."""
        seed = hd.mnemonic_to_seed(mnemonic) if seed is None else seed
        try:
            publics = tuple(hd.derive_public_key(seed, curve.value, path) for curve, path in accounts)
            return SealedWallet(
                self._seal_aad(_wallet_aad(wallet_id, "mnemonic"), mnemonic),
                self._seal_aad(_wallet_aad(wallet_id, "seed"), seed),
                publics,
            )
        finally:
            wipe(seed)

    def derive_public_keys(
        self, wallet_id: str, sealed_seed: bytes, accounts: Sequence[tuple[Curve, tuple[int, ...]]]
    ) -> tuple[bytes, ...]:
        """Public keys of more accounts of a wallet (the seed is unsealed for this call only)."""
        seed = self._open_aad(wallet_id, sealed_seed, _wallet_aad(wallet_id, "seed"))
        try:
            return tuple(hd.derive_public_key(seed, curve.value, path) for curve, path in accounts)
        finally:
            wipe(seed)

    # -- export and import (Turnkey's bundles, crypto/bundles.py) ----------------------------------
    def _p256_pair(self, label: str, what: str) -> tuple[Any, Any]:
        """The token's P-256 key pair labelled `label` (created on first use, non-extractable)."""
        if not {"CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA"} <= self.capabilities.mechanisms:
            raise UnsupportedAlgorithm(f"the token offers no P-256 ECDSA, which {what} are signed with")
        s = self.token.session()
        try:
            return (
                s.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label),
                s.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label),
            )
        except pkcs11.NoSuchKey:
            with self._creating:
                try:  # created by another thread while this one waited?
                    return (
                        s.get_key(object_class=ObjectClass.PUBLIC_KEY, label=label),
                        s.get_key(object_class=ObjectClass.PRIVATE_KEY, label=label),
                    )
                except pkcs11.NoSuchKey:
                    pass
                return self._new_p256_pair(s, label)
        except pkcs11.PKCS11Error as err:
            raise token_error(err, f"cannot find `{label}` in the token", label, once_only=True) from err

    @staticmethod
    def _new_p256_pair(s: Any, label: str) -> tuple[Any, Any]:
        try:
            return s.generate_keypair(  # type: ignore[no-any-return]
                KeyType.EC,
                store=True,
                label=label,
                public_template={Attribute.EC_PARAMS: ec_params(P256_OID)},
                private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True},
            )
        except pkcs11.PKCS11Error as err:
            raise token_error(err, f"cannot create `{label}` in the token") from err

    def _bundle_keys(self) -> tuple[Any, Any]:
        return self._p256_pair(BUNDLE_LABEL, "export and import bundles")

    def bundle_signer(self) -> bundles.BundleSigner:
        """The token's P-256 bundle key: clients pin its public key (`dangerouslyOverrideSignerPublicKey`)."""
        pub, priv = self._bundle_keys()

        def sign(data: bytes) -> bytes:
            try:
                raw = bytes(priv.sign(bundles.digest_for_signing(data), mechanism=Mechanism.ECDSA))
            except pkcs11.PKCS11Error as err:
                raise token_error(err, "bundle signing failed") from err
            return bundles.raw_signature_to_der(raw)

        return bundles.BundleSigner(decode_ec_point(bytes(pub[Attribute.EC_POINT])).hex(), sign)

    def bundle_public_key(self) -> str:
        return self.bundle_signer().public_key

    # -- webhooks ------------------------------------------------------------------------------
    def ensure_webhook_key(self) -> None:
        """Create the webhook key now if the token can (`init`, and a daemon's start on an older token)."""
        if {"CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA"} <= self.capabilities.mechanisms:
            self._p256_pair(WEBHOOK_LABEL, "webhook events")

    def webhook_public_key(self) -> str:
        """The token's P-256 webhook key (`strongroom-webhook`), uncompressed hex: receivers pin it."""
        pub, _priv = self._p256_pair(WEBHOOK_LABEL, "webhook events")
        return decode_ec_point(bytes(pub[Attribute.EC_POINT])).hex()

    def sign_webhook(self, message: bytes) -> bytes:
        """ECDSA P-256 over SHA-256 of `message` with the webhook key: a DER signature.

        A key of its own (not the bundle key): what it signs is an event for a receiver, never
        something an export or import client would take as a bundle."""
        _pub, priv = self._p256_pair(WEBHOOK_LABEL, "webhook events")
        try:
            raw = bytes(priv.sign(hashlib.sha256(message).digest(), mechanism=Mechanism.ECDSA))
        except pkcs11.PKCS11Error as err:
            raise token_error(err, "webhook signing failed") from err
        return bundles.raw_signature_to_der(raw)

    def export_key(self, ref: KeyRef, target_public_key: str, organization_id: str) -> str:
        """A private key (a software key's sealed secret, or a wallet account's derived key) encrypted
        to the client's target key, as Turnkey's `exportBundle`. Token keys never leave the token."""
        if ref.backend is Backend.TOKEN:
            raise InvalidRequest(
                "this private key was generated inside the token as non-extractable: it cannot be exported"
            )
        signer = self.bundle_signer()
        secret = self._derived_secret(ref) if ref.backend is Backend.WALLET else self._open(ref)
        try:
            return bundles.build_export_bundle(secret, target_public_key, organization_id, signer)
        except bundles.BundleError as err:
            raise InvalidRequest(str(err)) from None
        finally:
            wipe(secret)

    def export_wallet(
        self, wallet_id: str, sealed_mnemonic: bytes, target_public_key: str, organization_id: str
    ) -> str:
        """A wallet's mnemonic (with `\\n` and its passphrase, if it has one) as Turnkey's `exportBundle`."""
        signer = self.bundle_signer()
        mnemonic = self._open_aad(wallet_id, sealed_mnemonic, _wallet_aad(wallet_id, "mnemonic"))
        try:
            return bundles.build_export_bundle(mnemonic, target_public_key, organization_id, signer)
        except bundles.BundleError as err:
            raise InvalidRequest(str(err)) from None
        finally:
            wipe(mnemonic)

    def new_import_target(self, target_id: str, organization_id: str, user_id: str) -> tuple[bytes, bytes, str]:
        """A one-time P-256 target: (public key, its scalar sealed under the KEK, the signed importBundle)."""
        self.ensure_kek()
        signer = self.bundle_signer()
        scalar, public = hpke.generate_key_pair()
        try:
            sealed = self._seal_aad(_import_aad(target_id), scalar)
        finally:
            wipe(scalar)
        return public, sealed, bundles.build_import_bundle(public, organization_id, user_id, signer)

    def _open_import(self, target_id: str, sealed_private: bytes, encrypted_bundle: object) -> bytearray:
        scalar = self._open_aad(target_id, sealed_private, _import_aad(target_id))
        try:
            return bundles.open_import_bundle(encrypted_bundle, scalar)
        except bundles.BundleError as err:
            raise InvalidRequest(f"`parameters.encryptedBundle`: {err}") from None
        finally:
            wipe(scalar)

    def import_private_key(
        self, target_id: str, sealed_private: bytes, encrypted_bundle: object, key_id: str, curve: Curve
    ) -> KeyRef:
        """Decrypt a client's key and seal it under the KEK at once (a software key, `imported`)."""
        self.ensure_kek()
        secret = self._open_import(target_id, sealed_private, encrypted_bundle)
        try:
            if len(secret) != 32:
                raise InvalidRequest(f"an imported {curve.value} private key is 32 bytes, not {len(secret)}")
            try:
                if curve is Curve.SECP256K1:
                    public = secp256k1.public_key_from_secret(secret)
                else:
                    public = ed25519.public_key_from_seed(secret)
            except ValueError:
                raise InvalidRequest(f"the imported key is not a valid {curve.value} private key") from None
            sealed = self._seal(key_id, curve, secret)
        finally:
            wipe(secret)
        return KeyRef(key_id, curve, public, Backend.SOFTWARE, sealed)

    def import_wallet(
        self,
        target_id: str,
        sealed_private: bytes,
        encrypted_bundle: object,
        wallet_id: str,
        accounts: Sequence[tuple[Curve, tuple[int, ...]]],
    ) -> SealedWallet:
        """Decrypt a client's mnemonic (and passphrase), check it (BIP-39) and seal it as a new wallet."""
        self.ensure_kek()
        plaintext = self._open_import(target_id, sealed_private, encrypted_bundle)
        try:
            try:
                mnemonic, passphrase = bundles.split_wallet_plaintext(plaintext)
            except bundles.BundleError as err:
                raise InvalidRequest(f"`parameters.encryptedBundle`: {err}") from None
            try:
                hd.validate_mnemonic(mnemonic)
            except hd.DerivationError as err:
                raise InvalidRequest(f"the imported mnemonic is not valid BIP-39: {err}") from None
            # Stored as export gives it back: the mnemonic, then "\n" and the passphrase if any.
            stored = bytearray(mnemonic.encode() + (b"\n" + passphrase.encode() if passphrase else b""))
            try:
                return self._seal_wallet(wallet_id, stored, accounts, hd.mnemonic_to_seed(mnemonic, passphrase or ""))
            finally:
                wipe(stored)
        finally:
            wipe(plaintext)

    def _derived_secret(self, ref: KeyRef) -> bytearray:
        """A wallet account's private key, derived from its unsealed seed; the caller wipes it."""
        seed = self._open(ref)
        try:
            secret = hd.derive_secret(seed, ref.curve.value, ref.path)
        finally:
            wipe(seed)
        return secret

    # -- generation -----------------------------------------------------------------------
    def generate(self, key_id: str, curve: Curve) -> KeyRef:
        if self.capabilities.in_token(curve):
            return self._generate_in_token(key_id, curve)
        return self._generate_software(key_id, curve)

    def _generate_in_token(self, key_id: str, curve: Curve) -> KeyRef:
        s = self.token.session()
        common_private = {
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.PRIVATE: True,
            Attribute.SIGN: True,
            Attribute.ID: key_id.encode(),
        }
        try:
            if curve is Curve.SECP256K1:
                pub, _priv = s.generate_keypair(
                    KeyType.EC,
                    store=True,
                    label=key_id,
                    id=key_id.encode(),
                    public_template={Attribute.EC_PARAMS: ec_params(SECP256K1_OID)},
                    private_template=common_private,
                )
            else:
                pub, _priv = s.generate_keypair(
                    KeyType.EC_EDWARDS,
                    store=True,
                    label=key_id,
                    id=key_id.encode(),
                    mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
                    public_template={Attribute.EC_PARAMS: ec_params(ED25519_OID)},
                    private_template=common_private,
                )
        except pkcs11.PKCS11Error as err:
            raise token_error(err, "key generation failed in the token") from err
        point = decode_ec_point(bytes(pub[Attribute.EC_POINT]))
        if curve is Curve.SECP256K1:
            point = secp256k1.decompress(point) if len(point) == 33 else point
            if len(point) != 65:
                raise HsmError("token returned a malformed secp256k1 public key")
        elif len(point) != 32:
            raise HsmError("token returned a malformed ed25519 public key")
        return KeyRef(key_id, curve, point, Backend.TOKEN)

    def _generate_software(self, key_id: str, curve: Curve) -> KeyRef:
        self.ensure_kek()
        secret = secp256k1.generate_secret() if curve is Curve.SECP256K1 else ed25519.generate_seed()
        try:
            if curve is Curve.SECP256K1:
                public = secp256k1.public_key_from_secret(secret)
            else:
                public = ed25519.public_key_from_seed(secret)
            sealed = self._seal(key_id, curve, secret)
        finally:
            wipe(secret)
        return KeyRef(key_id, curve, public, Backend.SOFTWARE, sealed)

    def destroy(self, ref: KeyRef) -> None:
        """Remove a token key (used to roll back a key whose record could not be written)."""
        if ref.backend is not Backend.TOKEN:
            return
        s = self.token.session()
        for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            try:
                s.get_key(object_class=cls, label=ref.key_id).destroy()
            except pkcs11.NoSuchKey:
                continue
            except pkcs11.PKCS11Error as err:
                raise token_error(err, f"cannot destroy key `{ref.key_id}` in the token", ref.key_id) from err
        self.token.thread_cache().pop(ref.key_id, None)

    # -- health ---------------------------------------------------------------------------------
    def ping(self) -> None:
        """A real logged-in operation: AES-GCM under the KEK (a private object, invisible when
        logged out); raises HsmError if the token is unreachable or no longer logged in."""
        try:
            if self.capabilities.aes_gcm:
                self.ensure_kek()
                probe = GCMParams(bytes(12))
                self._with_kek(
                    lambda kek: bytes(kek.encrypt(b"ping", mechanism=Mechanism.AES_GCM, mechanism_param=probe))
                )
            else:
                self.token.session().generate_random(64)
        except (pkcs11.PKCS11Error, HsmError) as err:
            self.token.thread_cache().clear()
            self._kek_ready = False
            raise token_error(err, "the token does not answer as logged in") from err

    # -- audit checkpoints --------------------------------------------------------------------
    def _audit_scheme(self) -> tuple[str, Any, Any, str, Any] | None:
        mechs = self.capabilities.mechanisms
        if {"CKM_EC_KEY_PAIR_GEN", "CKM_ECDSA"} <= mechs:
            return "ecdsa-p256-sha256", KeyType.EC, Mechanism.EC_KEY_PAIR_GEN, P256_OID, Mechanism.ECDSA
        if {"CKM_EC_EDWARDS_KEY_PAIR_GEN", "CKM_EDDSA"} <= mechs:
            return "ed25519", KeyType.EC_EDWARDS, Mechanism.EC_EDWARDS_KEY_PAIR_GEN, ED25519_OID, Mechanism.EDDSA
        return None

    def ensure_audit_key(self) -> tuple[Any, Any] | None:
        """The token's audit key pair (created once, if the token can sign at all)."""
        scheme = self._audit_scheme()
        if scheme is None:
            return None
        _name, key_type, gen, params, _mech = scheme
        s = self.token.session()
        try:
            return (
                s.get_key(object_class=ObjectClass.PUBLIC_KEY, label=AUDIT_LABEL),
                s.get_key(object_class=ObjectClass.PRIVATE_KEY, label=AUDIT_LABEL),
            )
        except pkcs11.NoSuchKey:
            try:
                pub, priv = s.generate_keypair(
                    key_type,
                    store=True,
                    label=AUDIT_LABEL,
                    mechanism=gen,
                    public_template={Attribute.EC_PARAMS: ec_params(params)},
                    private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False, Attribute.SIGN: True},
                )
            except pkcs11.PKCS11Error as err:
                raise token_error(err, f"cannot create `{AUDIT_LABEL}` in the token") from err
            return pub, priv
        except pkcs11.PKCS11Error as err:
            raise token_error(err, f"cannot find `{AUDIT_LABEL}` in the token", AUDIT_LABEL, once_only=True) from err

    def audit_public_key(self) -> tuple[str, bytes] | None:
        """(scheme, public key) of the token's audit key, to pin outside the database; None if
        the token can sign with neither ECDSA nor EdDSA (checkpoints are then unsigned)."""
        scheme = self._audit_scheme()
        keys = self.ensure_audit_key()
        if scheme is None or keys is None:
            return None
        return scheme[0], decode_ec_point(bytes(keys[0][Attribute.EC_POINT]))

    def sign_audit(self, message: bytes) -> tuple[str, bytes, bytes]:
        """Sign `message` with the token's audit key (created on first use if `init` did not).

        Returns (scheme, public key, signature): `ecdsa-p256-sha256` (raw r||s over SHA-256) when
        the token offers ECDSA, else `ed25519`; `none` if it offers neither.
        """
        scheme = self._audit_scheme()
        keys = self.ensure_audit_key()
        if scheme is None or keys is None:
            return "none", b"", b""
        name, _type, _gen, _params, mech = scheme
        pub, priv = keys
        data = hashlib.sha256(message).digest() if name == "ecdsa-p256-sha256" else message
        try:
            signature = bytes(priv.sign(data, mechanism=mech))
        except pkcs11.PKCS11Error as err:
            raise token_error(err, "audit checkpoint signing failed") from err
        return name, decode_ec_point(bytes(pub[Attribute.EC_POINT])), signature

    # -- signing ----------------------------------------------------------------------------
    def _sign_in_token(self, ref: KeyRef, data: bytes, mechanism: Mechanism) -> bytes:
        try:
            return self.token.use_key(
                ref.key_id, ObjectClass.PRIVATE_KEY, lambda k: bytes(k.sign(data, mechanism=mechanism))
            )
        except pkcs11.PKCS11Error as err:
            raise token_error(err, "token signing failed") from err

    def sign_secp256k1(self, ref: KeyRef, digest: bytes) -> secp256k1.RecoverableSignature:
        if ref.curve is not Curve.SECP256K1:
            raise HsmError(f"key `{ref.key_id}` is not a secp256k1 key")
        if ref.backend is Backend.TOKEN:
            raw = self._sign_in_token(ref, digest, Mechanism.ECDSA)
            if len(raw) != 64:
                raise HsmError("token returned a malformed ecdsa signature")
            return secp256k1.normalize(digest, int.from_bytes(raw[:32]), int.from_bytes(raw[32:]), ref.public_key)
        secret = self._derived_secret(ref) if ref.backend is Backend.WALLET else self._open(ref)
        try:
            sig = secp256k1.sign_digest(secret, digest)  # normalised and verified inside; no copy
        finally:
            wipe(secret)
        if ref.backend is Backend.WALLET:  # the derived key must be the account's recorded key
            sig = secp256k1.normalize(digest, sig.r, sig.s, ref.public_key)
        return sig

    def sign_ed25519(self, ref: KeyRef, message: bytes) -> bytes:
        if ref.curve is not Curve.ED25519:
            raise HsmError(f"key `{ref.key_id}` is not an ed25519 key")
        if ref.backend is Backend.TOKEN:
            sig = self._sign_in_token(ref, message, Mechanism.EDDSA)
        else:
            secret = self._derived_secret(ref) if ref.backend is Backend.WALLET else self._open(ref)
            try:
                sig = ed25519.sign(secret, message)  # no copy; its expanded key is wiped inside
            finally:
                wipe(secret)
        ed25519.verify(ref.public_key, message, sig)
        return sig


# -- notarisation --------------------------------------------------------------------------------
NOTARY_LABEL: Final = "strongroom-notary"


class Notary:
    """HMAC-SHA256 under a non-extractable secret key that lives in the token (`CKM_SHA256_HMAC`).

    The store is untrusted: rows that decide authorisation are accepted only if their digest
    carries a MAC that this key made. The key is created once, at `strongroom init` (or on first
    use of an existing token), is sensitive and non-extractable, and can only sign and verify.
    """

    def __init__(self, token: Token) -> None:
        self.token: Final = token
        self._ready = False

    def ensure_key(self) -> None:
        if self._ready:
            return
        ensure_secret_key(
            self.token,
            NOTARY_LABEL,
            KeyType.GENERIC_SECRET,
            {
                Attribute.SIGN: True,
                Attribute.VERIFY: True,
                Attribute.ENCRYPT: False,
                Attribute.DECRYPT: False,
                Attribute.WRAP: False,
                Attribute.UNWRAP: False,
                Attribute.DERIVE: False,
            },
        )
        self._ready = True

    def mac(self, message: bytes) -> bytes:
        """The token's HMAC-SHA256 of `message` (32 bytes)."""
        self.ensure_key()
        try:
            return self.token.use_key(
                NOTARY_LABEL,
                ObjectClass.SECRET_KEY,
                lambda k: bytes(k.sign(message, mechanism=Mechanism.SHA256_HMAC)),
            )
        except pkcs11.PKCS11Error as err:
            raise token_error(err, "token notarisation failed") from err

    def check(self, message: bytes, mac: bytes) -> bool:
        """Whether `mac` is the token's HMAC of `message` (compared in constant time)."""
        return secrets.compare_digest(self.mac(message), mac)
