"""Anchor IDLs: what a program's instruction data means, for policies (`parsed_instruction_data`).

An uploaded IDL (a Solana smart contract interface) is checked once, when it is created, in
either Anchor format:

- 0.30+: each instruction carries its `discriminator` (a list of bytes); accounts say
  `writable`/`signer`; defined types are `{"defined": {"name": "T"}}`; keys are `pubkey`;
- legacy (before 0.30): no discriminator, so it is Anchor's sighash,
  sha256("global:" + snake_case(name))[:8] (snake case as Turnkey's parser computes it: an
  underscore before each upper-case letter but the first, then lower case); accounts say
  `isMut`/`isSigner`; defined types are `{"defined": "T"}`; keys are `publicKey`.

Every type an instruction's arguments reach must be one this module decodes, and every defined
type it names must exist, or the upload is refused with the defect named. Types no instruction
uses are not looked into.

Decoding is Borsh, strict, and returns None (so a policy that reads the field fails closed)
whenever the data is not exactly what the IDL describes: a discriminator no instruction has,
data that ends early, bytes left over after the last argument (Anchor itself would ignore
them, and so does the program; Turnkey's parser refuses them, and so do we: what a policy
approves is then all there is), a bool or option tag other than 0/1, an enum variant index out
of range, a string that is not UTF-8, fewer accounts than the IDL names, or a value that would
exceed the depth or the value budget (shared by one message's instructions, so hostile data
cannot make decoding slow or large).

Values, as policies read them: integers (all widths, u256/i256 included) as integers, f32/f64
as floats (which the policy language cannot compare: a policy comparing one fails closed),
`bool`, `string`, `bytes` as lowercase hex without `0x` (Turnkey's choice), keys as base58,
`vec`/`array` as lists, `option` as the value or null, structs as maps by field name
(tuple structs as lists), enums as `{variant: fields}` (fields: null for a unit variant, a map
for named fields, a list for tuple fields) as Turnkey's parser emits them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from strongroom.crypto.base58 import b58encode
from strongroom.errors import InvalidRequest

MAX_INSTRUCTIONS: Final = 2000
MAX_TYPES: Final = 4000
MAX_TYPE_NESTING: Final = 16  # of one type expression (vec of option of ...) in the IDL text
MAX_DECODE_DEPTH: Final = 32  # of values while decoding, across defined types
MAX_VALUES: Final = 10_000  # values decoded for one message (all its instructions), see `Budget`
MAX_DATA: Final = 64 * 1024  # instruction data longer than this is not decoded (a message holds ~1232 bytes)
MAX_ARRAY_LEN: Final = 1 << 16
MAX_DISCRIMINATOR: Final = 32
IDL_SOURCE_CUSTOM: Final = "Custom"

_INTS: Final = {
    "u8": (1, False),
    "i8": (1, True),
    "u16": (2, False),
    "i16": (2, True),
    "u32": (4, False),
    "i32": (4, True),
    "u64": (8, False),
    "i64": (8, True),
    "u128": (16, False),
    "i128": (16, True),
    "u256": (32, False),
    "i256": (32, True),
}
_PRIMITIVES: Final = frozenset({*_INTS, "bool", "f32", "f64", "string", "bytes", "pubkey", "publicKey"})


# --- The parsed form -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prim:
    name: str


@dataclass(frozen=True, slots=True)
class Vec:
    item: Ty


@dataclass(frozen=True, slots=True)
class Opt:
    item: Ty


@dataclass(frozen=True, slots=True)
class Arr:
    item: Ty
    length: int


@dataclass(frozen=True, slots=True)
class Ref:
    name: str


Ty = Prim | Vec | Opt | Arr | Ref


@dataclass(frozen=True, slots=True)
class Fields:
    """Named fields (`names` set) or tuple fields (`names` None)."""

    types: tuple[Ty, ...]
    names: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Struct:
    fields: Fields


@dataclass(frozen=True, slots=True)
class Enum:
    variants: tuple[tuple[str, Fields | None], ...]


@dataclass(frozen=True, slots=True)
class Alias:
    target: Ty


TypeDef = Struct | Enum | Alias


@dataclass(frozen=True, slots=True)
class IdlInstruction:
    name: str
    discriminator: bytes
    accounts: tuple[str, ...]  # flattened, in order
    args: Fields  # always named


@dataclass(frozen=True, slots=True)
class Idl:
    instructions: tuple[IdlInstruction, ...]
    types: dict[str, TypeDef]
    idl_hash: str


IdlFor = Callable[[str], Idl | None]
"""The organization's uploaded IDL for a program id (base58), if any."""


