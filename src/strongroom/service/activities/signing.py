"""Signing: raw payloads (one or a batch), Ethereum and Solana transactions.

Each reader resolves the key, parses the payload or transaction and says what policies may read
about it (`private_key`, `eth.tx`, `eth.eip_712`, `solana.tx`, `activity.params`); the token is
touched only by the executor, after the policy decision.

Every signature has a policy subject. A batch (`SIGN_RAW_PAYLOADS`) has one subject per payload,
each with its own `activity.params.payload` and `eth` / `solana` namespaces. A raw payload whose preimage the
daemon sees (KECCAK256, SHA256, or an Ed25519 message) is recognised: unsigned transaction bytes
fill `eth.tx`, an EIP-712 digest input opens `eth.eip_712`, an EIP-7702 authorization
`eth.eip_7702_authorization` (see `strongroom.chains.ethereum.preimage`); an Ed25519 message
that is a Solana message (legacy or v0) fills `solana.tx`, as `SIGN_TRANSACTION_V2` with
`TRANSACTION_TYPE_SOLANA` does (see `strongroom.chains.solana.policy`). A blind digest
(`HASH_FUNCTION_NO_OP` on a hexadecimal or text payload) exposes nothing but its parameters.
"""

from __future__ import annotations

from typing import Any, Final

from strongroom.chains.address_formats import derive_address
from strongroom.chains.ethereum import messages, preimage
from strongroom.chains.ethereum import tx as ethtx
from strongroom.chains.ethereum.abi import AbiFor
from strongroom.chains.solana import policy as solpolicy
from strongroom.chains.solana import wire as solwire
from strongroom.chains.solana.idl import IdlFor
from strongroom.crypto.encoding import hex_to_bytes
from strongroom.errors import ErrorCode, InvalidRequest, NotFound, UnsupportedAlgorithm
from strongroom.hsm import Curve
from strongroom.service import signing
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.contracts import abi_lookup, idl_lookup
from strongroom.service.activities.schema import json_array, json_enum, json_object, json_string
from strongroom.service.decide import Subject
from strongroom.service.params import JsonObj, req_str, str_list
from strongroom.service.signing import SigningKey

MAX_PAYLOADS: Final = 100
TX_ETHEREUM: Final = "TRANSACTION_TYPE_ETHEREUM"
TX_SOLANA: Final = "TRANSACTION_TYPE_SOLANA"

_SIGN: Final = {
    "signWith": json_string(256),
    "encoding": json_enum("PAYLOAD_ENCODING_HEXADECIMAL", "PAYLOAD_ENCODING_TEXT_UTF8"),
    "hashFunction": json_enum(
        "HASH_FUNCTION_KECCAK256", "HASH_FUNCTION_SHA256", "HASH_FUNCTION_NO_OP", "HASH_FUNCTION_NOT_APPLICABLE"
    ),
}
_PAYLOAD: Final = json_string(1 << 20)
SIGN_RAW_PAYLOAD: Final = json_object(["signWith", "payload", "encoding", "hashFunction"], payload=_PAYLOAD, **_SIGN)
SIGN_RAW_PAYLOADS: Final = json_object(
    ["signWith", "payloads", "encoding", "hashFunction"], payloads=json_array(_PAYLOAD, MAX_PAYLOADS, 1), **_SIGN
)
SIGN_TRANSACTION: Final = json_object(
    ["signWith", "type", "unsignedTransaction"],
    signWith=json_string(256),
    type=json_enum(TX_ETHEREUM, TX_SOLANA),
    unsignedTransaction=json_string(1 << 18),
)


def ethereum_address(key: SigningKey) -> str:
    return derive_address("ADDRESS_FORMAT_ETHEREUM", key.curve, key.public_key)


def resolve_key(deps: Deps, org_id: str, sign_with: str) -> SigningKey:
    """`signWith`: a private key's id or address, or a wallet account's address."""
    key = deps.repo.private_keys.private_key(org_id, sign_with)
    if key is None:
        key = deps.repo.private_keys.private_key_by_address(org_id, sign_with)
    if key is not None:
        return signing.private_key_signer(key)
    account = deps.repo.wallets.account_by_address(org_id, sign_with)
    if account is not None:
        wallet = deps.repo.wallets.wallet(org_id, account.wallet_id)
        if wallet is not None:
            return signing.wallet_account_signer(wallet, account)
    raise NotFound(f"no private key, address or wallet account `{sign_with[:128]}` found in this organization")


