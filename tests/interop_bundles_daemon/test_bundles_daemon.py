"""Interop (issue #17): Turnkey's official clients export from and import into a running daemon.

`bundles_daemon.mjs` drives the session `daemon` with `@turnkey/http` 6.6.0 (TurnkeyClient and
`@turnkey/api-key-stamper` 0.6.17) and opens or makes the bundles with `@turnkey/crypto` 2.13.2,
its signer pinned out of band (`get_bundle_signer` read here with the Python client, passed as
`dangerouslyOverrideSignerPublicKey`). It prints one JSON object; everything in it is checked here:

1. createWallet, exportWallet, `decryptExportBundle(returnMnemonic)`: the mnemonic derives the
   addresses the daemon returned (`strongroom.crypto.hd`).
2. exportWalletAccount, `decryptExportBundle` (HEXADECIMAL, SOLANA): each key is the account's;
   exportPrivateKey of a key generated in the token is refused, saying why.
3. initImportWallet, `encryptWalletToBundle`, importWallet of the BIP-39 test mnemonic: the
   published Ethereum and Solana addresses; both sign (verified with coincurve and cryptography);
   exported back it is the same mnemonic; the same bundle cannot be imported twice.
4. initImportPrivateKey, `encryptPrivateKeyToBundle` (HEXADECIMAL, SOLANA), importPrivateKey:
   the key signs, and exportPrivateKey gives the same key back to `decryptExportBundle`.
5. What the SDK encrypts but the daemon must refuse (a bundle for an older target, a mnemonic as a
   key, a key as a mnemonic, a bad checksum, a wallet's bundle as a key): a clear REQUEST_INVALID
   each, nothing created, and the same name and target then import.
6. An export under a consensus policy: a non-root user's exportWallet waits (CONSENSUS_NEEDED),
   root's approveActivity runs it, and the bundle read back with getActivity opens only with the
   asker's target key, to the wallet's mnemonic.

The keys imported in (4) are made fresh here for each run. The pinned npm packages are installed
with `npm ci` when `node_modules` is missing or older than `package-lock.json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import coincurve
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from conftest import Daemon, node_project, run_node_script
from strongroom.chains.address_formats import derive_address
from strongroom.chains.ethereum.address import address_from_public_key
from strongroom.client.calls import ETHEREUM_ACCOUNT, SOLANA_ACCOUNT
from strongroom.crypto import hd
from strongroom.crypto.base58 import b58decode, b58encode
from strongroom.crypto.keccak import keccak256

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "bundles_daemon.mjs"
ABOUT = " ".join(["abandon"] * 11 + ["about"])
ABOUT_ETH = "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"
ABOUT_SOL = "HAgk14JpMQLgt6rVgv7cBQFJWFto5Dqxi472uT3DKpqk"


def _ed25519_public(seed: bytes) -> bytes:
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _eth_address(secret: bytes) -> str:
    return address_from_public_key(coincurve.PrivateKey(secret).public_key.format(compressed=False))


def _solana_key(base58_key: str) -> tuple[bytes, str]:
    """A Solana wallet's key, base58(seed || public key): its seed and its address, checked consistent."""
    raw = b58decode(base58_key)
    assert len(raw) == 64
    seed, public = raw[:32], raw[32:]
    assert _ed25519_public(seed) == public
    return seed, b58encode(public)


def _recovered_address(text: str, sig: dict[str, str]) -> str:
    recovered = coincurve.PublicKey.from_signature_and_message(
        bytes.fromhex(sig["r"] + sig["s"] + sig["v"]), keccak256(text.encode()), hasher=None
    )
    return address_from_public_key(recovered.format(compressed=False))


def _verify_solana(address: str, payload_hex: str, sig: dict[str, str]) -> None:
    """Raises InvalidSignature unless `sig` is the address's Ed25519 signature of the payload."""
    public = b58decode(address)
    assert len(public) == 32
    Ed25519PublicKey.from_public_bytes(public).verify(bytes.fromhex(sig["r"] + sig["s"]), bytes.fromhex(payload_hex))


@pytest.fixture(scope="module")
def node() -> str:
    return node_project(HERE)


@pytest.fixture(scope="module")
def signer(daemon: Daemon) -> str:
    key: str = daemon.client().query("get_bundle_signer")["publicKey"]
    assert len(key) == 130 and key.startswith("04")
    return key


