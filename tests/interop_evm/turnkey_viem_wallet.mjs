// @turnkey/viem signing with HD wallet accounts: the way Turnkey's docs set it up now, an account
// made by `createAccount({ client, organizationId, signWith: <wallet account address> })`.
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY (66-hex compressed P-256), API_PRIVATE_KEY (64-hex scalar).
// 1. With an @turnkey/http TurnkeyClient: create a wallet with Turnkey's default Ethereum account
//    (m/44'/60'/0'/0/0), then a second account (m/44'/60'/1'/0/0) with createWalletAccounts.
// 2. For each account: a viem LocalAccount from @turnkey/viem's createAccount (signWith = the
//    account's address), used directly and through a viem WalletClient, signs an EIP-191 message,
//    the EIP-712 "Mail" example and an EIP-1559 transaction.
// 3. viem's own verifyMessage / verifyTypedData / recoverTransactionAddress check each result.
// Prints ONE JSON object on stdout (the signatures, viem's digests and `checks`, a map of named
// verification booleans). tests/interop_evm/test_turnkey_viem_wallet.py asserts the checks and
// re-verifies every signature in Python. An SDK call that throws is a failure; so is a check that is
// false (the JSON is still printed, the failed names go to stderr, exit 1).

import { randomUUID } from "node:crypto";
import process from "node:process";

import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import { TurnkeyClient } from "@turnkey/http";
import { createAccount } from "@turnkey/viem";
import {
  createWalletClient,
  custom,
  getAddress,
  hashMessage,
  hashTypedData,
  keccak256,
  parseEther,
  parseGwei,
  parseTransaction,
  recoverTransactionAddress,
  serializeTransaction,
  verifyMessage,
  verifyTypedData,
} from "viem";
import { mainnet } from "viem/chains";

class InteropFailure extends Error {}

function env(name) {
  const value = process.env[name];
  if (!value) throw new InteropFailure(`environment variable ${name} is required`);
  return value;
}

/** JSON.stringify replacer: bigints as decimal strings. */
function replacer(_key, value) {
  return typeof value === "bigint" ? value.toString() : value;
}

/** Runs one SDK call; any rejection becomes a failure naming the step. */
async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InteropFailure) throw err;
    const code = err && typeof err === "object" && "code" in err ? ` (code ${err.code})` : "";
    const cause = err?.cause?.message ? `\n  cause: ${err.cause.message}` : "";
    throw new InteropFailure(`${name} failed: ${err?.name ?? "Error"}${code}: ${err?.message ?? err}${cause}`);
  }
}

/** A submitted activity must have completed synchronously; returns its result. */
function completed(name, response, resultKey) {
  const activity = response?.activity;
  if (activity?.status !== "ACTIVITY_STATUS_COMPLETED" || !activity.result?.[resultKey]) {
    throw new InteropFailure(`${name}: expected a completed activity with ${resultKey}: ${JSON.stringify(activity)}`);
  }
  return activity.result[resultKey];
}