def _common(deps: Deps, org_id: str, params: JsonObj) -> tuple[SigningKey, str, str]:
    sign_with = req_str(params, "signWith", "parameters.", max_len=256)
    encoding = req_str(params, "encoding", "parameters.", max_len=64)
    hash_function = req_str(params, "hashFunction", "parameters.", max_len=64)
    if encoding not in signing.ENCODINGS:
        raise InvalidRequest(f"invalid payload encoding `{encoding}`")
    key = resolve_key(deps, org_id, sign_with)
    signing.check_hash_function(key.curve, hash_function)
    return key, encoding, hash_function


def _payload_eth(key: SigningKey, encoding: str, hash_function: str, payload: str, abi_for: AbiFor) -> dict[str, Any]:
    """The `eth` namespace one payload opens (empty: none)."""
    if encoding == signing.ENC_EIP712:
        return {"eip_712": messages.typed_data_policy_fields(payload)}
    if encoding == signing.ENC_EIP7702:
        return {"eip_7702_authorization": messages.parse_eip7702_authorization(payload).policy_fields()}
    if key.curve != Curve.SECP256K1 or hash_function == signing.HASH_NO_OP:
        return {}  # an Ed25519 message is not Ethereum; a blind digest has no preimage to read
    data = signing.decode_payload(payload, encoding)
    # The sender is derived only for a transaction; calls read through the organization's ABIs.
    return preimage.recognise(data, lambda: ethereum_address(key).lower(), abi_for)


def _payload_solana(key: SigningKey, message: bytes, idl_for: IdlFor) -> dict[str, Any]:
    """The `solana` namespace an Ed25519 message opens: `tx` when it is a Solana message, else none.

    Bytes the parser refuses are no message the network would accept (it applies the same checks),
    so a signature over them signs no transaction and they open nothing.
    """
    if key.curve != Curve.ED25519:
        return {}
    try:
        return {"tx": solpolicy.policy_fields(solwire.parse_message(message), idl_for)}
    except InvalidRequest:
        return {}


def _sign_prepared(
    deps: Deps, org_id: str, key: SigningKey, encoding: str, hash_function: str, payloads: list[str], *, batch: bool
) -> Prepared:
    msgs = [signing.payload_message(key.curve, hash_function, p, encoding) for p in payloads]
    abi_for = abi_lookup(deps, org_id)
    idl_for = idl_lookup(deps, org_id)
    subjects = []
    for i, payload in enumerate(payloads):
        env: dict[str, Any] = dict(key.env)
        eth = _payload_eth(key, encoding, hash_function, payload, abi_for)
        if eth:
            env["eth"] = eth
        solana = _payload_solana(key, msgs[i], idl_for)
        if solana:
            env["solana"] = solana
        subjects.append(Subject(f"payloads[{i}]" if batch else "", {"payload": payload}, env))

    async def run() -> Execution:
        sigs = [await signing.sign(deps.keys, key, m) for m in msgs]
        return Execution({"signatures": sigs} if batch else sigs[0], [])

    return Prepared(run, signatures=len(msgs), subjects=tuple(subjects))


def _raw_payload(deps: Deps, org_id: str, params: JsonObj) -> tuple[SigningKey, Prepared]:
    key, encoding, hash_function = _common(deps, org_id, params)
    payload = req_str(params, "payload", "parameters.", max_len=1 << 20, allow_empty=True)
    return key, _sign_prepared(deps, org_id, key, encoding, hash_function, [payload], batch=False)


def _raw_payloads(deps: Deps, org_id: str, params: JsonObj) -> tuple[SigningKey, Prepared]:
    key, encoding, hash_function = _common(deps, org_id, params)
    payloads = str_list(params, "payloads", "parameters.", max_items=MAX_PAYLOADS, allow_empty=False)
    return key, _sign_prepared(deps, org_id, key, encoding, hash_function, payloads, batch=True)


