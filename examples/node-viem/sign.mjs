// Sign a message and an EIP-1559 transaction with @turnkey/viem through Strongroom; verify with viem.
import { readFileSync } from "node:fs";
import { TurnkeyClient } from "@turnkey/http";
import { ApiKeyStamper } from "@turnkey/api-key-stamper";
import { createAccount } from "@turnkey/viem";
import { parseEther, parseGwei, recoverTransactionAddress, verifyMessage } from "viem";

const baseUrl = process.env.STRONGROOM_URL ?? "http://127.0.0.1:8080";
const organizationId = process.env.STRONGROOM_ORGANIZATION_ID;
const keyPrefix = process.env.STRONGROOM_API_KEY;
if (!organizationId || !keyPrefix) {
  console.error("set STRONGROOM_ORGANIZATION_ID and STRONGROOM_API_KEY");
  process.exit(2);
}
const stamper = new ApiKeyStamper({
  apiPublicKey: readFileSync(`${keyPrefix}.public`, "utf8").trim(),
  apiPrivateKey: readFileSync(`${keyPrefix}.private`, "utf8").trim(),
});
const client = new TurnkeyClient({ baseUrl }, stamper);

const created = await client.createPrivateKeys({
  type: "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2",
  timestampMs: String(Date.now()),
  organizationId,
  parameters: {
    privateKeys: [
      {
        privateKeyName: `viem-example-${Date.now()}`,
        curve: "CURVE_SECP256K1",
        privateKeyTags: [],
        addressFormats: ["ADDRESS_FORMAT_ETHEREUM"],
      },
    ],
  },
});
const privateKeyId = created.activity.result.createPrivateKeysResultV2.privateKeys[0].privateKeyId;
const account = await createAccount({ client, organizationId, signWith: privateKeyId });

const message = "hello from Strongroom";
const signature = await account.signMessage({ message });
const messageOk = await verifyMessage({ address: account.address, message, signature });

const signedTx = await account.signTransaction({
  type: "eip1559",
  chainId: 11155111,
  nonce: 0,
  to: "0x000000000000000000000000000000000000dEaD",
  value: parseEther("0.001"),
  gas: 21000n,
  maxFeePerGas: parseGwei("30"),
  maxPriorityFeePerGas: parseGwei("1"),
});
const sender = await recoverTransactionAddress({ serializedTransaction: signedTx });

console.log(JSON.stringify({ address: account.address, signature, messageOk, signedTx, sender }));
if (!messageOk || sender !== account.address) {
  console.error("FAIL: viem does not verify what Strongroom signed");
  process.exit(1);
}
