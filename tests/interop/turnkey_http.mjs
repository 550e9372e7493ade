// Drives a running Strongroom daemon with Turnkey's official JS client (@turnkey/http + @turnkey/api-key-stamper).
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY (66-hex compressed P-256), API_PRIVATE_KEY (64-hex scalar).
// Prints ONE JSON object on stdout with everything needed to verify the results independently
// (tests/interop/test_turnkey_http.py does that in Python). Exits non-zero, with the reason on
// stderr, on any unexpected failure. Only the two pinned packages and Node built-ins are used.

import { createHash, randomBytes, randomUUID } from "node:crypto";
import process from "node:process";

import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import { TurnkeyClient, TurnkeyRequestError, VERSION } from "@turnkey/http";

class InteropFailure extends Error {}

function fail(message, extra) {
  const detail = extra === undefined ? "" : `\n${JSON.stringify(extra, null, 2)}`;
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

let baseUrl, organizationId, client; // set by main() from the environment

/** Runs one SDK call; any rejection becomes a failure naming the step. */
async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof InteropFailure) throw err;
    const code = err && typeof err === "object" && "code" in err ? ` (code ${err.code})` : "";
    throw new InteropFailure(`${name} failed: ${err?.name ?? "Error"}${code}: ${err?.message ?? err}`);
  }
}

function envelope(type, parameters) {
  return { type, timestampMs: String(Date.now()), organizationId, parameters };
}

function assertCompleted(what, activity, expectedType) {
  check(activity && typeof activity === "object", `${what}: response has no activity object`, activity);
  check(
    activity.status === "ACTIVITY_STATUS_COMPLETED",
    `${what}: expected ACTIVITY_STATUS_COMPLETED in the submit response itself, got ${activity.status}`,
    activity,
  );
  check(activity.type === expectedType, `${what}: expected type ${expectedType}, got ${activity.type}`, activity);
  check(activity.organizationId === organizationId, `${what}: activity belongs to another organization`, activity);
  check(typeof activity.id === "string" && activity.id.length > 0, `${what}: activity has no id`, activity);
}

function assertSignatureShape(what, sig) {
  check(sig && typeof sig === "object", `${what}: no signature object`, sig);
  for (const [field, len] of [
    ["r", 64],
    ["s", 64],
    ["v", 2],
  ]) {
    check(
      typeof sig[field] === "string" && sig[field].length === len && /^[0-9a-f]+$/.test(sig[field]),
      `${what}: signature field ${field} must be ${len} lowercase hex chars without 0x`,
      sig,
    );
  }
}

