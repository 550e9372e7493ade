// Sends transactions through Strongroom's Ethereum JSON-RPC signer (POST /eth/rpc), which fills them
// in from its upstream node (a local anvil chain), signs them through its policies and broadcasts
// them: with viem's wallet client (one call per request, and a JSON-RPC batch), and with Foundry's
// `cast send --unlocked` behind a small stamping proxy (cast cannot stamp a body itself).
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY, API_PRIVATE_KEY (the root's P-256 API key),
// ADDRESS (a funded key of the organization), ALICE_PUBLIC_KEY, ALICE_PRIVATE_KEY (a user whom a
// policy lets sign with ADDRESS, except to BLOCKED), TO, BLOCKED, CAST (the cast binary).
// Every request's body gets the two members Strongroom reads (organizationId, timestampMs), in
// each call of a batch, and is stamped once, whole, with Turnkey's API-key stamper.
// Prints ONE JSON object on stdout; test_eth_send.py checks on the chain what landed.

import { execFile } from "node:child_process";
import http from "node:http";
import process from "node:process";
import { promisify } from "node:util";

import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import { createPublicClient, createWalletClient, http as httpTransport } from "viem";
import { foundry } from "viem/chains";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

const seen = { single: 0, batches: [] };

// The body as Strongroom wants it, and its stamp header.
async function stamped(stamper, text) {
  const extra = () => ({ organizationId: env("ORGANIZATION_ID"), timestampMs: String(Date.now()) });
  const parsed = JSON.parse(text);
  const body = JSON.stringify(Array.isArray(parsed) ? parsed.map((c) => ({ ...c, ...extra() })) : { ...parsed, ...extra() });
  if (Array.isArray(parsed)) seen.batches.push(parsed.map((c) => c.method));
  else seen.single += 1;
  const { stampHeaderName, stampHeaderValue } = await stamper.stamp(body);
  return { body, stampHeaderName, stampHeaderValue };
}

function stampingFetch(publicKey, privateKey) {
  const stamper = new ApiKeyStamper({ apiPublicKey: publicKey, apiPrivateKey: privateKey });
  return async (url, init) => {
    const { body, stampHeaderName, stampHeaderValue } = await stamped(stamper, init.body);
    const headers = new Headers(init.headers);
    headers.set(stampHeaderName, stampHeaderValue);
    return fetch(url, { ...init, body, headers });
  };
}

function transport(publicKey, privateKey, batch) {
  return httpTransport(`${env("BASE_URL")}/eth/rpc`, {
    fetchFn: stampingFetch(publicKey, privateKey),
    retryCount: 0,
    batch: batch ? { batchSize: 10, wait: 20 } : false,
  });
}

function failure(err) {
  let cause = err;
  while (cause && cause.code === undefined && cause.cause) cause = cause.cause;
  return { name: err.name, code: cause?.code ?? null, details: cause?.details ?? err.message };
}

const address = env("ADDRESS");
const rootKeys = [env("API_PUBLIC_KEY"), env("API_PRIVATE_KEY")];
const aliceKeys = [env("ALICE_PUBLIC_KEY"), env("ALICE_PRIVATE_KEY")];
const out = {};

// 1. viem, one call per request: eth_chainId, eth_getTransactionCount... are the node's answers.
const root = createWalletClient({ account: address, chain: foundry, transport: transport(...rootKeys, false) });
const reader = createPublicClient({ chain: foundry, transport: transport(...rootKeys, false) });
out.sent = await root.sendTransaction({ to: env("TO"), value: 10n ** 15n });
out.sentReceipt = (await reader.waitForTransactionReceipt({ hash: out.sent })).status;
out.chainId = await reader.getChainId();

// 2. A batch: viem gathers the calls made together into one array body (one stamp).
const batched = createWalletClient({ account: address, chain: foundry, transport: transport(...rootKeys, true) });
const [chainId, balance, hash, blocked] = await Promise.allSettled([
  batched.request({ method: "eth_chainId" }),
  batched.request({ method: "eth_getBalance", params: [env("TO"), "latest"] }),
  batched.request({ method: "eth_sendTransaction", params: [{ from: address, to: env("TO"), value: "0x2" }] }),
  batched.request({ method: "eth_getBalance", params: [env("BLOCKED"), "latest"] }),
]);
out.batch = {
  chainId: chainId.value,
  balance: balance.value,
  sent: hash.status === "fulfilled" ? hash.value : failure(hash.reason),
  blockedBalance: blocked.value,
};

// 3. Alice: the DENY policy refuses her transfer to BLOCKED, alone and in a batch; the rest of her batch goes on.
const alice = createWalletClient({ account: address, chain: foundry, transport: transport(...aliceKeys, false) });
try {
  out.denied = { hash: await alice.sendTransaction({ to: env("BLOCKED"), value: 1n }) };
} catch (err) {
  out.denied = failure(err);
}
const aliceBatch = createWalletClient({ account: address, chain: foundry, transport: transport(...aliceKeys, true) });
const settled = await Promise.allSettled([
  aliceBatch.request({ method: "eth_sendTransaction", params: [{ from: address, to: env("BLOCKED"), value: "0x1" }] }),
  aliceBatch.request({ method: "eth_sendTransaction", params: [{ from: address, to: env("TO"), value: "0x3" }] }),
]);
out.aliceBatch = settled.map((s) => (s.status === "fulfilled" ? { hash: s.value } : failure(s.reason)));

// 4. cast send --unlocked: eth_sendTransaction through a local proxy that stamps with Alice's key.
const aliceStamper = new ApiKeyStamper({ apiPublicKey: aliceKeys[0], apiPrivateKey: aliceKeys[1] });
const proxy = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const { body, stampHeaderName, stampHeaderValue } = await stamped(aliceStamper, Buffer.concat(chunks).toString());
  const answer = await fetch(`${env("BASE_URL")}/eth/rpc`, {
    method: "POST",
    body,
    headers: { "Content-Type": "application/json", [stampHeaderName]: stampHeaderValue },
  });
  res.writeHead(answer.status, { "Content-Type": "application/json" });
  res.end(await answer.text());
});
await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
const rpcUrl = `http://127.0.0.1:${proxy.address().port}`;
const run = promisify(execFile);
async function cast(to, value) {
  const args = ["send", "--unlocked", "--from", address, "--rpc-url", rpcUrl, "--json", to, "--value", value];
  try {
    const { stdout, stderr } = await run(env("CAST"), args);
    if (!stdout.trim()) return { failed: true, exitCode: 0, stderr, stdout };
    return { receipt: JSON.parse(stdout) };
  } catch (err) {
    return { failed: true, exitCode: err.code ?? null, stderr: String(err.stderr ?? ""), message: err.message };
  }
}
out.cast = await cast(env("TO"), "5");
out.castDenied = await cast(env("BLOCKED"), "7");
proxy.close();

out.seen = seen;
console.log(JSON.stringify(out));