# --- Reading an IDL --------------------------------------------------------------------------


def snake_case(name: str) -> str:
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i != 0:
            out.append("_")
        out.append(c.lower())
    return "".join(out)


def legacy_discriminator(name: str) -> bytes:
    return hashlib.sha256(f"global:{snake_case(name)}".encode()).digest()[:8]


_RUST_WHITESPACE: Final = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def idl_hash(text: str) -> str:
    """Turnkey's `idl_hash`: SHA-256 (hex) of the IDL text with every whitespace character removed."""
    return hashlib.sha256("".join(c for c in text if c not in _RUST_WHITESPACE).encode()).hexdigest()


def _name(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > 256:
        raise InvalidRequest(f"{where}: `name` must be a non-empty string of at most 256 characters")
    return raw


def _type(raw: Any, where: str, depth: int = 0) -> Ty:
    if depth > MAX_TYPE_NESTING:
        raise InvalidRequest(f"{where}: the type is nested too deeply")
    if isinstance(raw, str):
        if raw in _PRIMITIVES:
            return Prim("pubkey" if raw == "publicKey" else raw)
        raise InvalidRequest(f"{where}: unsupported type `{raw[:64]}`")
    if isinstance(raw, dict) and len(raw) == 1:
        ((kind, inner),) = raw.items()
        if kind == "vec":
            return Vec(_type(inner, where, depth + 1))
        if kind == "option":
            return Opt(_type(inner, where, depth + 1))
        if kind == "array":
            if isinstance(inner, list) and len(inner) == 2 and type(inner[1]) is int and 0 <= inner[1] <= MAX_ARRAY_LEN:
                return Arr(_type(inner[0], where, depth + 1), inner[1])
            raise InvalidRequest(f"{where}: `array` must be [type, length] with a length of at most {MAX_ARRAY_LEN}")
        if kind == "defined":
            if isinstance(inner, dict):
                if inner.get("generics"):
                    raise InvalidRequest(f"{where}: generic defined types are not supported")
                inner = inner.get("name")
            if not isinstance(inner, str) or not inner:
                raise InvalidRequest(f"{where}: `defined` must name a type")
            return Ref(inner)
        raise InvalidRequest(f"{where}: unsupported type `{str(kind)[:64]}`")
    raise InvalidRequest(f"{where}: a type must be a name or an object with one key")


def _fields(raw: Any, where: str) -> Fields:
    if not isinstance(raw, list):
        raise InvalidRequest(f"{where} must be a list")
    if all(isinstance(f, dict) and "name" in f for f in raw):
        names = tuple(_name(f.get("name"), f"{where}[{i}]") for i, f in enumerate(raw))
        if len(set(names)) != len(names):
            raise InvalidRequest(f"{where}: field names must be distinct")
        return Fields(tuple(_type(f.get("type"), f"{where}[{i}]") for i, f in enumerate(raw)), names)
    return Fields(tuple(_type(t, f"{where}[{i}]") for i, t in enumerate(raw)), None)


def _typedef(raw: Any, where: str) -> TypeDef:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where}: `type` must be an object")
    if raw.get("serialization", "borsh") != "borsh":
        raise InvalidRequest(f"{where}: only borsh-serialized types are supported")
    kind = raw.get("kind")
    if kind == "struct":
        return Struct(_fields(raw.get("fields", []), f"{where}.fields"))
    if kind == "enum":
        variants = raw.get("variants")
        if not isinstance(variants, list) or not 0 < len(variants) <= 256:
            raise InvalidRequest(f"{where}: an enum needs 1 to 256 `variants`")
        out = []
        for i, v in enumerate(variants):
            if not isinstance(v, dict):
                raise InvalidRequest(f"{where}.variants[{i}] must be an object")
            fields = v.get("fields")
            out.append(
                (
                    _name(v.get("name"), f"{where}.variants[{i}]"),
                    None if fields is None else _fields(fields, f"{where}.variants[{i}].fields"),
                )
            )
        return Enum(tuple(out))
    if kind in ("type", "alias"):
        return Alias(_type(raw.get("alias", raw.get("value")), f"{where}.alias"))
    raise InvalidRequest(f"{where}: unsupported type kind `{str(kind)[:64]}`")