async function main() {
  baseUrl = env("BASE_URL").replace(/\/+$/, "");
  organizationId = env("ORGANIZATION_ID");
  const apiPublicKey = env("API_PUBLIC_KEY");
  const apiPrivateKey = env("API_PRIVATE_KEY");
  client = new TurnkeyClient({ baseUrl }, new ApiKeyStamper({ apiPublicKey, apiPrivateKey }));

  const out = { clientVersion: VERSION, baseUrl, organizationId, signatures: [] };
  const suffix = randomUUID().slice(0, 8);

  // -- whoami ------------------------------------------------------------------------------------
  out.whoami = await step("getWhoami", () => client.getWhoami({ organizationId }));

  // -- create one secp256k1 and one ed25519 key ---------------------------------------------------
  const names = { secp256k1: `interop-secp256k1-${suffix}`, ed25519: `interop-ed25519-${suffix}` };
  const createResponse = await step("createPrivateKeys", () =>
    client.createPrivateKeys(
      envelope("ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2", {
        privateKeys: [
          {
            privateKeyName: names.secp256k1,
            curve: "CURVE_SECP256K1",
            privateKeyTags: [],
            addressFormats: ["ADDRESS_FORMAT_ETHEREUM"],
          },
          {
            privateKeyName: names.ed25519,
            curve: "CURVE_ED25519",
            privateKeyTags: [],
            addressFormats: ["ADDRESS_FORMAT_SOLANA"],
          },
        ],
      }),
    ),
  );
  const createActivity = createResponse.activity;
  assertCompleted("createPrivateKeys", createActivity, "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2");
  const created = createActivity.result?.createPrivateKeysResultV2?.privateKeys;
  check(Array.isArray(created) && created.length === 2, "createPrivateKeys: expected 2 created keys", createActivity);
  out.createActivityId = createActivity.id;

  const keys = {};
  for (const [i, [label, format]] of [
    ["secp256k1", "ADDRESS_FORMAT_ETHEREUM"],
    ["ed25519", "ADDRESS_FORMAT_SOLANA"],
  ].entries()) {
    const item = created[i];
    const createdAddress = item.addresses?.find((a) => a.format === format)?.address;
    check(typeof createdAddress === "string", `createPrivateKeys: no ${format} address for the ${label} key`, item);
    const got = await step(`getPrivateKey(${label})`, () =>
      client.getPrivateKey({ organizationId, privateKeyId: item.privateKeyId }),
    );
    const pk = got.privateKey;
    check(pk?.privateKeyId === item.privateKeyId, `getPrivateKey(${label}): wrong privateKeyId`, got);
    check(pk.privateKeyName === names[label], `getPrivateKey(${label}): wrong privateKeyName`, got);
    const queriedAddress = pk.addresses?.find((a) => a.format === format)?.address;
    check(
      queriedAddress === createdAddress,
      `getPrivateKey(${label}): address differs from the one returned at creation`,
      { createdAddress, got },
    );
    keys[label] = {
      privateKeyId: item.privateKeyId,
      name: names[label],
      address: createdAddress,
      createdAddresses: item.addresses,
      privateKey: pk,
    };
  }
  out.keys = keys;

  // -- sign_raw_payload (V2) ---------------------------------------------------------------------
  const digest = createHash("sha256").update(randomBytes(64)).digest("hex");
  const solanaMessage = randomBytes(150).toString("hex"); // like a serialized Solana message, hex without 0x
  const cases = [
    {
      label: "secp256k1 keccak256 utf8 via address",
      key: "secp256k1",
      by: "address",
      payload: `hello from Strongroom interop ✓ ${suffix}`,
      encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
      hashFunction: "HASH_FUNCTION_KECCAK256",
    },
    {
      label: "secp256k1 keccak256 utf8 via key id",
      key: "secp256k1",
      by: "privateKeyId",
      payload: "ünïcødé payload — keccak",
      encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
      hashFunction: "HASH_FUNCTION_KECCAK256",
    },
    {
      label: "secp256k1 sha256 hex via key id",
      key: "secp256k1",
      by: "privateKeyId",
      payload: randomBytes(48).toString("hex"),
      encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
      hashFunction: "HASH_FUNCTION_SHA256",
    },
    {
      label: "secp256k1 sha256 hex via address",
      key: "secp256k1",
      by: "address",
      payload: `0x${randomBytes(20).toString("hex")}`,
      encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
      hashFunction: "HASH_FUNCTION_SHA256",
    },
    {
      label: "secp256k1 no-op 0x digest via address (viem style)",
      key: "secp256k1",
      by: "address",
      payload: `0x${digest}`,
      encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
      hashFunction: "HASH_FUNCTION_NO_OP",
    },
    {
      label: "secp256k1 no-op 0x digest via key id",
      key: "secp256k1",
      by: "privateKeyId",
      payload: `0x${createHash("sha256").update(randomBytes(16)).digest("hex")}`,
      encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
      hashFunction: "HASH_FUNCTION_NO_OP",
    },
    {
      label: "ed25519 hex without 0x via address (solana style)",
      key: "ed25519",
      by: "address",
      payload: solanaMessage,
      encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
      hashFunction: "HASH_FUNCTION_NOT_APPLICABLE",
    },
    {
      label: "ed25519 utf8 via address",
      key: "ed25519",
      by: "address",
      payload: `solana says hi ✓ ${suffix}`,
      encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
      hashFunction: "HASH_FUNCTION_NOT_APPLICABLE",
    },
  ];
  for (const c of cases) {
    const key = keys[c.key];
    const signWith = c.by === "address" ? key.address : key.privateKeyId;
    const res = await step(`signRawPayload(${c.label})`, () =>
      client.signRawPayload(
        envelope("ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", {
          signWith,
          payload: c.payload,
          encoding: c.encoding,
          hashFunction: c.hashFunction,
        }),
      ),
    );
    assertCompleted(`signRawPayload(${c.label})`, res.activity, "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2");
    const sig = res.activity.result?.signRawPayloadResult;
    assertSignatureShape(`signRawPayload(${c.label})`, sig);
    out.signatures.push({
      label: c.label,
      activityId: res.activity.id,
      activityType: res.activity.type,
      status: res.activity.status,
      curve: c.key,
      signWith,
      signWithKind: c.by,
      payload: c.payload,
      encoding: c.encoding,
      hashFunction: c.hashFunction,
      r: sig.r,
      s: sig.s,
      v: sig.v,
    });
  }

  // -- sign_raw_payloads (batch of 3) ------------------------------------------------------------
  const batches = [
    {
      label: "secp256k1 batch keccak256 utf8",
      key: "secp256k1",
      by: "address",
      payloads: ["first", "second ✓", `third ${suffix}`],
      encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
      hashFunction: "HASH_FUNCTION_KECCAK256",
    },
    {
      label: "ed25519 batch hex",
      key: "ed25519",
      by: "address",
      payloads: [randomBytes(10).toString("hex"), randomBytes(32).toString("hex"), randomBytes(200).toString("hex")],
      encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
      hashFunction: "HASH_FUNCTION_NOT_APPLICABLE",
    },
  ];
  out.batchActivityIds = [];
  for (const b of batches) {
    const key = keys[b.key];
    const signWith = b.by === "address" ? key.address : key.privateKeyId;
    const res = await step(`signRawPayloads(${b.label})`, () =>
      client.signRawPayloads(
        envelope("ACTIVITY_TYPE_SIGN_RAW_PAYLOADS", {
          signWith,
          payloads: b.payloads,
          encoding: b.encoding,
          hashFunction: b.hashFunction,
        }),
      ),
    );
    assertCompleted(`signRawPayloads(${b.label})`, res.activity, "ACTIVITY_TYPE_SIGN_RAW_PAYLOADS");
    const sigs = res.activity.result?.signRawPayloadsResult?.signatures;
    check(
      Array.isArray(sigs) && sigs.length === b.payloads.length,
      `signRawPayloads(${b.label}): expected ${b.payloads.length} signatures`,
      res.activity,
    );
    out.batchActivityIds.push(res.activity.id);
    b.payloads.forEach((payload, i) => {
      assertSignatureShape(`signRawPayloads(${b.label})[${i}]`, sigs[i]);
      out.signatures.push({
        label: `${b.label} [${i}]`,
        activityId: res.activity.id,
        activityType: res.activity.type,
        status: res.activity.status,
        curve: b.key,
        signWith,
        signWithKind: b.by,
        payload,
        encoding: b.encoding,
        hashFunction: b.hashFunction,
        r: sigs[i].r,
        s: sigs[i].s,
        v: sigs[i].v,
      });
    });
  }

  // -- error: secp256k1 with HASH_FUNCTION_NOT_APPLICABLE must be refused ----------------------
  try {
    const res = await client.signRawPayload(
      envelope("ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", {
        signWith: keys.secp256k1.address,
        payload: "must not be signed",
        encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
        hashFunction: "HASH_FUNCTION_NOT_APPLICABLE",
      }),
    );
    fail("signRawPayload(secp256k1, HASH_FUNCTION_NOT_APPLICABLE) unexpectedly succeeded", res);
  } catch (err) {
    if (err instanceof InteropFailure) throw err;
    check(
      err instanceof TurnkeyRequestError,
      `expected a TurnkeyRequestError for secp256k1 + NOT_APPLICABLE, got ${err?.name}: ${err?.message}`,
    );
    out.error = { name: err.name, code: err.code, message: err.message, details: err.details };
  }

  // -- idempotency: the exact same envelope object twice ---------------------------------------
  const same = envelope("ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2", {
    signWith: keys.secp256k1.privateKeyId,
    payload: `idempotent ${suffix}`,
    encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
    hashFunction: "HASH_FUNCTION_KECCAK256",
  });
  const first = await step("signRawPayload(idempotent #1)", () => client.signRawPayload(same));
  const second = await step("signRawPayload(idempotent #2)", () => client.signRawPayload(same));
  assertCompleted("signRawPayload(idempotent #1)", first.activity, "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2");
  assertCompleted("signRawPayload(idempotent #2)", second.activity, "ACTIVITY_TYPE_SIGN_RAW_PAYLOAD_V2");
  check(
    first.activity.id === second.activity.id,
    "idempotency: resubmitting the same envelope created a second activity",
    { first: first.activity.id, second: second.activity.id },
  );
  const idemSig = first.activity.result.signRawPayloadResult;
  assertSignatureShape("signRawPayload(idempotent)", idemSig);
  out.idempotency = {
    timestampMs: same.timestampMs,
    firstActivityId: first.activity.id,
    secondActivityId: second.activity.id,
    firstFingerprint: first.activity.fingerprint,
    secondFingerprint: second.activity.fingerprint,
    firstResult: first.activity.result.signRawPayloadResult,
    secondResult: second.activity.result?.signRawPayloadResult,
  };
  out.signatures.push({
    label: "idempotent secp256k1 keccak256 utf8 via key id",
    activityId: first.activity.id,
    activityType: first.activity.type,
    status: first.activity.status,
    curve: "secp256k1",
    signWith: same.parameters.signWith,
    signWithKind: "privateKeyId",
    payload: same.parameters.payload,
    encoding: same.parameters.encoding,
    hashFunction: same.parameters.hashFunction,
    r: idemSig.r,
    s: idemSig.s,
    v: idemSig.v,
  });

  // -- get_activity on a signing activity ------------------------------------------------------
  const probe = out.signatures[0];
  const got = await step("getActivity", () => client.getActivity({ organizationId, activityId: probe.activityId }));
  check(got.activity?.id === probe.activityId, "getActivity: wrong activity returned", got);
  check(got.activity.status === "ACTIVITY_STATUS_COMPLETED", "getActivity: activity is not COMPLETED", got);
  const gotSig = got.activity.result?.signRawPayloadResult;
  check(
    gotSig && gotSig.r === probe.r && gotSig.s === probe.s && gotSig.v === probe.v,
    "getActivity: stored result differs from the submit response",
    { probe, got },
  );
  out.getActivity = {
    id: got.activity.id,
    type: got.activity.type,
    status: got.activity.status,
    fingerprint: got.activity.fingerprint,
    intent: got.activity.intent,
    result: got.activity.result,
    createdAt: got.activity.createdAt,
  };

  // -- list_activities -------------------------------------------------------------------------
  const listed = await step("getActivities", () =>
    client.getActivities({ organizationId, paginationOptions: { limit: "100" } }),
  );
  check(Array.isArray(listed.activities), "getActivities: no activities array", listed);
  const listedIds = listed.activities.map((a) => a.id);
  const ours = [out.createActivityId, ...new Set(out.signatures.map((s) => s.activityId))];
  const missing = ours.filter((id) => !listedIds.includes(id));
  check(missing.length === 0, "getActivities: activities created by this run are missing", { missing, listedIds });
  out.activities = {
    count: listed.activities.length,
    ids: listedIds,
    entries: listed.activities.map((a) => ({ id: a.id, type: a.type, status: a.status })),
  };
  const defaultPage = await step("getActivities(default page)", () => client.getActivities({ organizationId }));
  check(Array.isArray(defaultPage.activities), "getActivities(default page): no activities array", defaultPage);
  out.activities.defaultPageCount = defaultPage.activities.length;

  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err) => {
  process.stderr.write(`turnkey_http.mjs: ${err instanceof InteropFailure ? "" : "unexpected error: "}`);
  process.stderr.write(`${err?.stack && !(err instanceof InteropFailure) ? err.stack : err?.message ?? err}\n`);
  process.exit(1);
});
