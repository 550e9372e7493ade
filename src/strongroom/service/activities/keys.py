"""Activity handlers for keys and signing: create private keys, sign raw payloads and Ethereum transactions.

Each handler *prepares*: it validates the request, resolves the key, parses the payload or
transaction and says what policies may read about it (`private_key`, `eth.tx`, `eth.eip_712`,
`activity.params`); the token is touched only by `run`, after the policy decision.

Every signature has a policy subject. A batch (`SIGN_RAW_PAYLOADS`) has one subject per payload,
each with its own `activity.params.payload` and `eth` namespace. A raw payload whose preimage the
daemon sees (KECCAK256, SHA256, or an Ed25519 message) is recognised: unsigned transaction bytes
fill `eth.tx`, an EIP-712 digest input opens `eth.eip_712`, an EIP-7702 authorization
`eth.eip_7702_authorization` (see `strongroom.chains.ethereum.preimage`). A blind digest
(`HASH_FUNCTION_NO_OP` on a hexadecimal or text payload) exposes nothing but its parameters.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from strongroom.chains.address_formats import SUPPORTED_FORMATS, derive_address
from strongroom.chains.ethereum import messages, preimage
from strongroom.chains.ethereum import tx as ethtx
from strongroom.errors import ErrorCode, InvalidRequest, NotFound, ResourceExhausted, UnsupportedAlgorithm
from strongroom.hsm import AsyncKeyStore, Curve, KeyRef
from strongroom.logs import get_logger
from strongroom.service import signing
from strongroom.service.decide import Subject, private_key_probe
from strongroom.service.params import JsonObj, obj, req_list, req_str, str_list
from strongroom.service.pipeline import ActivitySpec, Context, Execution, Pipeline, Prepared
from strongroom.store.records import PrivateKey
from strongroom.store.repository import Repository

log = get_logger("strongroom.keys")

MAX_PRIVATE_KEYS_PER_ORG: Final = 1000
MAX_KEYS_PER_REQUEST: Final = 100
MAX_PAYLOADS: Final = 100


def private_key_env(key: PrivateKey) -> dict[str, Any]:
    return private_key_probe(key.id, key.tags, key.name)


def ethereum_address(key: PrivateKey) -> str:
    return derive_address("ADDRESS_FORMAT_ETHEREUM", key.curve, key.public_key)


class KeyHandlers:
    def __init__(self, repo: Repository, keys: AsyncKeyStore) -> None:
        self.repo = repo
        self.keys = keys

    def register(self, pipeline: Pipeline) -> None:
        for path, activity_type, intent, result, prepare, action in (
            (
                "create_private_keys",
                "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
                "createPrivateKeysIntentV2",
                "createPrivateKeysResultV2",
                self.create_private_keys,
                "CREATE",
            ),
            (
                "sign_raw_payload",
                "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2",
                "signRawPayloadIntentV2",
                "signRawPayloadResult",
                self.sign_raw_payload,
                "SIGN",
            ),
            (
                "sign_raw_payloads",
                "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS",
                "signRawPayloadsIntent",
                "signRawPayloadsResult",
                self.sign_raw_payloads,
                "SIGN",
            ),
            (
                "sign_transaction",
                "ACTIVITY_TYPE_SIGN_TRANSACTION_V2",
                "signTransactionIntentV2",
                "signTransactionResult",
                self.sign_transaction,
                "SIGN",
            ),
        ):
            pipeline.register(ActivitySpec(path, activity_type, intent, result, prepare, "PRIVATE_KEY", action))

    # -- create_private_keys -------------------------------------------------------------------
    def _tag_ids(self, org_id: str, tags: list[str]) -> tuple[str, ...]:
        known = {t.id for t in self.repo.tags.tags(org_id, "TAG_TYPE_PRIVATE_KEY")}
        for tag in tags:
            if tag not in known:
                raise InvalidRequest(f"private key tag `{tag[:64]}` not found")
        return tuple(dict.fromkeys(tags))

    async def create_private_keys(self, ctx: Context, params: JsonObj) -> Prepared:
        org_id = ctx.organization.id
        items = req_list(params, "privateKeys", "parameters.", max_items=MAX_KEYS_PER_REQUEST, allow_empty=False)
        wanted: list[tuple[str, Curve, list[str], tuple[str, ...]]] = []
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
            formats = str_list(item, "addressFormats", where, max_items=16) if "addressFormats" in item else []
            for fmt in formats:
                if fmt not in SUPPORTED_FORMATS[curve.value]:
                    raise InvalidRequest(f"invalid address format `{fmt[:64]}` for curve `{curve.value}`")
            if name in names or self.repo.private_keys.private_key_name_taken(org_id, name):
                raise InvalidRequest(f"private key name `{name}` is already used in this organization")
            names.add(name)
            wanted.append((name, curve, list(dict.fromkeys(formats)), self._tag_ids(org_id, tags)))
        if len(self.repo.private_keys.private_keys(org_id)) + len(wanted) > MAX_PRIVATE_KEYS_PER_ORG:
            raise ResourceExhausted(f"organization has reached its limit of {MAX_PRIVATE_KEYS_PER_ORG} private keys")

        async def run() -> Execution:
            # Every key made here is destroyed if anything fails before the commit: here, by the
            # except below; after `run` returns, by the pipeline calling `rollback`.
            created: list[KeyRef] = []
            records: list[PrivateKey] = []

            async def rollback() -> None:
                for ref in created:
                    await self.keys.destroy(ref)

            try:
                for name, curve, formats, tags in wanted:
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
                            tags,
                            ctx.now_ms,
                            ctx.now_ms,
                        )
                    )
                ops: list[Any] = []
                for rec in records:
                    ops += self.repo.private_keys.insert_private_key(rec)
                result = {
                    "privateKeys": [
                        {"privateKeyId": r.id, "addresses": [{"format": f, "address": a} for f, a in r.addresses]}
                        for r in records
                    ]
                }
            except BaseException:
                try:
                    await rollback()
                except Exception as err:  # noqa: BLE001 - the original failure is the one to report
                    log.error("rollback_failed", keys=len(created), error=type(err).__name__)
                raise
            return Execution(result, ops, rollback)

        return Prepared(run)

    # -- signing ----------------------------------------------------------------------------------
    def resolve_key(self, org_id: str, sign_with: str) -> PrivateKey:
        key = self.repo.private_keys.private_key(org_id, sign_with)
        if key is None:
            key = self.repo.private_keys.private_key_by_address(org_id, sign_with)
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

    @staticmethod
    def _payload_eth(key: PrivateKey, encoding: str, hash_function: str, payload: str) -> dict[str, Any]:
        """The `eth` namespace one payload opens (empty: none)."""
        if encoding == signing.ENC_EIP712:
            return {"eip_712": messages.typed_data_policy_fields(payload)}
        if encoding == signing.ENC_EIP7702:
            return {"eip_7702_authorization": messages.parse_eip7702_authorization(payload).policy_fields()}
        if key.curve != Curve.SECP256K1 or hash_function == signing.HASH_NO_OP:
            return {}  # an Ed25519 message is not Ethereum; a blind digest has no preimage to read
        data = signing.decode_payload(payload, encoding)
        return preimage.recognise(data, lambda: ethereum_address(key).lower())  # derived only for a transaction

    def _sign_prepared(
        self, key: PrivateKey, encoding: str, hash_function: str, payloads: list[str], *, batch: bool
    ) -> Prepared:
        msgs = [signing.payload_message(key.curve, hash_function, p, encoding) for p in payloads]
        key_env = private_key_env(key)
        subjects = []
        for i, payload in enumerate(payloads):
            env: dict[str, Any] = {"private_key": key_env}
            eth = self._payload_eth(key, encoding, hash_function, payload)
            if eth:
                env["eth"] = eth
            subjects.append(Subject(f"payloads[{i}]" if batch else "", {"payload": payload}, env))

        async def run() -> Execution:
            sigs = [await signing.sign(self.keys, key, m) for m in msgs]
            return Execution({"signatures": sigs} if batch else sigs[0], [])

        return Prepared(run, signatures=len(msgs), subjects=tuple(subjects))

    async def sign_raw_payload(self, ctx: Context, params: JsonObj) -> Prepared:
        key, encoding, hash_function = self._common(ctx, params)
        payload = req_str(params, "payload", "parameters.", max_len=1 << 20, allow_empty=True)
        return self._sign_prepared(key, encoding, hash_function, [payload], batch=False)

    async def sign_raw_payloads(self, ctx: Context, params: JsonObj) -> Prepared:
        key, encoding, hash_function = self._common(ctx, params)
        payloads = str_list(params, "payloads", "parameters.", max_items=MAX_PAYLOADS, allow_empty=False)
        return self._sign_prepared(key, encoding, hash_function, payloads, batch=True)

    async def sign_transaction(self, ctx: Context, params: JsonObj) -> Prepared:
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

        async def run() -> Execution:
            sig = await self.keys.sign_secp256k1(signing.key_ref(key), tx.signing_hash())
            return Execution({"signedTransaction": tx.serialize_signed(sig).hex()}, [])

        return Prepared(
            run,
            env={
                "private_key": private_key_env(key),
                "eth": {"tx": preimage.transaction_fields(tx, ethereum_address(key).lower())},
            },
            signatures=1,
        )
