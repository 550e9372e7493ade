// HD wallets through Turnkey's official server SDK (@turnkey/sdk-server 8.2.1), as its users write it.
//
// Env: BASE_URL, ORGANIZATION_ID, API_PUBLIC_KEY (66-hex compressed P-256), API_PRIVATE_KEY (64-hex).
// 1. With the parent organization's key: create a sub-organization whose root user holds a fresh
//    P-256 API key, WITH a wallet made of the SDK's DEFAULT_ETHEREUM_ACCOUNTS and
//    DEFAULT_SOLANA_ACCOUNTS (the usual end-user onboarding).
// 2. With the end user's key, inside the sub-organization: sign with both wallet accounts by
//    address (signRawPayload), read the wallet back (getWallets, getWallet, getWalletAccounts,
//    getWalletAccount), create a second wallet (createWallet, 24 words) and more accounts in it
//    (createWalletAccounts, the SDK's ...AccountAtIndex(1) helpers), and sign with those.
// 3. With the parent's key: read the sub-organization's wallets, and try to sign with its wallet
//    account, which must be refused.
// Prints ONE JSON object on stdout; tests/interop_sdk_server/test_sdk_server_wallets.py verifies
// it (every signature with independent code). Exits non-zero, with the reason on stderr, on failure.

import { randomUUID } from "node:crypto";

import {
  DEFAULT_ETHEREUM_ACCOUNTS,
  DEFAULT_SOLANA_ACCOUNTS,
  defaultEthereumAccountAtIndex,
  defaultSolanaAccountAtIndex,
} from "@turnkey/sdk-server";

import { InteropFailure, client, env, p256KeyPair, refusal, run, step } from "./common.mjs";

/** What the Python side needs of a signRawPayload response. */
function signature(response, signWith, payload, encoding, hashFunction) {
  const a = response.activity;
  return {
    signWith,
    payload,
    encoding,
    hashFunction,
    r: response.r,
    s: response.s,
    v: response.v,
    activity: { type: a?.type, status: a?.status, organizationId: a?.organizationId },
  };
}

