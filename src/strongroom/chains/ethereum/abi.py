"""Contract ABIs: what a call's calldata means, for policies (`eth.tx.function_name`, ...).

An uploaded ABI (a smart contract interface) is checked once, when it is created: a JSON list of
entries, whose `function` entries become `Function`s with their canonical signature and 4-byte
selector (keccak-256 of the signature; tuples written out, as Solidity does). Decoding a call is
eth-abi's strict decoder over the calldata after the selector; anything it refuses (short or
malformed data, a selector the ABI does not have, padding that is not zero) decodes to nothing,
so a policy reading the call fields fails (fail closed) instead of seeing a guess.

Values, as policies read them: integers as integers, `address` as 0x-prefixed lowercase hex,
`bytes`/`bytesN` as 0x-prefixed hex, `bool`, `string`, arrays as lists and tuples as maps by
component name (by position when a component has no name).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError, ParseError
from eth_abi.grammar import BasicType, TupleType, parse

from strongroom.crypto.keccak import keccak256
from strongroom.errors import InvalidRequest

MAX_ABI_CHARS: Final = 512 * 1024
MAX_FUNCTIONS: Final = 2000
MAX_CALLDATA: Final = 128 * 1024


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str  # canonical, tuples written out: `(address,uint256)[]`
    components: tuple[Param, ...] = ()


@dataclass(frozen=True, slots=True)
class Function:
    name: str
    signature: str  # `transfer(address,uint256)`
    selector: bytes
    inputs: tuple[Param, ...]


@dataclass(frozen=True, slots=True)
class Abi:
    functions: dict[bytes, Function]


AbiFor = Callable[[str], Abi | None]
"""The organization's uploaded ABI for a contract address (lowercase 0x hex), if any."""


def _param(raw: Any, where: str, depth: int = 0) -> Param:
    if depth > 8:
        raise InvalidRequest(f"{where}: tuples are nested too deeply")
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise InvalidRequest(f"{where}: each input needs a `type`")
    name = raw.get("name", "")
    if not isinstance(name, str):
        raise InvalidRequest(f"{where}: `name` must be a string")
    typ: str = raw["type"]
    components: tuple[Param, ...] = ()
    if typ.startswith("tuple"):
        raw_components = raw.get("components")
        if not isinstance(raw_components, list):
            raise InvalidRequest(f"{where}: a tuple needs `components`")
        components = tuple(_param(c, f"{where}.components[{i}]", depth + 1) for i, c in enumerate(raw_components))
        typ = "(" + ",".join(c.type for c in components) + ")" + typ[len("tuple") :]
    try:
        parsed = parse(typ)
        parsed.validate()
    except (ParseError, ValueError) as err:
        raise InvalidRequest(f"{where}: `{typ[:64]}` is not an ABI type ({str(err)[:80]})") from None
    return Param(name, parsed.to_type_str(), components)


def parse_abi(text: str) -> Abi:
    """An uploaded Ethereum ABI (JSON text); InvalidRequest naming the first defect."""
    if len(text) > MAX_ABI_CHARS:
        raise InvalidRequest(f"the ABI is longer than {MAX_ABI_CHARS} characters")
    try:
        entries = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidRequest("the ABI is not valid JSON") from None
    if isinstance(entries, dict) and isinstance(entries.get("abi"), list):
        entries = entries["abi"]  # a compiler artifact ({"abi": [...], "bytecode": ...})
    if not isinstance(entries, list):
        raise InvalidRequest("the ABI must be a JSON list of entries")
    functions: dict[bytes, Function] = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidRequest(f"ABI entry {i} is not an object")
        if entry.get("type", "function") != "function":
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name or not name.isidentifier():
            raise InvalidRequest(f"ABI entry {i}: a function needs a `name`")
        raw_inputs = entry.get("inputs", [])
        if not isinstance(raw_inputs, list):
            raise InvalidRequest(f"ABI entry {i}: `inputs` must be a list")
        inputs = tuple(_param(p, f"ABI entry {i} ({name}) input {j}") for j, p in enumerate(raw_inputs))
        signature = f"{name}({','.join(p.type for p in inputs)})"
        selector = keccak256(signature.encode())[:4]
        functions[selector] = Function(name, signature, selector, inputs)
        if len(functions) > MAX_FUNCTIONS:
            raise InvalidRequest(f"the ABI has more than {MAX_FUNCTIONS} functions")
    if not functions:
        raise InvalidRequest("the ABI has no functions")
    return Abi(functions)


def _value(param_type: str, components: tuple[Param, ...], value: Any) -> Any:
    parsed = parse(param_type)
    if parsed.is_array:
        item_type = parsed.item_type.to_type_str()
        return [_value(item_type, components, v) for v in value]
    if isinstance(parsed, TupleType):
        parts = components or tuple(Param("", t.to_type_str()) for t in parsed.components)
        return {
            (p.name or str(i)): _value(p.type, p.components, v)
            for i, (p, v) in enumerate(zip(parts, value, strict=True))
        }
    assert isinstance(parsed, BasicType)
    if parsed.base == "address":
        return str(value).lower()
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def decode_call(abi: Abi, calldata: bytes) -> dict[str, Any] | None:
    """`{function_name, function_signature, contract_call_args}` for a call, or None if the ABI
    does not describe it (unknown selector, data that does not decode strictly)."""
    if len(calldata) < 4 or len(calldata) > MAX_CALLDATA:
        return None
    function = abi.functions.get(calldata[:4])
    if function is None:
        return None
    try:
        values = abi_decode([p.type for p in function.inputs], calldata[4:], strict=True)
    except (DecodingError, ValueError, OverflowError):
        return None
    args = {
        (p.name or str(i)): _value(p.type, p.components, v)
        for i, (p, v) in enumerate(zip(function.inputs, values, strict=True))
    }
    return {"function_name": function.name, "function_signature": function.signature, "contract_call_args": args}


__all__ = ["Abi", "AbiFor", "Function", "decode_call", "parse_abi"]
