// Drives a running Strongroom daemon through Turnkey's EVM signer integrations:
// @turnkey/viem (createAccount -> viem LocalAccount) and @turnkey/ethers (TurnkeySigner), both on
// an @turnkey/http TurnkeyClient with an API-key stamper.
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY (66-hex compressed P-256), API_PRIVATE_KEY (64-hex scalar).
// Prints ONE JSON object on stdout: the key, every signature / signed transaction, the digests the
// libraries computed, every SDK -> daemon call (recorded on the client), and `checks`, a map of
// named verification booleans computed with viem / ethers. tests/interop_evm/test_turnkey_evm.py
// asserts those and re-verifies the results in Python. An SDK call that throws is a failure; so is
// any check that is false (the JSON is still printed, the failed names go to stderr, exit 1).

import { randomUUID } from "node:crypto";
import process from "node:process";

import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import { TurnkeyClient } from "@turnkey/http";
import { createAccount } from "@turnkey/viem";
import { TurnkeySigner } from "@turnkey/ethers";
import {
  createWalletClient,
  custom,
  getAddress as viemGetAddress,
  hashMessage as viemHashMessage,
  hashTypedData,
  keccak256,
  parseEther,
  parseGwei,
  parseTransaction,
  recoverMessageAddress,
  recoverTransactionAddress,
  recoverTypedDataAddress,
  serializeTransaction,
  verifyMessage,
  verifyTypedData,
} from "viem";
import { mainnet } from "viem/chains";
import { hashAuthorization, recoverAuthorizationAddress, verifyAuthorization } from "viem/utils";
import {
  Transaction,
  TypedDataEncoder,
  getAddress as ethersGetAddress,
  hashMessage as ethersHashMessage,
  verifyMessage as ethersVerifyMessage,
  verifyTypedData as ethersVerifyTypedData,
} from "ethers";

class InteropFailure extends Error {}

function fail(message, extra) {
  const detail = extra === undefined ? "" : `\n${JSON.stringify(extra, replacer, 2)}`;
  throw new InteropFailure(`${message}${detail}`);
}

function check(condition, message, extra) {
  if (!condition) fail(message, extra);
}

