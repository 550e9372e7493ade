"""An eth-account-compatible signer backed by the daemon: Ethereum tooling without Strongroom internals.

    from strongroom.client import ApiKeyStamper, Client
    from strongroom.eth import StrongroomAccount

    client = Client("http://127.0.0.1:8080", ApiKeyStamper.from_files("var/keys/root"), organization_id)
    account = StrongroomAccount(client, "0x…")          # the key's Ethereum address (or StrongroomAccount.for_key)
    signed = account.sign_transaction({"to": "0x…", "value": 1, "gas": 21000, "maxFeePerGas": …,
                                       "maxPriorityFeePerGas": …, "nonce": 0, "chainId": 1})
    w3.eth.send_raw_transaction(signed.raw_transaction)

Every signature is an activity on the daemon, so policies, consensus, quotas and the audit
trail apply exactly as to any other client:

- ``sign_transaction(dict)`` builds the unsigned transaction (legacy, EIP-2930, EIP-1559;
  the dict as eth-account and web3.py write it: ints or ``0x`` hex quantities, camelCase keys)
  and submits ``SIGN_TRANSACTION_V2``, so policies read ``eth.tx``. The signed transaction the
  daemon returns is decoded and must carry exactly the transaction that was asked for.
- ``sign_message(SignableMessage)`` (EIP-191, any version, e.g. ``encode_defunct(...)``) sends
  the whole preimage ``0x19 || version || header || body`` as a hexadecimal payload that the
  daemon hashes with Keccak-256 itself, so it sees (and policies can read) what is signed.
- ``sign_typed_data(...)`` (EIP-712, eth-account's arguments) sends the typed data as JSON with
  ``PAYLOAD_ENCODING_EIP712``: the daemon computes the digest and policies read ``eth.eip_712``.
- ``unsafe_sign_hash`` is refused: a blind digest is exactly what a policy cannot read.

Results have the shape of eth-account's ``SignedTransaction`` and ``SignedMessage`` (the same
field names, also readable by key, ``signed["raw_transaction"]``), with ``bytes`` for hashes.
A refusal (a policy DENY, a rejected or failed activity, an activity still waiting for
approvals after ``wait_timeout``) raises :class:`SigningRefused`. eth-account is not needed,
except by :func:`local_account` (the view web3.py's signing middleware accepts; the ``[eth]`` extra).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from strongroom.chains.ethereum import tx as ethtx
from strongroom.chains.ethereum import txdict
from strongroom.chains.ethereum.messages import typed_data_hash
from strongroom.client.errors import ActivityError, ApiError, ClientError
from strongroom.client.sync import Client
from strongroom.crypto.keccak import keccak256
from strongroom.errors import InvalidRequest


class SigningRefused(ClientError):
    """The daemon did not sign: a policy denied it, the activity was rejected or failed, or it awaits approvals."""


class SignedTransaction(NamedTuple):
    """eth-account's ``SignedTransaction`` shape: the broadcastable bytes, their hash, and the signature."""

    raw_transaction: bytes
    hash: bytes
    r: int
    s: int
    v: int

    def __getitem__(self, index: Any) -> Any:
        return getattr(self, index) if isinstance(index, str) else tuple.__getitem__(self, index)


class SignedMessage(NamedTuple):
    """eth-account's ``SignedMessage`` shape: the digest signed, the signature (v is 27 or 28), and r||s||v."""

    message_hash: bytes
    r: int
    s: int
    v: int
    signature: bytes

    def __getitem__(self, index: Any) -> Any:
        return getattr(self, index) if isinstance(index, str) else tuple.__getitem__(self, index)


def _address(value: Any, what: str) -> str:
    try:
        return txdict.address(value, what)
    except InvalidRequest as err:
        raise ValueError(err.message) from None


def transaction_from_dict(tx: Mapping[str, Any]) -> ethtx.EthTransaction:
    """The unsigned transaction a web3.py / eth-account dict describes (ValueError if it cannot be built)."""
    try:
        return txdict.transaction_from_dict(tx)
    except InvalidRequest as err:
        raise ValueError(err.message) from None