@pytest.fixture(scope="module")
def import_keys() -> dict[str, str]:
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return {
        "hex": coincurve.PrivateKey().secret.hex(),
        "solana": b58encode(seed + _ed25519_public(seed)),
    }


@pytest.fixture(scope="module")
def out(node: str, daemon: Daemon, signer: str, import_keys: dict[str, str]) -> dict[str, Any]:
    extra = {
        "SIGNER_PUBLIC_KEY": signer,
        "IMPORT_MNEMONIC": ABOUT,
        "IMPORT_HEX_KEY": import_keys["hex"],
        "IMPORT_SOLANA_KEY": import_keys["solana"],
    }
    data: dict[str, Any] = run_node_script(node, SCRIPT, daemon, extra_env=extra)
    return data


def test_the_signer_served_to_the_sdk_is_the_pinned_key(out: dict[str, Any], signer: str) -> None:
    assert out["servedSigner"] == signer


def test_an_exported_mnemonic_derives_the_wallets_addresses(out: dict[str, Any]) -> None:
    created = out["created"]
    mnemonic = created["mnemonic"]
    assert hd.validate_mnemonic(mnemonic) == 12
    seed = hd.mnemonic_to_seed(mnemonic)
    assert len(created["addresses"]) == 2
    for account, address in zip((ETHEREUM_ACCOUNT, SOLANA_ACCOUNT), created["addresses"], strict=True):
        public = hd.derive_public_key(seed, account["curve"], hd.parse_path(account["path"], account["curve"]))
        assert derive_address(account["addressFormat"], account["curve"], public) == address
    assert created["addresses"][0].startswith("0x")
    # getActivity, as a polling client reads it later, returns the very same bundle.
    assert created["polled"] == {
        "type": "ACTIVITY_TYPE_EXPORT_WALLET",
        "status": "ACTIVITY_STATUS_COMPLETED",
        "sameBundle": True,
    }


def test_exported_wallet_accounts_are_the_accounts_keys(out: dict[str, Any]) -> None:
    ethereum_address, solana_address = out["created"]["addresses"]
    ethereum, solana = out["accounts"]["ethereum"], out["accounts"]["solana"]
    assert ethereum["address"] == ethereum_address
    assert len(ethereum["key"]) == 64
    assert _eth_address(bytes.fromhex(ethereum["key"])) == ethereum_address
    assert solana["address"] == solana_address
    assert _solana_key(solana["key"])[1] == solana_address


def test_a_key_generated_in_the_token_is_not_exported(out: dict[str, Any]) -> None:
    refusal = out["tokenKey"]["export"]
    assert refusal["refused"] is True, refusal
    assert refusal["code"] == 3  # INVALID_ARGUMENT
    # TurnkeyRequestError's message: the daemon's message and its Turnkey error detail.
    assert refusal["message"] == (
        f"Turnkey error 3: private key `{out['tokenKey']['privateKeyId']}` was generated inside the token as"
        " non-extractable: it cannot be exported"
        ' (Details: [{"@type":"type.googleapis.com/errors.v1.TurnkeyErrorDetail",'
        '"turnkeyErrorCode":"REQUEST_INVALID"}])'
    )


def test_the_imported_test_mnemonic_has_its_published_addresses(out: dict[str, Any]) -> None:
    assert out["importedWallet"]["addresses"] == [ABOUT_ETH, ABOUT_SOL]


def test_the_imported_wallet_signs(out: dict[str, Any]) -> None:
    signatures = out["importedWallet"]["signatures"]
    ethereum = signatures["ethereum"]
    assert _recovered_address(ethereum["payload"], ethereum) == ABOUT_ETH
    _verify_solana(ABOUT_SOL, signatures["solana"]["payload"], signatures["solana"])


def test_the_imported_wallet_exports_back_and_its_bundle_is_used_once(out: dict[str, Any]) -> None:
    wallet = out["importedWallet"]
    assert wallet["exportedBack"] == ABOUT
    replayed = wallet["replayed"]
    assert replayed["refused"] is True, replayed
    assert replayed["code"] == 3
    assert "no import is waiting for user" in replayed["message"]
    assert "init_import_wallet" in replayed["message"]


