// Strongroom dashboard: hash-routed pages over the read-only session API; every write is an
// activity stamped with a fresh passkey assertion and posted to /public/v1/submit/<name>.
import { createPasskey, fromB64url, getAssertion, stampBody } from "./webauthn.js";

const main = document.getElementById("main");
const statusEl = document.getElementById("status");
const errorEl = document.getElementById("error");
let session = null;

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function say(text) { statusEl.textContent = text; errorEl.textContent = ""; }
function fail(text) { errorEl.textContent = text; statusEl.textContent = ""; }

async function api(path, options = {}) {
  const resp = await fetch(`/dashboard/api/${path}`, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    ...options,
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(data.message || `request failed (${resp.status})`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// A write: the exact Turnkey body, stamped by the passkey, never authorized by the cookie.
async function submit(path, type, parameters) {
  const body = JSON.stringify({
    type,
    timestampMs: String(Date.now()),
    organizationId: session.organizationId,
    parameters,
  });
  say("Confirm with your passkey…");
  const stamp = await stampBody(body, session.rpId, session.credentialIds);
  const resp = await fetch(`/public/v1/submit/${path}`, {
    method: "POST",
    credentials: "omit",
    headers: { "Content-Type": "application/json", "X-Stamp-WebAuthn": stamp },
    body,
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.message || `submission failed (${resp.status})`);
  const activity = data.activity;
  say(`Activity ${activity.id}: ${activity.status}`);
  return activity;
}

function guarded(fn) {
  return async (event) => {
    if (event) event.preventDefault();
    try { await fn(event); } catch (err) { fail(err.message || String(err)); }
  };
}

function table(headers, rows, caption) {
  return h("table", {},
    caption ? h("caption", { class: "hint", text: caption }) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length, text: "None yet." }))));
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", {}, v)]));
}

function field(label, id, control) {
  control.id = id;
  return h("div", {}, h("label", { for: id, text: label }), control);
}

function short(text) { return typeof text === "string" && text.length > 18 ? `${text.slice(0, 8)}…${text.slice(-6)}` : text; }
function when(ts) { return ts && ts.seconds ? new Date(Number(ts.seconds) * 1000).toLocaleString() : ""; }

// -- pages --------------------------------------------------------------------------------------------

async function pageLogin() {
  const email = h("input", { type: "email", autocomplete: "username webauthn", required: true });
  const form = h("form", { class: "card", "aria-labelledby": "login-h" },
    h("h2", { id: "login-h", text: "Log in with a passkey" }),
    field("Email", "login-email", email),
    h("button", { type: "submit", id: "login-button", text: "Log in with passkey" }),
    h("p", { class: "hint" }, "No passkey yet? ", h("a", { href: "#register", text: "Register one" }), "."));
  form.addEventListener("submit", guarded(async () => {
    const options = await api("login/options", { method: "POST", body: JSON.stringify({ email: email.value }) });
    if (!options.allowCredentials.length) throw new Error("no passkey is registered for this email with web access");
    const assertion = await getAssertion(
      fromB64url(options.challenge), options.rpId, options.allowCredentials.map((c) => c.id));
    await api("login", { method: "POST", body: JSON.stringify({ email: email.value, assertion }) });
    say("Logged in.");
    await start("#overview");
  }));
  return [form];
}

async function pageRegister() {
  const name = h("input", { type: "text", required: true, autocomplete: "name" });
  const email = h("input", { type: "email", autocomplete: "email" });
  const output = h("textarea", { readonly: true, rows: 10, "aria-describedby": "register-hint" });
  const form = h("form", { class: "card", "aria-labelledby": "register-h" },
    h("h2", { id: "register-h", text: "Register a passkey" }),
    h("p", { id: "register-hint", class: "hint" },
      "Your browser creates the passkey; its public registration (below) is then added to your user by an ",
      "administrator with create_users or create_authenticators, stamped with their own credential. ",
      "Nothing secret leaves this device. With an invitation link, just open the link instead."),
    field("Passkey name", "register-name", name),
    field("Email (for the administrator)", "register-email", email),
    h("button", { type: "submit", id: "register-button", text: "Create passkey" }),
    field("Registration for the administrator", "registration-output", output));
  const options = await api("register/options", { method: "POST", body: "{}" });
  const warning = originWarning(options);
  if (warning) form.insertBefore(warning, form.children[1]);
  form.addEventListener("submit", guarded(async () => {
    const options = await api("register/options", { method: "POST", body: "{}" });
    const params = await createPasskey(options, name.value, email.value);
    output.value = JSON.stringify(params, null, 2);
    say("Passkey created: give the registration below to an administrator.");
  }));
  return [form];
}

