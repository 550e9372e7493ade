"""Ethereum message digests: EIP-191 personal messages, EIP-712 typed data, EIP-7702 authorizations.

EIP-712 input is the typed-data JSON that ``PAYLOAD_ENCODING_EIP712`` carries, as produced by
viem (``serializeTypedData``) or ethers (``TypedDataEncoder.getPayload``). The two differ, so the
parser is lenient where they differ and strict everywhere else:

- integers (``uintN``/``intN``, including ``domain.chainId``) may be JSON numbers (integral
  floats too, as JavaScript numbers are), decimal strings (``"-5"``) or ``0x`` hex strings
  (``"0x1"``, ``"-0x1"``); they are range-checked against their declared width;
- addresses may be lowercase, uppercase or EIP-55 mixed case; mixed case must carry a valid
  checksum (as viem's and ethers' ``isAddress`` require);
- ``bytes``/``bytesN`` are ``0x`` hex strings (``bytesN`` exactly N bytes); ``bool`` is a JSON
  boolean; ``string`` is a JSON string;
- ``types.EIP712Domain``, when present, is hashed exactly as declared (its field order, names and
  types make the type string, as EIP-712 defines ``hashStruct`` for the domain). Only when it is
  absent is the domain type derived from the domain fields that are present, in the canonical
  order name, version, chainId, verifyingContract, salt (an empty domain gives
  ``EIP712Domain()``). Libraries differ on a non-canonical declaration: eth-account, for one,
  always hashes the canonical order. We keep the declaration because the digest then commits to
  the structure the request shows, a contract declaring that order verifies it, and a mismatch
  fails closed; domain keys the declaration omits are ignored (policies see them as absent).
  See docs/formats.md;
- message keys that the type does not declare are ignored (as both libraries do); declared
  fields that are missing are an error. ``primaryType`` ``EIP712Domain`` signs the domain alone.

The payload is capped at :data:`MAX_TYPED_DATA_BYTES` (serialised) and at :data:`MAX_DEPTH`
levels of nesting. Every defect raises :class:`~strongroom.errors.InvalidRequest`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from strongroom import strictjson
from strongroom.chains.ethereum import rlp
from strongroom.chains.ethereum.address import is_address
from strongroom.crypto.keccak import keccak256
from strongroom.crypto.secp256k1 import eip191_digest
from strongroom.errors import InvalidRequest

MAX_TYPED_DATA_BYTES: Final = 64 * 1024
"""Largest accepted typed-data or authorization JSON payload, in bytes."""

MAX_DEPTH: Final = 32
"""Deepest nesting of structs and arrays accepted in typed data."""

MAX_TYPES: Final = 256
"""Most struct types (and fields per struct) accepted in typed data."""

_DOMAIN: Final = "EIP712Domain"
_DOMAIN_FIELDS: Final = (
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
)
_IDENT_RE: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
# re.ASCII: `\d` must not match full-width digits (int() reads them: `uint` + "256" in full width would be uint256).
_ARRAY_RE: Final = re.compile(r"^(.+)\[(\d*)\]$", re.ASCII)
_INT_TYPE_RE: Final = re.compile(r"(u?)int(\d*)", re.ASCII)
_BYTES_TYPE_RE: Final = re.compile(r"bytes(\d+)", re.ASCII)
_DEC_RE: Final = re.compile(r"-?(?:0|[1-9][0-9]*)")
_HEXNUM_RE: Final = re.compile(r"-?0[xX][0-9a-fA-F]+")
_HEX_BYTES_RE: Final = re.compile(r"0[xX]((?:[0-9a-fA-F]{2})*)")
_EIP7702_MAGIC: Final = b"\x05"


def eip191_hash(message: bytes) -> bytes:
    """Keccak-256 of ``"\\x19Ethereum Signed Message:\\n" + len(message) + message`` (personal_sign)."""
    if not isinstance(message, bytes | bytearray):
        raise InvalidRequest("eip-191 message must be bytes")
    return eip191_digest(bytes(message))


# ---------------------------------------------------------------------------------------------
# JSON values


def _load_json(payload: object, what: str) -> dict[str, Any]:
    """Accept an already-parsed JSON object, or JSON text (str/bytes) to parse, capped in size."""
    if isinstance(payload, str | bytes | bytearray):
        size = len(payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else payload)
        if size > MAX_TYPED_DATA_BYTES:
            raise InvalidRequest(f"{what} is larger than {MAX_TYPED_DATA_BYTES} bytes")
        try:
            # 256-bit integers and integral floats are meaningful here (`uint256` values); the rest
            # of the strict rules (depth, duplicate keys, Unicode) hold as for the request body.
            payload = strictjson.loads(payload, int_bits=256, floats=True)
        except strictjson.StrictJsonError as exc:
            raise InvalidRequest(f"{what} is not valid JSON: {exc.reason}") from exc
    if not isinstance(payload, dict):
        raise InvalidRequest(f"{what} must be a JSON object")
    return payload


def _parse_int(value: object, what: str) -> int:
    """An integer given as a JSON number, a decimal string or a 0x-hex string (optionally negative)."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{what} must be an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidRequest(f"{what} must be an integer, got {value!r}")
        return int(value)
    if isinstance(value, str):
        if len(value) > 80:
            raise InvalidRequest(f"{what} is too long to be a 256-bit integer")
        if _DEC_RE.fullmatch(value):
            return int(value, 10)
        if _HEXNUM_RE.fullmatch(value):
            negative = value.startswith("-")
            magnitude = int(value.lstrip("-")[2:], 16)
            return -magnitude if negative else magnitude
        raise InvalidRequest(f"{what} must be a decimal or 0x-hex integer, got `{value}`")
    raise InvalidRequest(f"{what} must be an integer (number, decimal string or 0x-hex string)")


