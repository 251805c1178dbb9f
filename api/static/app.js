// Kordon operations page. No framework, no CDN: the page must work on an isolated network.
// Data arrives by polling the API every few seconds with the bearer token kept in
// sessionStorage (never in a URL, so it cannot end up in a log). All text from the API is
// inserted with textContent, never as HTML.
"use strict";

const POLL_MS = 3000;
const TOKEN_KEY = "kordon.token";
const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };
const CHARTS = {
  ups: ["battery.charge", "battery.runtime", "input.voltage", "ups.load"],
  radio: ["battery.charge", "supply.voltage", "tx.power"],
  scanner: ["power.draw", "cabinet.temperature"],
};
const state = { role: null, view: "board", device: null, run: null, sites: [], devices: [], clocks: {} };

// ---- helpers --------------------------------------------------------------------------
function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const $ = (id) => document.getElementById(id);

// Durations as a person says them, as kordon/durations.py approx_duration writes them:
// "under a minute", "about 8 minutes", "about 2 h 10 min" (never "about under a minute").
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  seconds = Math.max(0, seconds);
  if (seconds < 60) return "under a minute";
  const minutes = Math.round(seconds / 60);
  if (minutes < 120) return `about ${minutes} minute${minutes === 1 ? "" : "s"}`;
  if (seconds < 2 * 86400) {
    const hours = Math.floor(minutes / 60), rest = minutes % 60;
    return rest ? `about ${hours} h ${rest} min` : `about ${hours} h`;
  }
  return `about ${Math.round(seconds / 86400)} days`;
}
// The page's "now" for a site, in epoch milliseconds: the wall clock for real devices, the
// scenario time of the stream the site follows while one plays (the API's site.clock),
// extrapolated by the stream's speed between polls.
function noteClocks(sites) {
  const received = Date.now();
  state.clocks = {};
  for (const site of sites) {
    if (site.clock) state.clocks[site.site] = { ...site.clock, at: Date.parse(site.clock.now), received };
  }
}
function pageNow(site) {
  const clock = site ? state.clocks[site] : null;
  if (!clock || clock.source !== "stream") return Date.now();
  return clock.at + Math.max(0, Date.now() - clock.received) * clock.speed;
}
function clockTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}
function speedText(speed) { return `${Number(speed.toFixed(speed < 10 ? 1 : 0))}x`; }
// The header clock: the scenario's time and speed while a stream plays (the open device's
// site first), the wall clock otherwise.
function renderClock() {
  const clocks = Object.entries(state.clocks).filter(([, c]) => c.source === "stream");
  const node = $("clock");
  if (!clocks.length) {
    node.textContent = clockTime(Date.now());
    node.title = "wall clock";
    node.dataset.source = "wall";
    return;
  }
  const open = state.device ? state.device.split(":")[0] : null;
  const [site, clock] = clocks.find(([name]) => name === open) || clocks[0];
  const streams = new Set(clocks.map(([, c]) => c.stream));
  const now = pageNow(site);
  node.textContent = `scenario ${clockTime(now)}, ${clock.speed ? speedText(clock.speed) : "held"}` +
    (streams.size > 1 ? ` (${streams.size} streams)` : "");
  node.title = `${clock.stream}: ${new Date(now).toISOString()} (${clocks.map(([name]) => name).join(", ")})`;
  node.dataset.source = "stream";
}
function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = (now - Date.parse(iso)) / 1000;
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  return `${duration(seconds)} ago`;
}
// What the site's UPS reserve is, truthfully: time left on battery, ran flat, dark, on mains.
function upsReserve(site, devices) {
  const ups = site.ups;
  const units = devices.filter((d) => d.site === site.site && d.kind === "ups");
  const flat = units.filter((d) => d.power_source === "none" && /\bLB\b/.test(d.ups_status || ""));
  const off = units.filter((d) => d.power_source === "none" && !flat.includes(d));
  if (ups.on_battery) {
    const left = ups.min_time_to_empty === null ? "unknown" : duration(ups.min_time_to_empty);
    return flat.length ? `${left}; ${flat.map((d) => d.device).join(", ")} ran flat` : left;
  }
  if (flat.length) return `empty: ${flat.map((d) => d.device).join(", ")} ran flat`;
  if (off.length && off.length === units.length) return "none: UPS output off";
  if (site.power === "dark") return "none: the site is dark";
  if (site.power === "grid") return "on mains";
  if (site.power === "generator") return "on generator";
  return "unknown";
}
function upsCount(site, devices) {
  const flat = devices.filter((d) => d.site === site.site && d.kind === "ups" && d.power_source === "none");
  return `${site.ups.on_battery} of ${site.ups.total}` + (flat.length ? `, ${flat.length} empty or off` : "");
}
function percent(value) { return value === null || value === undefined ? "–" : `${value.toFixed(0)} %`; }

