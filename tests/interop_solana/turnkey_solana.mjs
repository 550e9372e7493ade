// Drives a running Strongroom daemon through @turnkey/solana's TurnkeySigner on @solana/web3.js,
// over an @turnkey/http TurnkeyClient with an API-key stamper (the versions @turnkey/solana itself
// depends on, so its `client instanceof TurnkeyClient` test takes the @turnkey/http path).
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY (66-hex compressed P-256), API_PRIVATE_KEY (64-hex scalar).
// Creates an ed25519 key, then signs a legacy and a v0 transaction (with an address lookup table)
// three ways: signTransaction (SIGN_TRANSACTION_V2, TRANSACTION_TYPE_SOLANA), addSignature
// (SIGN_RAW_PAYLOAD_V2 over the message) and signAllTransactions (SIGN_RAW_PAYLOADS); and a plain
// message with signMessage. Every signature is verified with @solana/web3.js (legacy:
// Transaction.verifySignatures) and with Node's own Ed25519 (v0 and messages).
// Prints ONE JSON object: the key, each transaction sent and received (hex), every SDK -> daemon
// call, and `checks`, named verification booleans. A failed check exits 1 after printing.

import { createPublicKey, randomUUID, verify as nodeVerify } from "node:crypto";
import process from "node:process";

import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import { TurnkeyClient } from "@turnkey/http";
import { TurnkeySigner } from "@turnkey/solana";
import { PublicKey, SystemProgram, Transaction, VersionedTransaction } from "@solana/web3.js";

import {
  TOKEN_PROGRAM, labelled, legacy, lookupTable, memo, splTransferChecked, unsignedBytes, v0,
} from "./transactions.mjs";

class InteropFailure extends Error {}

function env(name) {
  const value = process.env[name];
  if (!value) throw new InteropFailure(`environment variable ${name} is required`);
  return value;
}

async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InteropFailure) throw err;
    throw new InteropFailure(`${name} failed: ${err?.name ?? "Error"}: ${err?.message ?? err}`);
  }
}

let currentLabel = "setup";

function recordCalls(client, calls) {
  for (const method of ["signRawPayload", "signRawPayloads", "signTransaction"]) {
    const original = client[method].bind(client);
    client[method] = async (body) => {
      const entry = { method, label: currentLabel, request: body };
      calls.push(entry);
      const response = await original(body);
      entry.response = {
        type: response?.activity?.type,
        status: response?.activity?.status,
        result: response?.activity?.result,
      };
      return response;
    };
  }
}

/** Node's Ed25519 verification over a raw 32-byte public key. */
function ed25519Verify(publicKey, message, signature) {
  const spki = Buffer.concat([Buffer.from("302a300506032b6570032100", "hex"), Buffer.from(publicKey)]);
  const key = createPublicKey({ key: spki, format: "der", type: "spki" });
  return nodeVerify(null, Buffer.from(message), key, Buffer.from(signature));
}

const BLOCKHASH = labelled(0xbb).toBase58();

function legacyTx(payer) {
  return legacy(payer, BLOCKHASH, [
    SystemProgram.transfer({ fromPubkey: payer, toPubkey: labelled(9), lamports: 1000 }),
    splTransferChecked(TOKEN_PROGRAM, labelled(10), labelled(12), labelled(11), payer, 2500, 6),
    memo("strongroom interop", payer),
  ]);
}

function v0Tx(payer) {
  return v0(payer, BLOCKHASH, [
    SystemProgram.transfer({ fromPubkey: payer, toPubkey: labelled(15), lamports: 50000000 }),
    splTransferChecked(TOKEN_PROGRAM, labelled(10), labelled(16), labelled(17), payer, 77, 9),
  ], [lookupTable(labelled(14), [labelled(17), labelled(15), labelled(16)])]);
}

function hex(bytes) {
  return Buffer.from(bytes).toString("hex");
}