def _parse_uint(value: object, what: str, bits: int) -> int:
    number = _parse_int(value, what)
    if not 0 <= number < 1 << bits:
        raise InvalidRequest(f"{what} is out of range for uint{bits}")
    return number


def _parse_hex_bytes(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidRequest(f"{what} must be a 0x-hex string")
    match = _HEX_BYTES_RE.fullmatch(value)
    if match is None:
        raise InvalidRequest(f"{what} must be 0x followed by an even number of hex digits")
    return bytes.fromhex(match.group(1))


def _parse_address(value: object, what: str) -> bytes:
    if not isinstance(value, str) or not is_address(value):
        raise InvalidRequest(f"{what} must be a 0x address of 40 hex digits (mixed case must be EIP-55)")
    return bytes.fromhex(value[2:])


# ---------------------------------------------------------------------------------------------
# EIP-712


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    type: str


@dataclass(frozen=True, slots=True)
class TypedData:
    """Validated EIP-712 typed data: the struct types (with the domain type) and the raw values."""

    types: Mapping[str, tuple[_Field, ...]]
    primary_type: str
    domain: Mapping[str, Any]
    message: Mapping[str, Any]
    _type_hashes: dict[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    def _dependencies(self, primary: str) -> list[str]:
        found: list[str] = []
        pending = [primary]
        while pending:
            name = pending.pop()
            if name in found:
                continue
            found.append(name)
            for f in self.types[name]:
                base = _base_type(f.type)
                if base in self.types and base not in found:
                    pending.append(base)
        return found

    def encode_type(self, primary: str) -> str:
        """``encodeType``: the primary struct, then its dependencies sorted by name."""
        deps = [d for d in self._dependencies(primary) if d != primary]
        return "".join(
            f"{name}({','.join(f'{f.type} {f.name}' for f in self.types[name])})" for name in [primary, *sorted(deps)]
        )

    def type_hash(self, primary: str) -> bytes:
        """Keccak-256 of :meth:`encode_type` (memoised per type)."""
        cached = self._type_hashes.get(primary)
        if cached is None:
            cached = self._type_hashes[primary] = keccak256(self.encode_type(primary).encode("ascii"))
        return cached

    def _encode_value(self, type_: str, value: object, what: str, depth: int) -> bytes:
        """The 32-byte ``encodeData`` word for one value."""
        if depth > MAX_DEPTH:
            raise InvalidRequest(f"typed data nests deeper than {MAX_DEPTH} levels at {what}")
        array = _ARRAY_RE.match(type_)
        if array is not None:
            inner, size = array.group(1), array.group(2)
            if not isinstance(value, list):
                raise InvalidRequest(f"{what} must be an array")
            if size and len(value) != int(size):
                raise InvalidRequest(f"{what} must have exactly {int(size)} elements, got {len(value)}")
            words = b"".join(self._encode_value(inner, item, f"{what}[{i}]", depth + 1) for i, item in enumerate(value))
            return keccak256(words)
        if type_ in self.types:
            return self._hash_struct(type_, value, what, depth + 1)
        return _encode_atomic(type_, value, what)

    def _hash_struct(self, name: str, value: object, what: str, depth: int) -> bytes:
        if not isinstance(value, dict):
            raise InvalidRequest(f"{what} must be an object of type `{name}`")
        words = [self.type_hash(name)]
        for f in self.types[name]:
            if f.name not in value:
                raise InvalidRequest(f"{what} is missing field `{f.name}` of type `{name}`")
            words.append(self._encode_value(f.type, value[f.name], f"{what}.{f.name}", depth))
        return keccak256(b"".join(words))

    def hash_struct(self, name: str, value: Mapping[str, Any]) -> bytes:
        """``hashStruct(value)`` for struct type ``name``."""
        if name not in self.types:
            raise InvalidRequest(f"typed data has no type `{name}`")
        return self._hash_struct(name, dict(value), name, 0)

    def domain_separator(self) -> bytes:
        """``hashStruct(EIP712Domain, domain)``."""
        return self._hash_struct(_DOMAIN, dict(self.domain), "domain", 0)

    def struct_hash(self) -> bytes:
        """``hashStruct(primaryType, message)``."""
        return self._hash_struct(self.primary_type, dict(self.message), "message", 0)

    def hash(self) -> bytes:
        """The EIP-712 signing digest ``keccak256(0x1901 || domainSeparator || hashStruct(message))``."""
        parts = b"\x19\x01" + self.domain_separator()
        if self.primary_type != _DOMAIN:
            parts += self.struct_hash()
        return keccak256(parts)

    def _normalise(self, type_: str, value: object, what: str, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise InvalidRequest(f"typed data nests deeper than {MAX_DEPTH} levels at {what}")
        array = _ARRAY_RE.match(type_)
        if array is not None:
            if not isinstance(value, list):
                raise InvalidRequest(f"{what} must be an array")
            return [self._normalise(array.group(1), item, f"{what}[{i}]", depth + 1) for i, item in enumerate(value)]
        if type_ in self.types:
            if not isinstance(value, dict):
                raise InvalidRequest(f"{what} must be an object of type `{type_}`")
            out: dict[str, object] = {}
            for f in self.types[type_]:
                if f.name not in value:
                    raise InvalidRequest(f"{what} is missing field `{f.name}` of type `{type_}`")
                out[f.name] = self._normalise(f.type, value[f.name], f"{what}.{f.name}", depth + 1)
            return out
        return _normalise_atomic(type_, value, what)

    def policy_fields(self) -> dict[str, Any]:
        """The ``eth.eip_712`` map: primary_type, domain{name, version, chain_id, verifying_contract}, message.

        Values follow the declared types: addresses and bytes as lowercase ``0x`` hex, integers as
        ints. Domain keys the payload does not set are None; undeclared message keys are dropped.
        """
        self.hash()  # full validation first, so policies never see data that cannot be signed
        domain = self._normalise(_DOMAIN, dict(self.domain), "domain", 0)
        assert isinstance(domain, dict)
        message = {} if self.primary_type == _DOMAIN else self._normalise(self.primary_type, self.message, "message", 0)
        return {
            "primary_type": self.primary_type,
            "domain": {
                "name": domain.get("name"),
                "version": domain.get("version"),
                "chain_id": domain.get("chainId"),
                "verifying_contract": domain.get("verifyingContract"),
            },
            "message": message,
        }


def _base_type(type_: str) -> str:
    while (array := _ARRAY_RE.match(type_)) is not None:
        type_ = array.group(1)
    return type_


def _int_bits(type_: str) -> tuple[bool, int] | None:
    """(signed, bits) for ``uintN``/``intN`` (bare ``uint``/``int`` mean 256), else None."""
    match = _INT_TYPE_RE.fullmatch(type_)
    if match is None:
        return None
    bits = int(match.group(2)) if match.group(2) else 256
    if match.group(2).startswith("0") or not (8 <= bits <= 256 and bits % 8 == 0):
        return None
    return match.group(1) != "u", bits


def _bytes_len(type_: str) -> int | None:
    match = _BYTES_TYPE_RE.fullmatch(type_)
    if match is None or match.group(1).startswith("0"):
        return None
    size = int(match.group(1))
    return size if 1 <= size <= 32 else None


def _is_atomic(type_: str) -> bool:
    return (
        type_ in ("bool", "address", "string", "bytes") or _int_bits(type_) is not None or _bytes_len(type_) is not None
    )


def _parse_integer_typed(type_: str, value: object, what: str) -> int:
    spec = _int_bits(type_)
    assert spec is not None
    signed, bits = spec
    number = _parse_int(value, what)
    low, high = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    if not low <= number < high:
        raise InvalidRequest(f"{what} is out of range for {type_}")
    return number


def _encode_atomic(type_: str, value: object, what: str) -> bytes:
    if type_ == "bool":
        if not isinstance(value, bool):
            raise InvalidRequest(f"{what} must be a boolean")
        return int(value).to_bytes(32, "big")
    if type_ == "address":
        return _parse_address(value, what).rjust(32, b"\x00")
    if type_ == "string":
        if not isinstance(value, str):
            raise InvalidRequest(f"{what} must be a string")
        try:
            return keccak256(value.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidRequest(f"{what} is not valid unicode") from exc
    if type_ == "bytes":
        return keccak256(_parse_hex_bytes(value, what))
    size = _bytes_len(type_)
    if size is not None:
        raw = _parse_hex_bytes(value, what)
        if len(raw) != size:
            raise InvalidRequest(f"{what} must be exactly {size} bytes for {type_}, got {len(raw)}")
        return raw.ljust(32, b"\x00")
    number = _parse_integer_typed(type_, value, what)
    return (number % (1 << 256)).to_bytes(32, "big")


def _normalise_atomic(type_: str, value: object, what: str) -> object:
    if type_ in ("bool", "string"):
        return value
    if type_ == "address":
        return "0x" + _parse_address(value, what).hex()
    if type_ == "bytes" or _bytes_len(type_) is not None:
        return "0x" + _parse_hex_bytes(value, what).hex()
    return _parse_integer_typed(type_, value, what)


def _parse_types(raw: object) -> dict[str, tuple[_Field, ...]]:
    if not isinstance(raw, dict):
        raise InvalidRequest("typed data `types` must be an object")
    if len(raw) > MAX_TYPES:
        raise InvalidRequest(f"typed data declares more than {MAX_TYPES} types")
    types: dict[str, tuple[_Field, ...]] = {}
    for name, fields in raw.items():
        if not isinstance(name, str) or _IDENT_RE.fullmatch(name) is None:
            raise InvalidRequest(f"typed data type name `{name}` is not a valid identifier")
        if _is_atomic(name):
            raise InvalidRequest(f"typed data type name `{name}` shadows an atomic type")
        if not isinstance(fields, list) or len(fields) > MAX_TYPES:
            raise InvalidRequest(f"typed data type `{name}` must be a list of at most {MAX_TYPES} fields")
        parsed: list[_Field] = []
        for f in fields:
            if not isinstance(f, dict) or not isinstance(f.get("name"), str) or not isinstance(f.get("type"), str):
                raise InvalidRequest(f"typed data type `{name}` has a field that is not {{name, type}}")
            if _IDENT_RE.fullmatch(f["name"]) is None:
                raise InvalidRequest(f"typed data type `{name}` has an invalid field name `{f['name']}`")
            if any(p.name == f["name"] for p in parsed):
                raise InvalidRequest(f"typed data type `{name}` declares field `{f['name']}` twice")
            parsed.append(_Field(name=f["name"], type=f["type"]))
        types[name] = tuple(parsed)
    for name, fields in types.items():
        for f in fields:
            type_ = f.type
            while (array := _ARRAY_RE.match(type_)) is not None:
                size = array.group(2)
                if size and (size != str(int(size)) or len(size) > 9):
                    raise InvalidRequest(f"typed data field `{name}.{f.name}` has a malformed array size")
                type_ = array.group(1)
            if not (_is_atomic(type_) or type_ in types):
                raise InvalidRequest(f"typed data field `{name}.{f.name}` has unknown type `{f.type}`")
    return types


def parse_typed_data(payload: object) -> TypedData:
    """Validate the EIP-712 JSON (a parsed object, or its text) and return a :class:`TypedData`."""
    obj = _load_json(payload, "typed data")
    primary = obj.get("primaryType")
    domain = obj.get("domain", {})
    message = obj.get("message", {})
    if not isinstance(primary, str):
        raise InvalidRequest("typed data `primaryType` must be a string")
    if not isinstance(domain, dict):
        raise InvalidRequest("typed data `domain` must be an object")
    if not isinstance(message, dict):
        raise InvalidRequest("typed data `message` must be an object")
    types = _parse_types(obj.get("types"))
    if _DOMAIN not in types:
        types[_DOMAIN] = tuple(
            _Field(name=key, type=type_) for key, type_ in _DOMAIN_FIELDS if domain.get(key) is not None
        )
    if primary not in types:
        raise InvalidRequest(f"typed data `primaryType` `{primary}` is not declared in `types`")
    return TypedData(types=types, primary_type=primary, domain=domain, message=message)


def typed_data_hash(payload: object) -> bytes:
    """The EIP-712 digest of a typed-data JSON payload (parsed object or text)."""
    return parse_typed_data(payload).hash()


def typed_data_policy_fields(payload: object) -> dict[str, Any]:
    """The ``eth.eip_712`` policy map of a typed-data JSON payload (see :meth:`TypedData.policy_fields`)."""
    return parse_typed_data(payload).policy_fields()


# ---------------------------------------------------------------------------------------------
# EIP-7702


@dataclass(frozen=True, slots=True)
class Eip7702Authorization:
    """An unsigned EIP-7702 authorization: delegate ``address`` on ``chain_id`` (0 = any) at ``nonce``."""

    chain_id: int
    address: bytes
    nonce: int

    def signing_hash(self) -> bytes:
        """``keccak256(0x05 || rlp([chain_id, address, nonce]))``."""
        body = rlp.encode([rlp.encode_uint(self.chain_id), self.address, rlp.encode_uint(self.nonce)])
        return keccak256(_EIP7702_MAGIC + body)

    def policy_fields(self) -> dict[str, Any]:
        """The ``eth.eip_7702_authorization`` map: address (lowercase 0x hex), chain_id, nonce."""
        return {"address": "0x" + self.address.hex(), "chain_id": self.chain_id, "nonce": self.nonce}


def parse_eip7702_authorization(payload: object) -> Eip7702Authorization:
    """Parse ``{"address", "chainId", "nonce"}`` (parsed or text); other keys are ignored."""
    obj = _load_json(payload, "eip-7702 authorization")
    for key in ("address", "chainId", "nonce"):
        if key not in obj:
            raise InvalidRequest(f"eip-7702 authorization is missing `{key}`")
    return Eip7702Authorization(
        chain_id=_parse_uint(obj["chainId"], "eip-7702 authorization `chainId`", 256),
        address=_parse_address(obj["address"], "eip-7702 authorization `address`"),
        nonce=_parse_uint(obj["nonce"], "eip-7702 authorization `nonce`", 64),
    )


def eip7702_authorization_hash(payload: object) -> bytes:
    """The EIP-7702 authorization digest of a ``{address, chainId, nonce}`` JSON payload."""
    return parse_eip7702_authorization(payload).signing_hash()


__all__ = [
    "MAX_DEPTH",
    "MAX_TYPED_DATA_BYTES",
    "MAX_TYPES",
    "Eip7702Authorization",
    "TypedData",
    "eip191_hash",
    "eip7702_authorization_hash",
    "parse_eip7702_authorization",
    "parse_typed_data",
    "typed_data_hash",
    "typed_data_policy_fields",
]