def _flatten_accounts(raw: Any, where: str, out: list[str], prefix: str = "", depth: int = 0) -> None:
    if not isinstance(raw, list):
        raise InvalidRequest(f"{where} must be a list")
    if depth > 8:
        raise InvalidRequest(f"{where}: account groups are nested too deeply")
    for i, a in enumerate(raw):
        if not isinstance(a, dict):
            raise InvalidRequest(f"{where}[{i}] must be an object")
        name = _name(a.get("name"), f"{where}[{i}]")
        if "accounts" in a:
            _flatten_accounts(a["accounts"], f"{where}[{i}].accounts", out, f"{prefix}{name}.", depth + 1)
        else:
            out.append(name if name not in out else f"{prefix}{name}")


def _instruction(raw: Any, where: str) -> IdlInstruction:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where} must be an object")
    name = _name(raw.get("name"), where)
    disc = raw.get("discriminator")
    if disc is None:
        discriminator = legacy_discriminator(name)
    elif (
        isinstance(disc, list)
        and 0 < len(disc) <= MAX_DISCRIMINATOR
        and all(type(b) is int and 0 <= b <= 255 for b in disc)
    ):
        discriminator = bytes(disc)
    else:
        raise InvalidRequest(f"{where}: `discriminator` must be a list of 1 to {MAX_DISCRIMINATOR} bytes")
    accounts: list[str] = []
    _flatten_accounts(raw.get("accounts", []), f"{where}.accounts", accounts)
    args = _fields(raw.get("args", []), f"{where}.args")
    if args.names is None and args.types:
        raise InvalidRequest(f"{where}.args: every argument needs a `name` and a `type`")
    return IdlInstruction(name, discriminator, tuple(accounts), Fields(args.types, args.names or ()))


def _check_refs(ty: Ty, types: dict[str, Any], parsed: dict[str, TypeDef], where: str) -> None:
    """Parse (once) every defined type `ty` reaches; refuse a name the IDL does not define."""
    stack = [ty]
    while stack:
        t = stack.pop()
        if isinstance(t, (Vec, Opt, Arr)):
            stack.append(t.item)
        elif isinstance(t, Ref) and t.name not in parsed:
            if t.name not in types:
                raise InvalidRequest(f"{where}: type `{t.name[:64]}` is not defined in the IDL")
            d = _typedef(types[t.name], f"types.{t.name[:64]}")
            parsed[t.name] = d
            if isinstance(d, Struct):
                stack.extend(d.fields.types)
            elif isinstance(d, Enum):
                stack.extend(ft for _, f in d.variants if f is not None for ft in f.types)
            else:
                stack.append(d.target)


