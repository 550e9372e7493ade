"""A small synchronous client: stamps requests with a P-256 API key, as Turnkey's SDKs do.

Issue #6 grows this into the full async + sync client; the CLI and the tests use it now.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.crypto import p256


class ClientError(Exception):
    """The daemon answered with an error (Turnkey's shape) or could not be reached."""

    def __init__(self, status: int, code: int | None, message: str, body: Any = None) -> None:
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body


@dataclass(frozen=True, slots=True)
class ApiKeyStamper:
    public_key: str  # 66 hex, compressed P-256
    private_key: str  # 64 hex

    @classmethod
    def from_files(cls, prefix: Path) -> ApiKeyStamper:
        pub = Path(f"{prefix}.public")
        priv = Path(f"{prefix}.private")
        for p in (pub, priv):
            if not p.is_file():
                raise ClientError(0, None, f"API key file not found: {p}")
        return cls(pub.read_text().strip(), priv.read_text().strip())

    def stamp(self, body: bytes) -> str:
        sig = p256.sign_sha256_der(self.private_key, body).hex()
        data = json.dumps(
            {"publicKey": self.public_key, "scheme": "SIGNATURE_SCHEME_TK_API_P256", "signature": sig},
            separators=(",", ":"),
        ).encode()
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Client:
    def __init__(self, base_url: str, stamper: ApiKeyStamper, organization_id: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.stamper = stamper
        self.organization_id = organization_id
        self.timeout = timeout

    def post_raw(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(  # noqa: S310 - the URL is the operator's own daemon
            self.base_url + path,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "X-Stamp": self.stamper.stamp(body), **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw.decode(errors="replace")
        except urllib.error.URLError as err:
            raise ClientError(0, None, f"daemon not reachable at {self.base_url}: {err.reason}") from err

    def request(self, path: str, body: dict[str, Any]) -> Any:
        status, data = self.post_raw(path, json.dumps(body).encode())
        if status != 200:
            if isinstance(data, dict):
                raise ClientError(status, data.get("code"), str(data.get("message")), data)
            raise ClientError(status, None, str(data), data)
        return data

    def query(self, name: str, **params: Any) -> Any:
        return self.request(f"/public/v1/query/{name}", {"organizationId": self.organization_id, **params})

    def submit(self, name: str, activity_type: str, parameters: dict[str, Any]) -> Any:
        body = {
            "type": activity_type,
            "timestampMs": str(int(time.time() * 1000)),
            "organizationId": self.organization_id,
            "parameters": parameters,
        }
        return self.request(f"/public/v1/submit/{name}", body)

    # -- conveniences ---------------------------------------------------------------------------
    def whoami(self) -> Any:
        return self.query("whoami")

    def create_private_key(self, name: str, curve: str, address_formats: list[str]) -> Any:
        return self.submit(
            "create_private_keys",
            "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
            {
                "privateKeys": [
                    {"privateKeyName": name, "curve": curve, "privateKeyTags": [], "addressFormats": address_formats}
                ]
            },
        )

    def sign_raw_payload(self, sign_with: str, payload: str, encoding: str, hash_function: str) -> Any:
        return self.submit(
            "sign_raw_payload",
            "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
            {"signWith": sign_with, "payload": payload, "encoding": encoding, "hashFunction": hash_function},
        )
