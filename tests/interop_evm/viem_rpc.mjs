// Drives Strongroom's Ethereum JSON-RPC signer (POST /eth/rpc) with viem's JSON-RPC account.
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY, API_PRIVATE_KEY (the root's P-256 API key),
// ADDRESS (a key of the organization), ALICE_PUBLIC_KEY, ALICE_PRIVATE_KEY (a user a policy denies
// transfers to BLOCKED), BLOCKED. viem's http transport is given a fetch that adds the two members
// Strongroom reads (organizationId, timestampMs) and stamps the exact body with Turnkey's API-key
// stamper; eth_chainId, which a signer does not answer, stands in for the node (chain 1).
// Prints ONE JSON object on stdout; test_viem_rpc.py verifies the signatures in Python.

import process from "node:process";

import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import { createWalletClient, http } from "viem";
import { mainnet } from "viem/chains";

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
}

function stampingFetch(publicKey, privateKey) {
  const stamper = new ApiKeyStamper({ apiPublicKey: publicKey, apiPrivateKey: privateKey });
  return async (url, init) => {
    const call = JSON.parse(init.body);
    if (call.method === "eth_chainId") {
      const answer = JSON.stringify({ jsonrpc: "2.0", id: call.id, result: "0x1" });
      return new Response(answer, { headers: { "Content-Type": "application/json" } });
    }
    const body = JSON.stringify({ ...call, organizationId: env("ORGANIZATION_ID"), timestampMs: String(Date.now()) });
    const { stampHeaderName, stampHeaderValue } = await stamper.stamp(body);
    const headers = new Headers(init.headers);
    headers.set(stampHeaderName, stampHeaderValue);
    return fetch(url, { ...init, body, headers });
  };
}

function wallet(publicKey, privateKey, address) {
  return createWalletClient({
    account: address,
    chain: mainnet,
    transport: http(`${env("BASE_URL")}/eth/rpc`, { fetchFn: stampingFetch(publicKey, privateKey), retryCount: 0 }),
  });
}

const address = env("ADDRESS");
const root = wallet(env("API_PUBLIC_KEY"), env("API_PRIVATE_KEY"), address);
const tx = {
  to: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB",
  value: 10n ** 15n,
  gas: 21000n,
  maxFeePerGas: 2n * 10n ** 9n,
  maxPriorityFeePerGas: 10n ** 9n,
  nonce: 3,
};
const typed = {
  domain: { name: "Ether Mail", version: "1", chainId: 1, verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC" },
  types: {
    Person: [
      { name: "name", type: "string" },
      { name: "wallet", type: "address" },
    ],
    Mail: [
      { name: "from", type: "Person" },
      { name: "to", type: "Person" },
      { name: "contents", type: "string" },
    ],
  },
  primaryType: "Mail",
  message: {
    from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
    to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
    contents: "Hello, Bob!",
  },
};

const out = {
  addresses: await root.getAddresses(),
  message: await root.signMessage({ message: "hello from viem" }),
  typed: await root.signTypedData(typed),
  transaction: await root.signTransaction(tx),
};
const alice = wallet(env("ALICE_PUBLIC_KEY"), env("ALICE_PRIVATE_KEY"), address);
try {
  await alice.signTransaction({ ...tx, to: env("BLOCKED") });
  out.denied = null;
} catch (err) {
  let cause = err;
  while (cause && cause.code === undefined && cause.cause) cause = cause.cause;
  out.denied = { name: err.name, code: cause?.code ?? null, details: cause?.details ?? err.message };
}
console.log(JSON.stringify(out));
