// Build a SOL transfer with @solana/web3.js and sign it through @turnkey/solana against Strongroom,
// with the Solana account of a new HD wallet; verify the signature with web3.js.
import { readFileSync } from "node:fs";
import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import { TurnkeyClient } from "@turnkey/http";
import { TurnkeySigner } from "@turnkey/solana";
import { PublicKey, SystemProgram, Transaction } from "@solana/web3.js";

const baseUrl = process.env.STRONGROOM_URL ?? "http://127.0.0.1:8080";
const organizationId = process.env.STRONGROOM_ORGANIZATION_ID;
const keyPrefix = process.env.STRONGROOM_API_KEY;
if (!organizationId || !keyPrefix) {
  console.error("set STRONGROOM_ORGANIZATION_ID and STRONGROOM_API_KEY");
  process.exit(2);
}
const client = new TurnkeyClient(
  { baseUrl },
  new ApiKeyStamper({
    apiPublicKey: readFileSync(`${keyPrefix}.public`, "utf8").trim(),
    apiPrivateKey: readFileSync(`${keyPrefix}.private`, "utf8").trim(),
  }),
);

// A wallet with Turnkey's default Solana account (m/44'/501'/0'/0').
const created = await client.createWallet({
  type: "ACTIVITY_TYPE_CREATE_WALLET",
  timestampMs: String(Date.now()),
  organizationId,
  parameters: {
    walletName: `solana-example-${Date.now()}`,
    accounts: [
      { curve: "CURVE_ED25519", pathFormat: "PATH_FORMAT_BIP32", path: "m/44'/501'/0'/0'", addressFormat: "ADDRESS_FORMAT_SOLANA" },
    ],
  },
});
const address = created.activity.result.createWalletResult.addresses[0];
const from = new PublicKey(address);

const tx = new Transaction({
  feePayer: from,
  recentBlockhash: "EETubP5AKHgjPAhzPAFcb8BAY1hMH639CWCFTqi3hq1k", // any 32-byte hash: nothing is broadcast
}).add(SystemProgram.transfer({ fromPubkey: from, toPubkey: new PublicKey("11111111111111111111111111111112"), lamports: 1_000 }));

const signer = new TurnkeySigner({ organizationId, client });
const signed = await signer.signTransaction(tx, address); // SIGN_TRANSACTION_V2, TRANSACTION_TYPE_SOLANA
const verified = signed.verifySignatures();

console.log(JSON.stringify({ address, signature: signed.signature?.toString("hex"), verified }));
if (!verified) {
  console.error("FAIL: @solana/web3.js does not verify what Strongroom signed");
  process.exit(1);
}