async function main() {
  const parentOrg = env("ORGANIZATION_ID");
  const parent = client(env("API_PUBLIC_KEY"), env("API_PRIVATE_KEY"), parentOrg);
  const endUser = p256KeyPair();
  const tag = randomUUID().slice(0, 8);
  const defaultAccounts = [...DEFAULT_ETHEREUM_ACCOUNTS, ...DEFAULT_SOLANA_ACCOUNTS];

  // -- 1. the sub-organization, born with a wallet -------------------------------------------------
  const created = await step("createSubOrganization with a wallet", () =>
    parent.createSubOrganization({
      subOrganizationName: `sdk-server wallet user ${tag}`,
      rootUsers: [
        {
          userName: `wallet user ${tag}`,
          userEmail: `wallet-user-${tag}@example.com`,
          apiKeys: [{ apiKeyName: "wallet user key", publicKey: endUser.publicKey, curveType: "API_KEY_CURVE_P256" }],
          authenticators: [],
          oauthProviders: [],
        },
      ],
      rootQuorumThreshold: 1,
      wallet: { walletName: "Default wallet", accounts: defaultAccounts },
    }),
  );
  const subOrg = created.subOrganizationId;
  const wallet = created.wallet;
  if (!subOrg || !wallet?.walletId || wallet.addresses?.length !== defaultAccounts.length) {
    throw new InteropFailure(`createSubOrganization: no sub-organization or wallet: ${JSON.stringify(created)}`);
  }
  const [ethAddress, solAddress] = wallet.addresses;

  // -- 2. the end user, inside the sub-organization -----------------------------------------------
  const sub = client(endUser.publicKey, endUser.privateKey, subOrg);
  const signatures = {};
  const ethPayload = `signed by a wallet account ${tag}`;
  signatures.eth = signature(
    await step("signRawPayload (Ethereum wallet account)", () =>
      sub.signRawPayload({
        signWith: ethAddress,
        payload: ethPayload,
        encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
        hashFunction: "HASH_FUNCTION_KECCAK256",
      }),
    ),
    ethAddress,
    ethPayload,
    "PAYLOAD_ENCODING_TEXT_UTF8",
    "HASH_FUNCTION_KECCAK256",
  );
  // Solana signs the message bytes themselves (what @turnkey/solana sends: hex, no hashing)
  const solPayload = Buffer.from(`solana message ${tag}`).toString("hex");
  signatures.sol = signature(
    await step("signRawPayload (Solana wallet account)", () =>
      sub.signRawPayload({
        signWith: solAddress,
        payload: solPayload,
        encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
        hashFunction: "HASH_FUNCTION_NOT_APPLICABLE",
      }),
    ),
    solAddress,
    solPayload,
    "PAYLOAD_ENCODING_HEXADECIMAL",
    "HASH_FUNCTION_NOT_APPLICABLE",
  );

  const walletsBefore = await step("getWallets (end user)", () => sub.getWallets());
  const gotWallet = await step("getWallet (end user)", () => sub.getWallet({ walletId: wallet.walletId }));
  const accounts = await step("getWalletAccounts (end user)", () => sub.getWalletAccounts({ walletId: wallet.walletId }));
  const solAccount = await step("getWalletAccount by address (end user)", () =>
    sub.getWalletAccount({ walletId: wallet.walletId, address: solAddress }),
  );

  // a second wallet, then more accounts in it
  const second = await step("createWallet (end user)", () =>
    sub.createWallet({
      walletName: `savings ${tag}`,
      accounts: DEFAULT_ETHEREUM_ACCOUNTS,
      mnemonicLength: 24,
    }),
  );
  const moreAccounts = [defaultEthereumAccountAtIndex(1), defaultSolanaAccountAtIndex(1)];
  const added = await step("createWalletAccounts (end user)", () =>
    sub.createWalletAccounts({ walletId: second.walletId, accounts: moreAccounts }),
  );
  const [eth1, sol1] = added.addresses ?? [];
  const eth1Payload = `second wallet, account 1 ${tag}`;
  signatures.eth1 = signature(
    await step("signRawPayload (second wallet, Ethereum account 1)", () =>
      sub.signRawPayload({
        signWith: eth1,
        payload: eth1Payload,
        encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
        hashFunction: "HASH_FUNCTION_KECCAK256",
      }),
    ),
    eth1,
    eth1Payload,
    "PAYLOAD_ENCODING_TEXT_UTF8",
    "HASH_FUNCTION_KECCAK256",
  );
  const sol1Payload = Buffer.from(`second wallet, solana account 1 ${tag}`).toString("hex");
  signatures.sol1 = signature(
    await step("signRawPayload (second wallet, Solana account 1)", () =>
      sub.signRawPayload({
        signWith: sol1,
        payload: sol1Payload,
        encoding: "PAYLOAD_ENCODING_HEXADECIMAL",
        hashFunction: "HASH_FUNCTION_NOT_APPLICABLE",
      }),
    ),
    sol1,
    sol1Payload,
    "PAYLOAD_ENCODING_HEXADECIMAL",
    "HASH_FUNCTION_NOT_APPLICABLE",
  );
  const walletsAfter = await step("getWallets again (end user)", () => sub.getWallets());
  const secondAccounts = await step("getWalletAccounts of the second wallet (end user)", () =>
    sub.getWalletAccounts({ walletId: second.walletId }),
  );

  // -- 3. the parent reads the sub-organization's wallets, but cannot sign with them ---------------
  const parentWallets = await step("getWallets (parent on sub-org)", () => parent.getWallets({ organizationId: subOrg }));
  const parentSign = await refusal(() =>
    parent.signRawPayload({
      organizationId: subOrg,
      signWith: ethAddress,
      payload: ethPayload,
      encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
      hashFunction: "HASH_FUNCTION_KECCAK256",
    }),
  );
  // ... nor with the sub-organization's account from its own organization
  const parentSignOwnOrg = await refusal(() =>
    parent.signRawPayload({
      signWith: ethAddress,
      payload: ethPayload,
      encoding: "PAYLOAD_ENCODING_TEXT_UTF8",
      hashFunction: "HASH_FUNCTION_KECCAK256",
    }),
  );

  return {
    subOrganizationId: subOrg,
    rootUserIds: created.rootUserIds,
    createdActivity: { type: created.activity?.type, status: created.activity?.status },
    defaultAccounts,
    moreAccounts,
    wallet,
    signatures,
    walletsBefore: walletsBefore.wallets,
    gotWallet: gotWallet.wallet,
    accounts: accounts.accounts,
    solAccount: solAccount.account,
    second: {
      walletId: second.walletId,
      addresses: second.addresses,
      activity: { type: second.activity?.type, status: second.activity?.status },
    },
    added: {
      addresses: added.addresses,
      activity: { type: added.activity?.type, status: added.activity?.status },
    },
    walletsAfter: walletsAfter.wallets,
    secondAccounts: secondAccounts.accounts,
    parentWallets: parentWallets.wallets,
    parentSign,
    parentSignOwnOrg,
  };
}

run(main);