def parse_idl(text: str) -> Idl:
    """An Anchor IDL (JSON text), checked; InvalidRequest names the first defect."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidRequest("the IDL is not valid JSON") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("instructions"), list):
        raise InvalidRequest("the IDL must be a JSON object with `instructions` (an Anchor IDL)")
    if len(raw["instructions"]) > MAX_INSTRUCTIONS:
        raise InvalidRequest(f"the IDL has more than {MAX_INSTRUCTIONS} instructions")
    raw_types = raw.get("types", [])
    if not isinstance(raw_types, list) or len(raw_types) > MAX_TYPES:
        raise InvalidRequest(f"the IDL's `types` must be a list of at most {MAX_TYPES} entries")
    types: dict[str, Any] = {}
    for i, t in enumerate(raw_types):
        if not isinstance(t, dict):
            raise InvalidRequest(f"types[{i}] must be an object")
        name = _name(t.get("name"), f"types[{i}]")
        if name in types:
            raise InvalidRequest(f"types[{i}]: type `{name[:64]}` is defined twice")
        types[name] = t.get("type")
    instructions = []
    parsed: dict[str, TypeDef] = {}
    for i, r in enumerate(raw["instructions"]):
        ins = _instruction(r, f"instructions[{i}]")
        for t in ins.args.types:
            _check_refs(t, types, parsed, f"instructions[{i}] ({ins.name[:64]})")
        instructions.append(ins)
    # If one discriminator is a prefix of another, so is it of every one sorted between them.
    ordered = sorted((ins.discriminator, ins.name) for ins in instructions)
    for (a, a_name), (b, b_name) in itertools.pairwise(ordered):
        if b.startswith(a):
            raise InvalidRequest(
                f"instructions `{a_name[:64]}` and `{b_name[:64]}` have ambiguous discriminators"
                " (equal, or one a prefix of the other)"
            )
    return Idl(tuple(instructions), parsed, idl_hash(text))


# --- Decoding instruction data ---------------------------------------------------------------


class Budget:
    """Values left to decode; one per message, shared by its instructions (mutable)."""

    __slots__ = ("left",)

    def __init__(self, values: int = MAX_VALUES) -> None:
        self.left = values


class _Fail(Exception):
    """The data is not what the IDL describes."""


class _Reader:
    def __init__(self, data: bytes, types: dict[str, TypeDef], budget: int) -> None:
        self.data, self.pos, self.types, self.budget = data, 0, types, budget

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise _Fail
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def length(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def value(self, ty: Ty, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0 or depth > MAX_DECODE_DEPTH:
            raise _Fail
        if isinstance(ty, Prim):
            return self.prim(ty.name)
        if isinstance(ty, Vec):
            n = self.length()
            if n > self.budget:  # every element costs at least one value
                raise _Fail
            return [self.value(ty.item, depth + 1) for _ in range(n)]
        if isinstance(ty, Arr):
            if ty.length > self.budget:
                raise _Fail
            return [self.value(ty.item, depth + 1) for _ in range(ty.length)]
        if isinstance(ty, Opt):
            tag = self.take(1)[0]
            if tag > 1:
                raise _Fail
            return self.value(ty.item, depth + 1) if tag else None
        return self.defined(self.types[ty.name], depth + 1)

    def prim(self, name: str) -> Any:
        if name in _INTS:
            size, signed = _INTS[name]
            return int.from_bytes(self.take(size), "little", signed=signed)
        if name == "bool":
            b = self.take(1)[0]
            if b > 1:
                raise _Fail
            return b == 1
        if name == "f32":
            return float(struct.unpack("<f", self.take(4))[0])
        if name == "f64":
            return float(struct.unpack("<d", self.take(8))[0])
        if name == "pubkey":
            return b58encode(self.take(32))
        raw = self.take(self.length())
        if name == "bytes":
            return raw.hex()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _Fail from None

    def fields(self, f: Fields, depth: int) -> Any:
        values = [self.value(t, depth) for t in f.types]
        return values if f.names is None else dict(zip(f.names, values, strict=True))

    def defined(self, d: TypeDef, depth: int) -> Any:
        if isinstance(d, Struct):
            return self.fields(d.fields, depth)
        if isinstance(d, Alias):
            return self.value(d.target, depth)
        index = self.take(1)[0]
        if index >= len(d.variants):
            raise _Fail
        name, f = d.variants[index]
        return {name: None if f is None else self.fields(f, depth)}


def decode(idl: Idl, data: bytes, accounts: list[str], budget: Budget | None = None) -> dict[str, Any] | None:
    """`parsed_instruction_data` for one instruction (`accounts`: its account keys, in order), or None.

    `budget` is shared by the instructions of one message (a fresh one when None): once spent,
    further instructions decode to nothing, so a message full of hostile instructions stays cheap.
    """
    budget = Budget() if budget is None else budget
    if len(data) > MAX_DATA:
        return None
    for ins in idl.instructions:
        if data.startswith(ins.discriminator):
            break
    else:
        return None
    if len(accounts) < len(ins.accounts):
        return None
    r = _Reader(data, idl.types, budget.left)
    r.pos = len(ins.discriminator)
    try:
        args = r.fields(ins.args, 0)
    except (_Fail, RecursionError):
        budget.left = max(r.budget, 0)
        return None
    budget.left = r.budget
    if r.pos != len(data):
        return None
    return {
        "instruction_name": ins.name,
        "discriminator": ins.discriminator.hex(),
        "named_accounts": dict(zip(ins.accounts, accounts, strict=False)),
        "program_call_args": args,
        "idl_source": IDL_SOURCE_CUSTOM,
        "idl_hash": idl.idl_hash,
    }


__all__ = [
    "IDL_SOURCE_CUSTOM",
    "Budget",
    "Idl",
    "IdlFor",
    "decode",
    "idl_hash",
    "legacy_discriminator",
    "parse_idl",
    "snake_case",
]