async def sign_raw_payload(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    return _raw_payload(deps, ctx.organization.id, params)[1]


async def sign_raw_payloads(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    return _raw_payloads(deps, ctx.organization.id, params)[1]


def _solana_transaction(deps: Deps, key: SigningKey, unsigned: str, org_id: str) -> Prepared:
    """`TRANSACTION_TYPE_SOLANA`: the serialised transaction (signature slots, then the message),
    signed in the slot of the key's public key; other slots are kept as they came."""
    if key.curve != Curve.ED25519:
        raise InvalidRequest("Solana transactions are signed with ed25519 keys")
    try:
        data = hex_to_bytes(unsigned)
    except ValueError as err:
        raise InvalidRequest("unsignedTransaction is not valid hexadecimal") from err
    tx = solwire.parse_transaction(data)
    slot = tx.signer_index(key.public_key)
    if slot is None:
        raise InvalidRequest(
            f"the key `{solwire.address(key.public_key)}` is not one of the "
            f"{tx.message.header.num_required_signatures} required signers of this Solana transaction"
        )

    async def run() -> Execution:
        sig = await deps.keys.sign_ed25519(key.ref, tx.message.raw)
        return Execution({"signedTransaction": tx.with_signature(slot, sig).serialize().hex()}, [])

    return Prepared(
        run,
        env={**key.env, "solana": {"tx": solpolicy.policy_fields(tx.message, idl_lookup(deps, org_id))}},
        signatures=1,
    )


def _transaction(deps: Deps, org_id: str, params: JsonObj) -> tuple[SigningKey, Prepared]:
    sign_with = req_str(params, "signWith", "parameters.", max_len=256)
    tx_type = req_str(params, "type", "parameters.", max_len=64)
    unsigned = req_str(params, "unsignedTransaction", "parameters.", max_len=1 << 18)
    if tx_type not in (TX_ETHEREUM, TX_SOLANA):
        if tx_type.startswith("TRANSACTION_TYPE_"):
            raise UnsupportedAlgorithm(
                f"transaction type `{tx_type}` is not supported yet", code=ErrorCode.UNSUPPORTED_TRANSACTION_TYPE
            )
        raise InvalidRequest(f"invalid transaction type `{tx_type[:64]}`")
    key = resolve_key(deps, org_id, sign_with)
    if tx_type == TX_SOLANA:
        return key, _solana_transaction(deps, key, unsigned, org_id)
    if key.curve != Curve.SECP256K1:
        raise InvalidRequest("Ethereum transactions are signed with secp256k1 keys")
    tx = ethtx.parse_unsigned_transaction(unsigned)

    async def run() -> Execution:
        sig = await deps.keys.sign_secp256k1(key.ref, tx.signing_hash())
        return Execution({"signedTransaction": tx.serialize_signed(sig).hex()}, [])

    return key, Prepared(
        run,
        env={
            **key.env,
            "eth": {"tx": preimage.transaction_fields(tx, ethereum_address(key).lower(), abi_lookup(deps, org_id))},
        },
        signatures=1,
    )


async def sign_transaction(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    return _transaction(deps, ctx.organization.id, params)[1]


READERS: Final = {
    "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2": _raw_payload,
    "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS": _raw_payloads,
    "ACTIVITY_TYPE_SIGN_TRANSACTION_V2": _transaction,
}
"""The readers above without the await, by type: the key that signs and what policies read of each
payload (the decoded view, `service/decoded.py`, shows exactly this)."""


ACTIVITIES: Final = (
    activity("ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", sign_raw_payload, "PRIVATE_KEY", "SIGN", SIGN_RAW_PAYLOAD),
    activity("ACTIVITY_TYPE_SIGN_RAW_PAYLOADS", sign_raw_payloads, "PRIVATE_KEY", "SIGN", SIGN_RAW_PAYLOADS),
    activity("ACTIVITY_TYPE_SIGN_TRANSACTION_V2", sign_transaction, "PRIVATE_KEY", "SIGN", SIGN_TRANSACTION),
)
