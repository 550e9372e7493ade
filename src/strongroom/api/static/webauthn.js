// Passkeys in the browser: login assertions, registration attestations, and X-Stamp-WebAuthn
// stamps over an activity's exact body (challenge = ASCII of the lowercase hex SHA-256 of the body).

export function b64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function fromB64url(text) {
  const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const raw = atob(padded);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

async function sha256Hex(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function assertionJson(credential) {
  const r = credential.response;
  return {
    credentialId: b64url(credential.rawId),
    clientDataJson: b64url(r.clientDataJSON),
    authenticatorData: b64url(r.authenticatorData),
    signature: b64url(r.signature),
  };
}

export async function getAssertion(challengeBytes, rpId, credentialIds) {
  const credential = await navigator.credentials.get({
    publicKey: {
      challenge: challengeBytes,
      rpId,
      allowCredentials: credentialIds.map((id) => ({ type: "public-key", id: fromB64url(id) })),
      userVerification: "preferred",
      timeout: 120000,
    },
  });
  if (!credential) throw new Error("no passkey assertion was made");
  return assertionJson(credential);
}

// The X-Stamp-WebAuthn header value for this exact body.
export async function stampBody(body, rpId, credentialIds) {
  const hex = await sha256Hex(body);
  return JSON.stringify(await getAssertion(new TextEncoder().encode(hex), rpId, credentialIds));
}

const TRANSPORTS = {
  ble: "AUTHENTICATOR_TRANSPORT_BLE",
  internal: "AUTHENTICATOR_TRANSPORT_INTERNAL",
  nfc: "AUTHENTICATOR_TRANSPORT_NFC",
  usb: "AUTHENTICATOR_TRANSPORT_USB",
  hybrid: "AUTHENTICATOR_TRANSPORT_HYBRID",
};

// Turnkey's v1AuthenticatorParamsV2, ready for create_users / create_authenticators.
export async function createPasskey(options, name, email) {
  const credential = await navigator.credentials.create({
    publicKey: {
      rp: { id: options.rpId, name: options.rpName },
      user: { id: crypto.getRandomValues(new Uint8Array(16)), name: email || name, displayName: name },
      challenge: fromB64url(options.challenge),
      pubKeyCredParams: [
        { type: "public-key", alg: -7 },
        { type: "public-key", alg: -8 },
        { type: "public-key", alg: -257 },
      ],
      authenticatorSelection: { residentKey: "preferred", userVerification: "preferred" },
      attestation: "none",
      timeout: 120000,
    },
  });
  if (!credential) throw new Error("no passkey was created");
  const r = credential.response;
  const transports = (r.getTransports ? r.getTransports() : []).map((t) => TRANSPORTS[t]).filter(Boolean);
  return {
    authenticatorName: name,
    challenge: options.challenge,
    attestation: {
      credentialId: b64url(credential.rawId),
      clientDataJson: b64url(r.clientDataJSON),
      attestationObject: b64url(r.attestationObject),
      transports,
    },
  };
}
