// admin.js - the outbox console's page: plain DOM and fetch against the
// console's JSON API (docs/CONSOLE.md). Every value from the server is put
// in the page as text (textContent), never as markup: event data is written
// by chat users.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { before: null, filter: "", tailAfter: null, tailTimer: null, refreshTimer: null };

// One call of the API: the envelope's data, or throws {status, message}.
async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {}, ...options };
  if (init.body !== undefined) {
    init.method = init.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(init.body);
  }
  const r = await fetch("/admin/api/" + path, init);
  let env = null;
  try { env = await r.json(); } catch (e) { /* not JSON: nginx's own page */ }
  if (r.status === 401 && path !== "login") showLogin();
  if (!r.ok || !env || !env.ok) {
    throw { status: r.status, message: (env && env.error) || r.statusText };
  }
  return env.data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  return tr;
}

function utc(t) {
  if (t === null || t === undefined) return "";
  return new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

function ago(t, now) {
  const s = Math.max(0, now - t);
  return s < 120 ? s.toFixed(1) + " s ago" : Math.round(s / 60) + " min ago";
}

// --- login ------------------------------------------------------------------

function showLogin() {
  stopTimers();
  $("dashboard").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
}

function showDashboard(name) {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = "operator " + name;
  refresh();
  loadEvents(false);
  loadSessions();
  state.refreshTimer = setInterval(refresh, 5000);
}

function stopTimers() {
  clearInterval(state.refreshTimer);
  clearInterval(state.tailTimer);
  state.refreshTimer = state.tailTimer = null;
  if ($("tail-toggle")) $("tail-toggle").checked = false;
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    const me = await api("login", { body: { name: $("login-name").value, password: $("login-password").value } });
    $("login-password").value = "";
    showDashboard(me.name);
  } catch (e) {
    $("login-error").textContent = e.status === 429 ? "Too many attempts, wait a moment." : e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("logout", { method: "POST" }); } catch (e) { /* already out */ }
  showLogin();
});

// --- stats and daemons --------------------------------------------------------

async function refresh() {
  try {
    const s = await api("stats");
    const dl = $("stats");
    dl.replaceChildren();
    const items = [
      ["events retained", s.rows],
      ["oldest", s.oldest_id ? "#" + s.oldest_id + "  " + utc(s.oldest_at) : "none"],
      ["newest", s.newest_id ? "#" + s.newest_id + "  " + utc(s.newest_at) : "none"],
      ["position", "#" + s.position],
      ["rate", s.events_last_minute + " in the last minute (" + s.events_per_second.toFixed(2) +
        "/s), " + s.events_per_minute_10m.toFixed(1) + "/min over 10 min"],
    ];
    for (const [k, v] of items) { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); }
    const body = $("daemons").tBodies[0];
    body.replaceChildren();
    for (const d of s.daemons) {
      const seen = el("td", ago(d.updated_at, s.now) + (d.stale ? " (stale)" : ""), d.stale ? "stale" : "");
      body.appendChild(row([d.name, d.pid, "#" + d.delivered_id, d.lag, d.sockets, seen]));
    }
    if (!s.daemons.length) body.appendChild(row(["no nova-realtime has run", "", "", "", "", ""]));
    await drawChart();
  } catch (e) { /* 401 shows the login; others: next time */ }
}

