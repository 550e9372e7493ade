"""Activity handlers: create private keys, sign raw payloads and Ethereum transactions."""

from __future__ import annotations

import uuid
from typing import Any, Final

from strongroom.chains.address_formats import SUPPORTED_FORMATS, derive_address
from strongroom.chains.ethereum import tx as ethtx
from strongroom.daemon import signing
from strongroom.daemon.activities import ActivitySpec, Context, Execution, Pipeline
from strongroom.daemon.params import JsonObj, obj, req_list, req_str, str_list
from strongroom.errors import ErrorCode, InvalidRequest, NotFound, ResourceExhausted, UnsupportedAlgorithm
from strongroom.hsm import AsyncKeyStore, Curve, KeyRef
from strongroom.store.records import PrivateKey, Repository

MAX_PRIVATE_KEYS_PER_ORG: Final = 1000
MAX_KEYS_PER_REQUEST: Final = 100
MAX_PAYLOADS: Final = 100


class KeyHandlers:
    def __init__(self, repo: Repository, keys: AsyncKeyStore) -> None:
        self.repo = repo
        self.keys = keys

    def register(self, pipeline: Pipeline) -> None:
        pipeline.register(
            ActivitySpec(
                "create_private_keys",
                "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
                "createPrivateKeysIntentV2",
                "createPrivateKeysResultV2",
                self.create_private_keys,
            )
        )
        pipeline.register(
            ActivitySpec(
                "sign_raw_payload",
                "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
                "signRawPayloadIntentV2",
                "signRawPayloadResult",
                self.sign_raw_payload,
                signatures=lambda _params: 1,
            )
        )
        pipeline.register(
            ActivitySpec(
                "sign_transaction",
                "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
                "signTransactionIntentV2",
                "signTransactionResult",
                self.sign_transaction,
                signatures=lambda _params: 1,
            )
        )
        pipeline.register(
            ActivitySpec(
                "sign_raw_payloads",
                "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS",
                "signRawPayloadsIntent",
                "signRawPayloadsResult",
                self.sign_raw_payloads,
                signatures=lambda params: len(params["payloads"]) if isinstance(params.get("payloads"), list) else 1,
            )
        )

    # -- create_private_keys -------------------------------------------------------------------
    async def create_private_keys(self, ctx: Context, params: JsonObj) -> Execution:
        org_id = ctx.organization.id
        items = req_list(params, "privateKeys", "parameters.", max_items=MAX_KEYS_PER_REQUEST, allow_empty=False)
        wanted: list[tuple[str, Curve, list[str]]] = []
        names: set[str] = set()
        for i, raw in enumerate(items):
            where = f"parameters.privateKeys[{i}]."
            item = obj(raw, where.rstrip("."))
            name = req_str(item, "privateKeyName", where, max_len=256)
            curve_name = req_str(item, "curve", where, max_len=64)
            try:
                curve = Curve(curve_name)
            except ValueError:
                if curve_name == "CURVE_P256":
                    raise UnsupportedAlgorithm("curve `CURVE_P256` is not supported for private keys") from None
                raise InvalidRequest(f"invalid curve `{curve_name}`") from None
            tags = str_list(item, "privateKeyTags", where, max_items=100) if "privateKeyTags" in item else []
            if tags:
                raise InvalidRequest(f"private key tag `{tags[0][:64]}` not found")
            formats = str_list(item, "addressFormats", where, max_items=16) if "addressFormats" in item else []
            for fmt in formats:
                if fmt not in SUPPORTED_FORMATS[curve.value]:
                    raise InvalidRequest(f"invalid address format `{fmt[:64]}` for curve `{curve.value}`")
            if name in names or self.repo.private_key_name_taken(org_id, name):
                raise InvalidRequest(f"private key name `{name}` is already used in this organization")
            names.add(name)
            wanted.append((name, curve, list(dict.fromkeys(formats))))
        if len(self.repo.private_keys(org_id)) + len(wanted) > MAX_PRIVATE_KEYS_PER_ORG:
            raise ResourceExhausted(f"organization has reached its limit of {MAX_PRIVATE_KEYS_PER_ORG} private keys")

        created: list[KeyRef] = []
        records: list[PrivateKey] = []
        try:
            for name, curve, formats in wanted:
                ref = await self.keys.generate(str(uuid.uuid4()), curve)
                created.append(ref)
                addresses = tuple((f, derive_address(f, curve.value, ref.public_key)) for f in formats)
                records.append(
                    PrivateKey(
                        ref.key_id,
                        org_id,
                        name,
                        curve.value,
                        ref.public_key,
                        ref.backend.value,
                        ref.wrapped,
                        addresses,
                        (),
                        ctx.now_ms,
                        ctx.now_ms,
                    )
                )
        except BaseException:
            for ref in created:
                await self.keys.destroy(ref)
            raise

        async def rollback() -> None:
            for ref in created:
                await self.keys.destroy(ref)

        ops: list[Any] = []
        for rec in records:
            ops += self.repo.insert_private_key(rec)
        result = {
            "privateKeys": [
                {"privateKeyId": r.id, "addresses": [{"format": f, "address": a} for f, a in r.addresses]}
                for r in records
            ]
        }
        return Execution(result, ops, rollback)

    # -- signing ----------------------------------------------------------------------------------
    def resolve_key(self, org_id: str, sign_with: str) -> PrivateKey:
        key = self.repo.private_key(org_id, sign_with)
        if key is None:
            key = self.repo.private_key_by_address(org_id, sign_with)
        if key is None:
            raise NotFound(f"no private key or address `{sign_with[:128]}` found in this organization")
        return key

    def _common(self, ctx: Context, params: JsonObj) -> tuple[PrivateKey, str, str]:
        sign_with = req_str(params, "signWith", "parameters.", max_len=256)
        encoding = req_str(params, "encoding", "parameters.", max_len=64)
        hash_function = req_str(params, "hashFunction", "parameters.", max_len=64)
        if encoding not in signing.ENCODINGS:
            raise InvalidRequest(f"invalid payload encoding `{encoding}`")
        key = self.resolve_key(ctx.organization.id, sign_with)
        signing.check_hash_function(key.curve, hash_function)
        return key, encoding, hash_function

    async def sign_raw_payload(self, ctx: Context, params: JsonObj) -> Execution:
        key, encoding, hash_function = self._common(ctx, params)
        payload = req_str(params, "payload", "parameters.", max_len=1 << 20, allow_empty=True)
        message = signing.payload_message(key.curve, hash_function, payload, encoding)
        return Execution(await signing.sign(self.keys, key, message), [])

    async def sign_transaction(self, ctx: Context, params: JsonObj) -> Execution:
        sign_with = req_str(params, "signWith", "parameters.", max_len=256)
        tx_type = req_str(params, "type", "parameters.", max_len=64)
        unsigned = req_str(params, "unsignedTransaction", "parameters.", max_len=1 << 18)
        if tx_type != "TRANSACTION_TYPE_ETHEREUM":
            if tx_type.startswith("TRANSACTION_TYPE_"):
                raise UnsupportedAlgorithm(
                    f"transaction type `{tx_type}` is not supported yet", code=ErrorCode.UNSUPPORTED_TRANSACTION_TYPE
                )
            raise InvalidRequest(f"invalid transaction type `{tx_type[:64]}`")
        key = self.resolve_key(ctx.organization.id, sign_with)
        if key.curve != Curve.SECP256K1:
            raise InvalidRequest("Ethereum transactions are signed with secp256k1 keys")
        tx = ethtx.parse_unsigned_transaction(unsigned)
        sig = await self.keys.sign_secp256k1(signing.key_ref(key), tx.signing_hash())
        return Execution({"signedTransaction": tx.serialize_signed(sig).hex()}, [])

    async def sign_raw_payloads(self, ctx: Context, params: JsonObj) -> Execution:
        key, encoding, hash_function = self._common(ctx, params)
        payloads = str_list(params, "payloads", "parameters.", max_items=MAX_PAYLOADS, allow_empty=False)
        messages = [signing.payload_message(key.curve, hash_function, p, encoding) for p in payloads]
        signatures = [await signing.sign(self.keys, key, m) for m in messages]
        return Execution({"signatures": signatures}, [])
