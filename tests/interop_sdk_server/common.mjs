// Helpers shared by the scripts of this directory (sdk_server.mjs, sdk_server_wallets.mjs).

import { generateKeyPairSync } from "node:crypto";
import process from "node:process";

import { Turnkey } from "@turnkey/sdk-server";

export class InteropFailure extends Error {}

export function env(name) {
  const value = process.env[name];
  if (!value) throw new InteropFailure(`environment variable ${name} is required`);
  return value;
}

/** Runs one SDK call; any rejection becomes a failure naming the step. */
export async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InteropFailure) throw err;
    const code = err && typeof err === "object" && "code" in err ? ` (code ${err.code})` : "";
    throw new InteropFailure(`${name} failed: ${err?.name ?? "Error"}${code}: ${err?.message ?? err}`);
  }
}

/** Runs one SDK call that must be refused: what it threw, or `{refused: false}`. */
export async function refusal(fn) {
  try {
    await fn();
    return { refused: false };
  } catch (err) {
    return { refused: true, name: err?.name, code: err?.code, message: err?.message };
  }
}

/** A fresh P-256 API key in Turnkey's encoding: 64-hex private scalar, 66-hex compressed public key. */
export function p256KeyPair() {
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const jwk = privateKey.export({ format: "jwk" });
  const d = Buffer.from(jwk.d, "base64url").toString("hex").padStart(64, "0");
  const x = Buffer.from(jwk.x, "base64url").toString("hex").padStart(64, "0");
  const y = Buffer.from(jwk.y, "base64url");
  const prefix = y[y.length - 1] & 1 ? "03" : "02";
  return { privateKey: d, publicKey: prefix + x };
}

/** The SDK's API client (`TurnkeySDKServerClient`) for one API key on one organization. */
export function client(publicKey, privateKey, organizationId) {
  return new Turnkey({
    apiBaseUrl: env("BASE_URL"),
    apiPublicKey: publicKey,
    apiPrivateKey: privateKey,
    defaultOrganizationId: organizationId,
    activityPoller: { intervalMs: 200, numRetries: 2 },
  }).apiClient();
}

/** Prints the one JSON line the Python test reads, or the failure on stderr with exit 1. */
export function run(main) {
  main()
    .then((out) => process.stdout.write(`${JSON.stringify(out)}\n`))
    .catch((err) => {
      process.stderr.write(`${err instanceof InteropFailure ? err.message : err?.stack ?? err}\n`);
      process.exit(1);
    });
}
