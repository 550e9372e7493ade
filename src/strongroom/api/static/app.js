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

// A table inside a scroll container; each cell carries its column's name (data-label), which the
// phone layout shows when it stacks a row's cells (style.css, "responsive tables").
function table(headers, rows, caption, empty = "None yet.") {
  for (const row of rows) {
    [...row.children].forEach((cell, i) => { if (headers[i] && !cell.dataset.label) cell.dataset.label = headers[i]; });
  }
  return h("div", { class: "table-wrap" }, h("table", {},
    caption ? h("caption", { class: "hint", text: caption }) : null,
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", {}, rows.length ? rows : h("tr", { class: "empty" }, h("td", { colspan: headers.length, text: empty })))));
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

// -- polish: flash messages -------------------------------------------------------------------------------
// A status or error line belongs to the page (hash) it was said on: navigating elsewhere clears it,
// unless an action itself navigates there afterwards (carryFlashTo, just before setting the hash).
let flashCarry = null;
function clearFlash() { statusEl.textContent = ""; errorEl.textContent = ""; }
function carryFlashTo(hash) { flashCarry = hash; }
function flashOnNavigation() {
  if (flashCarry !== location.hash) clearFlash();
  flashCarry = null;
}

// -- polish: copy buttons ---------------------------------------------------------------------------------
// The Clipboard API where the page may use it (a secure context), else a selected scratch textarea and
// execCommand("copy"); the outcome is announced in a polite live region.
async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch { /* fall back below */ }
  }
  const area = h("textarea", { readonly: true, class: "copy-scratch", "aria-hidden": "true", tabindex: "-1" });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch { ok = false; }
  area.remove();
  return ok;
}

function copyAnnouncer() {
  let el = document.getElementById("copy-announcer");
  if (!el) {
    el = h("span", { id: "copy-announcer", class: "visually-hidden", role: "status", "aria-live": "polite" });
    document.body.append(el);
  }
  return el;
}

function copyButton(text, label) {
  const button = h("button", { type: "button", class: "copy", "aria-label": `Copy ${label}`, title: `Copy ${label}`, "data-copy": text, text: "Copy" });
  button.addEventListener("click", async () => {
    button.textContent = "Copying…";
    const ok = await copyText(text);
    button.textContent = ok ? "Copied" : "Copy failed";
    button.classList.toggle("copied", ok);
    copyAnnouncer().textContent = ok ? `Copied ${label}.` : `Could not copy ${label}: select the text and copy it.`;
  });
  button.addEventListener("blur", () => { button.textContent = "Copy"; button.classList.remove("copied"); });
  return button;
}

// `text` in a code element (shown as `display`, e.g. shortened) with a copy button for the whole text.
function copyable(text, label, display = text) {
  if (!text) return "";
  return h("span", { class: "copyable" }, h("code", { title: display === text ? null : text, text: display }), copyButton(text, label));
}

// Copy buttons for identifiers the pages show in plain code elements (a table cell or a fact): the
// label names the column (or fact) and the row's first cell.
const COPYABLE_TEXT = /^[^\s]{16,}$/;
function addCopyButtons(root) {
  for (const code of root.querySelectorAll("td > code, dd > code")) {
    if (code.closest(".copyable") || code.nextElementSibling?.classList.contains("copy")) continue;
    const text = code.dataset.copy || code.textContent;
    if (!COPYABLE_TEXT.test(text)) continue;
    let label = "value";
    const cell = code.parentElement;
    if (cell.tagName === "DD") {
      label = cell.previousElementSibling?.textContent || label;
    } else {
      const row = cell.parentElement;
      const column = cell.dataset.label || "value";
      const first = row.firstElementChild;
      label = first && first !== cell && first.textContent ? `${column} of ${first.textContent}` : column;
    }
    code.after(" ", copyButton(text, label));
  }
}

// A fieldset of checkboxes: [id, label, input] each.
function choices(legend, items) {
  return h("fieldset", { class: "choices" }, h("legend", { text: legend }),
    items.map(([id, label, input]) => { input.id = id; return h("div", { class: "choice" }, input, h("label", { for: id, text: label })); }));
}

// -- polish: badges ---------------------------------------------------------------------------------------
// kind: space-separated words, each a class badge-<word> (style.css, "badges").
function badge(text, kind = "") {
  return h("span", { class: ["badge", ...kind.split(" ").filter(Boolean).map((k) => `badge-${k}`)].join(" "), text });
}

const STATUS_KINDS = {
  ACTIVITY_STATUS_COMPLETED: "ok",
  ACTIVITY_STATUS_CONSENSUS_NEEDED: "warn",
  ACTIVITY_STATUS_PENDING: "info",
  ACTIVITY_STATUS_CREATED: "info",
  ACTIVITY_STATUS_FAILED: "bad",
  ACTIVITY_STATUS_REJECTED: "bad",
};
function statusBadge(status) {
  const el = badge((status || "").replace("ACTIVITY_STATUS_", "").replaceAll("_", " ").toLowerCase(), `status ${STATUS_KINDS[status] || "info"}`);
  el.dataset.status = status || "";
  return el;
}

const CURVE_NAMES = {
  CURVE_SECP256K1: "secp256k1", CURVE_ED25519: "Ed25519", CURVE_P256: "P-256",
  API_KEY_CURVE_SECP256K1: "secp256k1", API_KEY_CURVE_ED25519: "Ed25519", API_KEY_CURVE_P256: "P-256",
  CREDENTIAL_TYPE_API_KEY_SECP256K1: "secp256k1", CREDENTIAL_TYPE_API_KEY_ED25519: "Ed25519", CREDENTIAL_TYPE_API_KEY_P256: "P-256",
  CREDENTIAL_TYPE_WEBAUTHN_AUTHENTICATOR: "passkey",
};
function curveBadge(curve) {
  const el = badge(CURVE_NAMES[curve] || (curve || "").replace(/^(API_KEY_)?CURVE_|^CREDENTIAL_TYPE_/, ""), "curve");
  el.dataset.curve = curve || "";
  return el;
}

function rootBadge() { return badge("root", "root"); }

// Address formats, readable (the form's checkboxes and the tables' badges).
const FORMAT_NAMES = {
  ADDRESS_FORMAT_ETHEREUM: "Ethereum",
  ADDRESS_FORMAT_SOLANA: "Solana",
  ADDRESS_FORMAT_COSMOS: "Cosmos",
  ADDRESS_FORMAT_TRON: "Tron",
  ADDRESS_FORMAT_BITCOIN_MAINNET_P2PKH: "Bitcoin P2PKH",
  ADDRESS_FORMAT_BITCOIN_MAINNET_P2WPKH: "Bitcoin P2WPKH",
  ADDRESS_FORMAT_BITCOIN_TESTNET_P2PKH: "Bitcoin testnet P2PKH",
  ADDRESS_FORMAT_BITCOIN_TESTNET_P2WPKH: "Bitcoin testnet P2WPKH",
  ADDRESS_FORMAT_COMPRESSED: "Compressed public key",
  ADDRESS_FORMAT_UNCOMPRESSED: "Uncompressed public key",
};
function formatName(format) { return FORMAT_NAMES[format] || (format || "").replace("ADDRESS_FORMAT_", ""); }

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
      ["Organization ID", copyable(o.organizationId, "organization ID")],
      ["Root quorum", h("span", {}, `${o.rootQuorum.threshold} of ${o.rootQuorum.users.length}: `,
        o.rootQuorum.users.map((u, i) => h("span", { class: "nowrap" }, i ? ", " : "", u.username || u.userId, " ", rootBadge())))],
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
    h("td", {}, h("a", { href: `#user/${u.userId}`, text: u.userName }),
      u.isRoot ? [" ", rootBadge()] : null, u.userId === session.userId ? [" ", badge("you", "you")] : null,
      h("div", { class: "sub" }, copyable(u.userId, `user ID of ${u.userName}`, short(u.userId)))),
    h("td", { text: u.userEmail || "" }),
    h("td", {}, badge((u.accessType || "").replace("ACCESS_TYPE_", "").toLowerCase() || "?", "access")),
    h("td", {}, h("ul", { class: "plain" },
      (u.apiKeys || []).map((k) => h("li", {}, `API key ${k.apiKeyName} `, curveBadge(k.credential?.type))),
      (u.authenticators || []).map((a) => h("li", {}, `Passkey ${a.authenticatorName} `, badge("passkey", "curve"))))),
    h("td", { text: (u.userTags || []).map((t) => tagNames[t] || t).join(", ") }),
    h("td", {}, u.userId === session.userId || u.isRoot ? null : h("button", {
      type: "button", class: "danger", "aria-label": `Remove user ${u.userName}`, text: "Remove",
      onclick: guarded(async () => {
        if (!window.confirm(`Remove user ${u.userName} and all of their credentials?`)) return;
        await submit("delete_users", "ACTIVITY_TYPE_DELETE_USERS", { userIds: [u.userId] });
        await render();
      }) }))));
  return [h("h2", { text: "Users" }), table(["Name", "Email", "Access", "Credentials", "Tags", ""], rows, null, "No users yet."), newUserForm()];
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
    h("td", {}, curveBadge(k.credential?.type)),
    h("td", {}, copyable(k.credential?.publicKey || "", `public key of API key ${k.apiKeyName}`)),
    h("td", { text: k.expirationSeconds ? `${k.expirationSeconds} s` : "never" }),
    h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Remove API key ${k.apiKeyName}`, text: "Remove",
      onclick: guarded(async () => {
        await submit("delete_api_keys", "ACTIVITY_TYPE_DELETE_API_KEYS", { userId: u.userId, apiKeyIds: [k.apiKeyId] });
        await render();
      }) }))));
  const authRows = (u.authenticators || []).map((a) => h("tr", { "data-authenticator": a.authenticatorId },
    h("td", { text: a.authenticatorName }),
    h("td", {}, copyable(a.credentialId, `credential ID of passkey ${a.authenticatorName}`, short(a.credentialId))),
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
    h("h2", {}, `User ${u.userName}`, u.isRoot ? [" ", rootBadge()] : null),
    facts([
      ["User ID", copyable(u.userId, "user ID")],
      ["Email", u.userEmail || ""],
      ["Access", badge((u.accessType || "").replace("ACCESS_TYPE_", "").toLowerCase() || "?", "access")],
      ["Tags", (u.userTags || []).map((t) => tagNames[t] || t).join(", ")],
    ]),
    h("h3", { text: "API keys" }), table(["Name", "Curve", "Public key", "Expiry", ""], keyRows, null, "No API keys."),
    form,
    h("h3", { text: "Passkeys" }), table(["Name", "Credential ID", "Created", ""], authRows, null, "No passkeys."),
  ];
}

async function pageKeys() {
  const data = await api("private-keys");
  const rows = data.privateKeys.map((k) => h("tr", { "data-private-key": k.privateKeyId },
    h("td", {}, k.privateKeyName,
      h("div", { class: "sub" }, copyable(k.privateKeyId, `private key ID of ${k.privateKeyName}`, short(k.privateKeyId)))),
    h("td", {}, curveBadge(k.curve)),
    h("td", {}, copyable(k.publicKey, `public key of ${k.privateKeyName}`, short(k.publicKey))),
    h("td", {}, (k.addresses || []).length
      ? k.addresses.map((a) => h("div", { class: "address" }, badge(formatName(a.format), "format"), " ",
        copyable(a.address, `${formatName(a.format)} address of ${k.privateKeyName}`)))
      : h("span", { class: "hint", text: "none" })),
    h("td", {}, h("span", { class: `badge ${k.backend === "token" ? "token" : "fallback"}`, text: k.backend === "token" ? "token" : `software fallback (${k.backend})` }))));
  const name = h("input", { type: "text", required: true });
  const curve = h("select", {}, h("option", { value: "CURVE_SECP256K1", text: "secp256k1" }), h("option", { value: "CURVE_ED25519", text: "Ed25519" }));
  // The address formats each curve can have, as the server derives them (an Ed25519 key has no
  // Ethereum address); the chain's usual format first and checked.
  const supported = data.addressFormats || { CURVE_SECP256K1: ["ADDRESS_FORMAT_ETHEREUM"], CURVE_ED25519: ["ADDRESS_FORMAT_SOLANA"] };
  const usual = { CURVE_SECP256K1: "ADDRESS_FORMAT_ETHEREUM", CURVE_ED25519: "ADDRESS_FORMAT_SOLANA" };
  const formats = h("fieldset", { id: "key-formats", class: "choices" });
  const fillFormats = () => {
    const list = [...(supported[curve.value] || [])].sort((a, b) => (b === usual[curve.value]) - (a === usual[curve.value]));
    formats.replaceChildren(h("legend", { text: "Address formats" }), ...list.map((f) => {
      const id = `key-format-${f.replace("ADDRESS_FORMAT_", "").toLowerCase()}`;
      return h("div", { class: "choice" },
        h("input", { type: "checkbox", id, value: f, checked: f === usual[curve.value] }), h("label", { for: id, text: formatName(f) }));
    }), h("p", { class: "hint", text: "None checked: a key without addresses." }));
  };
  curve.addEventListener("change", fillFormats);
  fillFormats();
  const form = h("form", { class: "card", "aria-labelledby": "newkey-h" },
    h("h3", { id: "newkey-h", text: "Create a private key" }),
    h("div", { class: "inline" }, field("Name", "key-name", name), field("Curve", "key-curve", curve)),
    formats,
    h("button", { type: "submit", id: "create-key", text: "Create with passkey" }));
  form.addEventListener("submit", guarded(async () => {
    const addressFormats = [...formats.querySelectorAll("input:checked")].map((c) => c.value);
    await submit("create_private_keys", "ACTIVITY_TYPE_CREATE_PRIVATE_KEYS_V2", {
      privateKeys: [{ privateKeyName: name.value, curve: curve.value, privateKeyTags: [], addressFormats }],
    });
    await render();
  }));
  return [...walletSection(data.wallets || []), h("h2", { text: "Private keys" }),
    table(["Name", "Curve", "Public key", "Addresses", "Held by"], rows, null, "No private keys yet: create one below."), form];
}

// HD wallets: their accounts (path, address), and a form that creates one with Turnkey's default accounts.
function walletSection(wallets) {
  const rows = wallets.map((w) => h("tr", { "data-wallet": w.walletId },
    h("td", {}, w.walletName, h("div", { class: "sub" }, copyable(w.walletId, `wallet ID of ${w.walletName}`, short(w.walletId)))),
    h("td", {}, w.accounts.map((a) => h("div", { class: "address" },
      badge(formatName(a.addressFormat), "format"), " ", curveBadge(a.curve), " ",
      copyable(a.address, `${formatName(a.addressFormat)} address of ${w.walletName} ${a.path}`), " ", h("small", { text: a.path })))),
    h("td", { text: [w.imported ? "imported" : "", w.exported ? "exported" : ""].filter(Boolean).join(", ") })));
  const name = h("input", { type: "text", required: true });
  const eth = h("input", { type: "checkbox", checked: true });
  const sol = h("input", { type: "checkbox" });
  const form = h("form", { class: "card", "aria-labelledby": "newwallet-h" },
    h("h3", { id: "newwallet-h", text: "Create a wallet" }),
    field("Name", "wallet-name", name),
    choices("Accounts (Turnkey's default paths)", [["wallet-eth", "Ethereum (m/44'/60'/0'/0/0)", eth], ["wallet-sol", "Solana (m/44'/501'/0'/0')", sol]]),
    h("button", { type: "submit", id: "create-wallet", text: "Create with passkey" }));
  form.addEventListener("submit", guarded(async () => {
    const accounts = [];
    if (eth.checked) accounts.push({ curve: "CURVE_SECP256K1", pathFormat: "PATH_FORMAT_BIP32", path: "m/44'/60'/0'/0/0", addressFormat: "ADDRESS_FORMAT_ETHEREUM" });
    if (sol.checked) accounts.push({ curve: "CURVE_ED25519", pathFormat: "PATH_FORMAT_BIP32", path: "m/44'/501'/0'/0'", addressFormat: "ADDRESS_FORMAT_SOLANA" });
    await submit("create_wallet", "ACTIVITY_TYPE_CREATE_WALLET", { walletName: name.value, accounts });
    await render();
  }));
  return [h("h2", { text: "Wallets" }), table(["Name", "Accounts", ""], rows, null, "No wallets yet: create one below."), form];
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
  const rows = data.policies.map((p) => h("tr", { "data-policy": p.policyId },
    h("td", {}, p.policyName, h("div", { class: "sub" }, copyable(p.policyId, `policy ID of ${p.policyName}`, short(p.policyId)))),
    h("td", {}, badge(p.effect.replace("EFFECT_", "").toLowerCase(), p.effect === "EFFECT_DENY" ? "effect bad" : "effect ok")),
    h("td", {}, h("code", { text: p.condition || "(any)" })),
    h("td", {}, h("code", { text: p.consensus || "(none)" })),
    h("td", {},
      h("a", { href: `#policies/${p.policyId}`, class: "button-link", "aria-label": `Edit policy ${p.policyName}`, text: "Edit" }), " ",
      h("button", { type: "button", class: "danger", "aria-label": `Delete policy ${p.policyName}`, text: "Delete",
        onclick: guarded(async () => { await submit("delete_policy", "ACTIVITY_TYPE_DELETE_POLICY", { policyId: p.policyId }); await render(); }) }))));
  const out = [h("h2", { text: "Policies" }), table(["Name", "Effect", "Condition", "Consensus", ""], rows, null, "No policies yet: only the root quorum can act.")];
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
        if (location.hash === "#policies") await render(); else { carryFlashTo("#policies"); location.hash = "#policies"; }
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
    h("td", {}, h("a", { href: `#activity/${a.id}`, text: short(a.id) }), " ", copyButton(a.id, `activity ID ${a.id}`)),
    h("td", { text: a.type.replace("ACTIVITY_TYPE_", "") }),
    h("td", { class: "activity-status" }, statusBadge(a.status)),
    h("td", { text: when(a.createdAt) }),
    h("td", {}, voteButtons(a))));
  return [h("h2", { text: "Activities" }), filters, table(["ID", "Type", "Status", "Created", "Your vote"], rows, null, "No activities match.")];
}

