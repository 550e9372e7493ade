// Export from and import into a running Strongroom daemon with Turnkey's official clients:
// @turnkey/http (TurnkeyClient + @turnkey/api-key-stamper) submits the activities, @turnkey/crypto
// opens the export bundles and encrypts to the import bundles (see test_bundles_daemon.py).
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY, API_PRIVATE_KEY (run_node_script), and
//   SIGNER_PUBLIC_KEY  the daemon's bundle key, pinned out of band (the test reads get_bundle_signer
//                      with the Python client); passed as dangerouslyOverrideSignerPublicKey
//   IMPORT_MNEMONIC    the mnemonic to import
//   IMPORT_HEX_KEY     a secp256k1 key to import (64 hex)
//   IMPORT_SOLANA_KEY  an Ed25519 key to import, base58(seed || public key) as Solana wallets write it
// Sections: 1. a wallet exported whole; 2. its accounts exported, a token key refused; 3. a mnemonic
// imported; 4. keys imported (HEXADECIMAL, SOLANA) and exported back; 5. imports refused; 6. an
// export approved by consensus.
// Prints ONE JSON object; the Python side checks every key, address and signature in it. Any
// unexpected failure exits non-zero with the step named on stderr; expected refusals are reported
// as {code, message}.

import { randomBytes, randomUUID } from "node:crypto";
import process from "node:process";

import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import {
  decryptExportBundle,
  encryptPrivateKeyToBundle,
  encryptWalletToBundle,
  generateP256KeyPair,
} from "@turnkey/crypto";
import { TurnkeyClient, TurnkeyRequestError } from "@turnkey/http";

const ETHEREUM_ACCOUNT = {
  curve: "CURVE_SECP256K1",
  pathFormat: "PATH_FORMAT_BIP32",
  path: "m/44'/60'/0'/0/0",
  addressFormat: "ADDRESS_FORMAT_ETHEREUM",
};
const SOLANA_ACCOUNT = {
  curve: "CURVE_ED25519",
  pathFormat: "PATH_FORMAT_BIP32",
  path: "m/44'/501'/0'/0'",
  addressFormat: "ADDRESS_FORMAT_SOLANA",
};

class InteropFailure extends Error {}

function check(condition, message, extra) {
  if (!condition) throw new InteropFailure(`${message}\n${JSON.stringify(extra, null, 2)}`);
}

function env(name) {
  const value = process.env[name];
  check(value, `environment variable ${name} is required`);
  return value;
}

const organizationId = env("ORGANIZATION_ID");
const signerPublicKey = env("SIGNER_PUBLIC_KEY");
const client = new TurnkeyClient(
  { baseUrl: env("BASE_URL").replace(/\/+$/, "") },
  new ApiKeyStamper({ apiPublicKey: env("API_PUBLIC_KEY"), apiPrivateKey: env("API_PRIVATE_KEY") }),
);
const suffix = randomUUID().slice(0, 8);

async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InteropFailure) throw err;
    const code = err && typeof err === "object" && "code" in err ? ` (code ${err.code})` : "";
    throw new InteropFailure(`${name} failed: ${err?.name ?? "Error"}${code}: ${err?.message ?? err}`);
  }
}

let lastActivityId; // the id of the activity `submit` completed last

/** Submits one activity with the SDK method `method`; it must complete at once. Returns its result. */
async function submit(method, type, parameters) {
  const response = await step(method, () =>
    client[method]({ type, timestampMs: String(Date.now()), organizationId, parameters }),
  );
  const activity = response.activity;
  check(activity?.status === "ACTIVITY_STATUS_COMPLETED", `${method}: not completed`, activity);
  check(activity.type === type, `${method}: expected type ${type}`, activity);
  const results = Object.values(activity.result ?? {});
  check(results.length === 1, `${method}: expected one result`, activity);
  lastActivityId = activity.id;
  return results[0];
}

/** Submits an activity that must be refused; returns the error's code and message. */
async function refused(method, type, parameters) {
  try {
    const response = await client[method]({ type, timestampMs: String(Date.now()), organizationId, parameters });
    return { refused: false, response };
  } catch (err) {
    if (!(err instanceof TurnkeyRequestError)) throw err;
    return { refused: true, code: err.code, message: err.message };
  }
}

