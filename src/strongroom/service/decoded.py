"""The decoded view of an activity: what people need to see before they approve or reject it.

One rendering, used everywhere an activity is shown to a person: the `get_activity_view` query
(Strongroom extension), the dashboard's activity page, the CLI (`strongroom activities
get|pending|approve|reject`, laid out as text by `cli/activity_view.py`) and the webhook events (`service/webhooks.py`).

What it shows, and where each part comes from (nothing is parsed twice):

- `requester`: the user who submitted it and the credential that stamped it (the first vote, which
  is the submitter's own request);
- `signer`: the private key or wallet account `signWith` names, with its address;
- `payloads`: for signing activities, what the signing readers (`activities/signing.READERS`)
  give the policies: `eth.tx` (decoded by `chains/ethereum`, with the call decoded by the ABI
  stored for `to`), `eth.eip_712` (the typed data's domain, primary type and message),
  `eth.eip_7702_authorization`, `solana.tx` (transfers and instructions, `chains/solana`, with
  instructions decoded by stored IDLs), plus the raw payload, its encoding and hash function;
  other activity types show their parameters (`parameters`);
- `policies`: the policies that matched, from the evaluations recorded with the activity (id,
  name, outcome), with the policy's effect, and for a consensus what is still missing
  (`strongroom.policy.progress`); `policiesNotMatched`: the others, by name;
- `votes`, `status`, `voteWindowEndsAt` (24 hours after creation), `result` or `failure`.

Quantities that may exceed 2^53 (wei, gas, token amounts, ABI and typed-data integers) are
decimal strings; ether and SOL amounts are exact decimal text, never floats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from strongroom.chains.address_formats import derive_address
from strongroom.chains.ethereum.address import to_checksum
from strongroom.errors import StrongroomError
from strongroom.policy import PolicySyntaxError, parse_expression
from strongroom.policy.progress import progress
from strongroom.service import expiry
from strongroom.service.activities.base import Deps
from strongroom.service.activities.signing import READERS
from strongroom.service.decide import credential_env, user_env
from strongroom.service.signing import SigningKey
from strongroom.service.webauthn import SCHEME_WEBAUTHN
from strongroom.store.records import Activity, User

WEI_PER_ETH: Final = 10**18
LAMPORTS_PER_SOL: Final = 10**9
ETH_TX_TYPES: Final = {
    "LEGACY": "legacy",
    "TYPE_1": "EIP-2930",
    "TYPE_2": "EIP-1559",
    "TYPE_3": "EIP-4844",
    "TYPE_4": "EIP-7702",
}
APPROVED: Final = "VOTE_SELECTION_APPROVED"
USER_TAG: Final = "TAG_TYPE_USER"
CONSENSUS_OUTCOME: Final = "OUTCOME_REQUIRES_CONSENSUS"
NOT_MATCHED: Final = frozenset({"OUTCOME_DENY_IMPLICIT", "OUTCOME_TIME_INACTIVE"})
"""Per-policy outcomes of a policy that did not match the request (its condition is false or
cannot apply, or its time window is closed): listed apart from the ones that decided."""


def decimal_units(amount: int, unit: int) -> str:
    """`amount / unit` as exact decimal text (`1500000000000000000`, 10**18 -> `1.5`)."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), unit)
    digits = len(str(unit)) - 1
    text = f"{sign}{whole}"
    return f"{text}.{frac:0{digits}d}".rstrip("0") if frac else text


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _plain(value: Any) -> Any:
    """JSON any client reads exactly: integers as decimal strings, bytes as 0x hex."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _quantity(value: Any) -> str | None:
    return None if value is None else str(value)


def _checksum(address: Any) -> str | None:
    if not isinstance(address, str):
        return None
    try:
        return to_checksum(address)
    except (StrongroomError, ValueError):
        return address


def ethereum_transaction(tx: Mapping[str, Any]) -> dict[str, Any]:
    """The view of an `eth.tx` map (`chains/ethereum/preimage.transaction_fields`)."""
    if not tx:
        return {"decoded": False}
    value = int(tx["value"])
    out: dict[str, Any] = {
        "decoded": True,
        "type": ETH_TX_TYPES.get(str(tx["type"]), str(tx["type"])),
        "chainId": tx["chain_id"],
        "from": _checksum(tx["from"]),
        "to": _checksum(tx["to"]),
        "valueWei": str(value),
        "valueEth": decimal_units(value, WEI_PER_ETH),
        "nonce": tx["nonce"],
        "gasLimit": _quantity(tx["gas"]),
        "gasPrice": _quantity(tx["gas_price"]),
        "maxFeePerGas": _quantity(tx["max_fee_per_gas"]),
        "maxPriorityFeePerGas": _quantity(tx["max_priority_fee_per_gas"]),
        "maxFeePerBlobGas": _quantity(tx["max_fee_per_blob_gas"]),
        "data": tx["data"],
    }
    if tx.get("function_name"):
        out["call"] = {
            "functionName": tx["function_name"],
            "functionSignature": tx["function_signature"],
            "arguments": _plain(tx["contract_call_args"]),
        }
    elif tx["data"] != "0x":
        out["call"] = None  # calldata that no stored ABI for `to` describes
    return out


def typed_data(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The view of an `eth.eip_712` map (`chains/ethereum/messages.TypedData.policy_fields`)."""
    if not fields:
        return {"decoded": False}  # the 0x1901 digest input: the typed data behind it is not known
    domain = fields["domain"]
    return {
        "decoded": True,
        "primaryType": fields["primary_type"],
        "domain": {
            "name": domain.get("name"),
            "version": domain.get("version"),
            "chainId": _plain(domain.get("chain_id")),
            "verifyingContract": _checksum(domain.get("verifying_contract")),
        },
        "message": _plain(fields["message"]),
    }


