"""The Ethereum node behind `/eth/rpc` (`eth_upstream_url`): JSON-RPC over HTTP with aiohttp.

The service decides what is passed on (`strongroom.service.PROXIED`, and the node's answers that
`eth_sendTransaction` needs); this module only makes the request: one call per POST, a bounded
time (`eth_upstream_timeout_s`) and a bounded answer. The node's error object is answered as it
is (`RpcError`); a node that cannot be reached, or answers something that is not JSON-RPC, is
`Unavailable` (EIP-1474's -32002), never a 5xx. The URL is never logged (it may carry a key).
"""

from __future__ import annotations

import itertools
from typing import Any, Final

import aiohttp
import orjson

from strongroom.errors import Unavailable
from strongroom.logs import get_logger
from strongroom.service import RpcError

MAX_ANSWER_BYTES: Final = 16 * 1024 * 1024
log = get_logger("strongroom.api.ethupstream")


class HttpUpstream:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def call(self, method: str, params: list[Any]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            async with self._session.post(
                self.url, data=orjson.dumps(request), headers={"Content-Type": "application/json"}
            ) as resp:
                raw = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    raw += chunk
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise Unavailable(
                            f"the upstream Ethereum node's answer to {method} is larger than {MAX_ANSWER_BYTES} bytes"
                        )
        except (TimeoutError, aiohttp.ClientError) as err:
            log.warning("eth_upstream_unreachable", method=method, error=type(err).__name__)
            raise Unavailable(f"the upstream Ethereum node did not answer {method}") from None
        try:
            answer = orjson.loads(bytes(raw))
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict) or ("result" not in answer and "error" not in answer):
            raise Unavailable(f"the upstream Ethereum node answered {method} with something that is not JSON-RPC")
        error = answer.get("error")
        if error is not None:
            if not isinstance(error, dict) or not isinstance(error.get("code"), int):
                raise Unavailable(f"the upstream Ethereum node answered {method} with a malformed error")
            raise RpcError(int(error["code"]), str(error.get("message", ""))[:4096], error.get("data"))
        return answer["result"]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