// --- the chart: bars of events per minute, a line of lag, drawn in SVG --------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function drawChart() {
  const hours = $("chart-hours").value;
  const s = await api("series?hours=" + encodeURIComponent(hours));
  const chart = $("chart");
  chart.replaceChildren();
  const W = 900, H = 220, L = 44, R = 44, T = 10, B = 24;
  const minutes = (s.to - s.from) / 60 + 1, bw = (W - L - R) / minutes;
  const x = (t) => L + ((t - s.from) / 60) * bw;
  const maxEv = Math.max(1, ...s.events.map((p) => p[1]));
  let maxLag = 1;
  for (const d of s.lag) for (const p of d.points) maxLag = Math.max(maxLag, p[1]);
  const y = (v, max) => H - B - (v / max) * (H - T - B);
  const tick = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(2));
  for (let i = 0; i <= 4; i++) {
    const yy = T + (i * (H - T - B)) / 4;
    chart.appendChild(svg("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }));
    chart.appendChild(svg("text", { x: L - 4, y: yy + 4, "text-anchor": "end" }, tick(maxEv * (1 - i / 4))));
    chart.appendChild(svg("text", { x: W - R + 4, y: yy + 4 }, tick(maxLag * (1 - i / 4))));
  }
  chart.appendChild(svg("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }));
  const step = Math.max(1, Math.ceil(hours / 6)) * 3600;
  for (let t = Math.ceil(s.from / step) * step; t <= s.to; t += step)
    chart.appendChild(svg("text", { x: x(t), y: H - 6, "text-anchor": "middle" }, utc(t).slice(11, 16)));
  for (const [t, n] of s.events) {
    const top = y(n, maxEv);
    const bar = svg("rect", { x: x(t), y: top, width: Math.max(1, bw - 0.5), height: H - B - top, class: "events" });
    bar.appendChild(svg("title", {}, utc(t).slice(0, 16) + ": " + n + " events"));
    chart.appendChild(bar);
  }
  for (const d of s.lag) {
    const pts = d.points.map(([t, v]) => x(t) + bw / 2 + "," + y(v, maxLag)).join(" ");
    const line = svg("polyline", { points: pts, class: "lag" });
    line.appendChild(svg("title", {}, d.daemon));
    chart.appendChild(line);
    for (const [t, v] of d.points) {
      const dot = svg("circle", { cx: x(t) + bw / 2, cy: y(v, maxLag), r: 2.5, class: "lag" });
      dot.appendChild(svg("title", {}, d.daemon + " " + utc(t).slice(11, 16) + ": lag " + v));
      chart.appendChild(dot);
    }
  }
}
$("chart-hours").addEventListener("change", () => drawChart().catch(() => {}));

// --- events -------------------------------------------------------------------

function filterQuery() {
  const q = new URLSearchParams();
  for (const k of ["action", "user", "chat"]) {
    const v = $("f-" + k).value.trim();
    if (v) q.set(k, v);
  }
  for (const k of ["since", "until"]) {
    const v = $("f-" + k).value;
    if (v) q.set(k, String(Math.floor(Date.parse(v + "Z") / 1000)));
  }
  return q;
}

function eventRow(e) {
  const tr = row([e.id, utc(e.created_at), e.action,
    (e.session_id ? "session " + e.session_id + " of " : "") + e.recipients.join(", "),
    el("td", e.preview, "preview")]);
  tr.dataset.id = e.id;
  tr.addEventListener("click", () => showEvent(e.id));
  return tr;
}

async function loadEvents(more) {
  $("events-error").textContent = "";
  const q = more ? new URLSearchParams(state.filter) : filterQuery();
  if (!more) state.filter = q.toString();
  if (more && state.before) q.set("before", state.before);
  q.set("limit", "50");
  try {
    const d = await api("events?" + q.toString());
    const body = $("events").tBodies[0];
    if (!more) body.replaceChildren();
    for (const e of d.events) body.appendChild(eventRow(e));
    if (!more && !d.events.length) body.appendChild(row(["", "", "no events match", "", ""]));
    state.before = d.next_before;
    $("events-more").hidden = !d.next_before;
  } catch (e) {
    $("events-error").textContent = e.message;
  }
}

$("filter-form").addEventListener("submit", (ev) => { ev.preventDefault(); loadEvents(false); });
$("filter-form").addEventListener("reset", () => setTimeout(() => loadEvents(false), 0));
$("events-more").addEventListener("click", () => loadEvents(true));

async function showEvent(id) {
  try {
    const e = await api("events/" + encodeURIComponent(id));
    $("detail-id").textContent = "#" + e.id;
    const meta = $("detail-meta");
    meta.replaceChildren();
    const items = [["time (UTC)", utc(e.created_at)], ["action", e.action],
      ["only session", e.session_id || "every session of the recipients"],
      ["caused by socket", e.origin || "a REST request or the server"],
      ["request id", e.request_id || ""]];
    for (const [k, v] of items) { meta.appendChild(el("dt", k)); meta.appendChild(el("dd", v)); }
    const ul = $("detail-recipients");
    ul.replaceChildren();
    for (const u of e.recipient_users)
      ul.appendChild(el("li", (u.user_name === null ? "(deleted user)" : u.user_name) + " #" + u.id));
    $("detail-data").textContent = JSON.stringify(e.data, null, 2);
    $("detail-section").hidden = false;
    $("detail-section").scrollIntoView({ block: "nearest" });
  } catch (err) {
    $("events-error").textContent = err.message;
  }
}
$("detail-close").addEventListener("click", () => { $("detail-section").hidden = true; });

// --- the live tail: polls for the events after the last one seen -------------

async function pollTail() {
  try {
    const q = state.tailAfter === null ? "tail" : "tail?after=" + state.tailAfter;
    const d = await api(q);
    const list = $("tail");
    for (const old of list.querySelectorAll("li.new")) old.classList.remove("new");
    for (const e of d.events) {
      const li = el("li", "#" + e.id + "  " + utc(e.created_at) + "  " + e.action + "  to " +
        e.recipients.join(",") + "  " + e.preview, "new");
      li.dataset.id = e.id;
      li.addEventListener("click", () => showEvent(e.id));
      list.prepend(li);
    }
    while (list.children.length > 200) list.lastChild.remove();
    state.tailAfter = d.after;
  } catch (e) { /* next time */ }
}

$("tail-toggle").addEventListener("change", (ev) => {
  clearInterval(state.tailTimer);
  state.tailTimer = null;
  if (ev.target.checked) {
    state.tailAfter = null; // from now on
    pollTail();
    state.tailTimer = setInterval(pollTail, 1000);
  }
});

// --- sessions -----------------------------------------------------------------

async function loadSessions() {
  try {
    const d = await api("sessions");
    const byUser = new Map();
    for (const s of d.sessions) {
      if (!byUser.has(s.user_name)) byUser.set(s.user_name, []);
      byUser.get(s.user_name).push(s);
    }
    const box = $("sessions");
    box.replaceChildren();
    if (!byUser.size) box.appendChild(el("p", "no live sessions"));
    for (const [name, list] of [...byUser].sort((a, b) => a[0].localeCompare(b[0]))) {
      const div = el("div", undefined, "user-sessions");
      div.appendChild(el("h3", name + " (#" + list[0].user_id + "): " + list.length + " session" + (list.length > 1 ? "s" : "")));
      const t = document.createElement("table");
      t.appendChild(row(["session", "created", "last seen", "idle expiry", "expires"].map((h) => el("th", h))));
      for (const s of list)
        t.appendChild(row([s.id, utc(s.created_at), utc(s.last_seen), utc(s.idle_expires_at), utc(s.expires_at)]));
      div.appendChild(t);
      box.appendChild(div);
    }
  } catch (e) { /* 401 shows the login */ }
}
$("sessions-refresh").addEventListener("click", loadSessions);

// --- start: logged in already? -------------------------------------------------

api("me").then((me) => showDashboard(me.name)).catch(() => showLogin());