// The dashboard's origin must be one the daemon allows for passkeys (webauthn_origins).
function originWarning(options) {
  const allowed = options.origins || [];
  if (!allowed.length || allowed.includes(location.origin)) return null;
  return h("p", { class: "error", id: "origin-warning", role: "alert" },
    `Passkeys made here will not work: this page is served from ${location.origin}, but the daemon accepts `,
    `passkeys only from ${allowed.join(", ")} (webauthn_origins). Open the dashboard there.`);
}

// A passkey invite (`strongroom dashboard invite`): the link's fragment holds a one-time secret that
// registers a passkey for the invited user (create_authenticators, stamped by the invite), then logs in.
async function pageInvite(token) {
  const options = await api("register/options", { method: "POST", body: "{}" });
  const warning = originWarning(options);
  const name = h("input", { type: "text", required: true, value: "passkey", autocomplete: "off" });
  const email = h("input", { type: "email", required: true, autocomplete: "username" });
  const button = h("button", { type: "submit", id: "invite-button", text: "Create passkey and log in" });
  const form = h("form", { class: "card", "aria-labelledby": "invite-h" },
    h("h2", { id: "invite-h", text: "Accept an invitation" }),
    warning,
    h("p", { class: "hint" },
      "This one-time link registers a passkey for your user. Type the email the invitation was sent to; ",
      "your browser creates the passkey and only its public part is sent."),
    field("Email", "invite-email", email),
    field("Passkey name", "invite-name", name),
    button);
  try {
    await api("invite", { method: "POST", body: JSON.stringify({ invite: token }) });
  } catch (err) {
    button.disabled = true;
    fail(err.message);
  }
  form.addEventListener("submit", guarded(async () => {
    const fresh = await api("register/options", { method: "POST", body: "{}" });
    const authenticator = await createPasskey(fresh, name.value, email.value);
    const out = await api("invite", {
      method: "POST",
      body: JSON.stringify({ invite: token, email: email.value, authenticator }),
    });
    history.replaceState(null, "", "#overview"); // the secret is spent: keep it out of the address bar
    if (out.activity.status !== "ACTIVITY_STATUS_COMPLETED") {
      say(`Passkey submitted: activity ${out.activity.id} is ${out.activity.status} (the root quorum approves it).`);
      return;
    }
    say("Passkey registered. Confirm with it to log in…");
    const login = await api("login/options", { method: "POST", body: JSON.stringify({ email: email.value }) });
    const assertion = await getAssertion(
      fromB64url(login.challenge), login.rpId, login.allowCredentials.map((c) => c.id));
    await api("login", { method: "POST", body: JSON.stringify({ email: email.value, assertion }) });
    say("Passkey registered, logged in.");
    await start("#overview");
  }));
  return [form];
}

async function pageOverview() {
  const o = await api("overview");
  const usage = o.usage || {};
  return [
    h("h2", { text: `Organization ${o.name}` }),
    facts([
      ["Organization ID", h("code", { text: o.organizationId })],
      ["Root quorum", `${o.rootQuorum.threshold} of ${o.rootQuorum.users.length}: ${o.rootQuorum.users.map((u) => u.username || u.userId).join(", ")}`],
      ["Users", String(o.counts.users)],
      ["Private keys", String(o.counts.privateKeys)],
      ["Policies", String(o.counts.policies)],
      ["Sub-organizations", String(o.counts.subOrganizations)],
      ["Activities awaiting votes", String(o.counts.pendingActivities)],
      ["Signatures this month", `${usage.signatures ?? 0}${usage.quota ? ` of ${usage.quota}` : ""} (${usage.month || ""})`],
    ]),
  ];
}

