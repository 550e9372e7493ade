// Writes tests/vectors/solana_web3.json: Solana transactions built and signed by @solana/web3.js
// (pinned in package.json) with fixed keys, each with its unsigned and signed serialisation, its
// message, and the message as web3.js decodes it. tests/unit/test_solana_wire.py parses them.
// Regenerate: (cd tests/interop_solana && npm ci && node make_vectors.mjs)

import { writeFileSync } from "node:fs";
import { Keypair, SystemProgram, VersionedTransaction } from "@solana/web3.js";
import {
  TOKEN_2022_PROGRAM, TOKEN_PROGRAM, decoded, labelled, legacy, lookupTable, memo, splTransfer,
  splTransferChecked, splTransferCheckedWithFee, unsignedBytes, v0,
} from "./transactions.mjs";

const seed = (n) => Keypair.fromSeed(new Uint8Array(32).fill(n));
const payer = seed(1);
const cosigner = seed(2);
const multisigA = seed(3);
const multisigB = seed(4);
const blockhash = labelled(0xbb).toBase58();
const [recipient, src, dst, mint, multisig, table, far1, far2, far3] = [9, 10, 11, 12, 13, 14, 15, 16, 17].map(labelled);

const cases = {
  legacySolTransfer: [legacy(payer.publicKey, blockhash, [
    SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: recipient, lamports: 111 }),
  ]), [payer]],
  legacyTransferWithSeed: [legacy(payer.publicKey, blockhash, [
    SystemProgram.transfer({
      fromPubkey: src, basePubkey: payer.publicKey, toPubkey: recipient, lamports: 5,
      seed: "vault", programId: SystemProgram.programId,
    }),
  ]), [payer]],
  legacySplAndMemo: [legacy(payer.publicKey, blockhash, [
    splTransfer(TOKEN_PROGRAM, src, dst, payer.publicKey, 1000),
    splTransferChecked(TOKEN_2022_PROGRAM, src, mint, dst, payer.publicKey, 2500, 6),
    splTransferCheckedWithFee(src, mint, dst, payer.publicKey, 700, 6, 7),
    memo("hello strongroom", payer.publicKey),
  ]), [payer]],
  legacyMultisigTwoSigners: [legacy(payer.publicKey, blockhash, [
    splTransferChecked(TOKEN_PROGRAM, src, mint, dst, multisig, 42, 2, [multisigA.publicKey, multisigB.publicKey]),
    SystemProgram.transfer({ fromPubkey: cosigner.publicKey, toPubkey: payer.publicKey, lamports: 3 }),
  ]), [payer, multisigA, multisigB, cosigner]],
  v0NoLookups: [v0(payer.publicKey, blockhash, [
    SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: recipient, lamports: 999 }),
  ]), [payer]],
  v0WithLookups: [v0(payer.publicKey, blockhash, [
    SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: far1, lamports: 50000000 }),
    splTransferChecked(TOKEN_PROGRAM, src, far2, far3, payer.publicKey, 77, 9),
    memo("v0"),
  ], [lookupTable(table, [far3, far1, recipient, far2])]), [payer]],
};

const out = {
  source: "built and signed by @solana/web3.js 1.98.4 (tests/interop_solana/make_vectors.mjs), fixed keys",
  cases: {},
};
for (const [name, [tx, signers]] of Object.entries(cases)) {
  const { transaction, message } = unsignedBytes(tx);
  let signed;
  if (tx instanceof VersionedTransaction) {
    tx.sign(signers);
    signed = Buffer.from(tx.serialize());
  } else {
    tx.sign(...signers);
    signed = tx.serialize();
  }
  out.cases[name] = {
    unsigned: transaction.toString("hex"),
    message: message.toString("hex"),
    signed: signed.toString("hex"),
    decoded: decoded(message),
  };
}
writeFileSync(new URL("../vectors/solana_web3.json", import.meta.url), `${JSON.stringify(out, null, 1)}\n`);