// -- the activity page: the decoded view (get_activity_view), then votes, raw JSON, audit ------------

function mono(text) { return text === null || text === undefined || text === "" ? "—" : h("code", { text: String(text) }); }
function isoWhen(text) { return text ? `${new Date(text).toLocaleString()} (${text})` : ""; }

function credentialText(c) {
  if (!c) return "";
  const kind = { API_KEY: "API key", PASSKEY: "passkey" }[c.type] || "a credential since deleted";
  return c.id ? `${kind} “${c.name}”` : kind;
}

// Nested JSON (call arguments, typed-data messages, IDL-decoded instructions) as nested facts.
function valueFacts(value) {
  if (value === null || typeof value !== "object") return mono(value);
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  if (!entries.length) return mono("");
  return facts(entries.map(([k, v]) => [k, valueFacts(v)]));
}

function ethSection(tx) {
  if (!tx.decoded) return [h("p", { text: "Bytes that do not decode as an Ethereum transaction." })];
  const wei = (v) => (v === null || v === undefined ? null : `${v} wei`);
  const rows = [
    ["Type", tx.type],
    ["Chain ID", h("span", { "data-field": "chain-id", text: String(tx.chainId ?? "none (pre-EIP-155)") })],
    ["From", mono(tx.from)],
    ["To", h("code", { "data-field": "to", text: tx.to || "(contract creation)" })],
    ["Value", h("span", { "data-field": "value" }, h("strong", { text: `${tx.valueEth} ETH` }), ` (${tx.valueWei} wei)`)],
    ["Nonce", String(tx.nonce)],
    ["Gas limit", tx.gasLimit],
  ];
  for (const [key, label] of [["gasPrice", "Gas price"], ["maxFeePerGas", "Max fee per gas"],
    ["maxPriorityFeePerGas", "Max priority fee per gas"], ["maxFeePerBlobGas", "Max fee per blob gas"]]) {
    if (tx[key] !== null && tx[key] !== undefined) rows.push([label, wei(tx[key])]);
  }
  if (tx.call) rows.push(["Call", h("div", {}, h("code", { text: tx.call.functionSignature }), valueFacts(tx.call.arguments))]);
  else if ("call" in tx) rows.push(["Call", "not decoded: no stored ABI for this address describes it"]);
  rows.push(["Data", tx.data === "0x" ? "none" : h("code", { class: "wrap", text: tx.data })]);
  return [h("h4", { text: `Ethereum transaction (${tx.type})` }), facts(rows)];
}

