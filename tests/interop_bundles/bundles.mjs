// Drives Turnkey's own @turnkey/crypto against Strongroom's bundles (see test_interop_bundles.py).
//
//   node bundles.mjs keygen   -> {"privateKey", "publicKeyUncompressed"}  (generateP256KeyPair)
//   node bundles.mjs run      <- one JSON job on stdin, -> one JSON line of results
//
// Each operation is reported as {"ok": value} or {"error": message}, so the Python side asserts
// both what must open and what must be refused.
import {
  decryptExportBundle,
  encryptPrivateKeyToBundle,
  encryptWalletToBundle,
  generateP256KeyPair,
} from "@turnkey/crypto";

async function outcome(fn) {
  try {
    return { ok: await fn() };
  } catch (error) {
    return { error: String(error && error.message ? error.message : error) };
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

async function run(job) {
  const decrypt = (bundle, extra) =>
    outcome(() =>
      decryptExportBundle({
        exportBundle: bundle,
        embeddedKey: job.embeddedKey,
        organizationId: job.organizationId,
        dangerouslyOverrideSignerPublicKey: job.signerPublicKey,
        ...extra,
      }),
    );
  const importArgs = {
    importBundle: job.importBundle,
    userId: job.userId,
    organizationId: job.organizationId,
    dangerouslyOverrideSignerPublicKey: job.signerPublicKey,
  };
  return {
    exportHex: await decrypt(job.exports.hex, { keyFormat: "HEXADECIMAL", returnMnemonic: false }),
    exportSolana: await decrypt(job.exports.solana, { keyFormat: "SOLANA", returnMnemonic: false }),
    exportMnemonic: await decrypt(job.exports.mnemonic, { returnMnemonic: true }),
    exportPinnedToProduction: await outcome(() =>
      decryptExportBundle({
        exportBundle: job.exports.hex,
        embeddedKey: job.embeddedKey,
        organizationId: job.organizationId,
        returnMnemonic: false,
      }),
    ),
    exportWrongOrganization: await outcome(() =>
      decryptExportBundle({
        exportBundle: job.exports.hex,
        embeddedKey: job.embeddedKey,
        organizationId: "another-organization",
        dangerouslyOverrideSignerPublicKey: job.signerPublicKey,
        returnMnemonic: false,
      }),
    ),
    importHex: await outcome(() =>
      encryptPrivateKeyToBundle({ privateKey: job.importKeys.hex, keyFormat: "HEXADECIMAL", ...importArgs }),
    ),
    importHex0x: await outcome(() =>
      encryptPrivateKeyToBundle({ privateKey: "0x" + job.importKeys.hex, keyFormat: "HEXADECIMAL", ...importArgs }),
    ),
    importSolana: await outcome(() =>
      encryptPrivateKeyToBundle({ privateKey: job.importKeys.solana, keyFormat: "SOLANA", ...importArgs }),
    ),
    importWallet: await outcome(() => encryptWalletToBundle({ mnemonic: job.importMnemonic, ...importArgs })),
    importWrongUser: await outcome(() =>
      encryptWalletToBundle({ mnemonic: job.importMnemonic, ...importArgs, userId: "another-user" }),
    ),
    importPinnedToProduction: await outcome(() =>
      encryptWalletToBundle({
        mnemonic: job.importMnemonic,
        importBundle: job.importBundle,
        userId: job.userId,
        organizationId: job.organizationId,
      }),
    ),
  };
}

const command = process.argv[2];
if (command === "keygen") {
  const { privateKey, publicKeyUncompressed } = generateP256KeyPair();
  process.stdout.write(JSON.stringify({ privateKey, publicKeyUncompressed }) + "\n");
} else if (command === "run") {
  process.stdout.write(JSON.stringify(await run(await readStdin())) + "\n");
} else {
  process.stderr.write(`usage: node bundles.mjs keygen|run\n`);
  process.exit(2);
}