const API_CURVES = [
  ["API_KEY_CURVE_P256", "P-256"],
  ["API_KEY_CURVE_SECP256K1", "secp256k1"],
  ["API_KEY_CURVE_ED25519", "Ed25519"],
];

function curveSelect() {
  return h("select", {}, API_CURVES.map(([value, text]) => h("option", { value, text })));
}

// v1ApiKeyParamsV2 from a form's fields (expiry optional, a string as Turnkey's int64 fields are).
function apiKeyParams(name, publicKey, curve, expiry) {
  const key = { apiKeyName: name.trim(), publicKey: publicKey.trim(), curveType: curve };
  const secs = (expiry || "").trim();
  if (secs) {
    if (!/^[1-9][0-9]*$/.test(secs)) throw new Error("expiry must be a whole number of seconds");
    key.expirationSeconds = secs;
  }
  return key;
}

async function pageUsers() {
  const data = await api("users");
  const tagNames = Object.fromEntries((data.userTags || []).map((t) => [t.tagId, t.tagName]));
  const rows = data.users.map((u) => h("tr", { "data-user": u.userId },
    h("td", {}, h("a", { href: `#user/${u.userId}`, text: u.userName })),
    h("td", { text: u.userEmail || "" }),
    h("td", { text: (u.accessType || "").replace("ACCESS_TYPE_", "") }),
    h("td", {}, h("ul", {},
      (u.apiKeys || []).map((k) => h("li", { text: `API key ${k.apiKeyName} (${k.credential?.type || ""})` })),
      (u.authenticators || []).map((a) => h("li", { text: `Passkey ${a.authenticatorName}` })))),
    h("td", { text: (u.userTags || []).map((t) => tagNames[t] || t).join(", ") }),
    h("td", {}, u.userId === session.userId || u.isRoot ? (u.isRoot ? h("span", { class: "badge", text: "root" }) : null) : h("button", {
      type: "button", class: "danger", "aria-label": `Remove user ${u.userName}`, text: "Remove",
      onclick: guarded(async () => {
        if (!window.confirm(`Remove user ${u.userName} and all of their credentials?`)) return;
        await submit("delete_users", "ACTIVITY_TYPE_DELETE_USERS", { userIds: [u.userId] });
        await render();
      }) }))));
  return [h("h2", { text: "Users" }), table(["Name", "Email", "Access", "Credentials", "Tags", ""], rows), newUserForm()];
}

function newUserForm() {
  const name = h("input", { type: "text", required: true, autocomplete: "off" });
  const email = h("input", { type: "email", autocomplete: "off" });
  const kind = h("select", {}, h("option", { value: "apikey", text: "API key" }), h("option", { value: "passkey", text: "Passkey registration" }));
  const keyName = h("input", { type: "text", placeholder: "defaults to the user name" });
  const publicKey = h("input", { type: "text", spellcheck: "false", "aria-describedby": "newuser-key-hint" });
  const curve = curveSelect();
  const registration = h("textarea", { spellcheck: "false", rows: 6, "aria-describedby": "newuser-passkey-hint" });
  const keyPart = h("fieldset", {}, h("legend", { text: "API key" }),
    field("API key name", "newuser-key-name", keyName),
    field("Public key (hex)", "newuser-public-key", publicKey),
    h("p", { id: "newuser-key-hint", class: "hint", text: "Compressed P-256 or secp256k1 point (66 hex), or a raw Ed25519 key (64 hex)." }),
    field("Curve", "newuser-curve", curve));
  const passkeyPart = h("fieldset", { hidden: true }, h("legend", { text: "Passkey" }),
    field("Passkey registration (JSON)", "newuser-registration", registration),
    h("p", { id: "newuser-passkey-hint", class: "hint" }, "Paste the registration shown on ", h("a", { href: "#register", text: "Register a passkey" }), "."));
  kind.addEventListener("change", () => {
    keyPart.hidden = kind.value !== "apikey";
    passkeyPart.hidden = kind.value !== "passkey";
  });
  const form = h("form", { class: "card", "aria-labelledby": "newuser-h" },
    h("h3", { id: "newuser-h", text: "Add a user" }),
    h("div", { class: "inline" }, field("Name", "newuser-name", name), field("Email (optional)", "newuser-email", email)),
    field("Credential", "newuser-kind", kind), keyPart, passkeyPart,
    h("button", { type: "submit", id: "create-user", text: "Add with passkey" }));
  form.addEventListener("submit", guarded(async () => {
    const user = { userName: name.value.trim(), apiKeys: [], authenticators: [], oauthProviders: [], userTags: [] };
    if (email.value.trim()) user.userEmail = email.value.trim();
    if (kind.value === "apikey") {
      if (!publicKey.value.trim()) throw new Error("enter the API key's public key");
      user.apiKeys.push(apiKeyParams(keyName.value.trim() || user.userName, publicKey.value, curve.value, ""));
    } else {
      let parsed;
      try { parsed = JSON.parse(registration.value); } catch { throw new Error("the passkey registration is not valid JSON"); }
      if (!parsed || typeof parsed !== "object" || !parsed.attestation) throw new Error("the passkey registration has no attestation");
      user.authenticators.push(parsed);
    }
    await submit("create_users", "ACTIVITY_TYPE_CREATE_USERS_V4", { users: [user] });
    await render();
  }));
  return form;
}