function typedDataSection(td) {
  if (!td.decoded) return [h("p", { text: "An EIP-712 digest input: the typed data behind it is not known." })];
  const domain = Object.entries(td.domain).filter(([, v]) => v !== null && v !== undefined);
  return [
    h("h4", { text: `EIP-712 typed data: ${td.primaryType}` }),
    facts([["Primary type", td.primaryType], ["Domain", valueFacts(Object.fromEntries(domain))], ["Message", valueFacts(td.message)]]),
  ];
}

function solanaSection(sol) {
  return [
    h("h4", { text: "Solana transaction" }),
    table(["From", "To", "SOL", "Lamports"], sol.transfers.map((t) => h("tr", {},
      h("td", {}, mono(t.from)), h("td", {}, mono(t.to)), h("td", {}, h("strong", { text: t.sol })), h("td", { text: t.lamports }))), "SOL transfers"),
    sol.splTransfers.length ? table(["From", "To", "Amount", "Mint"], sol.splTransfers.map((t) => h("tr", {},
      h("td", {}, mono(t.from)), h("td", {}, mono(t.to)), h("td", { text: t.amount }), h("td", {}, mono(t.tokenMint)))), "Token transfers") : null,
    table(["#", "Program", "Data", "Decoded"], sol.instructions.map((ins, i) => h("tr", {},
      h("td", { text: String(i) }), h("td", {}, mono(ins.programKey)), h("td", {}, mono(ins.dataHex)),
      h("td", {}, ins.parsed ? valueFacts(ins.parsed) : "—"))), "Instructions"),
    facts([["Recent blockhash", mono(sol.recentBlockhash)]]),
  ];
}