class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? problem.detail : `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { Accept: "application/json", Authorization: `Bearer ${token || ""}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  });
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) data = await response.json();
  if (response.status === 401) { signOut("The token was refused: " + (data ? data.detail : "")); }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// ---- sign in --------------------------------------------------------------------------
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.role = null;
  $("login-error").textContent = message || "";
  if (!$("login").open) $("login").showModal();
  $("token").focus();
}

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const me = await api("/api/v1/whoami");
    state.role = me.role;
    $("whoami").textContent = `${me.name} (${me.role})`;
    $("login").close();
    refresh();
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("login-error").textContent = error.message;
    if (!$("login").open) $("login").showModal();
  }
}
const canOperate = () => state.role === "operator" || state.role === "admin";

// ---- board ----------------------------------------------------------------------------
function siteCard(site, devices) {
  const ups = site.ups;
  const list = devices.filter((d) => d.site === site.site).map((d) =>
    h("button", {
      type: "button", class: `dev-${d.state}`,
      title: `${d.kind} ${d.device}: ${d.state}`,
      "aria-label": `${d.device}, ${d.kind}, ${d.state}`,
      onclick: () => openDevice(d.id),
    }, `${d.device} ${d.state === "online" ? "" : "(" + d.state + ")"}`.trim()));
  return h("article", { class: "site", "data-power": site.power, "data-site": site.site, "aria-label": `site ${site.site}` },
    h("h3", {}, site.site, " ", h("span", { class: `power power-${site.power}`, "data-power": site.power }, site.power_text)),
    site.title ? h("p", { class: "title" }, site.title) : null,
    h("dl", {},
      h("dt", {}, "UPS on battery"), h("dd", {}, upsCount(site, devices)),
      h("dt", {}, "Lowest UPS charge"), h("dd", {}, percent(ups.min_charge)),
      h("dt", {}, "Time to empty"), h("dd", { class: "tte" }, upsReserve(site, devices)),
      h("dt", {}, "Devices"), h("dd", {}, `${site.devices.online} online, ${site.devices.offline} offline` +
        (site.devices.stale ? `, ${site.devices.stale} silent` : "")),
      h("dt", {}, "Alerts"), h("dd", {}, site.alerts.firing ? `${site.alerts.firing} firing (${site.alerts.critical} critical)` : "none"),
    ),
    h("div", { class: "devices", role: "group", "aria-label": `devices of ${site.site}` }, list));
}

function renderSites() {
  const root = $("sites");
  if (!state.sites.length) {
    root.replaceChildren(h("p", { class: "empty" }, "No sites yet: no fleet file and no device has sent data."));
    return;
  }
  root.replaceChildren(...state.sites.map((site) => siteCard(site, state.devices)));
}