async function pageUser(id) {
  const data = await api("users");
  const u = data.users.find((x) => x.userId === id);
  if (!u) return [h("h2", { text: "No such user" }), h("p", {}, h("a", { href: "#users", text: "Back to users" }))];
  const tagNames = Object.fromEntries((data.userTags || []).map((t) => [t.tagId, t.tagName]));
  const keyRows = (u.apiKeys || []).map((k) => h("tr", { "data-api-key": k.apiKeyId },
    h("td", { text: k.apiKeyName }),
    h("td", { text: (k.credential?.type || "").replace("CREDENTIAL_TYPE_", "") }),
    h("td", {}, h("code", { text: k.credential?.publicKey || "" })),
    h("td", { text: k.expirationSeconds ? `${k.expirationSeconds} s` : "never" }),
    h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Remove API key ${k.apiKeyName}`, text: "Remove",
      onclick: guarded(async () => {
        await submit("delete_api_keys", "ACTIVITY_TYPE_DELETE_API_KEYS", { userId: u.userId, apiKeyIds: [k.apiKeyId] });
        await render();
      }) }))));
  const authRows = (u.authenticators || []).map((a) => h("tr", { "data-authenticator": a.authenticatorId },
    h("td", { text: a.authenticatorName }),
    h("td", {}, h("code", { text: short(a.credentialId) })),
    h("td", { text: when(a.createdAt) }),
    h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Remove passkey ${a.authenticatorName}`, text: "Remove",
      onclick: guarded(async () => {
        await submit("delete_authenticators", "ACTIVITY_TYPE_DELETE_AUTHENTICATORS", { userId: u.userId, authenticatorIds: [a.authenticatorId] });
        await render();
      }) }))));
  const name = h("input", { type: "text", required: true, autocomplete: "off" });
  const publicKey = h("input", { type: "text", required: true, spellcheck: "false" });
  const curve = curveSelect();
  const expiry = h("input", { type: "text", inputmode: "numeric", pattern: "[1-9][0-9]*", "aria-describedby": "apikey-expiry-hint" });
  const form = h("form", { class: "card", "aria-labelledby": "apikey-h" },
    h("h3", { id: "apikey-h", text: "Add an API key" }),
    field("Name", "apikey-name", name),
    field("Public key (hex)", "apikey-public-key", publicKey),
    h("div", { class: "inline" }, field("Curve", "apikey-curve", curve), field("Expires after (seconds, optional)", "apikey-expiry", expiry)),
    h("p", { id: "apikey-expiry-hint", class: "hint", text: "Leave the expiry empty for a key that does not expire." }),
    h("button", { type: "submit", id: "create-api-key", text: "Add with passkey" }));
  form.addEventListener("submit", guarded(async () => {
    await submit("create_api_keys", "ACTIVITY_TYPE_CREATE_API_KEYS_V2", {
      userId: u.userId, apiKeys: [apiKeyParams(name.value, publicKey.value, curve.value, expiry.value)],
    });
    await render();
  }));
  return [
    h("p", {}, h("a", { href: "#users", text: "← Users" })),
    h("h2", { text: `User ${u.userName}` }),
    facts([
      ["User ID", h("code", { text: u.userId })],
      ["Email", u.userEmail || ""],
      ["Access", (u.accessType || "").replace("ACCESS_TYPE_", "")],
      ["Tags", (u.userTags || []).map((t) => tagNames[t] || t).join(", ")],
    ]),
    h("h3", { text: "API keys" }), table(["Name", "Type", "Public key", "Expiry", ""], keyRows),
    form,
    h("h3", { text: "Passkeys" }), table(["Name", "Credential ID", "Created", ""], authRows),
  ];
}

