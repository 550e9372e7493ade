"""Static types of the keywords the policy language exposes (Turnkey §9.3), for the checker.

`ANY` is "not known statically" (map values, `activity.params` fields): it is compatible with
every type, so the checker only reports what is certainly wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Prim:
    name: str  # "bool" | "int" | "string" | "null"


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Type


@dataclass(frozen=True, slots=True)
class Struct:
    """A record with a closed set of fields; `name` is used in messages."""

    name: str
    fields: Mapping[str, Type]


@dataclass(frozen=True, slots=True)
class OpenMap:
    """A map with arbitrary string keys (`activity.params`, `eth.eip_712.message`, ...)."""

    name: str


@dataclass(frozen=True, slots=True)
class Unknown:
    pass


Type = Prim | ListOf | Struct | OpenMap | Unknown

BOOL: Final = Prim("bool")
INT: Final = Prim("int")
STRING: Final = Prim("string")
ANY: Final = Unknown()


def describe(t: Type) -> str:
    match t:
        case Prim(name=name):
            return name
        case ListOf(item=item):
            return f"list<{describe(item)}>"
        case Struct(name=name) | OpenMap(name=name):
            return name
        case Unknown():
            return "unknown"


def _struct(type_name: str, /, **fields: Type) -> Struct:
    return Struct(type_name, dict(fields))


_PRIVATE_KEY: Final = _struct("PrivateKey", id=STRING, tags=ListOf(STRING), label=STRING, imported=BOOL, exported=BOOL)
_WALLET: Final = _struct("Wallet", id=STRING, label=STRING, imported=BOOL, exported=BOOL)
_ETH_TX: Final = _struct(
    "EthereumTransaction",
    to=STRING,
    data=STRING,
    value=INT,
    gas=INT,
    gas_price=INT,
    chain_id=INT,
    nonce=INT,
    max_fee_per_gas=INT,
    max_priority_fee_per_gas=INT,
    max_fee_per_blob_gas=INT,
    type=STRING,
    function_name=STRING,
    function_signature=STRING,
    contract_call_args=OpenMap("map"),
    **{"from": STRING},
)
_EIP712: Final = _struct(
    "Eip712",
    primary_type=STRING,
    domain=_struct("Eip712Domain", name=STRING, version=STRING, chain_id=INT, verifying_contract=STRING),
    message=OpenMap("map"),
)
_EIP7702: Final = _struct("Eip7702Authorization", address=STRING, chain_id=INT, nonce=INT)
_SOL_ACCOUNT: Final = _struct("SolanaAccount", account_key=STRING, signer=BOOL, writable=BOOL)
_SOL_LOOKUP: Final = _struct(
    "SolanaAddressTableLookup",
    address_table_key=STRING,
    writable_indexes=ListOf(INT),
    readonly_indexes=ListOf(INT),
)
_SOL_INSTRUCTION: Final = _struct(
    "SolanaInstruction",
    program_key=STRING,
    accounts=ListOf(_SOL_ACCOUNT),
    instruction_data_hex=STRING,
    address_table_lookups=ListOf(_SOL_LOOKUP),
    parsed_instruction_data=OpenMap("map"),
)
_SOL_TRANSFER: Final = _struct("SolanaTransfer", to=STRING, amount=INT, **{"from": STRING})
_SPL_TRANSFER: Final = _struct(
    "SplTransfer",
    to=STRING,
    amount=INT,
    owner=STRING,
    signers=ListOf(STRING),
    token_mint=STRING,
    **{"from": STRING},
)
_SOL_TX: Final = _struct(
    "SolanaTransaction",
    account_keys=ListOf(STRING),
    program_keys=ListOf(STRING),
    instructions=ListOf(_SOL_INSTRUCTION),
    transfers=ListOf(_SOL_TRANSFER),
    recent_blockhash=STRING,
    spl_transfers=ListOf(_SPL_TRANSFER),
    address_table_lookups=ListOf(_SOL_LOOKUP),
)
_USER: Final = _struct("User", id=STRING, tags=ListOf(STRING), email=STRING, alias=STRING)
_CREDENTIAL: Final = _struct(
    "Credential", id=STRING, user_id=STRING, type=STRING, credential_id=STRING, public_key=STRING
)

CONDITION_ROOTS: Final[Mapping[str, Type]] = {
    "activity": _struct(
        "Activity", type=STRING, kind=STRING, resource=STRING, action=STRING, params=OpenMap("ActivityParams")
    ),
    "private_key": _PRIVATE_KEY,
    "private_keys": ListOf(_PRIVATE_KEY),
    "wallet": _WALLET,
    "wallets": ListOf(_WALLET),
    "wallet_account": _struct("WalletAccount", address=STRING),
    "eth": _struct("Ethereum", tx=_ETH_TX, eip_712=_EIP712, eip_7702_authorization=_EIP7702),
    "solana": _struct("Solana", tx=_SOL_TX),
}
CONSENSUS_ROOTS: Final[Mapping[str, Type]] = {
    "approvers": ListOf(_USER),
    "credentials": ListOf(_CREDENTIAL),
}
TIME_ROOTS: Final[Mapping[str, Type]] = {"time": _struct("Time", now=INT)}

__all__ = [
    "ANY",
    "BOOL",
    "CONDITION_ROOTS",
    "CONSENSUS_ROOTS",
    "INT",
    "STRING",
    "TIME_ROOTS",
    "ListOf",
    "OpenMap",
    "Prim",
    "Struct",
    "Type",
    "Unknown",
    "describe",
]