// ---- alerts ---------------------------------------------------------------------------
function alertItem(alert) {
  const where = [alert.site, alert.device].filter(Boolean).join(" / ");
  const summary = alert.annotations.summary || alert.annotations.description || "";
  const actions = [];
  if (alert.ack) {
    actions.push(h("span", { class: "acked" }, `Acknowledged by ${alert.ack.by}`));
  } else if (canOperate()) {
    actions.push(h("button", { type: "button", class: "ack", onclick: (e) => ack(alert, e.target) },
      `Acknowledge ${alert.alertname}`));
  } else {
    actions.push(h("span", { class: "meta" }, "Not acknowledged"));
  }
  if (alert.silenced_by.length) actions.push(h("span", { class: "meta" }, "Silenced"));
  else if (canOperate()) actions.push(h("button", { type: "button", class: "silence", onclick: (e) => silence(alert, e.target) },
    "Silence 2 h"));
  return h("li", { class: `alert sev-${alert.severity}`, "data-fingerprint": alert.fingerprint },
    h("h3", {}, h("span", { class: "sev" }, alert.severity), alert.alertname, h("span", { class: "meta" }, where)),
    summary ? h("p", {}, summary) : null,
    h("p", { class: "meta" }, `${alert.state}, since ${ago(alert.starts_at, pageNow(alert.site))}`),
    h("div", { class: "actions" }, actions));
}

function renderAlerts(alerts, error) {
  const list = $("alert-list");
  if (error) { list.replaceChildren(h("li", { class: "empty" }, error)); $("alert-count").textContent = ""; return; }
  alerts.sort((a, b) => (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) ||
    Date.parse(b.starts_at || 0) - Date.parse(a.starts_at || 0));
  $("alert-count").textContent = `(${alerts.length})`;
  if (!alerts.length) { list.replaceChildren(h("li", { class: "empty" }, "No active alerts.")); return; }
  list.replaceChildren(...alerts.map(alertItem));
}

async function ack(alert, button) {
  button.disabled = true;
  try {
    await api(`/api/v1/alerts/${encodeURIComponent(alert.fingerprint)}/ack`, { method: "POST", body: { comment: "acknowledged on the operations page" } });
    await refresh();
    const again = document.querySelector(`[data-fingerprint="${alert.fingerprint}"] .acked`);
    if (again) again.setAttribute("tabindex", "-1");
  } catch (error) { button.disabled = false; button.textContent = `Acknowledge failed: ${error.message}`; }
}

async function silence(alert, button) {
  button.disabled = true;
  const matchers = [{ name: "alertname", value: alert.alertname }];
  if (alert.site) matchers.push({ name: "site", value: alert.site });
  if (alert.device) matchers.push({ name: "device", value: alert.device });
  try {
    await api("/api/v1/silences", { method: "POST", body: { matchers, duration: "2h", comment: "silenced on the operations page" } });
    await refresh();
  } catch (error) { button.disabled = false; button.textContent = `Silence failed: ${error.message}`; }
}