async function pageKeys() {
  const data = await api("private-keys");
  const rows = data.privateKeys.map((k) => h("tr", {},
    h("td", { text: k.privateKeyName }),
    h("td", { text: k.curve }),
    h("td", {}, (k.addresses || []).map((a) => h("div", {}, h("span", { class: "badge", text: a.format.replace("ADDRESS_FORMAT_", "") }), " ", h("code", { text: a.address })))),
    h("td", {}, h("span", { class: `badge ${k.backend === "token" ? "token" : "fallback"}`, text: k.backend === "token" ? "token" : `software fallback (${k.backend})` }))));
  const name = h("input", { type: "text", required: true });
  const curve = h("select", {}, h("option", { value: "CURVE_SECP256K1", text: "secp256k1" }), h("option", { value: "CURVE_ED25519", text: "Ed25519" }));
  // The address formats each curve can have (an Ed25519 key has no Ethereum address).
  const formats = {
    CURVE_SECP256K1: [["ADDRESS_FORMAT_ETHEREUM", "Ethereum"], ["", "none"]],
    CURVE_ED25519: [["ADDRESS_FORMAT_SOLANA", "Solana"], ["", "none"]],
  };
  const format = h("select", {});
  const fillFormats = () => {
    format.replaceChildren(...formats[curve.value].map(([value, text]) => h("option", { value, text })));
  };
  curve.addEventListener("change", fillFormats);
  fillFormats();
  const form = h("form", { class: "card", "aria-labelledby": "newkey-h" },
    h("h3", { id: "newkey-h", text: "Create a private key" }),
    h("div", { class: "inline" }, field("Name", "key-name", name), field("Curve", "key-curve", curve), field("Address format", "key-format", format),
      h("button", { type: "submit", id: "create-key", text: "Create with passkey" })));
  form.addEventListener("submit", guarded(async () => {
    await submit("create_private_keys", "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2", {
      privateKeys: [{ privateKeyName: name.value, curve: curve.value, privateKeyTags: [], addressFormats: format.value ? [format.value] : [] }],
    });
    await render();
  }));
  return [...walletSection(data.wallets || []), h("h2", { text: "Private keys" }), table(["Name", "Curve", "Addresses", "Held by"], rows), form];
}

