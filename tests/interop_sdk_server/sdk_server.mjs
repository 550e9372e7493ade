// Drives a running Strongroom daemon with Turnkey's official server SDK (@turnkey/sdk-server 8.2.1).
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY (66-hex compressed P-256), API_PRIVATE_KEY (64-hex).
// 1. With the parent organization's key: create a sub-organization whose root user holds a fresh
//    P-256 API key generated here.
// 2. With a second client built on that key (defaultOrganizationId = the sub-organization): act
//    inside it — whoami, create a private key, sign a raw payload.
// 3. With the parent's key again: read the sub-organization (whoami, users, private keys), and
//    try to sign in it, which must be refused.
// Prints ONE JSON object on stdout; tests/interop_sdk_server/test_sdk_server.py verifies it
// (the signature with independent code). Exits non-zero, with the reason on stderr, on failure.

import { randomUUID } from "node:crypto";

import { InteropFailure, client, env, p256KeyPair, run, step } from "./common.mjs";

async function main() {
  const parentOrg = env("ORGANIZATION_ID");
  const parent = client(env("API_PUBLIC_KEY"), env("API_PRIVATE_KEY"), parentOrg);
  const endUser = p256KeyPair();
  const tag = randomUUID().slice(0, 8);

  const created = await step("createSubOrganization", () =>
    parent.createSubOrganization({
      subOrganizationName: `sdk-server end user ${tag}`,
      rootUsers: [
        {
          userName: `end user ${tag}`,
          userEmail: `end-user-${tag}@example.com`,
          apiKeys: [{ apiKeyName: "end user key", publicKey: endUser.publicKey, curveType: "API_KEY_CURVE_P256" }],
          authenticators: [],
          oauthProviders: [],
        },
      ],
      rootQuorumThreshold: 1,
    }),
  );
  const subOrg = created.subOrganizationId;
  if (!subOrg) throw new InteropFailure(`createSubOrganization returned no subOrganizationId: ${JSON.stringify(created)}`);

  // The end user's own client, on the sub-organization.
  const sub = client(endUser.publicKey, endUser.privateKey, subOrg);
  const subWhoami = await step("getWhoami (end user)", () => sub.getWhoami({}));
  const keys = await step("createPrivateKeys (end user)", () =>
    sub.createPrivateKeys({
      privateKeys: [
        {
          privateKeyName: `end user key ${tag}`,
          curve: "CURVE_SECP256K1",
          privateKeyTags: [],
          addressFormats: ["ADDRESS_FORMAT_ETHEREUM"],
        },
      ],
    }),
  );
  const privateKeyId = keys.privateKeys[0].privateKeyId;
  const payload = `signed inside sub-organization ${tag}`;
  const signature = await step("signRawPayload (end user)", () =>
    sub.signRawPayload({
      signWith: privateKeyId,
      payload,
      encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
      hashFunction: "HASH_FUNCTION_KECCAK256",
    }),
  );
  const privateKey = await step("getPrivateKey (end user)", () => sub.getPrivateKey({ privateKeyId }));

  // The parent reads the sub-organization ...
  const parentWhoami = await step("getWhoami (parent on sub-org)", () => parent.getWhoami({ organizationId: subOrg }));
  const parentUsers = await step("getUsers (parent on sub-org)", () => parent.getUsers({ organizationId: subOrg }));
  const parentKeys = await step("getPrivateKeys (parent on sub-org)", () =>
    parent.getPrivateKeys({ organizationId: subOrg }),
  );
  const subOrgIds = await step("getSubOrgIds (parent)", () => parent.getSubOrgIds({ paginationOptions: { limit: "100" } }));
  // ... but cannot sign in it.
  let parentSign;
  try {
    await parent.signRawPayload({
      organizationId: subOrg,
      signWith: privateKeyId,
      payload,
      encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
      hashFunction: "HASH_FUNCTION_KECCAK256",
    });
    parentSign = { refused: false };
  } catch (err) {
    parentSign = { refused: true, name: err?.name, code: err?.code, message: err?.message };
  }
  // ... and the end user cannot see the parent.
  let endUserOnParent;
  try {
    await sub.getUsers({ organizationId: parentOrg });
    endUserOnParent = { refused: false };
  } catch (err) {
    endUserOnParent = { refused: true, code: err?.code, message: err?.message };
  }

  const out = {
    subOrganizationId: subOrg,
    rootUserIds: created.rootUserIds,
    createdActivity: { type: created.activity?.type, status: created.activity?.status },
    endUserPublicKey: endUser.publicKey,
    subWhoami,
    privateKey: privateKey.privateKey,
    signature: { r: signature.r, s: signature.s, v: signature.v, payload },
    signActivity: { status: signature.activity?.status, organizationId: signature.activity?.organizationId },
    parentWhoami,
    parentUsers: parentUsers.users.map((u) => ({ userId: u.userId, apiKeys: u.apiKeys.map((k) => k.credential) })),
    parentPrivateKeyIds: parentKeys.privateKeys.map((k) => k.privateKeyId),
    subOrgIds: subOrgIds.organizationIds,
    parentSign,
    endUserOnParent,
  };
  return out;
}

run(main);