// ---- device view ----------------------------------------------------------------------
function chart(series) {
  const width = 480, height = 160, pad = 34;
  const points = series.points.filter((p) => typeof p[1] === "number");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  const last = points.length ? points[points.length - 1][1] : null;
  svg.setAttribute("aria-label", `${series.metric}: ${points.length} points, latest ${last === null ? "none" : last.toFixed(1) + " " + series.unit}`);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  add("line", { x1: pad, y1: height - 18, x2: width - 4, y2: height - 18, class: "axis" });
  add("line", { x1: pad, y1: 4, x2: pad, y2: height - 18, class: "axis" });
  if (points.length) {
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
    let y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (y0 === y1) { y0 -= 1; y1 += 1; }
    const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - pad - 8);
    const sy = (y) => 6 + (1 - (y - y0) / (y1 - y0)) * (height - 28);
    add("polyline", { class: "line", points: points.map((p) => `${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ") });
    add("text", { x: 2, y: 14 }, y1.toFixed(0));
    add("text", { x: 2, y: height - 20 }, y0.toFixed(0));
    add("text", { x: pad, y: height - 4 }, new Date(x0).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    add("text", { x: width - 60, y: height - 4 }, new Date(x1).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  } else {
    add("text", { x: width / 2 - 40, y: height / 2 }, "no data");
  }
  const latest = last === null ? "no data" : `latest ${last.toFixed(1)} ${series.unit}`;
  return h("figure", { class: "chart" }, svg, h("figcaption", {}, `${series.metric} (${series.aggregation}), ${latest}`));
}

async function openDevice(id) {
  state.device = id;
  $("device").hidden = false;
  await renderDevice(true);
  $("device-title").focus();
}

async function renderDevice(withCharts) {
  if (!state.device) return;
  try {
    const d = await api(`/api/v1/devices/${encodeURIComponent(state.device)}`);
    $("device-title").textContent = `Device ${d.id}`;
    $("device-title").setAttribute("tabindex", "-1");
    $("device-meta").textContent = `${d.kind}${d.model ? " " + d.model : ""}: ${d.state}, power ${d.power_source || "unknown"}` +
      `, charge ${percent(d.battery_charge)}, time to empty ${duration(d.time_to_empty)}${d.time_to_empty_source === "learned" ? " (learned battery curve)" : ""}, last reading ${ago(d.last_seen, pageNow(d.site))}` +
      (d.alerts.length ? `, ${d.alerts.length} active alert(s)` : "");
    $("device-metrics").tBodies[0].replaceChildren(...Object.entries(d.metrics).map(([name, m]) =>
      h("tr", {}, h("td", {}, name), h("td", {}, `${m.value}${m.unit ? " " + m.unit : ""}`), h("td", {}, ago(m.time, pageNow(d.site))))));
    if (!withCharts) return;
    const metrics = (CHARTS[d.kind] || []).filter((name) => name in d.metrics);
    if (!metrics.length) { $("device-charts").replaceChildren(h("p", { class: "empty" }, "Nothing to chart yet.")); return; }
    const range = $("device-range").value;
    const query = metrics.map((m) => `metric=${encodeURIComponent(m)}`).join("&");
    // The window ends at the site's now: the scenario's time while a stream plays it.
    const seconds = { "1h": 3600, "6h": 21600, "24h": 86400 }[range] || 21600;
    const end = pageNow(d.site) / 1000 + 1;
    const window = `start=${(end - seconds).toFixed(0)}&end=${end.toFixed(0)}`;
    const history = await api(`/api/v1/devices/${encodeURIComponent(d.id)}/telemetry?${query}&${window}`);
    $("device-charts").replaceChildren(...history.series.map(chart));
  } catch (error) {
    $("device-meta").textContent = `Cannot load the device: ${error.message}`;
  }
}

// ---- scenarios ------------------------------------------------------------------------
async function renderScenarios() {
  try {
    const [library, runs] = await Promise.all([api("/api/v1/scenarios"), api("/api/v1/scenarios/runs")]);
    $("scenario-note").textContent = canOperate() ? "" : "Your role may watch runs; starting one needs the operator role.";
    $("scenario-list").replaceChildren(...library.map((s) => h("li", {},
      h("strong", {}, s.name), s.duration ? ` (${s.duration})` : "",
      h("p", {}, s.description || "No description."),
      s.expects.length ? h("p", {}, `Expected alerts: ${s.expects.join(", ")}`) : null,
      canOperate() ? h("button", { type: "button", onclick: () => startRun(s.name) }, `Run ${s.name}`) : null)));
    $("run-list").replaceChildren(...(runs.length ? runs.map((r) => h("li", {},
      h("span", { class: "run-state" }, r.state.toUpperCase()), ` ${r.scenario} at ${r.speed}× by ${r.started_by}, started ${ago(r.started_at)} `,
      h("button", { type: "button", onclick: () => { state.run = r.id; renderRun(); } }, "Follow"),
      r.state === "running" && canOperate() ? h("button", { type: "button", onclick: () => stopRun(r.id) }, "Stop") : null)) : [h("li", { class: "empty" }, "No runs yet.")]));
    await renderRun();
  } catch (error) {
    $("scenario-note").textContent = `Cannot load scenarios: ${error.message}`;
  }
}

async function renderRun() {
  if (!state.run) return;
  const run = await api(`/api/v1/scenarios/runs/${state.run}`);
  $("run-title").textContent = `Live view: ${run.scenario} (${run.state})`;
  $("run-log").textContent = run.log.join("\n") || "(no output yet)";
}

async function startRun(name) {
  const speed = Number($("speed").value) || 60;
  try {
    const run = await api(`/api/v1/scenarios/${encodeURIComponent(name)}/run`, { method: "POST", body: { speed } });
    state.run = run.id;
    await renderScenarios();
  } catch (error) { $("scenario-note").textContent = `Cannot start ${name}: ${error.message}`; }
}

async function stopRun(id) {
  try { await api(`/api/v1/scenarios/runs/${id}`, { method: "DELETE" }); await renderScenarios(); }
  catch (error) { $("scenario-note").textContent = `Cannot stop the run: ${error.message}`; }
}

// ---- learned battery health -------------------------------------------------------------
function renderBatteries(batteries) {
  const body = $("battery-table").querySelector("tbody");
  body.replaceChildren(...batteries.map((b) => {
    const evidence = b.evidence.map((e) =>
      `${e.start ? e.start.slice(0, 16).replace("T", " ") : "?"}: ${duration(e.duration_s)} at ` +
      `${e.mean_load_pct === null ? "?" : e.mean_load_pct.toFixed(0)} % load, ` +
      (e.method === "empty" ? "ran to empty" : `${(100 * e.depth).toFixed(0)} % deep`) +
      ` -> ${e.health_pct.toFixed(0)} %`).join("; ");
    const load = b.load_pct === null ? "" : ` at ${b.load_pct.toFixed(0)} %`;
    return h("tr", {},
      h("th", { scope: "row" }, b.id),
      h("td", {}, `${percent(b.health_pct)} (confidence ${b.confidence.toFixed(2)})`),
      h("td", {}, `${duration(b.runtime_at_load_s)}${load}`),
      h("td", {}, b.ups_runtime_s === null ? "–" : duration(b.ups_runtime_s)),
      h("td", {}, evidence || "–"));
  }));
  $("batteries").hidden = batteries.length === 0;
}

// ---- polling and navigation -----------------------------------------------------------
let refreshing = false;
async function refresh() {
  if (refreshing || !sessionStorage.getItem(TOKEN_KEY) || !state.role) return;
  refreshing = true;
  try {
    if (state.view === "board") {
      const [sites, devices] = await Promise.all([api("/api/v1/sites"), api("/api/v1/devices")]);
      state.sites = sites; state.devices = devices;
      noteClocks(sites);
      renderClock();
      renderSites();
      try { renderAlerts(await api("/api/v1/alerts?state=active")); }
      catch (error) { renderAlerts([], `Alerts unavailable: ${error.message}`); }
      try { renderBatteries(await api("/api/v1/batteries")); } catch (error) { renderBatteries([]); }
      if (state.device) await renderDevice(false);
    } else {
      await renderScenarios();
    }
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    $("updated").textContent = `update failed: ${error.message}`;
  } finally {
    refreshing = false;
  }
}

function show(view) {
  state.view = view;
  for (const button of document.querySelectorAll("nav button")) {
    if (button.dataset.view === view) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  $("view-board").hidden = view !== "board";
  $("view-scenarios").hidden = view !== "scenarios";
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => show(button.dataset.view));
  $("login-form").addEventListener("submit", (event) => { event.preventDefault(); signIn($("token").value.trim()); });
  $("signout").addEventListener("click", () => signOut("Signed out."));
  $("device-close").addEventListener("click", () => { state.device = null; $("device").hidden = true; });
  $("device-range").addEventListener("change", () => renderDevice(true));
  document.addEventListener("keydown", (event) => {
    if (event.target.matches("input, select, textarea") || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "1") show("board");
    else if (event.key === "3") show("scenarios");
    else if (event.key === "a") { show("board"); $("alerts").focus(); }
    else if (event.key === "Escape" && state.device) { state.device = null; $("device").hidden = true; }
  });
  show("board");
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token); else signOut("");
  setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
  setInterval(() => { if (!document.hidden) renderClock(); }, 1000);
  renderClock();
});