// HD wallets: their accounts (path, address), and a form that creates one with Turnkey's default accounts.
function walletSection(wallets) {
  const rows = wallets.map((w) => h("tr", {},
    h("td", { text: w.walletName }),
    h("td", {}, w.accounts.map((a) => h("div", {},
      h("span", { class: "badge", text: a.addressFormat.replace("ADDRESS_FORMAT_", "") }), " ",
      h("code", { text: a.address }), " ", h("small", { text: a.path })))),
    h("td", { text: [w.imported ? "imported" : "", w.exported ? "exported" : ""].filter(Boolean).join(", ") })));
  const name = h("input", { type: "text", required: true });
  const eth = h("input", { type: "checkbox", checked: true });
  const sol = h("input", { type: "checkbox" });
  const form = h("form", { class: "card", "aria-labelledby": "newwallet-h" },
    h("h3", { id: "newwallet-h", text: "Create a wallet" }),
    h("div", { class: "inline" }, field("Name", "wallet-name", name), field("Ethereum account", "wallet-eth", eth),
      field("Solana account", "wallet-sol", sol), h("button", { type: "submit", id: "create-wallet", text: "Create with passkey" })));
  form.addEventListener("submit", guarded(async () => {
    const accounts = [];
    if (eth.checked) accounts.push({ curve: "CURVE_SECP256K1", pathFormat: "PATH_FORMAT_BIP32", path: "m/44'/60'/0'/0/0", addressFormat: "ADDRESS_FORMAT_ETHEREUM" });
    if (sol.checked) accounts.push({ curve: "CURVE_ED25519", pathFormat: "PATH_FORMAT_BIP32", path: "m/44'/501'/0'/0'", addressFormat: "ADDRESS_FORMAT_SOLANA" });
    await submit("create_wallet", "ACTIVITY_TYPE_CREATE_WALLET", { walletName: name.value, accounts });
    await render();
  }));
  return [h("h2", { text: "Wallets" }), table(["Name", "Accounts", ""], rows), form];
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// A policy form (create or edit) with the checker run as you type; ids are prefixed by `prefix`.
function policyForm({ prefix, heading, submitId, submitText, initial, onSubmit }) {
  const name = h("input", { type: "text", required: true, value: initial.policyName || "" });
  const effect = h("select", {},
    h("option", { value: "EFFECT_ALLOW", text: "Allow", selected: initial.effect === "EFFECT_ALLOW" }),
    h("option", { value: "EFFECT_DENY", text: "Deny", selected: initial.effect === "EFFECT_DENY" }));
  const condition = h("textarea", { spellcheck: "false", "aria-describedby": `${prefix}-issues` });
  const consensus = h("textarea", { spellcheck: "false", "aria-describedby": `${prefix}-issues` });
  condition.value = initial.condition || "";
  consensus.value = initial.consensus || "";
  const notes = h("input", { type: "text", value: initial.notes || "" });
  const issues = h("div", { id: `${prefix}-issues`, "aria-live": "polite" });
  const button = h("button", { type: "submit", id: submitId, text: submitText });
  const check = debounce(async () => {
    try {
      const result = await api("check-policy", { method: "POST", body: JSON.stringify({ condition: condition.value, consensus: consensus.value }) });
      issues.replaceChildren(result.valid
        ? h("p", { class: "ok-text", text: "No problems found." })
        : h("ul", { class: "issues" }, result.issues.map((i) => h("li", { text: `${i.field} line ${i.line}, column ${i.column}: ${i.message}` }))));
      button.disabled = !result.valid;
      condition.setAttribute("aria-invalid", String(result.issues.some((i) => i.field === "condition")));
      consensus.setAttribute("aria-invalid", String(result.issues.some((i) => i.field === "consensus")));
    } catch (err) { fail(err.message); }
  }, 200);
  condition.addEventListener("input", check);
  consensus.addEventListener("input", check);
  const form = h("form", { class: "card", "aria-labelledby": `${prefix}-h`, id: `${prefix}-form` },
    h("h3", { id: `${prefix}-h`, text: heading }),
    field("Name", `${prefix}-name`, name), field("Effect", `${prefix}-effect`, effect),
    field("Condition", `${prefix}-condition`, condition), field("Consensus", `${prefix}-consensus`, consensus),
    field("Notes", `${prefix}-notes`, notes), issues, button);
  form.addEventListener("submit", guarded(() => onSubmit({
    name: name.value, effect: effect.value, condition: condition.value, consensus: consensus.value, notes: notes.value,
  })));
  return form;
}

async function pagePolicies(editId) {
  const data = await api("policies");
  const rows = data.policies.map((p) => h("tr", {},
    h("td", { text: p.policyName }),
    h("td", { text: p.effect.replace("EFFECT_", "") }),
    h("td", {}, h("code", { text: p.condition || "(any)" })),
    h("td", {}, h("code", { text: p.consensus || "(none)" })),
    h("td", {},
      h("a", { href: `#policies/${p.policyId}`, class: "button-link", "aria-label": `Edit policy ${p.policyName}`, text: "Edit" }), " ",
      h("button", { type: "button", class: "danger", "aria-label": `Delete policy ${p.policyName}`, text: "Delete",
        onclick: guarded(async () => { await submit("delete_policy", "ACTIVITY_TYPE_DELETE_POLICY", { policyId: p.policyId }); await render(); }) }))));
  const out = [h("h2", { text: "Policies" }), table(["Name", "Effect", "Condition", "Consensus", ""], rows)];
  const editing = editId ? data.policies.find((p) => p.policyId === editId) : null;
  if (editId && !editing) fail("That policy no longer exists.");
  if (editing) {
    setTimeout(() => document.getElementById("edit-policy-name")?.focus(), 0);
    out.push(policyForm({
      prefix: "edit-policy", heading: `Edit policy ${editing.policyName}`, submitId: "save-policy", submitText: "Save with passkey",
      initial: editing,
      onSubmit: async (v) => {
        await submit("update_policy", "ACTIVITY_TYPE_UPDATE_POLICY_V2", {
          policyId: editing.policyId, policyName: v.name, policyEffect: v.effect,
          policyCondition: v.condition, policyConsensus: v.consensus, policyNotes: v.notes,
        });
        if (location.hash === "#policies") await render(); else location.hash = "#policies";
      },
    }));
  }
  out.push(policyForm({
    prefix: "policy", heading: "New policy", submitId: "create-policy", submitText: "Create with passkey", initial: { effect: "EFFECT_ALLOW" },
    onSubmit: async (v) => {
      await submit("create_policy", "ACTIVITY_TYPE_CREATE_POLICY_V3", {
        policyName: v.name, effect: v.effect, condition: v.condition, consensus: v.consensus, notes: v.notes,
      });
      await render();
    },
  }));
  return out;
}

async function vote(activity, approve) {
  const path = approve ? "approve_activity" : "reject_activity";
  const type = approve ? "ACTIVITY_TYPE_APPROVE_ACTIVITY" : "ACTIVITY_TYPE_REJECT_ACTIVITY";
  await submit(path, type, { fingerprint: activity.fingerprint });
  await render();
}

function voteButtons(a) {
  if (!a.needsMyVote) return null;
  return h("span", {},
    h("button", { type: "button", class: "approve", "aria-label": `Approve activity ${a.id}`, text: "Approve", onclick: guarded(() => vote(a, true)) }), " ",
    h("button", { type: "button", class: "secondary", "aria-label": `Reject activity ${a.id}`, text: "Reject", onclick: guarded(() => vote(a, false)) }));
}

const STATUSES = ["", "ACTIVITY_STATUS_COMPLETED", "ACTIVITY_STATUS_CONSENSUS_NEEDED", "ACTIVITY_STATUS_FAILED", "ACTIVITY_STATUS_REJECTED"];

async function pageActivities(query) {
  const status = h("select", {}, STATUSES.map((s) => h("option", { value: s, text: s ? s.replace("ACTIVITY_STATUS_", "") : "any", selected: s === (query.get("status") || "") })));
  const type = h("input", { type: "text", value: query.get("type") || "", placeholder: "ACTIVITY_TYPE_…" });
  const filters = h("form", { class: "inline", role: "search", "aria-label": "Filter activities" },
    field("Status", "filter-status", status), field("Type", "filter-type", type), h("button", { type: "submit", text: "Filter" }));
  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (status.value) q.set("status", status.value);
    if (type.value) q.set("type", type.value);
    location.hash = `#activities?${q}`;
  });
  const q = new URLSearchParams();
  for (const k of ["status", "type"]) if (query.get(k)) q.set(k, query.get(k));
  const data = await api(`activities?${q}`);
  const rows = data.activities.map((a) => h("tr", { "data-activity": a.id },
    h("td", {}, h("a", { href: `#activity/${a.id}`, text: short(a.id) })),
    h("td", { text: a.type.replace("ACTIVITY_TYPE_", "") }),
    h("td", { class: "activity-status", text: a.status.replace("ACTIVITY_STATUS_", "") }),
    h("td", { text: when(a.createdAt) }),
    h("td", {}, voteButtons(a))));
  return [h("h2", { text: "Activities" }), filters, table(["ID", "Type", "Status", "Created", "Your vote"], rows)];
}

