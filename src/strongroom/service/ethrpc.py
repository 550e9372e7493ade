"""The Ethereum JSON-RPC signer (`POST /eth/rpc`): wallet methods over the same activity pipeline.

One JSON-RPC 2.0 call per request (batches are refused), with two members besides the standard
ones: ``organizationId`` and, for signing methods, ``timestampMs`` (the replay window of the
Turnkey API). The exact body is stamped (``X-Stamp`` or ``X-Stamp-WebAuthn``) as a Turnkey
request is, and the stamp is checked before anything else. Methods (parameters by position):

- ``eth_accounts`` ``[]``: the Ethereum addresses of the organization's secp256k1 keys, then
  those of its wallet accounts (any of them may be ``from`` / the signing address);
- ``personal_sign`` ``[data, address]`` and ``eth_sign`` ``[address, data]``: EIP-191 personal
  message (``data`` is ``0x`` hex bytes; other text is signed as its UTF-8), as
  ``SIGN_RAW_PAYLOAD_V2`` of the whole preimage hashed by the daemon;
- ``eth_signTransaction`` ``[tx]``: the transaction object (``from`` names the key; quantities
  as ``0x`` hex) as ``SIGN_TRANSACTION_V2``, so policies read ``eth.tx``; the result is the
  signed transaction's ``0x`` bytes;
- ``eth_signTypedData_v4`` ``[address, typedData]`` (an object, or its JSON text) as
  ``SIGN_RAW_PAYLOAD_V2`` with ``PAYLOAD_ENCODING_EIP712``, so policies read ``eth.eip_712``.

Each signing call is one activity of the stamping user, decided by the policies at once: the
stamped body is its evidence and fingerprint (a replay inside the window answers the same
activity). A call that would need approvals is refused (submit it to the Turnkey API). Every
failure is a JSON-RPC error object; ``data`` carries the Turnkey error (gRPC code, message).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from strongroom.chains.address_formats import derive_address
from strongroom.chains.ethereum import txdict
from strongroom.errors import (
    InvalidRequest,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    StrongroomError,
    Unauthenticated,
    Unavailable,
)
from strongroom.hsm import Curve
from strongroom.service.auth import Principal
from strongroom.service.pipeline import Pipeline
from strongroom.store.records import Organization
from strongroom.strictjson import StrictJsonError, loads

PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL: Final = -32603
RESOURCE_NOT_FOUND: Final = -32001  # EIP-1474
RESOURCE_UNAVAILABLE: Final = -32002
LIMIT_EXCEEDED: Final = -32005
REJECTED: Final = 4001  # EIP-1193: the signer refused (here: the policies did)
UNAUTHORIZED: Final = 4100

_CODES: Final[tuple[tuple[type[StrongroomError], int], ...]] = (
    (Unauthenticated, UNAUTHORIZED),
    (PermissionDenied, REJECTED),
    (InvalidRequest, INVALID_PARAMS),
    (NotFound, RESOURCE_NOT_FOUND),
    (ResourceExhausted, LIMIT_EXCEEDED),
    (Unavailable, RESOURCE_UNAVAILABLE),
)
_SIGN_RAW: Final = "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2"
_SIGN_TX: Final = "ACTIVITY_TYPE_SIGN_TRANSACTION_V2"
_ETHEREUM: Final = "ADDRESS_FORMAT_ETHEREUM"


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _rpc_code(err: StrongroomError) -> int:
    return next((code for kind, code in _CODES if isinstance(err, kind)), INTERNAL)


def _params(params: list[Any], count: int, method: str) -> list[Any]:
    if len(params) < count:
        raise InvalidRequest(f"{method} takes {count} parameter{'s' if count > 1 else ''}")
    return params


def _message_bytes(data: Any) -> bytes:
    if not isinstance(data, str):
        raise InvalidRequest("the message must be a string (0x hex bytes, or text)")
    if data.startswith(("0x", "0X")):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            pass  # not hex: signed as the text it is, as wallets do
    return data.encode("utf-8")


def _signature(sig: Mapping[str, Any]) -> str:
    return "0x" + str(sig["r"]) + str(sig["s"]) + f"{int(str(sig['v']), 16) + 27:02x}"


Handler = Callable[["EthRpc", list[Any], "Call"], Awaitable[Any]]


class Call:
    """One authenticated call: its exact body, organization, principal and time."""

    def __init__(self, body: bytes, envelope: Mapping[str, Any], org: Organization, principal: Principal, now: int):
        self.body = body
        self.envelope = envelope
        self.org = org
        self.principal = principal
        self.now_ms = now


class EthRpc:
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        request_id: Any = None
        try:
            data = loads(body)
        except StrictJsonError as err:
            return _error(None, PARSE_ERROR, f"parse error: {err.reason}")
        if isinstance(data, list):
            return _error(None, INVALID_REQUEST, "batches are not supported: stamp and send one call per request")
        if not isinstance(data, dict):
            return _error(None, INVALID_REQUEST, "the request must be a JSON-RPC 2.0 object")
        raw_id = data.get("id")
        request_id = raw_id if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
        try:
            method = data.get("method")
            read = method == "eth_accounts"
            envelope, org, principal, now_ms = await self.pipeline.authenticate(headers, body, read=read)
            if data.get("jsonrpc") != "2.0" or not isinstance(method, str) or request_id != raw_id:
                return _error(request_id, INVALID_REQUEST, "not a JSON-RPC 2.0 request (jsonrpc, method, id)")
            handler = METHODS.get(method)
            if handler is None:
                return _error(request_id, METHOD_NOT_FOUND, f"method `{method[:64]}` is not supported")
            params = data.get("params", [])
            if not isinstance(params, list):
                return _error(request_id, INVALID_PARAMS, "params must be an array (by position)")
            if not read:
                self.pipeline.check_timestamp(envelope, now_ms)
            result = await handler(self, params, Call(body, envelope, org, principal, now_ms))
        except StrongroomError as err:
            grpc = {"code": int(err.grpc), "message": err.message, "turnkeyErrorCode": err.code.value}
            return _error(request_id, _rpc_code(err), err.message, grpc)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # -- methods --------------------------------------------------------------------------------
    async def _activity(self, call: Call, activity_type: str, params: dict[str, Any], result_key: str) -> Any:
        out = await self.pipeline.submit_as(activity_type, params, call.body, call.org, call.principal, call.now_ms)
        activity = out["activity"]
        if activity["status"] != "ACTIVITY_STATUS_COMPLETED":
            failure = activity.get("failure") or {}
            message = str(failure.get("message") or activity["status"])
            raise Unavailable(f"activity {activity['id']} ended {activity['status']}: {message}")
        return activity["result"][result_key]

    async def accounts(self, params: list[Any], call: Call) -> list[str]:
        repo = self.pipeline.repo
        keys = repo.private_keys.private_keys(call.org.id)
        out = [derive_address(_ETHEREUM, k.curve, k.public_key) for k in keys if k.curve == Curve.SECP256K1]
        out += [a.address for a in repo.wallets.accounts(call.org.id) if a.address_format == _ETHEREUM]
        return list(dict.fromkeys(out))

    async def _personal(self, address: Any, data: Any, call: Call) -> str:
        message = _message_bytes(data)
        preimage = b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message
        params = {
            "signWith": txdict.address(address, "address"),
            "payload": preimage.hex(),
            "encoding": "PAYLOAD_ENCODING_HEXADECIMAL",
            "hashFunction": "HASH_FUNCTION_KECCAK256",
        }
        return _signature(await self._activity(call, _SIGN_RAW, params, "signRawPayloadResult"))

    async def personal_sign(self, params: list[Any], call: Call) -> str:
        data, address = _params(params, 2, "personal_sign")[:2]
        return await self._personal(address, data, call)

    async def eth_sign(self, params: list[Any], call: Call) -> str:
        address, data = _params(params, 2, "eth_sign")[:2]
        return await self._personal(address, data, call)

    async def sign_transaction(self, params: list[Any], call: Call) -> str:
        (tx,) = _params(params, 1, "eth_signTransaction")[:1]
        if not isinstance(tx, dict):
            raise InvalidRequest("eth_signTransaction takes a transaction object")
        sender = txdict.sender(tx)
        if sender is None:
            raise InvalidRequest("the transaction needs `from`: the address of the key that signs it")
        unsigned = txdict.transaction_from_dict(tx)
        params_ = {
            "signWith": sender,
            "unsignedTransaction": unsigned.encode_unsigned().hex(),
            "type": "TRANSACTION_TYPE_ETHEREUM",
        }
        result = await self._activity(call, _SIGN_TX, params_, "signTransactionResult")
        return "0x" + str(result["signedTransaction"]).removeprefix("0x")

    async def sign_typed_data(self, params: list[Any], call: Call) -> str:
        address, typed = _params(params, 2, "eth_signTypedData_v4")[:2]
        if isinstance(typed, dict):
            payload = json.dumps(typed, separators=(",", ":"), ensure_ascii=False)
        elif isinstance(typed, str):
            payload = typed
        else:
            raise InvalidRequest("the typed data must be an object or its JSON text")
        params_ = {
            "signWith": txdict.address(address, "address"),
            "payload": payload,
            "encoding": "PAYLOAD_ENCODING_EIP712",
            "hashFunction": "HASH_FUNCTION_NO_OP",
        }
        return _signature(await self._activity(call, _SIGN_RAW, params_, "signRawPayloadResult"))


METHODS: Final[dict[str, Handler]] = {
    "eth_accounts": EthRpc.accounts,
    "eth_sign": EthRpc.eth_sign,
    "personal_sign": EthRpc.personal_sign,
    "eth_signTransaction": EthRpc.sign_transaction,
    "eth_signTypedData_v4": EthRpc.sign_typed_data,
}

__all__ = ["METHODS", "EthRpc"]