async function outcome(fn) {
  try {
    return { ok: await fn() };
  } catch (error) {
    return { error: String(error?.message ?? error) };
  }
}

function decrypt(what, exportBundle, embeddedKey, options) {
  return step(`decryptExportBundle(${what})`, () =>
    decryptExportBundle({
      exportBundle,
      embeddedKey,
      organizationId,
      dangerouslyOverrideSignerPublicKey: signerPublicKey,
      ...options,
    }),
  );
}

async function signBoth(ethereumAddress, solanaAddress) {
  const text = `signed by an imported key ✓ ${suffix}`;
  const message = randomBytes(96).toString("hex"); // a Solana message: hex without 0x
  const ethereum = await submit("signRawPayload", "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", {
    signWith: ethereumAddress,
    payload: text,
    encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
    hashFunction: "HASH_FUNCTION_KECCAK256",
  });
  const solana = await submit("signRawPayload", "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", {
    signWith: solanaAddress,
    payload: message,
    encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
    hashFunction: "HASH_FUNCTION_NOT_APPLICABLE",
  });
  return {
    ethereum: { payload: text, r: ethereum.r, s: ethereum.s, v: ethereum.v },
    solana: { payload: message, r: solana.r, s: solana.s },
  };
}

async function main() {
  const out = {};
  const whoami = await step("getWhoami", () => client.getWhoami({ organizationId }));
  const userId = whoami.userId;
  // The key is pinned out of band; the query served to this client must agree with it.
  out.servedSigner = (
    await step("get_bundle_signer", () => client.request("/public/v1/query/get_bundle_signer", { organizationId }))
  ).publicKey;
  const target = generateP256KeyPair();
  const targetPublicKey = target.publicKeyUncompressed;
  const embeddedKey = target.privateKey;

  // 1. A new wallet, exported whole: the mnemonic.
  const created = await submit("createWallet", "ACTIVITY_TYPE_CREATE_WALLET", {
    walletName: `bundles-created-${suffix}`,
    accounts: [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT],
    mnemonicLength: 12,
  });
  const exportedWallet = await submit("exportWallet", "ACTIVITY_TYPE_EXPORT_WALLET", {
    walletId: created.walletId,
    targetPublicKey,
  });
  check(exportedWallet.walletId === created.walletId, "exportWallet: another wallet", exportedWallet);
  // The activity read back later (as a client polling it would) carries the same bundle.
  const polled = await step("getActivity", () => client.getActivity({ organizationId, activityId: lastActivityId }));
  out.created = {
    walletId: created.walletId,
    addresses: created.addresses,
    mnemonic: await decrypt("created wallet", exportedWallet.exportBundle, embeddedKey, { returnMnemonic: true }),
    polled: {
      type: polled.activity?.type,
      status: polled.activity?.status,
      sameBundle: polled.activity?.result?.exportWalletResult?.exportBundle === exportedWallet.exportBundle,
    },
  };

  // 2. Its accounts, exported one by one; a token key refuses.
  const [ethereumAddress, solanaAddress] = created.addresses;
  const ethereumAccount = await submit("exportWalletAccount", "ACTIVITY_TYPE_EXPORT_WALLET_ACCOUNT", {
    address: ethereumAddress,
    targetPublicKey,
  });
  const solanaAccount = await submit("exportWalletAccount", "ACTIVITY_TYPE_EXPORT_WALLET_ACCOUNT", {
    address: solanaAddress,
    targetPublicKey,
  });
  out.accounts = {
    ethereum: {
      address: ethereumAccount.address,
      key: await decrypt("ethereum account", ethereumAccount.exportBundle, embeddedKey, {
        keyFormat: "HEXADECIMAL",
        returnMnemonic: false,
      }),
    },
    solana: {
      address: solanaAccount.address,
      key: await decrypt("solana account", solanaAccount.exportBundle, embeddedKey, {
        keyFormat: "SOLANA",
        returnMnemonic: false,
      }),
    },
  };
  const tokenKeys = await submit("createPrivateKeys", "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2", {
    privateKeys: [
      {
        privateKeyName: `bundles-token-${suffix}`,
        curve: "CURVE_SECP256K1",
        privateKeyTags: [],
        addressFormats: ["ADDRESS_FORMAT_ETHEREUM"],
      },
    ],
  });
  const tokenKeyId = tokenKeys.privateKeys[0].privateKeyId;
  out.tokenKey = {
    privateKeyId: tokenKeyId,
    export: await refused("exportPrivateKey", "ACTIVITY_TYPE_EXPORT_PRIVATE_KEY", {
      privateKeyId: tokenKeyId,
      targetPublicKey,
    }),
  };

  // 3. A mnemonic imported: the wallet signs, and exports back to the same mnemonic.
  const walletInit = await submit("initImportWallet", "ACTIVITY_TYPE_INIT_IMPORT_WALLET", { userId });
  const walletBundle = await step("encryptWalletToBundle", () =>
    encryptWalletToBundle({
      mnemonic: env("IMPORT_MNEMONIC"),
      importBundle: walletInit.importBundle,
      userId,
      organizationId,
      dangerouslyOverrideSignerPublicKey: signerPublicKey,
    }),
  );
  const importedWallet = await submit("importWallet", "ACTIVITY_TYPE_IMPORT_WALLET", {
    userId,
    walletName: `bundles-imported-${suffix}`,
    encryptedBundle: walletBundle,
    accounts: [ETHEREUM_ACCOUNT, SOLANA_ACCOUNT],
  });
  const walletBack = await submit("exportWallet", "ACTIVITY_TYPE_EXPORT_WALLET", {
    walletId: importedWallet.walletId,
    targetPublicKey,
  });
  out.importedWallet = {
    walletId: importedWallet.walletId,
    addresses: importedWallet.addresses,
    signatures: await signBoth(importedWallet.addresses[0], importedWallet.addresses[1]),
    exportedBack: await decrypt("imported wallet", walletBack.exportBundle, embeddedKey, { returnMnemonic: true }),
    // The import target was used once: the same bundle again finds no import waiting.
    replayed: await refused("importWallet", "ACTIVITY_TYPE_IMPORT_WALLET", {
      userId,
      walletName: `bundles-replayed-${suffix}`,
      encryptedBundle: walletBundle,
      accounts: [ETHEREUM_ACCOUNT],
    }),
  };

  // 4. Private keys imported (HEXADECIMAL and SOLANA formats), signing, then exported back.
  out.importedKeys = {};
  for (const [label, keyFormat, privateKey, curve, addressFormat] of [
    ["hex", "HEXADECIMAL", env("IMPORT_HEX_KEY"), "CURVE_SECP256K1", "ADDRESS_FORMAT_ETHEREUM"],
    ["solana", "SOLANA", env("IMPORT_SOLANA_KEY"), "CURVE_ED25519", "ADDRESS_FORMAT_SOLANA"],
  ]) {
    const init = await submit("initImportPrivateKey", "ACTIVITY_TYPE_INIT_IMPORT_PRIVATE_KEY", { userId });
    const encryptedBundle = await step(`encryptPrivateKeyToBundle(${keyFormat})`, () =>
      encryptPrivateKeyToBundle({
        privateKey,
        keyFormat,
        importBundle: init.importBundle,
        userId,
        organizationId,
        dangerouslyOverrideSignerPublicKey: signerPublicKey,
      }),
    );
    const imported = await submit("importPrivateKey", "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY", {
      userId,
      privateKeyName: `bundles-imported-${label}-${suffix}`,
      encryptedBundle,
      curve,
      addressFormats: [addressFormat],
    });
    const address = imported.addresses[0]?.address;
    const payload = label === "hex" ? `imported key ${suffix}` : randomBytes(64).toString("hex");
    const signed = await submit("signRawPayload", "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", {
      signWith: address,
      payload,
      encoding: label === "hex" ? "PAYLOAD_ENCODING_TEXT_UTF8" : "PAYLOAD_ENCODING_HEXADECIMAL",
      hashFunction: label === "hex" ? "HASH_FUNCTION_KECCAK256" : "HASH_FUNCTION_NOT_APPLICABLE",
    });
    const back = await submit("exportPrivateKey", "ACTIVITY_TYPE_EXPORT_PRIVATE_KEY", {
      privateKeyId: imported.privateKeyId,
      targetPublicKey,
    });
    check(back.privateKeyId === imported.privateKeyId, "exportPrivateKey: another key", back);
    const got = await step("getPrivateKey", () =>
      client.getPrivateKey({ organizationId, privateKeyId: imported.privateKeyId }),
    );
    out.importedKeys[label] = {
      privateKeyId: imported.privateKeyId,
      addresses: imported.addresses,
      signature: { payload, r: signed.r, s: signed.s, v: signed.v },
      exportedBack: await decrypt(`imported ${label} key`, back.exportBundle, embeddedKey, {
        keyFormat,
        returnMnemonic: false,
      }),
      flags: { imported: got.privateKey.imported, exported: got.privateKey.exported },
    };
  }

  // 5. Refusals: clear errors, no partial state, the target kept for a retry.
  const bundleFor = (init, secret) =>
    step("encrypt", () =>
      secret.mnemonic
        ? encryptWalletToBundle({
            mnemonic: secret.mnemonic,
            importBundle: init.importBundle,
            userId,
            organizationId,
            dangerouslyOverrideSignerPublicKey: signerPublicKey,
          })
        : encryptPrivateKeyToBundle({
            privateKey: secret.hex,
            keyFormat: "HEXADECIMAL",
            importBundle: init.importBundle,
            userId,
            organizationId,
            dangerouslyOverrideSignerPublicKey: signerPublicKey,
          }),
    );
  const keyParams = (name, encryptedBundle) => ({
    userId,
    privateKeyName: name,
    encryptedBundle,
    curve: "CURVE_SECP256K1",
    addressFormats: ["ADDRESS_FORMAT_ETHEREUM"],
  });
  const walletParams = (name, encryptedBundle) => ({
    userId,
    walletName: name,
    encryptedBundle,
    accounts: [ETHEREUM_ACCOUNT],
  });
  const retryKey = randomBytes(32).toString("hex"); // below the curve order but for 2^-128
  out.refusals = {};
  {
    // Two INIT_IMPORTs: the bundle encrypted to the first no longer opens; the second target stays.
    const first = await submit("initImportPrivateKey", "ACTIVITY_TYPE_INIT_IMPORT_PRIVATE_KEY", { userId });
    const second = await submit("initImportPrivateKey", "ACTIVITY_TYPE_INIT_IMPORT_PRIVATE_KEY", { userId });
    const name = `bundles-retry-${suffix}`;
    out.refusals.staleTarget = await refused(
      "importPrivateKey",
      "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
      keyParams(name, await bundleFor(first, { hex: retryKey })),
    );
    // A mnemonic encrypted to a private-key target.
    out.refusals.mnemonicAsKey = await refused(
      "importPrivateKey",
      "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
      keyParams(name, await bundleFor(second, { mnemonic: env("IMPORT_MNEMONIC") })),
    );
    const retried = await submit(
      "importPrivateKey",
      "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
      keyParams(name, await bundleFor(second, { hex: retryKey })),
    );
    out.refusals.retry = { key: retryKey, addresses: retried.addresses };
  }
  {
    // A key encrypted to a wallet target; then a wallet bundle where no wallet import waits.
    const init = await submit("initImportWallet", "ACTIVITY_TYPE_INIT_IMPORT_WALLET", { userId });
    const name = `bundles-not-a-mnemonic-${suffix}`;
    out.refusals.keyAsMnemonic = await refused(
      "importWallet",
      "ACTIVITY_TYPE_IMPORT_WALLET",
      walletParams(name, await bundleFor(init, { hex: "ff".repeat(32) })),
    );
    out.refusals.badChecksum = await refused(
      "importWallet",
      "ACTIVITY_TYPE_IMPORT_WALLET",
      walletParams(name, await bundleFor(init, { mnemonic: Array(12).fill("abandon").join(" ") })),
    );
    const walletBundle = await bundleFor(init, { mnemonic: env("IMPORT_MNEMONIC") });
    out.refusals.walletBundleAsKey = await refused(
      "importPrivateKey",
      "ACTIVITY_TYPE_IMPORT_PRIVATE_KEY",
      keyParams(`bundles-wallet-as-key-${suffix}`, walletBundle),
    );
    const retried = await submit("importWallet", "ACTIVITY_TYPE_IMPORT_WALLET", walletParams(name, walletBundle));
    out.refusals.walletRetry = { addresses: retried.addresses };
  }
  // 6. An export that needs consensus: a non-root user asks, root approves, the user reads the
  //    bundle from the activity (as the SDK's pollers do) and opens it with its own target key.
  {
    const apiKey = generateP256KeyPair();
    const users = await submit("createUsers", "ACTIVITY_TYPE_CREATE_USERS_V4", {
      users: [
        {
          userName: `bundles-exporter-${suffix}`,
          apiKeys: [
            { apiKeyName: `bundles-exporter-${suffix}`, publicKey: apiKey.publicKey, curveType: "API_KEY_CURVE_P256" },
          ],
          authenticators: [],
          oauthProviders: [],
          userTags: [],
        },
      ],
    });
    const exporterId = users.userIds[0];
    const guarded = await submit("createWallet", "ACTIVITY_TYPE_CREATE_WALLET", {
      walletName: `bundles-guarded-${suffix}`,
      accounts: [ETHEREUM_ACCOUNT],
      mnemonicLength: 24,
    });
    await submit("createPolicy", "ACTIVITY_TYPE_CREATE_POLICY_V3", {
      policyName: `bundles: root approves exports of ${guarded.walletId}`,
      effect: "EFFECT_ALLOW",
      condition: `activity.resource == 'WALLET' && activity.action == 'EXPORT' && wallet.id == '${guarded.walletId}'`,
      consensus: `approvers.any(user, user.id == '${userId}')`,
      notes: "",
    });
    const exporter = new TurnkeyClient(
      { baseUrl: env("BASE_URL").replace(/\/+$/, "") },
      new ApiKeyStamper({ apiPublicKey: apiKey.publicKey, apiPrivateKey: apiKey.privateKey }),
    );
    const exporterTarget = generateP256KeyPair();
    const asked = await step("exportWallet (exporter)", () =>
      exporter.exportWallet({
        type: "ACTIVITY_TYPE_EXPORT_WALLET",
        timestampMs: String(Date.now()),
        organizationId,
        parameters: { walletId: guarded.walletId, targetPublicKey: exporterTarget.publicKeyUncompressed },
      }),
    );
    const waiting = asked.activity;
    const approval = await step("approveActivity", () =>
      client.approveActivity({
        type: "ACTIVITY_TYPE_APPROVE_ACTIVITY",
        timestampMs: String(Date.now()),
        organizationId,
        parameters: { fingerprint: waiting.fingerprint },
      }),
    );
    const polled = (
      await step("getActivity (exporter)", () => exporter.getActivity({ organizationId, activityId: waiting.id }))
    ).activity;
    const bundle = polled.result?.exportWalletResult?.exportBundle;
    out.consensus = {
      exporterId,
      walletAddresses: guarded.addresses,
      asked: { status: waiting.status, hasResult: Boolean(waiting.result?.exportWalletResult) },
      approval: { status: approval.activity?.status, type: approval.activity?.type },
      polled: { status: polled.status, walletId: polled.result?.exportWalletResult?.walletId },
      mnemonic: bundle
        ? await decrypt("approved export", bundle, exporterTarget.privateKey, { returnMnemonic: true })
        : null,
      // Only the asker's target opens it.
      othersKey: bundle
        ? await outcome(() =>
            decryptExportBundle({
              exportBundle: bundle,
              embeddedKey: embeddedKey,
              organizationId,
              dangerouslyOverrideSignerPublicKey: signerPublicKey,
              returnMnemonic: true,
            }),
          )
        : null,
    };
  }

  const keys = await step("getPrivateKeys", () => client.getPrivateKeys({ organizationId }));
  const wallets = await step("getWallets", () => client.getWallets({ organizationId }));
  const ours = (names) => names.filter((n) => n.endsWith(suffix)).sort();
  out.refusals.keyNames = ours(keys.privateKeys.map((k) => k.privateKeyName));
  out.refusals.walletNames = ours(wallets.wallets.map((w) => w.walletName));
  out.suffix = suffix;

  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
  process.stderr.write(`${err instanceof InteropFailure ? "" : "unexpected: "}${err?.stack ?? err}\n`);
  process.exit(1);
});