async function pageActivity(id) {
  const data = await api(`activities/${encodeURIComponent(id)}`);
  const a = data.activity;
  return [
    h("h2", { text: `Activity ${a.type.replace("ACTIVITY_TYPE_", "")}` }),
    facts([
      ["ID", h("code", { text: a.id })],
      ["Status", h("span", { id: "activity-status", text: a.status })],
      ["Fingerprint", h("code", { text: a.fingerprint })],
      ["Created", when(a.createdAt)],
    ]),
    ...[voteButtons(a)].filter(Boolean),
    h("h3", { text: "Intent" }), h("pre", { text: JSON.stringify(a.intent, null, 2) }),
    h("h3", { text: "Votes" }),
    table(["User", "Selection", "Scheme", "At"], (a.votes || []).map((v) => h("tr", {},
      h("td", { text: v.user?.userName || v.userId }), h("td", { text: v.selection }), h("td", { text: v.signatureScheme || v.scheme || "" }), h("td", { text: when(v.createdAt) })))),
    h("h3", { text: "Result" }), h("pre", { text: JSON.stringify(a.failure || a.result, null, 2) }),
    h("h3", { text: "Policy evaluations" }), h("pre", { text: JSON.stringify(data.policyEvaluations, null, 2) }),
    h("h3", { id: "audit", text: "Audit log" }),
    table(["Seq", "Entry hash", "Status"], data.audit.map((e) => h("tr", { id: `audit-${e.seq}` },
      h("td", { text: String(e.seq) }), h("td", {}, h("code", { text: e.hash })), h("td", { text: e.entry.status })))),
    h("p", { class: "hint", text: "Check the whole chain offline with `strongroom audit verify`." }),
  ];
}