function payloadSection(p) {
  const out = [];
  if (p.subject) out.push(h("h4", { text: p.subject }));
  if (p.raw && "payload" in p.raw) {
    out.push(facts([["Payload", h("code", { class: "wrap", text: p.raw.payload })],
      ["Encoding", p.raw.encoding], ["Hash function", p.raw.hashFunction]]));
  }
  if (p.ethereumTransaction) out.push(...ethSection(p.ethereumTransaction));
  if (p.typedData) out.push(...typedDataSection(p.typedData));
  if (p.authorization) out.push(h("h4", { text: "EIP-7702 authorization" }), valueFacts(p.authorization));
  if (p.solanaTransaction) out.push(...solanaSection(p.solanaTransaction));
  return out;
}

function signerText(s) {
  const what = s.kind === "WALLET_ACCOUNT" ? `wallet “${s.name}” account` : `private key “${s.name}”`;
  return h("span", {}, `${what} `, h("code", { text: s.address }), ` (${s.curve.replace("CURVE_", "")})`);
}

function policyRows(policies) {
  return policies.map((p) => h("tr", {},
    h("td", {}, h("strong", { text: p.policyName || "(deleted policy)" }), h("br"), h("small", {}, mono(p.policyId))),
    h("td", { text: (p.effect || "—").replace("EFFECT_", "") }),
    h("td", { text: (p.outcome || "").replace("OUTCOME_", "") }),
    h("td", {}, (p.consensusProgress || []).length
      ? h("ul", { class: "progress" }, p.consensusProgress.map((s) => h("li", { class: s.met ? "met" : "unmet", text: s.description })))
      : (p.consensus ? h("code", { text: p.consensus }) : "—"))));
}

