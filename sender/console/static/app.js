// Salvo's operator console. Plain JavaScript, no build step: it calls the campaign API
// (docs/api.md) with the token its user enters, kept in sessionStorage for this tab only.
"use strict";

const TOKEN_KEY = "salvo.token";
const TARGET_MS = 5000; // every notification out within 5 s of GO

// ---- DOM helpers: every text goes in through textContent, never as HTML. ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);

function fmtTime(s) {
  if (!s) return "";
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function fmtInt(n) { return (n || 0).toLocaleString("en-US"); }

function fmtBytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

function fmtMs(ms) { return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms"; }

function pill(state) { return h("span", { class: "pill s-" + state }, state.replaceAll("_", " ")); }

// ---- The API ----

class APIError extends Error {
  constructor(status, message, field) {
    super(field ? field + ": " + message : message);
    this.status = status;
    this.field = field;
  }
}

const session = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  user: null,
};

async function api(method, path, body, contentType) {
  const headers = { Authorization: "Bearer " + session.token };
  const opts = { method, headers };
  if (body !== undefined) {
    if (body instanceof Blob) {
      opts.body = body;
      headers["Content-Type"] = contentType || "application/octet-stream";
    } else {
      opts.body = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data;
  try { data = text ? JSON.parse(text) : {}; } catch { data = { error: text }; }
  if (resp.status === 401 && session.user) {
    signOut("The server refused your token; sign in again.");
  }
  if (!resp.ok) throw new APIError(resp.status, data.error || resp.statusText, data.field);
  return data;
}

const can = (role) => !!session.user && (session.user.roles.includes(role) || session.user.roles.includes("admin"));

// ---- Sign in and out ----

async function signIn(token) {
  session.token = token;
  const me = await api("GET", "/v1/whoami");
  session.user = me;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("#who-name").textContent = me.name + " (" + me.roles.join(", ") + ")";
  $("#who").hidden = false;
  $("#nav").hidden = false;
  $("#login").hidden = true;
  $("#view").hidden = false;
  route();
}

function signOut(message) {
  stopPolling();
  session.token = "";
  session.user = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("#who").hidden = true;
  $("#nav").hidden = true;
  $("#view").hidden = true;
  $("#view").replaceChildren();
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#token").value = "";
  $("#token").focus();
}

// ---- Routing: #/ list, #/new create, #/c/<id> detail, #/schedules rules ----

let poller = null;
function stopPolling() { if (poller) { clearTimeout(poller); poller = null; } }
function poll(fn, every) {
  stopPolling();
  const tick = async () => {
    try { await fn(); } catch (e) { showError(e); }
    if (poller !== null) poller = setTimeout(tick, every);
  };
  poller = 0;
  tick();
}

function route() {
  if (!session.user) return;
  stopPolling();
  const hash = location.hash || "#/";
  const view = $("#view");
  view.replaceChildren();
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.getAttribute("href") === hash);
  if (hash === "#/new") return showCreate(view);
  if (hash === "#/schedules") return showSchedules(view);
  const m = hash.match(/^#\/c\/([A-Za-z0-9_-]{1,64})$/);
  if (m) return showCampaign(view, m[1]);
  return showList(view);
}

function showError(e) {
  const box = $("#flash");
  if (box) box.textContent = e && e.message ? e.message : String(e);
  else console.error(e);
}

function clearError() {
  const box = $("#flash");
  if (box) box.textContent = "";
}

function flash() { return h("p", { id: "flash", class: "error", role: "alert" }); }

// ---- The campaign list ----

function showList(view) {
  const body = h("tbody");
  view.append(
    h("div", { class: "bar" }, h("h1", {}, "Campaigns"), can("creator") && h("a", { class: "button primary", href: "#/new" }, "New campaign")),
    flash(),
    h("table", { class: "list", id: "campaigns" },
      h("thead", {}, h("tr", {}, ["Campaign", "State", "Recipients", "Approvals", "Send at", "Created"].map((t) => h("th", {}, t)))),
      body));
  poll(async () => {
    const { campaigns } = await api("GET", "/v1/campaigns");
    campaigns.sort((a, b) => (b.created_at || "").localeCompare(a.created_at || ""));
    body.replaceChildren(...campaigns.map((c) => {
      const req = c.spec.approvals_required || 0;
      return h("tr", { dataset: { id: c.id } },
        h("td", {}, h("a", { href: "#/c/" + c.id }, c.spec.name), h("div", { class: "muted small" }, c.id)),
        h("td", {}, pill(c.state)),
        h("td", { class: "num" }, fmtInt(c.resolution.recipients)),
        h("td", {}, req ? (c.rejection ? "rejected" : (c.approvals || []).length + " of " + req) : "none needed"),
        h("td", {}, c.schedule ? fmtTime(c.schedule.send_at) + " (" + c.schedule.state + ")" : ""),
        h("td", {}, fmtTime(c.created_at), h("div", { class: "muted small" }, c.created_by || "")));
    }));
    if (!campaigns.length) body.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No campaign yet.")));
  }, 3000);
}

// ---- Message fields, shared by create, edit and schedules ----

function messageFields(prefix, m) {
  m = m || {};
  const alert = (((m.apns || {}).payload || {}).aps || {}).alert || {};
  const field = (name, label, value) => h("label", {}, label, h("input", { name: prefix + name, id: prefix + name, value: value || "" }));
  return h("fieldset", { class: "message" },
    h("legend", {}, "Message"),
    h("div", { class: "cols" },
      h("div", {}, h("h3", {}, "iOS (APNs)"), field("ios-title", "Title", typeof alert === "string" ? alert : alert.title),
        field("ios-body", "Body", alert.body)),
      h("div", {}, h("h3", {}, "Android (FCM)"), field("android-title", "Title", (m.fcm || {}).title),
        field("android-body", "Body", (m.fcm || {}).body))),
    h("p", { class: "muted small" }, "Leave both fields of a platform empty to send it nothing (its devices are counted as left out)."));
}

function readMessage(form, prefix) {
  const v = (n) => form.elements[prefix + n].value.trim();
  const msg = {};
  if (v("ios-title") || v("ios-body")) {
    const alert = {};
    if (v("ios-title")) alert.title = v("ios-title");
    if (v("ios-body")) alert.body = v("ios-body");
    msg.apns = { payload: { aps: { alert, sound: "default" } } };
  }
  if (v("android-title") || v("android-body")) {
    msg.fcm = {};
    if (v("android-title")) msg.fcm.title = v("android-title");
    if (v("android-body")) msg.fcm.body = v("android-body");
  }
  return msg;
}

// ---- Create ----

function variantRow(i) {
  return h("tr", { class: "variant" },
    h("td", {}, h("input", { name: "v-name", value: String.fromCharCode(97 + i), size: 6, "aria-label": "Variant name" })),
    h("td", {}, h("input", { name: "v-percent", type: "number", min: 0, max: 100, step: "any", value: 50, "aria-label": "Percent" })),
    h("td", {}, h("input", { name: "v-ios", placeholder: "iOS title (blank: base)", "aria-label": "iOS title" })),
    h("td", {}, h("input", { name: "v-android", placeholder: "Android title (blank: base)", "aria-label": "Android title" })),
    h("td", {}, h("button", { type: "button", class: "link", onclick: (e) => e.target.closest("tr").remove() }, "remove")));
}

function showCreate(view) {
  if (!can("creator")) {
    view.append(h("h1", {}, "New campaign"), h("p", { class: "error" }, "Creating campaigns needs the creator role."));
    return;
  }
  const variants = h("tbody");
  const form = h("form", { id: "create-form", class: "card", autocomplete: "off" },
    h("div", { class: "cols" },
      h("label", {}, "Name", h("input", { name: "name", required: true, placeholder: "TV spot, Saturday final" })),
      h("label", {}, "ID (optional)", h("input", { name: "id", pattern: "[A-Za-z0-9_-]{1,64}", placeholder: "made up when empty" }))),
    h("fieldset", {},
      h("legend", {}, "Audience"),
      h("label", { class: "inline" }, h("input", { type: "radio", name: "aud", value: "file", checked: true }), " Upload a file (CSV, NDJSON or JSON of user IDs)"),
      h("input", { type: "file", name: "file", accept: ".csv,.txt,.ndjson,.jsonl,.json" }),
      h("label", { class: "inline" }, h("input", { type: "radio", name: "aud", value: "paste" }), " Or paste user IDs, one per line"),
      h("textarea", { name: "users", rows: 4, placeholder: "u1\nu2" })),
    messageFields("m-"),
    h("fieldset", {},
      h("legend", {}, "Variants and control group"),
      h("table", { class: "variants" },
        h("thead", {}, h("tr", {}, ["Name", "%", "iOS title", "Android title", ""].map((t) => h("th", {}, t)))),
        variants),
      h("button", { type: "button", id: "add-variant", onclick: () => variants.append(variantRow(variants.children.length)) }, "Add variant"),
      h("label", { class: "short" }, "Control group %", h("input", { name: "control", type: "number", min: 0, max: 100, step: "any", value: 0 })),
      h("p", { class: "muted small" }, "Variant percentages plus the control group add up to 100. The control group gets nothing.")),
    h("fieldset", {},
      h("legend", {}, "Review and timing"),
      h("div", { class: "cols" },
        h("label", {}, "Approvals required", h("input", { name: "approvals", type: "number", min: 0, max: 10, value: 1 })),
        h("label", {}, "Send at (optional; local time)", h("input", { name: "send_at", type: "datetime-local", step: 1 })),
        h("label", { class: "inline" }, h("input", { type: "checkbox", name: "silent" }), " Silent (background push)"))),
    h("div", { class: "bar" }, h("button", { type: "submit", class: "primary", id: "create" }, "Create campaign")),
    h("p", { class: "error", id: "create-error", role: "alert" }));
  form.addEventListener("submit", (e) => { e.preventDefault(); create(form); });
  view.append(h("h1", {}, "New campaign"), form);
}

async function create(form) {
  const err = $("#create-error");
  err.textContent = "";
  const f = form.elements;
  const button = $("#create");
  button.disabled = true;
  try {
    const spec = { name: f.name.value.trim(), message: readMessage(form, "m-") };
    if (f.id.value.trim()) spec.id = f.id.value.trim();
    if (form.querySelector("input[name=aud]:checked").value === "file") {
      const file = f.file.files[0];
      if (!file) throw new Error("audience: choose a file, or paste user IDs");
      const safe = file.name.replace(/[^A-Za-z0-9._-]/g, "_");
      const key = "audiences/" + new Date().toISOString().replace(/[:.]/g, "-") + "-" + safe;
      await api("PUT", "/v1/objects/" + key, file, "text/plain");
      spec.audience = { object: key };
    } else {
      spec.audience = { user_ids: f.users.value.split(/\s+/).filter(Boolean) };
    }
    const rows = [...form.querySelectorAll("tr.variant")];
    if (rows.length) {
      spec.variants = rows.map((r) => {
        const v = { name: $("[name=v-name]", r).value.trim(), percent: Number($("[name=v-percent]", r).value), message: {} };
        const ios = $("[name=v-ios]", r).value.trim();
        const android = $("[name=v-android]", r).value.trim();
        if (ios && spec.message.apns) v.message.apns = { payload: { aps: { alert: { ...spec.message.apns.payload.aps.alert, title: ios }, sound: "default" } } };
        if (android && spec.message.fcm) v.message.fcm = { ...spec.message.fcm, title: android };
        return v;
      });
    }
    const control = Number(f.control.value || 0);
    if (control) spec.control_percent = control;
    const approvals = Number(f.approvals.value || 0);
    if (approvals) spec.approvals_required = approvals;
    if (f.send_at.value) spec.send_at = new Date(f.send_at.value).toISOString();
    if (f.silent.checked) {
      spec.silent = true;
      if (spec.message.fcm) spec.message.fcm.data = { silent: "1" };
    }
    const res = await api("POST", "/v1/campaigns", spec);
    location.hash = "#/c/" + res.id;
  } catch (e) {
    err.textContent = e.message;
  } finally {
    button.disabled = false;
  }
}

// ---- A campaign ----

// samples keeps what the live chart draws, per campaign, while the page stays open.
const samples = new Map();

function showCampaign(view, id) {
  const root = h("div", { id: "campaign" }, h("p", { class: "muted" }, "Loading…"));
  root.state = { id, pressing: false, lastTest: null };
  view.append(h("p", {}, h("a", { href: "#/" }, "← Campaigns")), root, flash());
  poll(async () => {
    const st = await api("GET", "/v1/campaigns/" + encodeURIComponent(id));
    record(st);
    renderCampaign(root.state, st);
  }, 1000);
}

// record adds a sample of the send's progress for the chart.
function record(st) {
  const c = st.campaign, p = st.progress;
  if (!c.send || !p) return;
  const list = samples.get(c.id) || [];
  const t = Math.max(0, (Date.now() - Date.parse(c.send.pressed_at)) / 1000);
  const last = list[list.length - 1];
  if (!list.length) list.push({ t: 0, accepted: 0, p95: 0, p99: 0 });
  if (!last || last.accepted !== p.accepted || c.state === "sending") {
    list.push({ t: c.result ? Math.min(t, Math.max(0, (Date.parse(c.result.finished_at) - Date.parse(c.send.pressed_at)) / 1000)) : t,
      accepted: p.accepted, p95: p.latency_ms.p95, p99: p.latency_ms.p99 });
  }
  samples.set(c.id, list);
}

// renderCampaign draws the campaign page part by part: a part is built again only when what
// it shows changed, and put in place of the old one, so that the rest of the page (a button
// being clicked, a field being typed in) is left alone while the status is polled.
function renderCampaign(state, st) {
  const c = st.campaign;
  const root = $("#campaign");
  if (!root) return;
  const closed = ["done", "done_with_failures", "aborted", "failed"].includes(c.state);
  const parts = [
    ["header", () => header(c), [c.spec.name, c.state, c.schedule, c.created_at, c.created_by, c.error, !!c.send]],
    ["resolution", () => resolutionCard(c), [c.resolution]],
    ["approval", () => approvalCard(state, st), [st.approval, closed, !!c.send, c.test_pushes, c.message_version, state.lastTest]],
    ["message", () => messageCard(c), [c.spec, c.message_version, closed, !!c.send]],
    ["prepare", () => prepareCard(st), [st.ready, st.prepared, c.prepare, c.state]],
    ["go", () => goCard(state, st), [c.send, c.state, st.approval, st.prepared, state.pressing]],
    ["live", () => liveCard(st), [st.progress, c.result, c.state]],
    ["audit", () => auditCard(c), [c.audit]],
  ];
  if (!state.parts) {
    state.parts = {};
    root.replaceChildren(h("div", { dataset: { part: "header" } }),
      h("div", { class: "grid" }, ["resolution", "approval", "message", "prepare", "go", "live"].map((p) => h("div", { dataset: { part: p } }))),
      h("div", { dataset: { part: "audit" } }));
  }
  for (const [name, build, deps] of parts) {
    const key = JSON.stringify(deps);
    const old = state.parts[name];
    if (old && old.key === key) continue;
    const slot = old ? old.el : root.querySelector(`[data-part="${name}"]`);
    const el = build();
    el.dataset.part = name;
    slot.replaceWith(el);
    state.parts[name] = { key, el };
  }
  drawChart(root.querySelector("#chart"), samples.get(c.id) || [], st);
}

function header(c) {
  const s = c.schedule;
  return h("div", { class: "head" },
    h("div", {},
      h("h1", {}, c.spec.name, " ", pill(c.state)),
      h("p", { class: "muted" }, c.id, " · created ", fmtTime(c.created_at), c.created_by ? " by " + c.created_by : "",
        c.error ? " · " + c.error : "")),
    s && h("div", { class: "schedule card" },
      h("strong", {}, "Scheduled: "), fmtTime(s.send_at), " · ", s.state, s.rule ? " · rule " + s.rule : "",
      s.note ? h("div", { class: "small warn" }, s.note) : null,
      s.state === "waiting" && !c.send && can("operator") &&
        h("button", { type: "button", id: "cancel", onclick: () => act(() => api("POST", "/v1/campaigns/" + c.id + "/cancel", { reason: "cancelled in the console" }), "Cancel the scheduled send? Nothing will be sent.") }, "Cancel scheduled send")));
}

function kv(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function resolutionCard(c) {
  const r = c.resolution;
  const byVariant = Object.entries(r.by_variant || {}).map(([k, v]) => k + " " + fmtInt(v)).join(", ");
  const left = Object.entries(r.no_message || {}).map(([k, v]) => fmtInt(v) + " " + k).join(", ");
  return h("section", { class: "card" }, h("h2", {}, "Audience"),
    kv([
      ["Users", fmtInt(r.users_resolved) + " of " + fmtInt(r.users_total) + " resolved"],
      ["Recipients", fmtInt(r.recipients) + " devices (" + fmtInt(r.ios) + " iOS, " + fmtInt(r.android) + " Android)"],
      ["Control group", fmtInt(r.control_users) + " users, " + fmtInt(r.control_devices) + " devices"],
      byVariant && ["Variants", byVariant],
      r.unknown_users ? ["Unknown users", fmtInt(r.unknown_users)] : null,
      left && ["Left out (no message)", left],
    ]));
}

function approvalCard(state, st) {
  const c = st.campaign, a = st.approval;
  const open = !c.send && !["done", "done_with_failures", "aborted", "failed"].includes(c.state);
  const results = state.lastTest;
  const summary = a.rejected
    ? h("p", { class: "error" }, "Rejected by " + a.rejected.by + ": " + a.rejected.detail + ". An edit of the message asks for approval again.")
    : h("p", { id: "approval-summary", class: a.missing ? "warn" : "ok" },
      a.required ? a.approved + " of " + a.required + " approvals" + (a.by ? " (" + a.by.join(", ") + ")" : "") : "No approval needed");
  // Approving twice changes nothing: whoever approved sees that instead of the button.
  const approvedByMe = !a.rejected && (a.by || []).includes(session.user.name);
  const mine = (c.test_pushes || []).filter((t) => t.by === session.user.name && t.message_version === (c.message_version || 0) && t.accepted > 0);
  return h("section", { class: "card", id: "approvals" }, h("h2", {}, "Review"),
    summary,
    h("div", { class: "actions" },
      h("button", { type: "button", id: "test-push", disabled: !session.user.user_id,
        title: session.user.user_id ? "Send the message, every variant, to your own devices" : "Your user has no user_id in the auth file",
        onclick: () => act(async () => { state.lastTest = await api("POST", "/v1/campaigns/" + c.id + "/test-push", {}); }) }, "Send me a test push"),
      can("approver") && open && !approvedByMe && h("button", { type: "button", class: "primary", id: "approve",
        onclick: () => act(() => api("POST", "/v1/campaigns/" + c.id + "/approve", {})) }, "Approve"),
      can("approver") && open && h("span", { class: "reject" },
        h("input", { id: "reject-reason", placeholder: "Reason to reject", value: state.rejectReason || "", "aria-label": "Reason to reject",
          oninput: (e) => { state.rejectReason = e.target.value; } }),
        h("button", { type: "button", id: "reject", onclick: () => act(() => api("POST", "/v1/campaigns/" + c.id + "/reject", { reason: $("#reject-reason").value })) }, "Reject"))),
    h("p", { class: "muted small" }, (mine.length ? "You sent yourself this version." : "Approvers first send themselves a test push of the current version.") +
      (approvedByMe ? " You approved it." : "")),
    results && h("table", { class: "list small", id: "test-results" },
      h("thead", {}, h("tr", {}, ["Variant", "Platform", "Device", "Answer"].map((t) => h("th", {}, t)))),
      h("tbody", {}, results.results.map((r) => h("tr", {}, h("td", {}, r.variant), h("td", {}, r.platform), h("td", {}, r.token),
        h("td", { class: r.outcome === "accepted" ? "ok" : "error" }, r.outcome + (r.reason ? " (" + r.reason + ")" : "")))))));
}

function messageCard(c) {
  const m = c.spec.message;
  const alert = (((m.apns || {}).payload || {}).aps || {}).alert;
  const iosText = typeof alert === "string" ? alert : alert ? [alert.title, alert.body].filter(Boolean).join(" — ") : "none";
  const androidText = m.fcm ? [m.fcm.title, m.fcm.body].filter(Boolean).join(" — ") || "data only" : "none";
  const open = !c.send && !["done", "done_with_failures", "aborted", "failed"].includes(c.state);
  let edit = null;
  if (open && can("creator")) {
    edit = h("form", { id: "edit-form", hidden: true },
      messageFields("e-", m),
      h("button", { type: "submit", class: "primary" }, "Save the message (voids approvals)"));
    edit.addEventListener("submit", (e) => {
      e.preventDefault();
      const msg = readMessage(edit, "e-");
      act(() => api("PUT", "/v1/campaigns/" + c.id + "/message", { message: msg })).then(() => { edit.hidden = true; });
    });
  }
  return h("section", { class: "card" }, h("h2", {}, "Message ", h("span", { class: "muted small" }, "version " + (c.message_version || 0))),
    kv([["iOS", iosText], ["Android", androidText],
      c.spec.variants && ["Variants", c.spec.variants.map((v) => v.name + " " + v.percent + "%").join(", ") +
        (c.spec.control_percent ? ", control " + c.spec.control_percent + "%" : "")],
      c.spec.silent && ["Silent", "background push"]]),
    edit && h("button", { type: "button", class: "link", id: "edit", onclick: () => { edit.hidden = !edit.hidden; } }, "Edit message"),
    edit);
}

function prepareCard(st) {
  const c = st.campaign;
  const want = c.prepare ? c.prepare.workers : 0;
  const ready = st.ready || [];
  return h("section", { class: "card", id: "prepare" }, h("h2", {}, "Prepare"),
    h("p", { id: "prepared", class: st.prepared ? "ok" : "muted" },
      st.prepared ? "Prepared: " + ready.length + " of " + want + " workers hold every recipient"
        : c.prepare ? "Preparing: " + ready.length + " of " + want + " workers ready" : "Not prepared yet"),
    ready.length > 0 && h("table", { class: "list small", id: "readiness" },
      h("thead", {}, h("tr", {}, ["Worker", "Recipients", "Memory", "Load"].map((t) => h("th", {}, t)))),
      h("tbody", {}, ready.map((r) => h("tr", {},
        h("td", {}, r.worker, h("div", { class: "muted" }, "message v" + (r.message_version || 0) + " · " + fmtTime(r.ready_at))),
        h("td", { class: "num" }, fmtInt(r.recipients)),
        h("td", { class: "num" }, fmtBytes(r.resident_bytes)), h("td", { class: "num" }, r.load_ms + " ms"))))),
    can("operator") && c.state === "resolved" && h("div", { class: "actions" },
      h("label", { class: "short" }, "Workers", h("input", { id: "workers", type: "number", min: 1, value: want || 1 })),
      h("button", { type: "button", id: "prepare-button", onclick: () => act(() => api("POST", "/v1/campaigns/" + c.id + "/prepare", { workers: Number($("#workers").value || 1) })) }, "Prepare")));
}

function goBlockers(st) {
  const c = st.campaign, out = [];
  if (c.state !== "resolved") out.push("state is " + c.state);
  if (st.approval.rejected) out.push("rejected");
  else if (st.approval.missing) out.push(st.approval.missing + " approval" + (st.approval.missing > 1 ? "s" : "") + " missing");
  if (!st.prepared) out.push("not prepared");
  return out;
}

function goCard(state, st) {
  const c = st.campaign;
  if (c.send) {
    return h("section", { class: "card go-card" }, h("h2", {}, "GO"),
      h("p", { class: "ok", id: "pressed" }, "Pressed " + fmtTime(c.send.pressed_at) + " · send " + c.send.id),
      abortButton(state, c));
  }
  if (!can("operator")) return h("section", { class: "card go-card" }, h("h2", {}, "GO"), h("p", { class: "muted" }, "Pressing GO needs the operator role."));
  const blockers = goBlockers(st);
  const typed = state.typed || "";
  const matches = typed === c.spec.name;
  const button = h("button", { type: "button", id: "go", class: "go", disabled: !matches || blockers.length > 0 || state.pressing,
    "aria-label": "GO: send " + c.spec.name, onclick: () => press(state, c) }, state.pressing ? "…" : "GO");
  const input = h("input", { id: "confirm", value: typed, autocomplete: "off", spellcheck: "false",
    placeholder: "the campaign's name", "aria-label": "Type the campaign name to arm GO" });
  input.addEventListener("input", () => {
    state.typed = input.value;
    button.disabled = input.value !== c.spec.name || blockers.length > 0 || state.pressing;
  });
  return h("section", { class: "card go-card" }, h("h2", {}, "GO"),
    h("label", { for: "confirm" }, "Type the campaign name, ", h("q", {}, c.spec.name), ", to arm the button"),
    input,
    h("div", { class: "go-wrap", id: "go-wrap" }, button),
    h("p", { class: blockers.length ? "warn small" : "muted small", id: "go-blockers" },
      blockers.length ? "Not yet: " + blockers.join(", ") + "." : "Ready. One press sends to every recipient; more presses change nothing."),
    abortButton(state, c));
}

async function press(state, c) {
  if (state.pressing) return;
  state.pressing = true;
  $("#go").disabled = true;
  await act(async () => {
    const res = await api("POST", "/v1/campaigns/" + c.id + "/go");
    if (res.already_pressed) throw new Error("Already pressed: send " + res.send_id);
  });
  state.pressing = false;
}

// abortButton is two steps: "Abort…" opens a reason and the button that really aborts.
function abortButton(state, c) {
  if (!can("operator") || ["done", "done_with_failures", "aborted", "failed"].includes(c.state)) return null;
  const confirmBox = h("div", { class: "actions abort-confirm", hidden: !state.abortOpen },
    h("input", { id: "abort-reason", placeholder: "Why abort?", "aria-label": "Reason to abort", value: state.abortReason || "",
      oninput: (e) => { state.abortReason = e.target.value; } }),
    h("button", { type: "button", class: "danger", id: "abort-confirm",
      onclick: () => act(() => api("POST", "/v1/campaigns/" + c.id + "/abort", { reason: $("#abort-reason").value })) },
    "Abort: push nothing more"));
  return h("div", {},
    h("button", { type: "button", class: "danger", id: "abort", onclick: () => { state.abortOpen = !state.abortOpen; confirmBox.hidden = !state.abortOpen; } }, "Abort…"),
    confirmBox);
}

function liveCard(st) {
  const c = st.campaign, p = st.progress;
  if (!p) {
    return h("section", { class: "card wide", id: "live" }, h("h2", {}, "Live"),
      h("p", { class: "muted" }, "The chart of accepted notifications over time starts at GO."));
  }
  const badge = (label, ms) => h("span", { class: "badge " + (ms <= TARGET_MS ? "ok" : "bad") }, label + " " + fmtMs(ms));
  const pct = p.recipients ? Math.round((100 * p.accepted) / p.recipients) : 0;
  return h("section", { class: "card wide", id: "live" }, h("h2", {}, "Live"),
    h("div", { class: "figures" },
      h("span", { id: "accepted" }, h("strong", {}, fmtInt(p.accepted)), " of ", fmtInt(p.recipients), " accepted (", pct, "%)"),
      h("span", {}, fmtInt(p.rejected), " rejected"), h("span", {}, fmtInt(p.failed), " failed"),
      h("span", {}, fmtInt(p.in_flight), " in flight"), p.unsent ? h("span", {}, fmtInt(p.unsent), " unsent") : null,
      badge("p95", p.latency_ms.p95), badge("p99", p.latency_ms.p99),
      h("span", { class: "muted" }, "target 5 s")),
    p.stall && h("p", { class: "warn" }, "Stalled since " + fmtTime(p.stall.since) + ": " + p.stall.cause),
    h("canvas", { id: "chart", width: 880, height: 300, role: "img", "aria-label": "Accepted over time, and p95/p99 latency against the 5-second target" }),
    c.result && h("p", { class: "muted small", id: "result" }, "Finished " + fmtTime(c.result.finished_at) + ": " +
      fmtInt(c.result.accepted) + " accepted, " + fmtInt(c.result.rejected) + " rejected, " + fmtInt(c.result.failed) + " failed, " +
      fmtInt(c.result.unsent) + " unsent."));
}

function auditCard(c) {
  return h("section", { class: "card" }, h("h2", {}, "Audit log"),
    h("table", { class: "list small", id: "audit" },
      h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Detail"].map((t) => h("th", {}, t)))),
      h("tbody", {}, (c.audit || []).slice().reverse().map((a) =>
        h("tr", {}, h("td", {}, fmtTime(a.at)), h("td", {}, a.by), h("td", {}, a.action), h("td", {}, a.detail || ""))))));
}

// act runs an action, asks first when confirmText is given, shows its error, and refreshes.
async function act(fn, confirmText) {
  if (confirmText && !confirm(confirmText)) return;
  try {
    await fn();
    clearError();
  } catch (e) {
    showError(e);
  }
  const root = $("#campaign");
  if (root) {
    const st = await api("GET", "/v1/campaigns/" + encodeURIComponent(root.state.id)).catch(() => null);
    if (st) {
      record(st);
      renderCampaign(root.state, st);
    }
  }
}

// ---- The live chart: accepted over time (top) and p95/p99 against 5 s (bottom) ----

function drawChart(canvas, list, st) {
  if (!canvas) return;
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth || 880, H = 300;
  canvas.width = W * dpr; canvas.height = H * dpr;
  canvas.style.height = H + "px";
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, W, H);
  g.font = "12px system-ui, sans-serif";
  const left = 64, right = 16, plotW = W - left - right;
  const top1 = 12, h1 = 150, top2 = 200, h2 = 80;
  const tMax = Math.max(6, ...list.map((s) => s.t)) * 1.05;
  const total = st.progress ? st.progress.recipients : 1;
  const x = (t) => left + (t / tMax) * plotW;
  // Frames and axes.
  g.strokeStyle = "#d0d4da"; g.lineWidth = 1;
  g.strokeRect(left, top1, plotW, h1); g.strokeRect(left, top2, plotW, h2);
  g.fillStyle = "#5b6470"; g.textAlign = "right";
  g.fillText(fmtInt(total), left - 6, top1 + 10); g.fillText("0", left - 6, top1 + h1);
  g.textAlign = "left"; g.fillText("accepted", left + 6, top1 + 14);
  g.fillText("latency p95 / p99", left + 6, top2 + 14);
  g.textAlign = "center";
  for (let s = 0; s <= tMax; s += tMax > 30 ? 10 : tMax > 12 ? 2 : 1) {
    g.fillText(s + " s", x(s), top2 + h2 + 14);
    g.beginPath(); g.moveTo(x(s), top2 + h2); g.lineTo(x(s), top2 + h2 + 3); g.stroke();
  }
  // The 5-second target on both panels.
  g.setLineDash([6, 4]); g.strokeStyle = "#c0392b";
  g.beginPath(); g.moveTo(x(5), top1); g.lineTo(x(5), top1 + h1); g.stroke();
  const latMax = Math.max(TARGET_MS * 1.5, ...list.map((s) => s.p99));
  const y2 = (ms) => top2 + h2 - (ms / latMax) * h2;
  g.beginPath(); g.moveTo(left, y2(TARGET_MS)); g.lineTo(left + plotW, y2(TARGET_MS)); g.stroke();
  g.setLineDash([]);
  g.fillStyle = "#c0392b"; g.textAlign = "right"; g.fillText("5 s target", left + plotW - 4, y2(TARGET_MS) - 4);
  // Accepted over time.
  const y1 = (n) => top1 + h1 - (n / Math.max(total, 1)) * h1;
  g.strokeStyle = "#1f6feb"; g.lineWidth = 2;
  g.beginPath();
  list.forEach((s, i) => (i ? g.lineTo(x(s.t), y1(s.accepted)) : g.moveTo(x(s.t), y1(s.accepted))));
  g.stroke();
  // p95 and p99.
  for (const [key, color] of [["p95", "#2da44e"], ["p99", "#bf8700"]]) {
    g.strokeStyle = color; g.beginPath();
    list.forEach((s, i) => (i ? g.lineTo(x(s.t), y2(s[key])) : g.moveTo(x(s.t), y2(s[key]))));
    g.stroke();
  }
  g.textAlign = "left"; g.fillStyle = "#2da44e"; g.fillText("p95", left + 130, top2 + 14);
  g.fillStyle = "#bf8700"; g.fillText("p99", left + 160, top2 + 14);
}

// ---- Recurring rules ----

function showSchedules(view) {
  const body = h("tbody");
  const form = can("creator") && h("form", { id: "rule-form", class: "card", autocomplete: "off" },
    h("h2", {}, "New recurring rule"),
    h("div", { class: "cols" },
      h("label", {}, "ID", h("input", { name: "id", required: true, pattern: "[A-Za-z0-9_-]{1,48}", placeholder: "day1-unfinished" })),
      h("label", {}, "Cron (minute hour day month weekday)", h("input", { name: "cron", required: true, placeholder: "0 9 * * *" })),
      h("label", {}, "Time zone", h("input", { name: "tz", placeholder: "UTC", value: Intl.DateTimeFormat().resolvedOptions().timeZone || "" }))),
    h("div", { class: "cols" },
      h("label", {}, "Campaign name", h("input", { name: "name", required: true, placeholder: "Day 1: finish sign-up" })),
      h("label", {}, "Audience object (read again at every occurrence)", h("input", { name: "object", required: true, placeholder: "audiences/day1-unfinished.csv" }))),
    messageFields("r-"),
    h("button", { type: "submit", class: "primary" }, "Create rule"),
    h("p", { class: "error", id: "rule-error", role: "alert" }));
  if (form) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = form.elements;
      try {
        await api("POST", "/v1/schedules", { id: f.id.value.trim(), cron: f.cron.value.trim(), time_zone: f.tz.value.trim(),
          campaign: { name: f.name.value.trim(), audience: { object: f.object.value.trim() }, message: readMessage(form, "r-") } });
        form.reset();
        $("#rule-error").textContent = "";
      } catch (err) {
        $("#rule-error").textContent = err.message;
      }
    });
  }
  view.append(h("h1", {}, "Recurring rules"), flash(),
    h("table", { class: "list", id: "rules" },
      h("thead", {}, h("tr", {}, ["Rule", "Cron", "Next", "Latest campaign", ""].map((t) => h("th", {}, t)))), body),
    form);
  poll(async () => {
    const { schedules } = await api("GET", "/v1/schedules");
    body.replaceChildren(...schedules.map((r) => h("tr", {},
      h("td", {}, r.id, h("div", { class: "muted small" }, r.campaign.name + " · by " + r.created_by)),
      h("td", {}, h("code", {}, r.cron), " ", r.time_zone || "UTC"),
      h("td", {}, r.cancelled ? "cancelled by " + r.cancelled.by : fmtTime(r.next)),
      h("td", {}, r.last_campaign ? h("a", { href: "#/c/" + r.last_campaign }, r.last_campaign) : "",
        r.last_error ? h("div", { class: "error small" }, r.last_error) : null),
      h("td", {}, !r.cancelled && can("operator") && h("button", { type: "button", class: "link",
        onclick: () => act(() => api("DELETE", "/v1/schedules/" + r.id, { reason: "stopped in the console" }), "Stop rule " + r.id + "? It creates no more campaigns.") }, "stop")))));
    if (!schedules.length) body.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, "No recurring rule.")));
  }, 5000);
}

// ---- Start ----

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#login-error").textContent = "";
    try {
      await signIn($("#token").value.trim());
    } catch (err) {
      session.token = "";
      $("#login-error").textContent = err.status === 401 ? "That token is not valid here." : err.message;
    }
  });
  $("#logout").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", route);
  if (session.token) {
    signIn(session.token).catch(() => signOut());
  } else {
    signOut();
  }
});