function env(name) {
  const value = process.env[name];
  if (!value) fail(`environment variable ${name} is required`);
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

/**
 * Records every call the signer libraries make on the client (method, request body, and the
 * parts of the response they use). The same instance is patched, so `client.name` is still
 * "TurnkeyClient" and both libraries keep taking their @turnkey/http code path.
 */
function recordCalls(client, calls) {
  for (const method of ["getPrivateKey", "signRawPayload", "signTransaction"]) {
    const original = client[method].bind(client);
    client[method] = async (body) => {
      const entry = { method, label: currentLabel, request: body };
      calls.push(entry);
      const response = await original(body);
      if (method === "getPrivateKey") {
        entry.response = { addresses: response?.privateKey?.addresses };
      } else {
        entry.response = {
          activityId: response?.activity?.id,
          type: response?.activity?.type,
          status: response?.activity?.status,
          result: response?.activity?.result,
        };
      }
      return response;
    };
  }
}

let currentLabel = "setup"; // which scenario is running; tags the recorded calls

const MESSAGE = "hello strongroom";
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
// The digest EIP-712 gives for the Mail example (the spec's test vector).
const MAIL_DIGEST = "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2";

async function main() {
  const baseUrl = env("BASE_URL").replace(/\/+$/, "");
  const organizationId = env("ORGANIZATION_ID");
  const apiPublicKey = env("API_PUBLIC_KEY");
  const apiPrivateKey = env("API_PRIVATE_KEY");
  const client = new TurnkeyClient({ baseUrl }, new ApiKeyStamper({ apiPublicKey, apiPrivateKey }));
  const calls = [];
  const checks = {};
  const out = { checks, calls };

  // -- 1. one secp256k1 key with an Ethereum address (full activity envelope) -------------------
  const keyName = `interop-evm-${randomUUID()}`;
  const created = await step("createPrivateKeys", () =>
    client.createPrivateKeys({
      type: "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
      timestampMs: String(Date.now()),
      organizationId,
      parameters: {
        privateKeys: [
          {
            privateKeyName: keyName,
            curve: "CURVE_SECP256K1",
            privateKeyTags: [],
            addressFormats: ["ADDRESS_FORMAT_ETHEREUM"],
          },
        ],
      },
    }),
  );
  const activity = created.activity;
  check(
    activity?.status === "ACTIVITY_STATUS_COMPLETED",
    "createPrivateKeys: expected ACTIVITY_STATUS_COMPLETED in the submit response",
    activity,
  );
  const item = activity.result?.createPrivateKeysResultV2?.privateKeys?.[0];
  const address = item?.addresses?.find((a) => a.format === "ADDRESS_FORMAT_ETHEREUM")?.address;
  check(typeof item?.privateKeyId === "string" && typeof address === "string", "createPrivateKeys: no key/address", activity);
  const privateKeyId = item.privateKeyId;
  out.key = { privateKeyId, name: keyName, address, createActivityId: activity.id };
  checks.addressIsEip55 = address === viemGetAddress(address) && address === ethersGetAddress(address);

  recordCalls(client, calls);

  // -- 2. @turnkey/viem ---------------------------------------------------------------------------
  const viemOut = {};
  out.viem = viemOut;
  currentLabel = "viem.createAccount(privateKeyId)";
  const accountById = await step("viem createAccount(signWith=privateKeyId)", () =>
    createAccount({ client, organizationId, signWith: privateKeyId }),
  );
  currentLabel = "viem.createAccount(address)";
  const accountByAddress = await step("viem createAccount(signWith=address)", () =>
    createAccount({ client, organizationId, signWith: address }),
  );
  viemOut.accountByIdAddress = accountById.address;
  viemOut.accountByAddressAddress = accountByAddress.address;
  checks.viemAccountByIdAddress = accountById.address === address;
  checks.viemAccountByAddressAddress = accountByAddress.address === address;

  viemOut.messageDigest = viemHashMessage(MESSAGE);
  viemOut.mailDigest = hashTypedData({
    domain: MAIL_DOMAIN,
    types: MAIL_TYPES,
    primaryType: "Mail",
    message: MAIL_MESSAGE,
  });
  checks.mailDigestIsSpecVector = viemOut.mailDigest === MAIL_DIGEST;

  viemOut.messages = {};
  viemOut.typedData = {};
  viemOut.typedDataNoDomainType = {};
  viemOut.mailDigestEmptyDomain = hashTypedData({
    domain: {},
    types: MAIL_TYPES,
    primaryType: "Mail",
    message: MAIL_MESSAGE,
  });
  viemOut.transactions = {};
  for (const [kind, account] of [
    ["privateKeyId", accountById],
    ["address", accountByAddress],
  ]) {
    // signMessage (EIP-191, hashed locally; sign_raw_payload HEXADECIMAL / NO_OP)
    currentLabel = `viem.signMessage(${kind})`;
    const msgSig = await step(`viem signMessage (${kind})`, () => account.signMessage({ message: MESSAGE }));
    viemOut.messages[kind] = msgSig;
    checks[`viem.verifyMessage.${kind}`] = await verifyMessage({ address, message: MESSAGE, signature: msgSig });
    checks[`viem.recoverMessageAddress.${kind}`] =
      (await recoverMessageAddress({ message: MESSAGE, signature: msgSig })) === address;

    // signTypedData (PAYLOAD_ENCODING_EIP712 / NO_OP). @turnkey/viem serialises with viem's
    // serializeTypedData, which sends `"domain": {}` unless `types` has EIP712Domain. So the
    // account is called with EIP712Domain in `types` (what viem's WalletClient does) ...
    currentLabel = `viem.signTypedData(${kind})`;
    const typedSig = await step(`viem signTypedData (${kind})`, () =>
      account.signTypedData({
        domain: MAIL_DOMAIN,
        types: { EIP712Domain: MAIL_DOMAIN_TYPE, ...MAIL_TYPES },
        primaryType: "Mail",
        message: MAIL_MESSAGE,
      }),
    );
    viemOut.typedData[kind] = typedSig;
    checks[`viem.verifyTypedData.${kind}`] = await verifyTypedData({
      address,
      domain: MAIL_DOMAIN,
      types: MAIL_TYPES,
      primaryType: "Mail",
      message: MAIL_MESSAGE,
      signature: typedSig,
    });

    // ... and once without it: the daemon signs what it was sent, the Mail struct under an
    // empty domain (upstream behaviour of @turnkey/viem 0.14.37 + viem, not a daemon property)
    currentLabel = `viem.signTypedData.noDomainType(${kind})`;
    const bareSig = await step(`viem signTypedData without EIP712Domain (${kind})`, () =>
      account.signTypedData({ domain: MAIL_DOMAIN, types: MAIL_TYPES, primaryType: "Mail", message: MAIL_MESSAGE }),
    );
    viemOut.typedDataNoDomainType[kind] = bareSig;
    checks[`viem.noDomainType.recoversUnderEmptyDomain.${kind}`] = await verifyTypedData({
      address,
      domain: {},
      types: MAIL_TYPES,
      primaryType: "Mail",
      message: MAIL_MESSAGE,
      signature: bareSig,
    });
    checks[`viem.noDomainType.failsUnderMailDomain.${kind}`] = !(await verifyTypedData({
      address,
      domain: MAIL_DOMAIN,
      types: MAIL_TYPES,
      primaryType: "Mail",
      message: MAIL_MESSAGE,
      signature: bareSig,
    }));
  }

  // WalletClient over the Turnkey account: its signTypedData adds EIP712Domain to `types` before
  // handing the data to the account (no RPC is needed for local-account signing).
  const noRpc = custom({
    async request({ method }) {
      throw new Error(`unexpected RPC call ${method}`);
    },
  });
  const wallet = createWalletClient({ account: accountById, chain: mainnet, transport: noRpc });
  currentLabel = "viem.walletClient.signTypedData";
  const walletTypedSig = await step("viem WalletClient.signTypedData", () =>
    wallet.signTypedData({ domain: MAIL_DOMAIN, types: MAIL_TYPES, primaryType: "Mail", message: MAIL_MESSAGE }),
  );
  viemOut.typedData.walletClient = walletTypedSig;
  checks["viem.verifyTypedData.walletClient"] = await verifyTypedData({
    address,
    domain: MAIL_DOMAIN,
    types: MAIL_TYPES,
    primaryType: "Mail",
    message: MAIL_MESSAGE,
    signature: walletTypedSig,
  });
  checks["viem.recoverTypedDataAddress.walletClient"] =
    (await recoverTypedDataAddress({
      domain: MAIL_DOMAIN,
      types: MAIL_TYPES,
      primaryType: "Mail",
      message: MAIL_MESSAGE,
      signature: walletTypedSig,
    })) === address;
  currentLabel = "viem.walletClient.signMessage";
  const walletMsgSig = await step("viem WalletClient.signMessage", () => wallet.signMessage({ message: MESSAGE }));
  viemOut.messages.walletClient = walletMsgSig;
  checks["viem.verifyMessage.walletClient"] = await verifyMessage({ address, message: MESSAGE, signature: walletMsgSig });

  // signTransaction (sign_transaction V2, TRANSACTION_TYPE_ETHEREUM)
  const txs = {
    eip1559: {
      type: "eip1559",
      chainId: 1,
      nonce: 0,
      to: TO,
      value: parseEther("0.01"),
      gas: 21000n,
      maxFeePerGas: parseGwei("20"),
      maxPriorityFeePerGas: parseGwei("1"),
    },
    legacy: {
      type: "legacy",
      chainId: 1, // EIP-155: v = 37 / 38
      nonce: 1,
      to: TO,
      value: parseEther("0.01"),
      gas: 21000n,
      gasPrice: parseGwei("20"),
    },
    eip2930: {
      type: "eip2930",
      chainId: 1,
      nonce: 2,
      to: TO,
      value: 1n,
      gas: 30000n,
      gasPrice: parseGwei("20"),
      accessList: [{ address: TO, storageKeys: [`0x${"00".repeat(31)}01`] }],
    },
    eip1559WithData: {
      type: "eip1559",
      chainId: 11155111,
      nonce: 3,
      to: TO,
      value: 0n,
      data: "0xa9059cbb000000000000000000000000353535353535353535353535353535353535353500000000000000000000000000000000000000000000000000000000000f4240",
      gas: 60000n,
      maxFeePerGas: parseGwei("30"),
      maxPriorityFeePerGas: parseGwei("2"),
    },
  };
  for (const [name, tx] of Object.entries(txs)) {
    currentLabel = `viem.signTransaction.${name}`;
    const signed = await step(`viem signTransaction (${name})`, () => accountById.signTransaction(tx));
    const parsed = parseTransaction(signed);
    const recovered = await recoverTransactionAddress({ serializedTransaction: signed });
    const unsigned = serializeTransaction(tx);
    viemOut.transactions[name] = {
      signed,
      unsigned,
      signingHash: keccak256(unsigned),
      recovered,
      parsed: { type: parsed.type, chainId: parsed.chainId, nonce: parsed.nonce, v: parsed.v, yParity: parsed.yParity },
    };
    checks[`viem.recoverTransactionAddress.${name}`] = recovered === address;
    checks[`viem.parseTransaction.fields.${name}`] =
      parsed.type === tx.type &&
      parsed.chainId === tx.chainId &&
      (parsed.nonce ?? 0) === tx.nonce &&
      parsed.to?.toLowerCase() === TO &&
      (parsed.value ?? 0n) === tx.value &&
      parsed.gas === tx.gas &&
      (parsed.data ?? "0x") === (tx.data ?? "0x");
    // re-serialising the parsed signed tx reproduces the daemon's bytes exactly (canonical RLP)
    const { r, s, v, yParity, ...rest } = parsed;
    checks[`viem.reserialize.${name}`] = serializeTransaction(rest, { r, s, v, yParity }) === signed;
  }
  checks["viem.legacy.eip155V"] = [37n, 38n].includes(viemOut.transactions.legacy.parsed.v);

  // signAuthorization (EIP-7702; PAYLOAD_ENCODING_EIP7702_AUTHORIZATION / NO_OP)
  currentLabel = "viem.signAuthorization";
  const authorization = await step("viem signAuthorization", () =>
    accountById.signAuthorization({ address: TO, chainId: 1, nonce: 7 }),
  );
  viemOut.authorization = authorization;
  viemOut.authorizationDigest = hashAuthorization({ address: TO, chainId: 1, nonce: 7 });
  checks["viem.recoverAuthorizationAddress"] =
    (await recoverAuthorizationAddress({ authorization, signature: authorization })) === address;
  checks["viem.verifyAuthorization"] = await verifyAuthorization({ address, authorization, signature: authorization });

  // -- 3. @turnkey/ethers ---------------------------------------------------------------------------
  const ethersOut = { messages: {}, typedData: {}, transactions: {} };
  out.ethers = ethersOut;
  ethersOut.messageDigest = ethersHashMessage(MESSAGE);
  ethersOut.mailDigest = TypedDataEncoder.hash(MAIL_DOMAIN, MAIL_TYPES, MAIL_MESSAGE);
  checks["ethers.digestsMatchViem"] =
    ethersOut.messageDigest === viemOut.messageDigest && ethersOut.mailDigest === viemOut.mailDigest;
  for (const [kind, signWith] of [
    ["privateKeyId", privateKeyId],
    ["address", address],
  ]) {
    const signer = new TurnkeySigner({ client, organizationId, signWith });
    currentLabel = `ethers.getAddress(${kind})`;
    const got = await step(`ethers getAddress (${kind})`, () => signer.getAddress());
    ethersOut[`address.${kind}`] = got;
    checks[`ethers.getAddress.${kind}`] = got === address;

    currentLabel = `ethers.signMessage(${kind})`;
    const msgSig = await step(`ethers signMessage (${kind})`, () => signer.signMessage(MESSAGE));
    ethersOut.messages[kind] = msgSig;
    checks[`ethers.verifyMessage.${kind}`] = ethersVerifyMessage(MESSAGE, msgSig) === address;

    currentLabel = `ethers.signTypedData(${kind})`;
    const typedSig = await step(`ethers signTypedData (${kind})`, () =>
      signer.signTypedData(MAIL_DOMAIN, MAIL_TYPES, MAIL_MESSAGE),
    );
    ethersOut.typedData[kind] = typedSig;
    checks[`ethers.verifyTypedData.${kind}`] =
      ethersVerifyTypedData(MAIL_DOMAIN, MAIL_TYPES, MAIL_MESSAGE, typedSig) === address;

    // `from` is given: TurnkeySigner compares getAddress(from) with the daemon's address verbatim
    currentLabel = `ethers.signTransaction(${kind})`;
    const request = {
      to: TO,
      value: parseEther("0.01"),
      chainId: 1,
      nonce: 0,
      gasLimit: 21000,
      maxFeePerGas: parseGwei("20"),
      maxPriorityFeePerGas: parseGwei("1"),
      type: 2,
      from: address.toLowerCase(),
    };
    const signed = await step(`ethers signTransaction (${kind})`, () => signer.signTransaction(request));
    const tx = Transaction.from(signed);
    ethersOut.transactions[kind] = { signed, from: tx.from, unsignedHash: tx.unsignedHash, signedHash: tx.hash };
    checks[`ethers.Transaction.from.${kind}`] = tx.from === address;
    checks[`ethers.Transaction.fields.${kind}`] =
      tx.type === 2 &&
      tx.chainId === 1n &&
      tx.nonce === 0 &&
      tx.to === ethersGetAddress(TO) &&
      tx.value === parseEther("0.01") &&
      tx.gasLimit === 21000n;
  }

  // a legacy (type 0, EIP-155) transaction through ethers as well
  const legacySigner = new TurnkeySigner({ client, organizationId, signWith: address });
  currentLabel = "ethers.signTransaction(legacy)";
  const legacySigned = await step("ethers signTransaction (legacy)", () =>
    legacySigner.signTransaction({
      to: TO,
      value: 1n,
      chainId: 1,
      nonce: 1,
      gasLimit: 21000,
      gasPrice: parseGwei("20"),
      type: 0,
      from: address,
    }),
  );
  const legacyTx = Transaction.from(legacySigned);
  ethersOut.transactions.legacy = { signed: legacySigned, from: legacyTx.from, unsignedHash: legacyTx.unsignedHash };
  checks["ethers.Transaction.from.legacy"] = legacyTx.from === address && legacyTx.type === 0 && legacyTx.chainId === 1n;

  // viem and ethers serialise the same EIP-1559 transaction to the same unsigned bytes
  checks["viemAndEthersAgreeOnEip1559SigningHash"] =
    ethersOut.transactions.privateKeyId.unsignedHash === viemOut.transactions.eip1559.signingHash;

  out.callCount = calls.length;
  process.stdout.write(`${JSON.stringify(out, replacer)}\n`);
  const failed = Object.entries(checks)
    .filter(([, ok]) => ok !== true)
    .map(([name]) => name);
  if (failed.length > 0) {
    process.stderr.write(`turnkey_evm.mjs: verification failed: ${failed.join(", ")}\n`);
    process.exit(1);
  }
}

main().catch((err) => {
  process.stderr.write(`turnkey_evm.mjs: ${err instanceof InteropFailure ? "" : "unexpected error: "}`);
  process.stderr.write(`${err?.stack && !(err instanceof InteropFailure) ? err.stack : (err?.message ?? err)}\n`);
  process.exit(1);
});
