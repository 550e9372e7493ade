// Builds the Solana transactions the tests use, with @solana/web3.js only (pinned in package.json).
// Shared by make_vectors.mjs (fixed keys -> tests/vectors/solana_web3.json, the parser's unit
// vectors) and turnkey_solana.mjs (the daemon's key as fee payer, signed through @turnkey/solana).
// SPL Token instructions are written out by hand (their layouts are one tag byte then fixed-width
// little-endian fields), so no @solana/spl-token is needed.

import {
  AddressLookupTableAccount,
  MessageV0,
  PublicKey,
  SystemProgram,
  Transaction,
  TransactionInstruction,
  VersionedMessage,
  VersionedTransaction,
} from "@solana/web3.js";

export const TOKEN_PROGRAM = new PublicKey("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA");
export const TOKEN_2022_PROGRAM = new PublicKey("TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb");
export const MEMO_PROGRAM = new PublicKey("MemoSq4gqABAXKb96qnH8TuNhmnwaHKtGJ8C4D3rFjL");

/** A public key from a one-byte label (not on the curve necessarily; fine for non-signers). */
export function labelled(n) {
  const bytes = new Uint8Array(32);
  bytes.fill(n);
  return new PublicKey(bytes);
}

function u64le(value) {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(value));
  return b;
}

/** SPL Token `Transfer` (tag 3): source, destination, authority (+ multisig signers). */
export function splTransfer(programId, source, destination, authority, amount, signers = []) {
  return new TransactionInstruction({
    programId,
    keys: [
      { pubkey: source, isSigner: false, isWritable: true },
      { pubkey: destination, isSigner: false, isWritable: true },
      { pubkey: authority, isSigner: signers.length === 0, isWritable: false },
      ...signers.map((s) => ({ pubkey: s, isSigner: true, isWritable: false })),
    ],
    data: Buffer.concat([Buffer.from([3]), u64le(amount)]),
  });
}

/** SPL Token `TransferChecked` (tag 12): source, mint, destination, authority (+ multisig signers). */
export function splTransferChecked(programId, source, mint, destination, authority, amount, decimals, signers = []) {
  return new TransactionInstruction({
    programId,
    keys: [
      { pubkey: source, isSigner: false, isWritable: true },
      { pubkey: mint, isSigner: false, isWritable: false },
      { pubkey: destination, isSigner: false, isWritable: true },
      { pubkey: authority, isSigner: signers.length === 0, isWritable: false },
      ...signers.map((s) => ({ pubkey: s, isSigner: true, isWritable: false })),
    ],
    data: Buffer.concat([Buffer.from([12]), u64le(amount), Buffer.from([decimals])]),
  });
}

/** Token-2022 `TransferCheckedWithFee` (26, 1): as TransferChecked, then the fee. */
export function splTransferCheckedWithFee(source, mint, destination, authority, amount, decimals, fee) {
  return new TransactionInstruction({
    programId: TOKEN_2022_PROGRAM,
    keys: [
      { pubkey: source, isSigner: false, isWritable: true },
      { pubkey: mint, isSigner: false, isWritable: false },
      { pubkey: destination, isSigner: false, isWritable: true },
      { pubkey: authority, isSigner: true, isWritable: false },
    ],
    data: Buffer.concat([Buffer.from([26, 1]), u64le(amount), Buffer.from([decimals]), u64le(fee)]),
  });
}

export function memo(text, signer) {
  return new TransactionInstruction({
    programId: MEMO_PROGRAM,
    keys: signer ? [{ pubkey: signer, isSigner: true, isWritable: false }] : [],
    data: Buffer.from(text, "utf8"),
  });
}

export function lookupTable(key, addresses) {
  return new AddressLookupTableAccount({
    key,
    state: {
      deactivationSlot: BigInt("18446744073709551615"),
      lastExtendedSlot: 0,
      lastExtendedSlotStartIndex: 0,
      authority: undefined,
      addresses,
    },
  });
}

export function legacy(payer, blockhash, instructions) {
  const tx = new Transaction({ feePayer: payer, recentBlockhash: blockhash });
  tx.add(...instructions);
  return tx;
}

export function v0(payer, blockhash, instructions, tables = []) {
  const message = MessageV0.compile({
    payerKey: payer,
    recentBlockhash: blockhash,
    instructions,
    addressLookupTableAccounts: tables,
  });
  return new VersionedTransaction(message);
}

/** The serialised transaction with empty signature slots (what @turnkey/solana sends) and its message. */
export function unsignedBytes(tx) {
  if (tx instanceof VersionedTransaction) {
    return { transaction: Buffer.from(tx.serialize()), message: Buffer.from(tx.message.serialize()) };
  }
  return {
    transaction: tx.serialize({ requireAllSignatures: false, verifySignatures: false }),
    message: tx.serializeMessage(),
  };
}

/** The message as @solana/web3.js decodes it (for comparison with the Python parser). */
export function decoded(messageBytes) {
  const isV0 = (messageBytes[0] & 0x80) !== 0;
  const m = VersionedMessage.deserialize(messageBytes);
  return {
    version: isV0 ? 0 : null,
    header: m.header,
    accountKeys: m.staticAccountKeys.map((k) => k.toBase58()),
    recentBlockhash: m.recentBlockhash,
    instructions: m.compiledInstructions.map((ix) => ({
      programIdIndex: ix.programIdIndex,
      accounts: Array.from(ix.accountKeyIndexes),
      dataHex: Buffer.from(ix.data).toString("hex"),
    })),
    addressTableLookups: (m.addressTableLookups ?? []).map((l) => ({
      accountKey: l.accountKey.toBase58(),
      writableIndexes: Array.from(l.writableIndexes),
      readonlyIndexes: Array.from(l.readonlyIndexes),
    })),
  };
}