def _jsonable(value: Any) -> Any:
    """Typed-data values as the daemon's JSON reader takes them (bytes as 0x hex, ints as strings)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # beyond 64 bits a JSON number is refused; decimal strings are read by type
    return value


def _primary_type(types: Mapping[str, Any]) -> str:
    referenced = {
        re.sub(r"(\[\d*\])+$", "", str(field["type"]))
        for name, fields in types.items()
        if name != "EIP712Domain"
        for field in fields
    }
    roots = [name for name in types if name != "EIP712Domain" and name not in referenced]
    if len(roots) != 1:
        raise ValueError(f"cannot tell the primary type of the typed data (candidates: {roots})")
    return roots[0]


class StrongroomAccount:
    """A signer for one secp256k1 key held by the daemon (see the module docstring)."""

    def __init__(self, client: Client, address: str, *, wait_timeout: float = 0.0) -> None:
        """`address`: the key's Ethereum address. `wait_timeout`: seconds to wait for approvals (0: do not wait)."""
        self._client = client
        self._address = _address(address, "address")
        self.wait_timeout = wait_timeout

    @classmethod
    def for_key(cls, client: Client, private_key_id: str, *, wait_timeout: float = 0.0) -> StrongroomAccount:
        """The account of a private key by id: its Ethereum address is read from the daemon."""
        key = client.get_private_key(private_key_id)["privateKey"]
        for entry in key.get("addresses", []):
            if entry.get("format") == "ADDRESS_FORMAT_ETHEREUM":
                return cls(client, entry["address"], wait_timeout=wait_timeout)
        raise ValueError(f"private key {private_key_id} has no Ethereum address")

    @property
    def address(self) -> str:
        """The EIP-55 checksummed address."""
        return self._address

    def __repr__(self) -> str:
        return f"StrongroomAccount({self._address})"

    # -- the daemon -------------------------------------------------------------------------------
    def _result(self, submitted: Any, key: str) -> dict[str, Any]:
        activity = submitted["activity"]
        try:
            if activity["status"] == "ACTIVITY_STATUS_CONSENSUS_NEEDED" and self.wait_timeout <= 0:
                raise ActivityError(f"activity {activity['id']} needs approvals (consensus)", activity)
            activity = self._client.wait(activity, timeout=self.wait_timeout)
        except ActivityError as err:
            raise SigningRefused(0, None, f"Strongroom did not sign: {err.message}", err.activity) from err
        result: dict[str, Any] = activity["result"][key]
        return result

    def _submit(self, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except ApiError as err:
            if err.status in (400, 403, 404, 409, 429):
                raise SigningRefused(
                    err.status, err.code, f"Strongroom refused to sign: {err.message}", err.body
                ) from err
            raise

    def _sign_raw(self, payload: str, encoding: str, hash_function: str, digest: bytes) -> SignedMessage:
        out = self._submit(self._client.sign_raw_payload, self._address, payload, encoding, hash_function)
        sig = self._result(out, "signRawPayloadResult")
        r, s, v = int(sig["r"], 16), int(sig["s"], 16), int(sig["v"], 16) + 27
        return SignedMessage(digest, r, s, v, r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v]))

    # -- eth-account's signer interface -----------------------------------------------------------
    def sign_transaction(self, transaction_dict: Mapping[str, Any]) -> SignedTransaction:
        """Sign a transaction dict (as web3.py builds it); the daemon's policies see it as `eth.tx`."""
        sender = transaction_dict.get("from")
        if sender is not None and _address(sender, "from") != self._address:
            raise ValueError(f"transaction `from` {sender} is not this account ({self._address})")
        unsigned = transaction_from_dict(transaction_dict)
        out = self._submit(self._client.sign_transaction, self._address, unsigned.encode_unsigned().hex())
        raw = bytes.fromhex(self._result(out, "signTransactionResult")["signedTransaction"].removeprefix("0x"))
        try:
            signed = ethtx.parse_signed_transaction(raw)
        except InvalidRequest as err:
            raise SigningRefused(0, None, f"the daemon returned an unreadable transaction: {err.message}") from err
        if signed.tx != unsigned:
            raise SigningRefused(0, None, "the daemon signed a different transaction than the one asked for")
        sig = signed.signature
        if unsigned.tx_type == ethtx.TYPE_LEGACY:
            v = 27 + sig.v if unsigned.chain_id is None else unsigned.chain_id * 2 + 35 + sig.v
        else:
            v = sig.v
        return SignedTransaction(raw, keccak256(raw), sig.r, sig.s, v)

    def sign_message(self, signable_message: Any) -> SignedMessage:
        """Sign an EIP-191 `SignableMessage` (e.g. eth-account's `encode_defunct(text=...)`)."""
        version, header, body = signable_message.version, signable_message.header, signable_message.body
        if not all(isinstance(part, bytes | bytearray) for part in (version, header, body)) or len(version) != 1:
            raise TypeError("sign_message takes an EIP-191 SignableMessage (version, header, body as bytes)")
        preimage = b"\x19" + bytes(version) + bytes(header) + bytes(body)
        return self._sign_raw(
            preimage.hex(), "PAYLOAD_ENCODING_HEXADECIMAL", "HASH_FUNCTION_KECCAK256", keccak256(preimage)
        )

    def sign_typed_data(
        self,
        domain_data: Mapping[str, Any] | None = None,
        message_types: Mapping[str, Any] | None = None,
        message_data: Mapping[str, Any] | None = None,
        full_message: Mapping[str, Any] | None = None,
    ) -> SignedMessage:
        """Sign EIP-712 typed data, given as eth-account takes it: the three parts, or `full_message`."""
        if full_message is not None:
            if domain_data is not None or message_types is not None or message_data is not None:
                raise ValueError("give either full_message or domain_data/message_types/message_data")
            typed: dict[str, Any] = dict(full_message)
        else:
            if message_types is None or message_data is None:
                raise ValueError("sign_typed_data needs message_types and message_data (or full_message)")
            types = dict(message_types)
            typed = {
                "types": types,
                "primaryType": _primary_type(types),
                "domain": dict(domain_data or {}),
                "message": dict(message_data),
            }
        payload = json.dumps(_jsonable(typed), separators=(",", ":"))
        try:
            digest = typed_data_hash(payload)
        except InvalidRequest as err:
            raise ValueError(f"typed data: {err.message}") from None
        return self._sign_raw(payload, "PAYLOAD_ENCODING_EIP712", "HASH_FUNCTION_NO_OP", digest)

    def unsafe_sign_hash(self, message_hash: Any) -> SignedMessage:
        """Refused: a bare digest hides what it signs from the daemon's policies."""
        raise NotImplementedError(
            "StrongroomAccount does not sign bare hashes: use sign_message, sign_typed_data or sign_transaction "
            "(or Client.sign_raw_payload with HASH_FUNCTION_NO_OP, which policies see only as a blind digest)"
        )


