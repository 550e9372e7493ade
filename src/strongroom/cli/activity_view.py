"""The decoded view of an activity (`get_activity_view`, src/strongroom/service/decoded.py) as text.

The daemon decides what is decoded and how; this only lays the view's JSON out for a terminal
(`strongroom activities get|pending|approve|reject`). It imports nothing of the service, so the
client commands stay quick to start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _short(prefixed: Any, prefix: str) -> str:
    return str(prefixed or "?").removeprefix(prefix)


def _fields(value: Any, indent: str) -> list[str]:
    """Nested JSON as indented `name: value` lines."""
    if isinstance(value, dict):
        lines: list[str] = []
        for k, v in value.items():
            if isinstance(v, dict | list) and v and not all(isinstance(i, str | int | float) for i in v):
                lines += [f"{indent}{k}:", *_fields(v, indent + "  ")]
            elif isinstance(v, list):
                lines.append(f"{indent}{k}: {', '.join(str(i) for i in v) or '(none)'}")
            else:
                lines.append(f"{indent}{k}: {'(empty)' if v == '' else v}")
        return lines
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            inner = _fields(item, indent + "  ")
            out += [f"{indent}- {inner[0].lstrip()}", *inner[1:]] if inner else [f"{indent}-"]
        return out
    return [f"{indent}{value}"]


def _credential_text(c: Mapping[str, Any] | None) -> str:
    if not c:
        return ""
    kind = {"API_KEY": "API key", "PASSKEY": "passkey"}.get(str(c.get("type")), "a credential since deleted")
    return f"{kind} {c['name']!r} ({c['id']})" if c.get("id") else f"{kind} ({c.get('publicKey', '')[:16]}…)"


def _eth_lines(tx: Mapping[str, Any], indent: str) -> list[str]:
    if not tx.get("decoded"):
        return [f"{indent}Ethereum transaction: bytes that do not decode as one"]
    lines = [
        f"{indent}Ethereum transaction ({tx['type']}):",
        f"{indent}  chain id: {tx['chainId'] if tx['chainId'] is not None else '(none: pre-EIP-155)'}",
        f"{indent}  from: {tx['from']}",
        f"{indent}  to: {tx['to'] or '(contract creation)'}",
        f"{indent}  value: {tx['valueEth']} ETH ({tx['valueWei']} wei)",
        f"{indent}  nonce: {tx['nonce']}",
        f"{indent}  gas limit: {tx['gasLimit']}",
    ]
    for key, label in (
        ("gasPrice", "gas price"),
        ("maxFeePerGas", "max fee per gas"),
        ("maxPriorityFeePerGas", "max priority fee per gas"),
        ("maxFeePerBlobGas", "max fee per blob gas"),
    ):
        if tx.get(key) is not None:
            lines.append(f"{indent}  {label}: {tx[key]} wei")
    if tx.get("call"):
        call = tx["call"]
        lines.append(f"{indent}  call: {call['functionSignature']}")
        lines += _fields(call["arguments"], indent + "    ") if call["arguments"] else []
    elif "call" in tx:
        lines.append(f"{indent}  call: not decoded (no stored ABI for `to` describes it)")
    lines.append(f"{indent}  data: {tx['data'] if tx['data'] != '0x' else '(none)'}")
    return lines


def _payload_lines(p: Mapping[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    raw = p.get("raw") or {}
    if "payload" in raw:
        lines.append(
            f"{indent}payload: {raw['payload']} ({_short(raw.get('encoding'), 'PAYLOAD_ENCODING_')},"
            f" hash {_short(raw.get('hashFunction'), 'HASH_FUNCTION_')})"
        )
    if "ethereumTransaction" in p:
        lines += _eth_lines(p["ethereumTransaction"], indent)
    if "typedData" in p:
        td = p["typedData"]
        if not td.get("decoded"):
            lines.append(f"{indent}EIP-712 digest input: the typed data behind it is not shown")
        else:
            lines += [f"{indent}EIP-712 typed data, primary type {td['primaryType']}:", f"{indent}  domain:"]
            lines += _fields({k: v for k, v in td["domain"].items() if v is not None}, indent + "    ")
            lines += [f"{indent}  message:", *_fields(td["message"], indent + "    ")]
    if "authorization" in p:
        lines += [f"{indent}EIP-7702 authorization:", *_fields(p["authorization"], indent + "  ")]
    if "solanaTransaction" in p:
        sol = p["solanaTransaction"]
        lines.append(f"{indent}Solana transaction (recent blockhash {sol['recentBlockhash']}):")
        for t in sol["transfers"]:
            lines.append(f"{indent}  transfer: {t['sol']} SOL ({t['lamports']} lamports) from {t['from']} to {t['to']}")
        for t in sol["splTransfers"]:
            mint = f" of mint {t['tokenMint']}" if t.get("tokenMint") else ""
            lines.append(f"{indent}  token transfer: {t['amount']} base units{mint} from {t['from']} to {t['to']}")
        for n, ins in enumerate(sol["instructions"]):
            lines.append(f"{indent}  instruction {n}: program {ins['programKey']}, data {ins['dataHex'] or '(none)'}")
            if "parsed" in ins:
                lines += _fields(ins["parsed"], indent + "    ")
    return lines


def _signer_text(s: Mapping[str, Any]) -> str:
    if s.get("kind") == "WALLET_ACCOUNT":
        return f"wallet {s['name']!r} account {s['address']} ({s['walletAccountId']})"
    return f"private key {s['name']!r} {s['address']} ({s['privateKeyId']})"


def text(view: Mapping[str, Any]) -> str:
    """The view as text for a terminal (the CLI's `activities get|approve|reject`)."""
    requester = view["requester"]
    lines = [
        f"{view['activityId']}  {_short(view['status'], 'ACTIVITY_STATUS_')}  {_short(view['type'], 'ACTIVITY_TYPE_')}",
        f"  created: {view['createdAt']}   updated: {view['updatedAt']}",
        f"  fingerprint: {view['fingerprint']}",
        f"  requested by: {requester.get('userName') or '?'} ({requester.get('userId') or '?'})"
        + (f" with {_credential_text(requester.get('credential'))}" if requester.get("credential") else ""),
    ]
    if view.get("signer"):
        lines.append(f"  signs with: {_signer_text(view['signer'])}")
    payloads = view.get("payloads") or []
    for p in payloads:
        if p.get("subject"):
            lines.append(f"  {p['subject']}:")
        lines += _payload_lines(p, "    " if p.get("subject") else "  ")
    if view.get("decodeError"):
        lines.append(f"  not decoded: {view['decodeError']}")
    if not payloads and view.get("parameters"):
        lines += ["  parameters:", *_fields(view["parameters"], "    ")]
    policies = view.get("policies") or []
    lines.append("  policies:" if policies else "  policies: none matched (root quorum or built-in rule)")
    for pol in policies:
        effect = _short(pol.get("effect"), "EFFECT_") if pol.get("effect") else "deleted policy"
        subject = f" [{pol['subject']}]" if pol.get("subject") else ""
        lines.append(
            f"    {effect} {pol['policyName']!r} ({pol['policyId']}){subject}: {_short(pol['outcome'], 'OUTCOME_')}"
        )
        lines += [f"      {step['description']}" for step in pol.get("consensusProgress", [])]
    others = view.get("policiesNotMatched") or []
    if others:
        names = ", ".join(repr(p["policyName"] or p["policyId"]) for p in others)
        lines.append(f"    did not match: {names}")
    votes = view.get("votes") or []
    lines.append("  votes:" if votes else "  votes: none")
    for v in votes:
        choice = {"VOTE_SELECTION_APPROVED": "approved", "VOTE_SELECTION_REJECTED": "rejected"}.get(
            str(v.get("selection")), str(v.get("selection"))
        )
        lines.append(
            f"    {choice:<8}  {v['userName']} ({v['userId']})  {v['at']}  {_credential_text(v['credential'])}"
        )
    if view.get("failure"):
        f = view["failure"]
        lines.append(f"  failure: {f.get('message', '')} (code {f.get('code', '?')})")
    elif view.get("result"):
        for name, result in view["result"].items():
            lines += [f"  result ({name}):", *(_fields(result, "    ") or ["    (empty)"])]
    if "waitingFor" in view:
        lines.append(f"  vote window ends: {view['voteWindowEndsAt']}")
        lines += [f"  waiting for: {w}" for w in view["waitingFor"]] or ["  waiting for: more approvals"]
        lines.append("  result: none yet, more approvals are needed (strongroom activities approve ID)")
    return "\n".join(lines)


def summary(view: Mapping[str, Any]) -> str:
    """One line of what an activity asks (the CLI's `activities pending`)."""
    parts = []
    for p in view.get("payloads") or []:
        tx = p.get("ethereumTransaction")
        if tx and tx.get("decoded"):
            call = f" calling {tx['call']['functionName']}" if tx.get("call") else ""
            parts.append(f"{tx['valueEth']} ETH to {tx['to'] or '(new contract)'}{call} on chain {tx['chainId']}")
        elif p.get("typedData", {}).get("decoded"):
            parts.append(f"EIP-712 {p['typedData']['primaryType']}")
        elif "solanaTransaction" in p:
            sol = p["solanaTransaction"]
            parts += [f"{t['sol']} SOL to {t['to']}" for t in sol["transfers"]] or ["a Solana transaction"]
        elif "raw" in p and "payload" in p["raw"]:
            parts.append(f"payload {str(p['raw']['payload'])[:40]}")
    signer = view.get("signer")
    what = "; ".join(parts) or _short(view["type"], "ACTIVITY_TYPE_")
    by = f" with {signer['address']}" if signer else ""
    return f"{what}{by}, asked by {view['requester'].get('userName') or '?'}"