const MESSAGE = "hello from a strongroom wallet";
const TO = "0x3535353535353535353535353535353535353535";
// The EIP-712 "Mail" example (https://eips.ethereum.org/EIPS/eip-712).
const MAIL_DOMAIN = {
  name: "Ether Mail",
  version: "1",
  chainId: 1,
  verifyingContract: "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
};
const MAIL_DOMAIN_TYPE = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
];
const MAIL_TYPES = {
  Person: [
    { name: "name", type: "string" },
    { name: "wallet", type: "address" },
  ],
  Mail: [
    { name: "from", type: "Person" },
    { name: "to", type: "Person" },
    { name: "contents", type: "string" },
  ],
};
const MAIL_MESSAGE = {
  from: { name: "Cow", wallet: "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
  to: { name: "Bob", wallet: "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
  contents: "Hello, Bob!",
};
const TX = {
  type: "eip1559",
  chainId: 1,
  nonce: 0,
  to: TO,
  value: parseEther("0.01"),
  gas: 21000n,
  maxFeePerGas: parseGwei("20"),
  maxPriorityFeePerGas: parseGwei("1"),
};
const ETH_ACCOUNT_0 = {
  curve: "CURVE_SECP256K1",
  pathFormat: "PATH_FORMAT_BIP32",
  path: "m/44'/60'/0'/0/0",
  addressFormat: "ADDRESS_FORMAT_ETHEREUM",
};
const ETH_ACCOUNT_1 = { ...ETH_ACCOUNT_0, path: "m/44'/60'/1'/0/0" };

async function signAll(account, address, checks, label) {
  const out = {};
  out.message = await step(`${label} signMessage`, () => account.signMessage({ message: MESSAGE }));
  checks[`${label}.verifyMessage`] = await verifyMessage({ address, message: MESSAGE, signature: out.message });

  out.typedData = await step(`${label} signTypedData`, () =>
    account.signTypedData({
      domain: MAIL_DOMAIN,
      types: { EIP712Domain: MAIL_DOMAIN_TYPE, ...MAIL_TYPES },
      primaryType: "Mail",
      message: MAIL_MESSAGE,
    }),
  );
  checks[`${label}.verifyTypedData`] = await verifyTypedData({
    address,
    domain: MAIL_DOMAIN,
    types: MAIL_TYPES,
    primaryType: "Mail",
    message: MAIL_MESSAGE,
    signature: out.typedData,
  });

  const signed = await step(`${label} signTransaction`, () => account.signTransaction(TX));
  const parsed = parseTransaction(signed);
  const recovered = await recoverTransactionAddress({ serializedTransaction: signed });
  out.transaction = { signed, recovered };
  checks[`${label}.recoverTransactionAddress`] = recovered === address;
  checks[`${label}.transactionFields`] =
    parsed.type === "eip1559" &&
    parsed.chainId === TX.chainId &&
    (parsed.nonce ?? 0) === TX.nonce &&
    parsed.to?.toLowerCase() === TO &&
    parsed.value === TX.value &&
    parsed.gas === TX.gas &&
    parsed.maxFeePerGas === TX.maxFeePerGas &&
    parsed.maxPriorityFeePerGas === TX.maxPriorityFeePerGas;
  // re-serialising the parsed signed transaction reproduces the daemon's bytes (canonical RLP)
  const { r, s, yParity } = parsed;
  checks[`${label}.reserialize`] = serializeTransaction(TX, { r, s, yParity }) === signed;
  return out;
}

async function main() {
  const baseUrl = env("BASE_URL").replace(/\/+$/, "");
  const organizationId = env("ORGANIZATION_ID");
  const client = new TurnkeyClient(
    { baseUrl },
    new ApiKeyStamper({ apiPublicKey: env("API_PUBLIC_KEY"), apiPrivateKey: env("API_PRIVATE_KEY") }),
  );
  const checks = {};
  const out = { checks };

  // -- 1. a wallet and a second account -----------------------------------------------------------
  const walletName = `viem wallet ${randomUUID()}`;
  const wallet = completed(
    "createWallet",
    await step("createWallet", () =>
      client.createWallet({
        type: "ACTIVITY_TYPE_CREATE_WALLET",
        timestampMs: String(Date.now()),
        organizationId,
        parameters: { walletName, accounts: [ETH_ACCOUNT_0] },
      }),
    ),
    "createWalletResult",
  );
  const added = completed(
    "createWalletAccounts",
    await step("createWalletAccounts", () =>
      client.createWalletAccounts({
        type: "ACTIVITY_TYPE_CREATE_WALLET_ACCOUNTS",
        timestampMs: String(Date.now()),
        organizationId,
        parameters: { walletId: wallet.walletId, accounts: [ETH_ACCOUNT_1] },
      }),
    ),
    "createWalletAccountsResult",
  );
  const addresses = [wallet.addresses?.[0], added.addresses?.[0]];
  const listed = await step("getWalletAccounts", () =>
    client.getWalletAccounts({ organizationId, walletId: wallet.walletId }),
  );
  out.wallet = { walletId: wallet.walletId, addresses, accounts: listed.accounts };
  checks.addressesAreEip55 = addresses.every((a) => typeof a === "string" && a === getAddress(a));
  checks.accountsDiffer = addresses[0] !== addresses[1];

  out.messageDigest = hashMessage(MESSAGE);
  out.mailDigest = hashTypedData({ domain: MAIL_DOMAIN, types: MAIL_TYPES, primaryType: "Mail", message: MAIL_MESSAGE });
  out.transactionSigningHash = keccak256(serializeTransaction(TX));

  // -- 2./3. each account signs, directly and through a WalletClient --------------------------------
  const noRpc = custom({
    async request({ method }) {
      throw new Error(`unexpected RPC call ${method}`);
    },
  });
  out.accounts = [];
  for (const [i, address] of addresses.entries()) {
    const account = await step(`createAccount(signWith=account ${i} address)`, () =>
      createAccount({ client, organizationId, signWith: address }),
    );
    checks[`account${i}.address`] = account.address === address;
    const direct = await signAll(account, address, checks, `account${i}`);
    const walletClient = createWalletClient({ account, chain: mainnet, transport: noRpc });
    const viaClient = {
      message: await step(`account ${i} WalletClient.signMessage`, () => walletClient.signMessage({ message: MESSAGE })),
      typedData: await step(`account ${i} WalletClient.signTypedData`, () =>
        walletClient.signTypedData({ domain: MAIL_DOMAIN, types: MAIL_TYPES, primaryType: "Mail", message: MAIL_MESSAGE }),
      ),
    };
    checks[`account${i}.walletClient.verifyMessage`] = await verifyMessage({
      address,
      message: MESSAGE,
      signature: viaClient.message,
    });
    checks[`account${i}.walletClient.verifyTypedData`] = await verifyTypedData({
      address,
      domain: MAIL_DOMAIN,
      types: MAIL_TYPES,
      primaryType: "Mail",
      message: MAIL_MESSAGE,
      signature: viaClient.typedData,
    });
    // ... and the other account's address does not verify: the two are distinct keys
    checks[`account${i}.otherAddressFails`] = !(await verifyMessage({
      address: addresses[1 - i],
      message: MESSAGE,
      signature: direct.message,
    }));
    out.accounts.push({ address, direct, walletClient: viaClient });
  }

  const failed = Object.entries(checks)
    .filter(([, ok]) => ok !== true)
    .map(([name]) => name);
  process.stdout.write(`${JSON.stringify(out, replacer)}\n`);
  if (failed.length > 0) {
    process.stderr.write(`failed checks: ${failed.join(", ")}\n`);
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof InteropFailure ? err.message : err?.stack ?? err}\n`);
  process.exit(1);
});