def local_account(account: StrongroomAccount) -> Any:
    """The account as an eth-account ``LocalAccount``, for web3.py's signing middleware.

    web3.py's ``SignAndSendRawMiddlewareBuilder`` accepts only ``LocalAccount`` instances and
    sends ``raw_transaction.to_0x_hex()``: this view is one (without a key: ``key``, ``encrypt``
    and ``unsafe_sign_hash`` raise) whose results are eth-account's own types. Needs eth-account
    (``pip install strongroom[eth]``), imported only here.

        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(local_account(account)), layer=0)
        w3.eth.send_transaction({"from": account.address, ...})
    """
    from eth_account.datastructures import SignedMessage as EthSignedMessage
    from eth_account.datastructures import SignedTransaction as EthSignedTransaction
    from eth_account.signers.local import LocalAccount
    from hexbytes import HexBytes

    def message(signed: SignedMessage) -> EthSignedMessage:
        return EthSignedMessage(HexBytes(signed.message_hash), signed.r, signed.s, signed.v, HexBytes(signed.signature))

    class StrongroomLocalAccount(LocalAccount):
        def __init__(self) -> None:  # no key to hold: the daemon signs
            self._address = account.address  # type: ignore[assignment]
            self.strongroom = account

        @property
        def key(self) -> bytes:
            raise NotImplementedError("the private key never leaves Strongroom")

        def encrypt(self, password: str, kdf: Any = None, iterations: int | None = None) -> dict[str, Any]:
            raise NotImplementedError("the private key never leaves Strongroom")

        def unsafe_sign_hash(self, message_hash: Any) -> EthSignedMessage:
            return message(account.unsafe_sign_hash(message_hash))

        def sign_message(self, signable_message: Any) -> EthSignedMessage:
            return message(account.sign_message(signable_message))

        def sign_transaction(self, transaction_dict: Any, blobs: Any = None) -> EthSignedTransaction:
            if blobs is not None:
                raise NotImplementedError("blob transactions are not signed through StrongroomAccount")
            signed = account.sign_transaction(transaction_dict)
            raw, digest = HexBytes(signed.raw_transaction), HexBytes(signed.hash)
            return EthSignedTransaction(raw, digest, signed.r, signed.s, signed.v)

        def sign_typed_data(
            self,
            domain_data: dict[str, Any] | None = None,
            message_types: dict[str, Any] | None = None,
            message_data: dict[str, Any] | None = None,
            full_message: dict[str, Any] | None = None,
        ) -> EthSignedMessage:
            return message(account.sign_typed_data(domain_data, message_types, message_data, full_message))

        def sign_authorization(self, authorization: dict[str, Any]) -> EthSignedMessage:
            raise NotImplementedError("EIP-7702 authorizations are not signed through StrongroomAccount yet")

    return StrongroomLocalAccount()


__all__ = [
    "SignedMessage",
    "SignedTransaction",
    "SigningRefused",
    "StrongroomAccount",
    "local_account",
    "transaction_from_dict",
]
