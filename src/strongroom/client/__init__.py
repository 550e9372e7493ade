"""The Python client: sync (`Client`) and async (`AsyncClient`), over HTTP or the Unix socket.

    from strongroom.client import ApiKeyStamper, Client
    c = Client("http://127.0.0.1:8080", ApiKeyStamper.from_files("var/keys/root"), organization_id)
    c.whoami()
    out = c.sign_raw_payload(address, "hello", "PAYLOAD_ENCODING_TEXT_UTF8", "HASH_FUNCTION_KECCAK256")

`base_url` may be `unix:///path/to/strongroom.sock` for the local signing socket. Requests are
stamped exactly as Turnkey's SDKs stamp them (P-256, secp256k1 or Ed25519 API keys). Errors are
typed: `ApiError` carries Turnkey's gRPC code, error code and message; `Unreachable` says the
daemon could not be reached; `ActivityError` is raised by `wait` for FAILED/REJECTED activities.
"""

from strongroom.client.aio import AsyncClient
from strongroom.client.errors import ActivityError, ApiError, ClientError, Unreachable
from strongroom.client.events import StreamEvent, verify_event
from strongroom.client.stamp import ApiKeyStamper
from strongroom.client.sync import Client

__all__ = [
    "ActivityError",
    "ApiError",
    "ApiKeyStamper",
    "AsyncClient",
    "Client",
    "ClientError",
    "StreamEvent",
    "Unreachable",
    "verify_event",
]