async function main() {
  const baseUrl = env("BASE_URL").replace(/\/+$/, "");
  const organizationId = env("ORGANIZATION_ID");
  const client = new TurnkeyClient(
    { baseUrl },
    new ApiKeyStamper({ apiPublicKey: env("API_PUBLIC_KEY"), apiPrivateKey: env("API_PRIVATE_KEY") }),
  );
  const calls = [];
  const checks = {};
  const out = { checks, calls, transactions: {} };

  const created = await step("createPrivateKeys", () =>
    client.createPrivateKeys({
      type: "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
      timestampMs: String(Date.now()),
      organizationId,
      parameters: {
        privateKeys: [
          {
            privateKeyName: `interop-solana-${randomUUID()}`,
            curve: "CURVE_ED25519",
            privateKeyTags: [],
            addressFormats: ["ADDRESS_FORMAT_SOLANA"],
          },
        ],
      },
    }),
  );
  const item = created.activity?.result?.createPrivateKeysResultV2?.privateKeys?.[0];
  const address = item?.addresses?.find((a) => a.format === "ADDRESS_FORMAT_SOLANA")?.address;
  if (typeof address !== "string") throw new InteropFailure(`createPrivateKeys: no Solana address: ${JSON.stringify(created)}`);
  out.key = { privateKeyId: item.privateKeyId, address };
  const payer = new PublicKey(address);

  recordCalls(client, calls);
  const signer = new TurnkeySigner({ organizationId, client });

  // 1. signTransaction: the daemon parses the transaction and returns it signed
  for (const [name, build] of [["legacy", legacyTx], ["v0", v0Tx]]) {
    currentLabel = `signTransaction.${name}`;
    const tx = build(payer);
    const { transaction, message } = unsignedBytes(tx);
    const signed = await step(currentLabel, () => signer.signTransaction(tx, address));
    const isV0 = signed instanceof VersionedTransaction;
    checks[`${currentLabel}.type`] = isV0 === (name === "v0") && (isV0 || signed instanceof Transaction);
    const signedBytes = isV0 ? Buffer.from(signed.serialize()) : signed.serialize();
    const signature = isV0 ? signed.signatures[0] : signed.signature;
    if (!isV0) checks[`${currentLabel}.web3.verifySignatures`] = signed.verifySignatures() === true;
    checks[`${currentLabel}.ed25519`] = ed25519Verify(payer.toBytes(), message, signature);
    checks[`${currentLabel}.sameMessage`] =
      hex(isV0 ? signed.message.serialize() : signed.serializeMessage()) === hex(message);
    out.transactions[currentLabel] = { unsigned: hex(transaction), message: hex(message), signed: hex(signedBytes) };
  }

  // 2. addSignature: a raw payload of the message bytes
  for (const [name, build] of [["legacy", legacyTx], ["v0", v0Tx]]) {
    currentLabel = `addSignature.${name}`;
    const tx = build(payer);
    const { message } = unsignedBytes(tx);
    await step(currentLabel, () => signer.addSignature(tx, address));
    const signature = name === "v0" ? tx.signatures[0] : tx.signature;
    if (name === "legacy") checks[`${currentLabel}.web3.verifySignatures`] = tx.verifySignatures() === true;
    checks[`${currentLabel}.ed25519`] = ed25519Verify(payer.toBytes(), message, signature);
    const signedBytes = name === "v0" ? Buffer.from(tx.serialize()) : tx.serialize();
    out.transactions[currentLabel] = { message: hex(message), signed: hex(signedBytes) };
  }

  // 3. signAllTransactions: one batch of raw payloads
  currentLabel = "signAllTransactions";
  const both = [legacyTx(payer), v0Tx(payer)];
  const messages = both.map((tx) => unsignedBytes(tx).message);
  await step(currentLabel, () => signer.signAllTransactions(both, address));
  checks["signAllTransactions.legacy.web3.verifySignatures"] = both[0].verifySignatures() === true;
  checks["signAllTransactions.legacy.ed25519"] = ed25519Verify(payer.toBytes(), messages[0], both[0].signature);
  checks["signAllTransactions.v0.ed25519"] = ed25519Verify(payer.toBytes(), messages[1], both[1].signatures[0]);

  // 4. signMessage: bytes that are no transaction
  currentLabel = "signMessage";
  const text = Buffer.from("hello strongroom", "utf8");
  const sig = await step(currentLabel, () => signer.signMessage(text, address));
  checks["signMessage.ed25519"] = sig.length === 64 && ed25519Verify(payer.toBytes(), text, sig);

  process.stdout.write(`${JSON.stringify(out)}\n`);
  const failed = Object.entries(checks).filter(([, ok]) => ok !== true).map(([n]) => n);
  if (failed.length > 0) {
    process.stderr.write(`turnkey_solana.mjs: verification failed: ${failed.join(", ")}\n`);
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof InteropFailure ? "" : "unexpected: "}${err?.stack ?? err}\n`);
  process.exit(1);
});