def solana_transaction(tx: Mapping[str, Any]) -> dict[str, Any]:
    """The view of a `solana.tx` map (`chains/solana/policy.policy_fields`)."""
    return {
        "transfers": [
            {
                "from": t["from"],
                "to": t["to"],
                "lamports": str(t["amount"]),
                "sol": decimal_units(int(t["amount"]), LAMPORTS_PER_SOL),
            }
            for t in tx["transfers"]
        ],
        "splTransfers": [
            {
                "from": t["from"],
                "to": t["to"],
                "amount": str(t["amount"]),
                "owner": t["owner"],
                "tokenMint": t.get("token_mint"),
            }
            for t in tx["spl_transfers"]
        ],
        "instructions": [
            {
                "programKey": i["program_key"],
                "accounts": [a["account_key"] for a in i["accounts"]],
                "dataHex": i["instruction_data_hex"],
                **({"parsed": _plain(i["parsed_instruction_data"])} if "parsed_instruction_data" in i else {}),
            }
            for i in tx["instructions"]
        ],
        "recentBlockhash": tx["recent_blockhash"],
    }


def _payload(params: Mapping[str, Any], subject_params: Mapping[str, Any], env: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "payload" in subject_params:
        out["raw"] = {
            "payload": subject_params["payload"],
            "encoding": params.get("encoding"),
            "hashFunction": params.get("hashFunction"),
        }
    elif "unsignedTransaction" in params:
        out["raw"] = {"unsignedTransaction": params["unsignedTransaction"], "transactionType": params.get("type")}
    eth = env.get("eth") or {}
    if "tx" in eth:
        out["kind"] = "ETHEREUM_TRANSACTION"
        out["ethereumTransaction"] = ethereum_transaction(eth["tx"])
    elif "eip_712" in eth:
        out["kind"] = "EIP712_TYPED_DATA"
        out["typedData"] = typed_data(eth["eip_712"])
    elif "eip_7702_authorization" in eth:
        out["kind"] = "EIP7702_AUTHORIZATION"
        out["authorization"] = _plain(eth["eip_7702_authorization"])
    elif "tx" in (env.get("solana") or {}):
        out["kind"] = "SOLANA_TRANSACTION"
        out["solanaTransaction"] = solana_transaction(env["solana"]["tx"])
    else:
        out["kind"] = "RAW"
    return out


class Views:
    """Builds the view of an activity from the store (see the module docstring)."""

    def __init__(self, deps: Deps, stamped: Callable[[Activity], Mapping[str, Any]] | None = None) -> None:
        self.deps: Final = deps
        self.repo: Final = deps.repo
        # A waiting activity's parameters as its stamped request says (the pipeline's proof, which
        # an approval executes), not its stored intent: what people approve is what gets signed.
        self.stamped: Final = stamped

    def _user(self, org_id: str, user_id: str | None) -> User | None:
        user = self.repo.users.user(user_id) if user_id else None
        return user if user is not None and user.organization_id == org_id else None

    def _credential(self, org_id: str, vote: Mapping[str, Any]) -> dict[str, Any]:
        """The credential that stamped a vote (a request): its type, id and name."""
        public_key = str(vote.get("publicKey", ""))
        if vote.get("scheme") == SCHEME_WEBAUTHN:
            passkey = self.repo.users.authenticator_by_public_key(org_id, public_key)
            if passkey is not None:
                return {"type": "PASSKEY", "id": passkey.id, "name": passkey.name, "publicKey": public_key}
        else:
            key = self.repo.users.api_key_in_org(org_id, public_key)
            if key is not None:
                return {"type": "API_KEY", "id": key.id, "name": key.name, "publicKey": public_key}
        return {"type": "DELETED", "id": None, "name": None, "publicKey": public_key}  # removed since

    def _vote(self, org_id: str, vote: Mapping[str, Any]) -> dict[str, Any]:
        user_id = str(vote.get("userId", ""))
        user = self._user(org_id, user_id)
        recorded = vote.get("user") or {}
        created = vote.get("createdAt") or {}
        at_ms = int(str(created.get("seconds", "0"))) * 1000 + int(str(created.get("nanos", "0"))) // 1_000_000
        return {
            "userId": user_id,
            "userName": user.name if user is not None else recorded.get("userName"),
            "selection": vote.get("selection"),
            "credential": self._credential(org_id, vote),
            "at": _utc(at_ms),
        }

    def _signer(self, key: SigningKey, sign_with: str) -> dict[str, Any]:
        out: dict[str, Any] = {"signWith": sign_with, "curve": key.curve}
        address_format = "ADDRESS_FORMAT_ETHEREUM" if key.curve == "CURVE_SECP256K1" else "ADDRESS_FORMAT_SOLANA"
        if "private_key" in key.env:
            probe = key.env["private_key"]
            out.update(kind="PRIVATE_KEY", privateKeyId=key.id, name=probe["label"])
            out["address"] = derive_address(address_format, key.curve, key.public_key)
        else:
            wallet = key.env["wallet"]
            out.update(kind="WALLET_ACCOUNT", walletAccountId=key.id, walletId=wallet["id"], name=wallet["label"])
            out["address"] = key.env["wallet_account"]["address"]
        return out

    def _policies(self, activity: Activity, approvers: list[User]) -> list[dict[str, Any]]:
        org_id = activity.organization_id
        users_env = [user_env(u) for u in approvers]
        creds: list[dict[str, Any]] = []
        for v in activity.votes:
            if v.get("selection") != APPROVED:
                continue
            public_key = str(v.get("publicKey", ""))
            found = self.repo.users.authenticator_by_public_key(org_id, public_key) or self.repo.users.api_key_in_org(
                org_id, public_key
            )
            if found is not None:
                creds.append(credential_env(found))
        tag_names: dict[str, str] = {}
        user_names: dict[str, str] = {}
        if any(e.get("outcome") == CONSENSUS_OUTCOME for e in activity.policy_evaluations):
            # Only a consensus still to be met is described, naming tags and users.
            tag_names = {t.id: t.name for t in self.repo.tags.tags(org_id, USER_TAG)}
            user_names = {u.id: u.name for u in self.repo.users.users(org_id)}
        out = []
        for e in activity.policy_evaluations:
            record = self.repo.policies.policy(org_id, str(e.get("policyId", "")))
            item: dict[str, Any] = {
                "policyId": e.get("policyId"),
                "policyName": record.name if record is not None else e.get("policyName", ""),
                "effect": record.effect if record is not None else None,
                "outcome": e.get("outcome"),
            }
            for key in ("subject", "notApplicable", "error"):
                if e.get(key):
                    item[key] = e[key]
            if record is not None and record.consensus.strip():
                item["consensus"] = record.consensus
                if e.get("outcome") == CONSENSUS_OUTCOME:
                    try:
                        parsed = parse_expression(record.consensus)
                    except PolicySyntaxError:  # pragma: no cover - stored policies parse
                        parsed = None
                    if parsed is not None:
                        item["consensusProgress"] = progress(
                            parsed, users_env, creds, activity.updated_at, tag_names, user_names
                        )
            out.append(item)
        return out

    def _policy_lists(self, activity: Activity, approvers: list[User]) -> dict[str, Any]:
        """`policies`: the ones that matched (allowed, denied, wait for consensus, or failed to
        evaluate); `policiesNotMatched`: the others, by name only."""
        every = self._policies(activity, approvers)
        return {
            "policies": [p for p in every if p["outcome"] not in NOT_MATCHED],
            "policiesNotMatched": [
                {k: p[k] for k in ("policyId", "policyName", "outcome") if k in p}
                | ({"notApplicable": p["notApplicable"]} if "notApplicable" in p else {})
                for p in every
                if p["outcome"] in NOT_MATCHED
            ],
        }

    def _decoded(self, activity: Activity, params: Mapping[str, Any]) -> dict[str, Any]:
        reader = READERS.get(activity.type)
        if reader is None:
            return {}
        try:
            key, prepared = reader(self.deps, activity.organization_id, dict(params))
        except StrongroomError as err:
            # The key was deleted since, or the payload no longer reads: shown, not hidden.
            return {"decodeError": err.message}
        return {
            "signer": self._signer(key, str(params.get("signWith", ""))),
            "payloads": [
                {**({"subject": s.label} if s.label else {}), **_payload(params, s.params, s.env)}
                for s in prepared.policy_subjects()
            ],
        }

    def view(self, activity: Activity, stamped: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The decoded view of `activity` (see the module docstring); `stamped`: its parameters as
        its request was stamped, when the caller holds them (else read from the stored request)."""
        org_id = activity.organization_id
        waiting = activity.status == expiry.WAITING
        intent: Any = next(iter(activity.intent.values()), {}) if activity.intent else {}
        params: Mapping[str, Any] = intent if isinstance(intent, Mapping) else {}
        if stamped is not None:
            params = stamped
        elif waiting and self.stamped is not None:
            params = self.stamped(activity)  # refuses (TamperedState) a request forged in the database
        requester = self._user(org_id, activity.user_id)
        first = activity.votes[0] if activity.votes else {}
        votes = [self._vote(org_id, v) for v in activity.votes]
        approvers = [
            u
            for v in activity.votes
            if v.get("selection") == APPROVED and (u := self._user(org_id, str(v.get("userId", "")))) is not None
        ]
        out: dict[str, Any] = {
            "activityId": activity.id,
            "organizationId": org_id,
            "type": activity.type,
            "status": activity.status,
            "fingerprint": activity.fingerprint,
            "createdAt": _utc(activity.created_at),
            "updatedAt": _utc(activity.updated_at),
            "voteWindowEndsAt": _utc(activity.created_at + expiry.VOTE_WINDOW_MS),
            "requester": {
                "userId": activity.user_id,
                "userName": requester.name if requester is not None else (first.get("user") or {}).get("userName"),
                "credential": self._credential(org_id, first) if first else None,
            },
            "parameters": _plain(dict(params)),
            **self._decoded(activity, params),
            **self._policy_lists(activity, approvers),
            "votes": votes,
            "approvals": sum(1 for v in votes if v["selection"] == APPROVED),
            "canVote": waiting,
        }
        missing = [
            f"{p['policyName'] or p['policyId']}: {step['description']}"
            for p in out["policies"]
            for step in p.get("consensusProgress", [])
            if not step["met"]
        ]
        org = self.repo.organizations.organization(org_id) if waiting else None
        if org is not None:  # the root quorum as it is now settles a waiting activity, root-only ones included
            roots = sum(1 for u in approvers if u.id in org.root_user_ids)
            out["rootQuorum"] = {"threshold": org.root_quorum_threshold, "approvals": roots}
            if not missing:  # no policy names what is missing: the root quorum does
                need = org.root_quorum_threshold
                missing = [f"root quorum: needs {need} approval{'s' * (need != 1)} from root users, has {roots}"]
        if waiting:
            out["waitingFor"] = missing
        if activity.failure is not None:
            out["failure"] = activity.failure
        elif activity.result:
            out["result"] = activity.result
        return out