async function pageActivity(id) {
  const data = await api(`activities/${encodeURIComponent(id)}`);
  const a = data.activity;
  const v = data.view;
  const waiting = Array.isArray(v.waitingFor);
  const requester = v.requester || {};
  return [
    h("h2", { text: `Activity ${a.type.replace("ACTIVITY_TYPE_", "")}` }),
    h("section", { class: "activity-view", "aria-label": "What is asked" },
      facts([
        ["Status", h("span", { id: "activity-status", text: a.status })],
        ["Requested by", h("span", {}, h("strong", { text: requester.userName || "?" }), " ", h("small", {}, mono(requester.userId)),
          requester.credential ? ` with ${credentialText(requester.credential)}` : "")],
        v.signer ? ["Signs with", signerText(v.signer)] : null,
        ["Created", isoWhen(v.createdAt)],
        waiting ? ["Vote window ends", isoWhen(v.voteWindowEndsAt)] : null,
        ["ID", h("code", { text: a.id })],
        ["Fingerprint", h("code", { class: "wrap", text: a.fingerprint })],
      ].filter(Boolean)),
      waiting ? h("div", { class: "waiting", role: "status" },
        h("strong", { text: "Waiting for approvals" }),
        h("ul", {}, (v.waitingFor.length ? v.waitingFor : ["more approvals"]).map((w) => h("li", { text: w })))) : null,
      ...[voteButtons(a)].filter(Boolean),
      h("h3", { text: "What is asked" }),
      ...(v.payloads || []).flatMap(payloadSection),
      v.decodeError ? h("p", { class: "hint", text: `Not decoded: ${v.decodeError}` }) : null,
      !(v.payloads || []).length ? valueFacts(v.parameters) : null),
    h("h3", { text: "Policies" }),
    table(["Policy", "Effect", "Outcome", "Consensus"], policyRows(v.policies || []), "Policies that matched, and what each still needs"),
    (v.policiesNotMatched || []).length ? h("p", { class: "hint",
      text: `Did not match: ${v.policiesNotMatched.map((p) => p.policyName || p.policyId).join(", ")}.` }) : null,
    h("h3", { text: "Votes" }),
    table(["User", "Vote", "Credential", "At"], (v.votes || []).map((x) => h("tr", {},
      h("td", { text: x.userName || x.userId }), h("td", { text: (x.selection || "").replace("VOTE_SELECTION_", "") }),
      h("td", { text: credentialText(x.credential) }), h("td", { text: isoWhen(x.at) })))),
    h("h3", { text: v.failure ? "Failure" : "Result" }),
    v.failure ? facts([["Message", v.failure.message], ["Code", String(v.failure.code)]])
      : (v.result && Object.keys(v.result).length ? valueFacts(v.result) : h("p", { class: "hint", text: waiting ? "None yet." : "None." })),
    h("details", { class: "raw-json" },
      h("summary", { text: "Raw JSON (intent, result, policy evaluations, decoded view)" }),
      h("h4", { text: "Intent" }), h("pre", { text: JSON.stringify(a.intent, null, 2) }),
      h("h4", { text: "Result" }), h("pre", { text: JSON.stringify(a.failure || a.result, null, 2) }),
      h("h4", { text: "Policy evaluations" }), h("pre", { text: JSON.stringify(data.policyEvaluations, null, 2) }),
      h("h4", { text: "Decoded view" }), h("pre", { text: JSON.stringify(v, null, 2) })),
    h("h3", { id: "audit", text: "Audit log" }),
    table(["Seq", "Entry hash", "Status"], data.audit.map((e) => h("tr", { id: `audit-${e.seq}` },
      h("td", { text: String(e.seq) }), h("td", {}, h("code", { text: e.hash })), h("td", { text: e.entry.status })))),
    h("p", { class: "hint", text: "Check the whole chain offline with `strongroom audit verify`." }),
  ].filter(Boolean);
}

async function pageSuborgs() {
  const data = await api("suborgs");
  const rows = data.subOrganizations.map((s) => h("tr", {},
    h("td", { text: s.name }), h("td", {}, copyable(s.organizationId, `organization ID of ${s.name}`)), h("td", { text: String(s.users) }), h("td", { text: when(s.createdAt) })));
  return [h("h2", { text: "Sub-organizations" }), table(["Name", "ID", "Users", "Created"], rows, null, "No sub-organizations.")];
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
  addCopyButtons(main);
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
  if (hash && location.hash !== hash) { carryFlashTo(hash); location.hash = hash; } // triggers render via hashchange
  else await render();
}

window.addEventListener("hashchange", () => { flashOnNavigation(); render(); });
start();
