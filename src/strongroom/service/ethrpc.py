"""The Ethereum JSON-RPC signer (`POST /eth/rpc`): wallet methods over the same activity pipeline.

JSON-RPC 2.0, one call or a batch (an array of calls, answered by an array in the same order, at
most `eth_rpc_max_batch` calls), with two members besides the standard ones in each call:
``organizationId`` and, for signing methods, ``timestampMs`` (the replay window of the Turnkey
API). The exact body is stamped (``X-Stamp`` or ``X-Stamp-WebAuthn``) as a Turnkey request is,
once for the whole body, batch or not, and the stamp is checked before any call is answered.
Methods (parameters by position):

- ``eth_accounts`` ``[]``: the Ethereum addresses of the organization's secp256k1 keys, then
  those of its wallet accounts (any of them may be ``from`` / the signing address);
- ``personal_sign`` ``[data, address]`` and ``eth_sign`` ``[address, data]``: EIP-191 personal
  message (``data`` is ``0x`` hex bytes; other text is signed as its UTF-8), as
  ``SIGN_RAW_PAYLOAD_V2`` of the whole preimage hashed by the daemon;
- ``eth_signTransaction`` ``[tx]``: the transaction object (``from`` names the key; quantities
  as ``0x`` hex) as ``SIGN_TRANSACTION_V2``, so policies read ``eth.tx``; the result is the
  signed transaction's ``0x`` bytes;
- ``eth_signTypedData_v4`` ``[address, typedData]`` (an object, or its JSON text) as
  ``SIGN_RAW_PAYLOAD_V2`` with ``PAYLOAD_ENCODING_EIP712``, so policies read ``eth.eip_712``;
- ``eth_sendTransaction`` ``[tx]`` (needs the upstream node): the fields the object leaves out
  (``chainId``, ``nonce``, fees, ``gas``) are asked of the node, the transaction is signed
  exactly as ``eth_signTransaction`` signs it (same activity, same policies) and sent with the
  node's ``eth_sendRawTransaction``; the result is the node's transaction hash. A refused
  signature sends nothing;
- the node's own methods in `PROXIED` (chain id, nonces, gas, fees, balances, calls, blocks,
  receipts, ``eth_sendRawTransaction``...) are passed to the node at `eth_upstream_url` as they
  are, and its answer (result or error) comes back unchanged. No node is configured by default:
  they are then refused with a JSON-RPC error that says so.

Each signing call is one activity of the stamping user, decided by the policies at once: the
stamped body is its evidence and fingerprint (with the call's position in a batch; a replay
inside the window answers the same activity). A call that would need approvals is refused
(submit it to the Turnkey API). Every failure is a JSON-RPC error object; ``data`` carries the
Turnkey error (gRPC code, message). In a batch each call is decided on its own: one refused call
does not refuse the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

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
_QUANTITY: Final = re.compile(r"0x[0-9a-fA-F]{1,64}")
DEFAULT_PRIORITY_FEE: Final = 1_500_000_000  # 1.5 gwei, as ethers and viem assume when the node has no suggestion

PROXIED: Final = frozenset(
    {
        "eth_blockNumber",
        "eth_blobBaseFee",
        "eth_call",
        "eth_chainId",
        "eth_createAccessList",
        "eth_estimateGas",
        "eth_feeHistory",
        "eth_gasPrice",
        "eth_getBalance",
        "eth_getBlockByHash",
        "eth_getBlockByNumber",
        "eth_getBlockReceipts",
        "eth_getBlockTransactionCountByHash",
        "eth_getBlockTransactionCountByNumber",
        "eth_getCode",
        "eth_getLogs",
        "eth_getProof",
        "eth_getStorageAt",
        "eth_getTransactionByBlockHashAndIndex",
        "eth_getTransactionByBlockNumberAndIndex",
        "eth_getTransactionByHash",
        "eth_getTransactionCount",
        "eth_getTransactionReceipt",
        "eth_maxPriorityFeePerGas",
        "eth_sendRawTransaction",
        "eth_syncing",
        "net_listening",
        "net_version",
        "web3_clientVersion",
    }
)
"""The node's methods passed on to the upstream node: reads, and broadcasting signed bytes. Never a
method with which the node would sign, hold accounts or change its own state (no ``eth_sign*`` of
the node, ``personal_*``, ``admin_*``, ``debug_*``, filters or subscriptions)."""


class RpcError(Exception):
    """A JSON-RPC error to answer as it is: the upstream node's own, or one about the node."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class Upstream(Protocol):
    """The Ethereum node behind the signer (`api/` makes the HTTP requests: the service makes none).

    `call` returns the node's `result`, raises `RpcError` with the node's error object, and
    `Unavailable` when the node cannot be reached or answers something that is not JSON-RPC.
    """

    async def call(self, method: str, params: list[Any]) -> Any: ...


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


def _id_of(call: Mapping[str, Any]) -> Any:
    raw = call.get("id")
    return raw if isinstance(raw, str | int) and not isinstance(raw, bool) else None


