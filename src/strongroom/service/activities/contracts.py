"""Smart contract interfaces: the ABIs (and Solana IDLs) policies read calls through.

With an Ethereum ABI uploaded for `eth.tx.to`, a call's `function_name`, `function_signature`
and `contract_call_args` are filled (chains/ethereum/abi.py); without one, they stay absent on a
contract call and a policy that reads them fails closed. With an Anchor IDL uploaded for a Solana
program id, `solana.tx.instructions[i].parsed_instruction_data` is filled for each instruction
calling that program that the IDL decodes exactly (chains/solana/idl.py); otherwise it stays
absent and a policy that reads it fails closed. Interfaces are notarised rows: a database edit
cannot change what a call means.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from functools import lru_cache
from typing import Any, Final

from strongroom.chains.ethereum import abi
from strongroom.chains.solana import idl as solidl
from strongroom.crypto.base58 import b58decode
from strongroom.errors import InvalidRequest, NotFound, ResourceExhausted
from strongroom.service.activities.base import Context, Deps, Execution, Prepared, activity
from strongroom.service.activities.schema import JSON_ID, json_enum, json_object, json_string
from strongroom.service.params import JsonObj, opt_str, req_str
from strongroom.store.records import ContractInterface

ETHEREUM: Final = "SMART_CONTRACT_INTERFACE_TYPE_ETHEREUM"
SOLANA: Final = "SMART_CONTRACT_INTERFACE_TYPE_SOLANA"
MAX_INTERFACES_PER_ORG: Final = 1000
_ETH_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")


@lru_cache(maxsize=256)
def parsed_abi(digest: str, text: str) -> abi.Abi:
    """An uploaded ABI, parsed once per content (the digest keys the cache)."""
    del digest
    return abi.parse_abi(text)


def abi_lookup(deps: Deps, org_id: str) -> abi.AbiFor:
    def abi_for(address: str) -> abi.Abi | None:
        found = deps.repo.contracts.for_address(org_id, address, ETHEREUM)
        return None if found is None else parsed_abi(found.digest, found.interface)

    return abi_for


@lru_cache(maxsize=256)
def parsed_idl(digest: str, text: str) -> solidl.Idl:
    """An uploaded IDL, parsed once per content (the digest keys the cache)."""
    del digest
    return solidl.parse_idl(text)


def idl_lookup(deps: Deps, org_id: str) -> solidl.IdlFor:
    def idl_for(program_id: str) -> solidl.Idl | None:
        found = deps.repo.contracts.for_address(org_id, program_id, SOLANA)
        if found is None:
            return None
        try:
            return parsed_idl(found.digest, found.interface)
        except InvalidRequest:
            # Stored before IDLs were checked at upload: read as no IDL (the field stays absent).
            return None

    return idl_for


def _check_solana_idl(text: str) -> None:
    solidl.parse_idl(text)  # refused here, with the first defect named, rather than when a call comes


async def create_smart_contract_interface(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    p = "parameters."
    address = req_str(params, "smartContractAddress", p, max_len=128)
    text = req_str(params, "smartContractInterface", p, max_len=abi.MAX_ABI_CHARS)
    kind = req_str(params, "type", p, max_len=64)
    label = req_str(params, "label", p, max_len=256)
    notes = opt_str(params, "notes", p, max_len=4096) or ""
    if kind == ETHEREUM:
        if _ETH_ADDRESS.fullmatch(address) is None:
            raise InvalidRequest("`parameters.smartContractAddress` must be 0x followed by 40 hex characters")
        abi.parse_abi(text)  # refused here, with the first defect named, rather than when a call comes
    elif kind == SOLANA:
        try:
            valid = len(b58decode(address)) == 32
        except ValueError:
            valid = False
        if not valid:
            raise InvalidRequest("`parameters.smartContractAddress` must be a base58 Solana program id")
        _check_solana_idl(text)
    else:
        raise InvalidRequest(f"invalid smart contract interface type `{kind[:64]}`")
    if deps.repo.contracts.count(org_id) >= MAX_INTERFACES_PER_ORG:
        raise ResourceExhausted(f"organization has reached its limit of {MAX_INTERFACES_PER_ORG} contract interfaces")

    async def run() -> Execution:
        item = ContractInterface(
            str(uuid.uuid4()),
            org_id,
            address,
            kind,
            text,
            hashlib.sha256(text.encode()).hexdigest(),
            label,
            notes,
            ctx.now_ms,
            ctx.now_ms,
        )
        return Execution({"smartContractInterfaceId": item.id}, deps.repo.contracts.insert_interface(item))

    return Prepared(run)


async def delete_smart_contract_interface(deps: Deps, ctx: Context, params: JsonObj) -> Prepared:
    org_id = ctx.organization.id
    interface_id = req_str(params, "smartContractInterfaceId", "parameters.", max_len=64)
    if deps.repo.contracts.interface(org_id, interface_id) is None:
        raise NotFound(f"no smart contract interface `{interface_id[:64]}` found in this organization")

    async def run() -> Execution:
        ops = deps.repo.contracts.delete_interface(org_id, interface_id)
        return Execution({"smartContractInterfaceId": interface_id}, ops)

    return Prepared(run)


def render(item: ContractInterface, timestamp: Any) -> dict[str, Any]:
    return {
        "organizationId": item.organization_id,
        "smartContractInterfaceId": item.id,
        "smartContractAddress": item.address,
        "smartContractInterface": item.interface,
        "type": item.type,
        "label": item.label,
        "notes": item.notes,
        "createdAt": timestamp(item.created_at),
        "updatedAt": timestamp(item.updated_at),
    }


ACTIVITIES: Final = (
    activity(
        "ACTIVITY_TYPE_CREATE_SMART_CONTRACT_INTERFACE",
        create_smart_contract_interface,
        "SMART_CONTRACT_INTERFACE",
        "CREATE",
        json_object(
            ["smartContractAddress", "smartContractInterface", "type", "label"],
            smartContractAddress=json_string(128),
            smartContractInterface=json_string(abi.MAX_ABI_CHARS),
            type=json_enum(ETHEREUM, SOLANA),
            label=json_string(256),
            notes=json_string(4096),
        ),
    ),
    activity(
        "ACTIVITY_TYPE_DELETE_SMART_CONTRACT_INTERFACE",
        delete_smart_contract_interface,
        "SMART_CONTRACT_INTERFACE",
        "DELETE",
        json_object(["smartContractInterfaceId"], smartContractInterfaceId=JSON_ID),
    ),
)