async function pageSuborgs() {
  const data = await api("suborgs");
  const rows = data.subOrganizations.map((s) => h("tr", {},
    h("td", { text: s.name }), h("td", {}, h("code", { text: s.organizationId })), h("td", { text: String(s.users) }), h("td", { text: when(s.createdAt) })));
  return [h("h2", { text: "Sub-organizations" }), table(["Name", "ID", "Users", "Created"], rows)];
}

// -- routing --------------------------------------------------------------------------------------------

async function render() {
  const [route, qs] = (location.hash.slice(1) || "overview").split("?");
  const query = new URLSearchParams(qs || "");
  const [page, arg] = route.split("/");
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#${page === "user" ? "users" : page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  let content;
  try {
    if (page === "register") content = await pageRegister();
    else if (page === "invite") content = await pageInvite(arg || "");
    else if (!session) content = await pageLogin();
    else if (page === "users") content = await pageUsers();
    else if (page === "user") content = await pageUser(arg);
    else if (page === "keys") content = await pageKeys();
    else if (page === "policies") content = await pagePolicies(arg);
    else if (page === "activities") content = await pageActivities(query);
    else if (page === "activity") content = await pageActivity(arg);
    else if (page === "suborgs") content = await pageSuborgs();
    else content = await pageOverview();
  } catch (err) {
    if (err.status === 401) { session = null; return start(); }
    content = [h("h2", { text: "Something went wrong" })];
    fail(err.message);
  }
  main.replaceChildren(...content);
  main.dataset.page = page === "register" || page === "invite" ? page : (session ? page : "login");
}

async function start(hash) {
  try { session = await api("session"); } catch { session = null; }
  document.getElementById("nav").hidden = !session;
  const who = document.getElementById("who");
  who.replaceChildren();
  if (session) {
    who.append(h("span", { text: `${session.username} · ${session.organizationName}` }),
      h("button", { type: "button", class: "secondary", id: "logout", text: "Log out", onclick: guarded(async () => {
        await api("logout", { method: "POST", body: "{}" });
        session = null;
        say("Logged out.");
        await start("#overview");
      }) }));
  }
  if (hash && location.hash !== hash) location.hash = hash; // triggers render via hashchange
  else await render();
}

window.addEventListener("hashchange", () => { render(); });
start();