def test_an_imported_hexadecimal_key_signs_and_exports_back(out: dict[str, Any], import_keys: dict[str, str]) -> None:
    key = out["importedKeys"]["hex"]
    address = _eth_address(bytes.fromhex(import_keys["hex"]))
    assert key["addresses"] == [{"format": "ADDRESS_FORMAT_ETHEREUM", "address": address}]
    assert _recovered_address(key["signature"]["payload"], key["signature"]) == address
    assert key["exportedBack"] == import_keys["hex"]
    assert key["flags"] == {"imported": True, "exported": True}


def test_an_imported_solana_key_signs_and_exports_back(out: dict[str, Any], import_keys: dict[str, str]) -> None:
    key = out["importedKeys"]["solana"]
    _, address = _solana_key(import_keys["solana"])
    assert key["addresses"] == [{"format": "ADDRESS_FORMAT_SOLANA", "address": address}]
    _verify_solana(address, key["signature"]["payload"], key["signature"])
    assert key["exportedBack"] == import_keys["solana"]
    assert key["flags"] == {"imported": True, "exported": True}


def _refused_with(outcome: dict[str, Any], text: str) -> None:
    assert outcome["refused"] is True, outcome
    assert outcome["code"] == 3, outcome  # INVALID_ARGUMENT, REQUEST_INVALID
    assert '"turnkeyErrorCode":"REQUEST_INVALID"' in outcome["message"]
    assert text in outcome["message"], outcome


def test_refused_imports_say_why_and_leave_the_target_for_a_retry(out: dict[str, Any]) -> None:
    refusals = out["refusals"]
    # A bundle encrypted to an older target than the user's newest.
    _refused_with(refusals["staleTarget"], "`encryptedBundle` does not decrypt with this import's target key")
    # What the SDK will encrypt to any target: a mnemonic as a private key, a key as a mnemonic,
    # a mnemonic with a bad checksum, a wallet's bundle to the private-key import.
    _refused_with(refusals["mnemonicAsKey"], f"an imported CURVE_SECP256K1 private key is 32 bytes, not {len(ABOUT)}")
    _refused_with(refusals["keyAsMnemonic"], "`parameters.encryptedBundle`: wallet bundle is not UTF-8")
    _refused_with(refusals["badChecksum"], "the imported mnemonic is not valid BIP-39: mnemonic checksum is wrong")
    _refused_with(refusals["walletBundleAsKey"], "`encryptedBundle` does not decrypt with this import's target key")
    # The same names then import, with the same targets: the refusals left nothing behind.
    retry = refusals["retry"]
    assert retry["addresses"] == [
        {"format": "ADDRESS_FORMAT_ETHEREUM", "address": _eth_address(bytes.fromhex(retry["key"]))}
    ]
    assert refusals["walletRetry"]["addresses"] == [ABOUT_ETH]
    suffix = out["suffix"]
    assert refusals["keyNames"] == [
        f"bundles-{name}-{suffix}" for name in ("imported-hex", "imported-solana", "retry", "token")
    ]
    wallets = ("created", "guarded", "imported", "not-a-mnemonic")  # "guarded": section 6
    assert refusals["walletNames"] == [f"bundles-{name}-{suffix}" for name in wallets]


def test_an_export_approved_by_consensus_opens_with_the_askers_key(out: dict[str, Any]) -> None:
    consensus = out["consensus"]
    assert consensus["asked"] == {"status": "ACTIVITY_STATUS_CONSENSUS_NEEDED", "hasResult": False}
    # approveActivity answers with the approved activity, now run.
    assert consensus["approval"] == {"status": "ACTIVITY_STATUS_COMPLETED", "type": "ACTIVITY_TYPE_EXPORT_WALLET"}
    assert consensus["polled"]["status"] == "ACTIVITY_STATUS_COMPLETED"
    mnemonic = consensus["mnemonic"]
    assert hd.validate_mnemonic(mnemonic) == 24
    public = hd.derive_public_key(
        hd.mnemonic_to_seed(mnemonic), "CURVE_SECP256K1", hd.parse_path(ETHEREUM_ACCOUNT["path"], "CURVE_SECP256K1")
    )
    assert consensus["walletAddresses"] == [address_from_public_key(public)]
    # Encrypted to the asker's target: the approver's (or anyone else's) key does not open it.
    assert "invalid ghash tag" in consensus["othersKey"]["error"]