def _node_quantity(value: Any, method: str) -> int:
    """A quantity the node answered (`0x` hex), or Unavailable naming the method."""
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise Unavailable(f"the upstream node answered {method} with something that is not a 0x quantity")
    return int(value, 16)


def _tx_quantity(tx: Mapping[str, Any], key: str) -> int:
    value = tx[key]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"0[xX][0-9a-fA-F]{1,64}", value):
        return int(value, 16)
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,78}", value, re.ASCII):
        return int(value)
    raise InvalidRequest(f"transaction field `{key}` must be an integer or 0x hex quantity")


Handler = Callable[["EthRpc", list[Any], "Call"], Awaitable[Any]]


class Call:
    """One authenticated call: the exact body it came in, its position in a batch, organization, principal, time."""

    def __init__(
        self,
        body: bytes,
        envelope: Mapping[str, Any],
        org: Organization,
        principal: Principal,
        now: int,
        part: int | None = None,
    ):
        self.body = body
        self.envelope = envelope
        self.org = org
        self.principal = principal
        self.now_ms = now
        self.part = part
        self.method = str(envelope.get("method", ""))


class EthRpc:
    def __init__(self, pipeline: Pipeline, *, max_batch: int = 20) -> None:
        self.pipeline = pipeline
        self.max_batch = max_batch
        self.upstream: Upstream | None = None  # set by the transport when `eth_upstream_url` is

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | list[dict[str, Any]]:
        try:
            data = loads(body)
        except StrictJsonError as err:
            return _error(None, PARSE_ERROR, f"parse error: {err.reason}")
        if isinstance(data, list):
            return await self._batch(data, body, headers)
        if not isinstance(data, dict):
            return _error(None, INVALID_REQUEST, "the request must be a JSON-RPC 2.0 object, or an array of them")
        request_id = _id_of(data)
        method = data.get("method")
        try:
            envelope, org, principal, now_ms = await self.pipeline.authenticate(headers, body, read=_is_read(method))
        except StrongroomError as err:
            return self._failure(request_id, err)
        return await self._answer(envelope, Call(body, envelope, org, principal, now_ms))

    async def _batch(
        self, calls: list[Any], body: bytes, headers: Mapping[str, str]
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """A batch: one stamp over the whole body, then each call answered on its own, in order."""
        if not calls:
            return _error(None, INVALID_REQUEST, "an empty batch: send at least one call")
        if len(calls) > self.max_batch:
            return _error(None, INVALID_REQUEST, f"batch too large: at most {self.max_batch} calls per request")
        objects = [c for c in calls if isinstance(c, dict)]
        org_id = next((c.get("organizationId") for c in objects if c.get("organizationId") is not None), None)
        read = all(_is_read(c.get("method")) for c in objects)
        try:
            if not isinstance(org_id, str):
                raise InvalidRequest("missing field `organizationId` in the batch's calls")
            org, principal, now_ms = await self.pipeline.authenticate_for(headers, body, org_id, read=read)
        except StrongroomError as err:
            return [self._failure(_id_of(c) if isinstance(c, dict) else None, err) for c in calls]
        answers = []
        for part, call in enumerate(calls):
            if not isinstance(call, dict):
                answers.append(_error(None, INVALID_REQUEST, "each call of a batch must be a JSON-RPC 2.0 object"))
            elif call.get("organizationId") != org_id:
                answers.append(
                    _error(_id_of(call), INVALID_REQUEST, "every call of a batch names the same `organizationId`")
                )
            else:
                answers.append(await self._answer(call, Call(body, call, org, principal, now_ms, part)))
        return answers

    async def _answer(self, data: Mapping[str, Any], call: Call) -> dict[str, Any]:
        """One authenticated call's answer: its result, or a JSON-RPC error object."""
        request_id = _id_of(data)
        method = data.get("method")
        if data.get("jsonrpc") != "2.0" or not isinstance(method, str) or request_id != data.get("id"):
            return _error(request_id, INVALID_REQUEST, "not a JSON-RPC 2.0 request (jsonrpc, method, id)")
        handler = METHODS.get(method)
        if handler is None and method not in PROXIED:
            return _error(request_id, METHOD_NOT_FOUND, f"method `{method[:64]}` is not supported")
        params = data.get("params", [])
        if not isinstance(params, list):
            return _error(request_id, INVALID_PARAMS, "params must be an array (by position)")
        try:
            if handler is None:
                result = await self._node(call.method).call(method, params)
            else:
                if method not in _READS:
                    self.pipeline.check_timestamp(data, call.now_ms)
                result = await handler(self, params, call)
        except StrongroomError as err:
            return self._failure(request_id, err)
        except RpcError as err:
            return _error(request_id, err.code, err.message, err.data)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    @staticmethod
    def _failure(request_id: Any, err: StrongroomError) -> dict[str, Any]:
        grpc = {"code": int(err.grpc), "message": err.message, "turnkeyErrorCode": err.code.value}
        return _error(request_id, _rpc_code(err), err.message, grpc)

    def _node(self, method: str) -> Upstream:
        if self.upstream is None:
            raise RpcError(
                METHOD_NOT_FOUND,
                f"`{method[:64]}` needs the upstream Ethereum node, and none is configured "
                "(set `eth_upstream_url` or STRONGROOM_ETH_UPSTREAM_URL)",
            )
        return self.upstream

    # -- methods --------------------------------------------------------------------------------
    async def _activity(self, call: Call, activity_type: str, params: dict[str, Any], result_key: str) -> Any:
        out = await self.pipeline.submit_as(
            activity_type, params, call.body, call.org, call.principal, call.now_ms, part=call.part
        )
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

    async def _sign_tx(self, tx: Mapping[str, Any], call: Call) -> str:
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

    async def sign_transaction(self, params: list[Any], call: Call) -> str:
        (tx,) = _params(params, 1, "eth_signTransaction")[:1]
        if not isinstance(tx, dict):
            raise InvalidRequest("eth_signTransaction takes a transaction object")
        return await self._sign_tx(tx, call)

    async def send_transaction(self, params: list[Any], call: Call) -> Any:
        """Fill in what the node knows, sign as eth_signTransaction does, then broadcast."""
        (tx,) = _params(params, 1, "eth_sendTransaction")[:1]
        if not isinstance(tx, dict):
            raise InvalidRequest("eth_sendTransaction takes a transaction object")
        if txdict.sender(tx) is None:
            raise InvalidRequest("the transaction needs `from`: the address of the key that signs it")
        node = self._node("eth_sendTransaction")
        raw = await self._sign_tx(await self._filled(tx, node), call)
        return await node.call("eth_sendRawTransaction", [raw])

    async def _filled(self, tx: Mapping[str, Any], node: Upstream) -> dict[str, Any]:
        """`tx` with its chain id, nonce, fees and gas: the node's where the caller left them out."""
        out = dict(tx)
        sender = txdict.sender(tx)
        chain_id = _node_quantity(await node.call("eth_chainId", []), "eth_chainId")
        if out.get("chainId") is None:
            out["chainId"] = hex(chain_id)
        elif _tx_quantity(out, "chainId") != chain_id:
            raise InvalidRequest(f"transaction field `chainId` is not the upstream node's chain ({chain_id})")
        if out.get("nonce") is None:
            count = await node.call("eth_getTransactionCount", [sender, "pending"])
            out["nonce"] = hex(_node_quantity(count, "eth_getTransactionCount"))
        legacy = out.get("gasPrice") is not None or (
            out.get("type") is not None and _tx_quantity(out, "type") in (0, 1)
        )
        has_1559 = out.get("maxFeePerGas") is not None and out.get("maxPriorityFeePerGas") is not None
        if not legacy and not has_1559:
            block = await node.call("eth_getBlockByNumber", ["latest", False])
            base = block.get("baseFeePerGas") if isinstance(block, dict) else None
            if base is None and out.get("maxFeePerGas") is None and out.get("maxPriorityFeePerGas") is None:
                legacy = True  # a chain without EIP-1559
            else:
                base_fee = _node_quantity(base, "eth_getBlockByNumber") if base is not None else 0
                if out.get("maxPriorityFeePerGas") is None:
                    tip = await self._priority_fee(node)
                    if out.get("maxFeePerGas") is not None:
                        tip = min(tip, _tx_quantity(out, "maxFeePerGas"))
                    out["maxPriorityFeePerGas"] = hex(tip)
                if out.get("maxFeePerGas") is None:
                    out["maxFeePerGas"] = hex(2 * base_fee + _tx_quantity(out, "maxPriorityFeePerGas"))
        if legacy and out.get("gasPrice") is None:
            out["gasPrice"] = hex(_node_quantity(await node.call("eth_gasPrice", []), "eth_gasPrice"))
        if out.get("gas") is None:
            fields = ("from", "to", "value", "data", "input", "accessList")
            estimate = await node.call("eth_estimateGas", [{k: out[k] for k in fields if out.get(k) is not None}])
            out["gas"] = hex(_node_quantity(estimate, "eth_estimateGas"))
        return out

    @staticmethod
    async def _priority_fee(node: Upstream) -> int:
        try:
            return _node_quantity(await node.call("eth_maxPriorityFeePerGas", []), "eth_maxPriorityFeePerGas")
        except RpcError:  # a node without the method: the usual default
            return DEFAULT_PRIORITY_FEE

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
    "eth_sendTransaction": EthRpc.send_transaction,
    "eth_signTypedData_v4": EthRpc.sign_typed_data,
}
_READS: Final = PROXIED | {"eth_accounts"}
"""Calls that sign nothing: no `timestampMs`, and a parent organization's credential may make them."""


def _is_read(method: Any) -> bool:
    return isinstance(method, str) and method in _READS


__all__ = ["METHODS", "PROXIED", "EthRpc", "RpcError", "Upstream"]
