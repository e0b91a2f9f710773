"use strict";
// Squall's dashboard: plain JavaScript over the same JSON endpoints the API offers.
// The API key lives in sessionStorage (this tab only); it never goes into a URL.

const KEY_STORE = "squall.apiKey";
const REFRESH_MS = 3000; // polling (see docs/BENCHMARKS.md for why not server-sent events)
const FAILURE_WARN = 0.05;
const QUOTA_WARN = 0.9;
const QUALITIES = ["144p", "240p", "360p", "480p", "720p", "1080p", "1440p", "2160p"];
const COLORS = { ok: "#15803d", bad: "#c0262d", brand: "#2451c9", amber: "#e0a31a" };
const QUALITY_COLORS = ["#9db4e8", "#7b9be0", "#5a82d6", "#2451c9", "#1b3d99", "#6d28d9", "#a21caf", "#be123c"];

const state = {
  key: sessionStorage.getItem(KEY_STORE),
  tab: "overview",
  jobs: { offset: 0, limit: 20, status: "", q: "", total: 0, signature: "" },
  batchesSignature: "",
  openJob: null,
  openBatch: null,
  usage: null,
  charts: {},
  timer: null,
};

const $ = (selector) => document.querySelector(selector);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
};

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const headers = { "x-api-key": state.key };
  if (options.body) headers["content-type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) throw new ApiError(response.status, (body && body.error) || `The server answered ${response.status}`);
  return body;
}

// --- formatting -----------------------------------------------------------------------------
const number = (n) => (n ?? 0).toLocaleString("en-US");
function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let value = n || 0, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}
const when = (ms) => (ms ? new Date(ms).toLocaleString() : "–");
const seconds = (ms) => (ms == null ? "–" : `${(ms / 1000).toFixed(2)} s`);
const dayLabel = (iso) => new Date(`${iso}T00:00:00Z`).toLocaleDateString("en-US", { weekday: "short", month: "short", day: "numeric", timeZone: "UTC" });

// --- sign in / out --------------------------------------------------------------------------
async function signIn(event) {
  event.preventDefault();
  const input = $("#api-key");
  const error = $("#sign-in-error");
  state.key = input.value.trim();
  error.hidden = true;
  try {
    await api("/dashboard/stats");
  } catch (problem) {
    state.key = null;
    error.textContent = problem.status === 401 ? "That API key was not accepted. Check it and try again." : problem.message;
    error.hidden = false;
    return;
  }
  sessionStorage.setItem(KEY_STORE, state.key);
  input.value = "";
  start();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  state.key = null;
  stopRefreshing();
  for (const chart of Object.values(state.charts)) chart.destroy();
  state.charts = {};
  for (const id of ["overview", "jobs", "batches", "usage"]) $(`#${id}`).hidden = true;
  $("#tabs").hidden = $("#account").hidden = true;
  $("#sign-in").hidden = false;
  const error = $("#sign-in-error");
  error.hidden = !message;
  error.textContent = message || "";
  delete document.body.dataset.ready;
  $("#api-key").focus();
}

function start() {
  $("#sign-in").hidden = true;
  $("#tabs").hidden = $("#account").hidden = false;
  show("overview");
  startRefreshing();
}

// --- tabs and refreshing ----------------------------------------------------------------------
function show(tab) {
  state.tab = tab;
  for (const button of document.querySelectorAll("#tabs button")) {
    if (button.dataset.tab === tab) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  for (const id of ["overview", "jobs", "batches", "usage"]) $(`#${id}`).hidden = id !== tab;
  refresh();
}

async function refresh() {
  if (!state.key) return;
  try {
    if (state.tab === "overview") await refreshOverview();
    else if (state.tab === "jobs") await refreshJobs();
    else if (state.tab === "batches") await refreshBatches();
    else if (state.tab === "usage" && !state.usage) await loadUsage();
    $("#updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (problem) {
    if (problem.status === 401) signOut("Your API key is no longer accepted. Sign in again.");
    else $("#updated").textContent = `Could not refresh: ${problem.message}`;
  }
}

function startRefreshing() {
  stopRefreshing();
  if (!document.hidden) state.timer = setInterval(refresh, REFRESH_MS);
}
function stopRefreshing() {
  clearInterval(state.timer);
  state.timer = null;
}
document.addEventListener("visibilitychange", () => {
  if (!state.key) return;
  if (document.hidden) stopRefreshing(); // a hidden tab costs the server nothing
  else { refresh(); startRefreshing(); }
});

// --- overview ---------------------------------------------------------------------------------
async function refreshOverview() {
  const [stats, usage, daily] = await Promise.all([api("/dashboard/stats"), api("/usage"), api("/dashboard/daily")]);
  $("#client-name").textContent = stats.client_name;
  setStat("total", number(stats.total_jobs));
  setStat("completed", number(stats.completed_jobs));
  setStat("failed", number(stats.failed_jobs));
  setStat("processing", number(stats.pending_jobs + stats.processing_jobs));
  setStat("processing-split", `${number(stats.pending_jobs)} queued · ${number(stats.processing_jobs)} running`);
  setStat("storage", bytes(stats.storage_used_bytes));
  setStat("storage-exact", `${number(stats.storage_used_bytes)} bytes`);
  const alerts = [];
  renderQuota(usage, alerts);
  renderDaily(daily.daily_stats);
  await failureAlert(daily.daily_stats, alerts);
  await usageAlerts(alerts);
  $("#alerts").replaceChildren(...alerts);
  if (!performance.getEntriesByName("squall-overview-ready").length) performance.mark("squall-overview-ready");
  document.body.dataset.ready = "overview";
}

function setStat(name, text) {
  const node = document.querySelector(`[data-stat="${name}"]`);
  if (node.textContent !== text) node.textContent = text;
}

function renderQuota(usage, alerts) {
  const panel = $("#quota");
  const limit = usage.storage_limit_bytes;
  panel.hidden = !limit;
  if (!limit) return;
  const used = usage.storage_usage_bytes, reserved = usage.storage_reserved_bytes;
  const remaining = Math.max(0, limit - used - reserved);
  panel.querySelector(".used").style.width = `${Math.min(100, (100 * used) / limit)}%`;
  panel.querySelector(".reserved").style.width = `${Math.min(100, (100 * reserved) / limit)}%`;
  $("#quota-bar").setAttribute("aria-label", `${bytes(used)} used, ${bytes(reserved)} reserved, ${bytes(remaining)} remaining of ${bytes(limit)}`);
  $("#quota-text").textContent = `${bytes(used)} used · ${bytes(reserved)} reserved · ${bytes(remaining)} remaining of ${bytes(limit)}`;
  if ((used + reserved) / limit >= QUOTA_WARN) {
    alerts.push(el("div", { class: "alert", "data-alert": "quota" },
      `Storage is ${Math.round((100 * (used + reserved)) / limit)}% full: new jobs will be refused once the quota is reached.`));
  }
}

function renderDaily(days) {
  const labels = days.map((d) => dayLabel(d.date));
  const completed = days.map((d) => d.completed);
  const failed = days.map((d) => d.failed);
  const chart = state.charts.daily;
  if (chart) {
    chart.data.labels = labels;
    chart.data.datasets[0].data = completed;
    chart.data.datasets[1].data = failed;
    chart.update("none");
    return;
  }
  state.charts.daily = new Chart($("#daily-chart"), {
    type: "line",
    data: {
      labels,
      datasets: [
        { label: "Completed", data: completed, borderColor: COLORS.ok, backgroundColor: COLORS.ok, tension: 0.3, pointRadius: 4 },
        { label: "Failed", data: failed, borderColor: COLORS.bad, backgroundColor: COLORS.bad, tension: 0.3, pointRadius: 4 },
      ],
    },
    options: {
      animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false },
      onResize: () => { $("#chart-tooltip").hidden = true; },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
      plugins: { legend: { display: false }, tooltip: { enabled: false, external: dailyTooltip } },
    },
  });
}

function dailyTooltip({ chart, tooltip }) {
  const box = $("#chart-tooltip");
  if (tooltip.opacity === 0 || !tooltip.dataPoints?.length) { box.hidden = true; return; }
  const index = tooltip.dataPoints[0].dataIndex;
  const [completed, failed] = chart.data.datasets.map((set) => set.data[index]);
  box.textContent = `${chart.data.labels[index]}: ${completed} completed, ${failed} failed`;
  box.style.left = `${tooltip.caretX}px`;
  box.style.top = `${tooltip.caretY}px`;
  box.hidden = false;
}

async function failureAlert(days, alerts) {
  const completed = days.reduce((sum, d) => sum + d.completed, 0);
  const failed = days.reduce((sum, d) => sum + d.failed, 0);
  const rate = failed / Math.max(1, completed + failed);
  if (rate <= FAILURE_WARN) return;
  const { reasons } = await api("/dashboard/failures");
  alerts.unshift(el("div", { class: "alert", "data-alert": "failures" },
    el("strong", {}, `${(100 * rate).toFixed(1)}% of the jobs of the last 7 days failed (more than 5%).`),
    reasons.length ? " Most common reasons:" : "",
    el("ul", {}, reasons.map((r) => el("li", {}, `${r.error} (${number(r.count)})`)))));
}

// The server's usage alerts (the ones also sent as webhooks), newest state first.
async function usageAlerts(alerts) {
  const { alerts: raised } = await api("/dashboard/alerts");
  for (const alert of raised) {
    alerts.unshift(el("div", { class: "alert", "data-alert": alert.type }, alert.message));
  }
}

// --- jobs -----------------------------------------------------------------------------------
async function refreshJobs() {
  const { offset, limit, status, q } = state.jobs;
  const params = new URLSearchParams({ limit, offset });
  if (status) params.set("status", status);
  if (q) params.set("q", q);
  const page = await api(`/dashboard/jobs?${params}`);
  state.jobs.total = page.total;
  // Rows are rebuilt only when something changed: a row replaced under the pointer between
  // mouse-down and mouse-up would swallow the click.
  const signature = JSON.stringify(page);
  if (signature !== state.jobs.signature) {
    state.jobs.signature = signature;
    $("#jobs-body").replaceChildren(...(page.jobs.length ? page.jobs.map(jobRow)
      : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No jobs match."))]));
  }
  const last = Math.min(offset + limit, page.total);
  $("#jobs-page").textContent = page.total ? `${number(offset + 1)}–${number(last)} of ${number(page.total)}` : "";
  $("#jobs-prev").disabled = offset === 0;
  $("#jobs-next").disabled = last >= page.total;
  if (state.openJob) await openJob(state.openJob, false);
  document.body.dataset.ready = "jobs";
}

function jobRow(job) {
  const open = () => openJob(job.id, true);
  return el("tr", { tabindex: 0, "data-job": job.id, onclick: open, onkeydown: (e) => { if (e.key === "Enter") open(); } },
    el("td", {}, el("span", { class: `status ${job.status}` }, job.step === "Recording" ? "Recording" : job.status)),
    el("td", { class: "src", title: job.url }, job.url),
    el("td", {}, job.s3_key || (job.error ? el("span", { class: "muted" }, job.error) : "–")),
    el("td", {}, job.file_size ? bytes(job.file_size) : "–"),
    el("td", {}, when(job.created_at)));
}

async function openJob(id, focus) {
  state.openJob = id;
  const job = await api(`/jobs/${id}`);
  if (state.openJob !== id) return; // another job was opened meanwhile (a click during a refresh)
  const panel = $("#job-detail");
  const rows = [
    ["Status", el("span", { class: `status ${job.status}` }, job.status)], ["Step", job.step],
    ["Source", job.url], ["Stored as", job.s3_key || "–"], ["Error", job.error || "–"],
    ["Quality", `${job.actual_quality || "–"} (asked: ${job.requested_quality})`], ["Size", job.file_size ? bytes(job.file_size) : "–"],
    ["Queued", seconds(job.queue_wait_ms)], ["Download", seconds(job.download_duration_ms)], ["Processing", seconds(job.mux_duration_ms)],
    ["Upload", seconds(job.upload_duration_ms)], ["Total", seconds(job.total_duration_ms)],
    ...liveRows(job),
    ["Webhook", job.webhook ? `${job.webhook.status} after ${job.webhook.attempts} attempt(s)${job.webhook.last_error ? ` — ${job.webhook.last_error}` : ""}` : "none"],
  ];
  const actions = [];
  if (job.download_url) actions.push(el("a", { class: "button primary", href: job.download_url, download: "" }, "Download"));
  if (["Failed", "Warning"].includes(job.status)) actions.push(el("button", { type: "button", onclick: () => act(() => api(`/jobs/${id}/retry`, { method: "POST" })) }, "Retry"));
  // A live recording: stop keeps what was recorded; cancel keeps nothing.
  if (job.status === "Processing" && job.step === "Recording") actions.push(el("button", { type: "button", class: "primary", onclick: () => act(() => api(`/jobs/${id}/stop`, { method: "POST" })) }, "Stop recording"));
  if (["Pending", "Processing"].includes(job.status)) actions.push(el("button", { type: "button", class: "danger", onclick: () => act(() => api(`/jobs/${id}`, { method: "DELETE" })) }, "Cancel"));
  panel.replaceChildren(
    el("div", { class: "panel-head" }, el("h2", {}, `Job ${id}`), el("button", { type: "button", class: "ghost", onclick: closeJob }, "Close")),
    el("dl", {}, rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)])),
    el("div", { class: "actions" }, actions));
  panel.hidden = false;
  if (focus) panel.focus();
}

// A live job: how long it has been recording (elapsed since it started) and what it holds.
function liveRows(job) {
  if (!job.live && job.step !== "Recording") return [];
  const elapsed = job.status === "Processing" && job.started_at ? seconds(Date.now() - job.started_at) : "–";
  return [
    ["Live", job.status === "Processing" ? `recording for ${elapsed}` : (job.recording_stopped_by ? `stopped by ${job.recording_stopped_by}` : "recorded")],
    ["Recorded", `${job.recorded_seconds == null ? "–" : `${job.recorded_seconds.toFixed(1)} s`} · ${job.recorded_bytes ? bytes(job.recorded_bytes) : "–"}`],
  ];
}

function closeJob() { state.openJob = null; $("#job-detail").hidden = true; }

async function act(request) {
  try { await request(); } catch (problem) { alert(problem.message); }
  await refresh();
}

// --- batches ----------------------------------------------------------------------------------
async function refreshBatches() {
  const { batches } = await api("/dashboard/batches?limit=100");
  const signature = JSON.stringify(batches);
  if (signature !== state.batchesSignature) {
    state.batchesSignature = signature;
    $("#batch-list").replaceChildren(...(batches.length ? batches.map(batchItem) : [el("li", { class: "muted" }, "No batches yet.")]));
  }
  if (state.openBatch) await openBatch(state.openBatch);
  document.body.dataset.ready = "batches";
}

function batchItem(batch) {
  const total = Math.max(1, batch.total_episodes);
  return el("li", {}, el("button", { type: "button", onclick: () => openBatch(batch.id) },
    el("span", {}, el("strong", {}, batch.title || batch.show_url || `Bulk of ${batch.total_episodes}`), " ",
      el("span", { class: "status" }, batch.status)),
    el("span", { class: "progress", role: "img", "aria-label": `${batch.completed_episodes} completed, ${batch.failed_episodes} failed of ${batch.total_episodes}` },
      el("span", { class: "ok", style: `width:${(100 * batch.completed_episodes) / total}%` }),
      el("span", { class: "bad", style: `width:${(100 * batch.failed_episodes) / total}%` })),
    el("span", { class: "muted" }, `${batch.completed_episodes} completed · ${batch.failed_episodes} failed · ${batch.total_episodes} episodes`)));
}

async function openBatch(id) {
  state.openBatch = id;
  const batch = await api(`/batch/${id}`);
  const jobs = await Promise.all(batch.episode_jobs.slice(0, 50).map((jobId) => api(`/jobs/${jobId}`)));
  const panel = $("#batch-detail");
  panel.replaceChildren(
    el("div", { class: "panel-head" }, el("h2", {}, batch.title || batch.show_url || "Bulk request"),
      el("button", { type: "button", class: "ghost", onclick: () => { state.openBatch = null; panel.hidden = true; } }, "Close")),
    el("div", { class: "table-wrap" }, el("table", { class: "jobs" }, el("tbody", {}, jobs.map(jobRow)))),
    batch.episode_jobs.length > 50 ? el("p", { class: "muted" }, `First 50 of ${batch.episode_jobs.length} episodes.`) : "");
  panel.hidden = false;
}

// --- usage --------------------------------------------------------------------------------------
function isoDay(date) { return date.toISOString().slice(0, 10); }

async function loadUsage(event) {
  if (event) event.preventDefault();
  const start = $("#usage-start").value, end = $("#usage-end").value;
  const error = $("#usage-error");
  const query = `startDate=${start}&endDate=${end}`;
  let network, storage, transcoding;
  try { // one request first: a range the API refuses is refused once
    network = await api(`/usage/network?${query}`);
    [storage, transcoding] = await Promise.all(["storage", "transcoding"].map((kind) => api(`/usage/${kind}?${query}`)));
  } catch (problem) {
    if (problem.status === 401) throw problem;
    error.textContent = problem.message;
    error.hidden = false;
    return;
  }
  error.hidden = true;
  state.usage = { network: network.reverse(), storage: storage.reverse(), transcoding: transcoding.reverse() };
  renderUsage();
  document.body.dataset.ready = "usage";
}

function renderUsage() {
  const { network, storage, transcoding } = state.usage;
  const labels = network.map((d) => d.collectionDate.slice(0, 10));
  const requests = network.reduce((s, d) => s + d.requests, 0);
  const hits = network.reduce((s, d) => s + (d.requests * d.cacheHitRate) / 100, 0);
  const minutes = transcoding.reduce((s, d) => s + QUALITIES.reduce((t, q) => t + d.outputTranscodingMinutesByQuality[q], 0), 0);
  const lastStored = storage[storage.length - 1] || { numberOfObjects: 0, bytesStored: 0 };
  const totals = [
    ["Requests", number(requests)], ["Delivered", bytes(network.reduce((s, d) => s + d.bytesDownloaded, 0))],
    ["Cache hit rate", `${requests ? ((100 * hits) / requests).toFixed(1) : 0}%`],
    ["Stored at the end", `${number(lastStored.numberOfObjects)} objects, ${bytes(lastStored.bytesStored)}`],
    ["Transcoded", `${minutes.toFixed(1)} min`],
  ];
  $("#usage-totals").replaceChildren(...totals.map(([name, value]) => el("div", {}, el("span", { class: "muted" }, name), el("b", {}, value))));
  drawChart("network", "bar", labels, [
    { label: "Requests", data: network.map((d) => d.requests), backgroundColor: COLORS.brand, yAxisID: "y" },
    { label: "MB delivered", type: "line", data: network.map((d) => d.bytesDownloaded / 1048576), borderColor: COLORS.amber, backgroundColor: COLORS.amber, yAxisID: "y1" },
  ], true);
  drawChart("storage", "line", labels, [
    { label: "Objects", data: storage.map((d) => d.numberOfObjects), borderColor: COLORS.brand, backgroundColor: COLORS.brand, yAxisID: "y" },
    { label: "MB stored", data: storage.map((d) => d.bytesStored / 1048576), borderColor: COLORS.amber, backgroundColor: COLORS.amber, yAxisID: "y1" },
  ], true);
  drawChart("transcoding", "bar", labels, QUALITIES.map((q, i) => ({
    label: q, data: transcoding.map((d) => d.outputTranscodingMinutesByQuality[q]), backgroundColor: QUALITY_COLORS[i], stack: "q",
  })), false);
}

function drawChart(name, type, labels, datasets, twoAxes) {
  if (state.charts[name]) state.charts[name].destroy();
  const scales = { x: { stacked: !twoAxes }, y: { beginAtZero: true, stacked: !twoAxes } };
  if (twoAxes) scales.y1 = { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } };
  state.charts[name] = new Chart($(`#${name}-chart`), {
    type, data: { labels, datasets },
    options: { animation: false, maintainAspectRatio: false, interaction: { mode: "index", intersect: false }, scales,
      plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } } },
  });
}

function exportCsv() {
  if (!state.usage) return;
  const { network, storage, transcoding } = state.usage;
  const header = ["date", "requests", "bytesDownloaded", "cacheHitRate", "numberOfObjects", "bytesStored", ...QUALITIES.map((q) => `minutes_${q}`)];
  const lines = network.map((d, i) => [d.collectionDate.slice(0, 10), d.requests, d.bytesDownloaded, d.cacheHitRate,
    storage[i].numberOfObjects, storage[i].bytesStored, ...QUALITIES.map((q) => transcoding[i].outputTranscodingMinutesByQuality[q])].join(","));
  const blob = new Blob([[header.join(","), ...lines].join("\n") + "\n"], { type: "text/csv" });
  const link = el("a", { href: URL.createObjectURL(blob), download: `squall-usage-${$("#usage-start").value}-${$("#usage-end").value}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
}

// --- wiring ---------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", () => signOut());
  for (const button of document.querySelectorAll("#tabs button")) button.addEventListener("click", () => show(button.dataset.tab));
  $("#jobs-filter").addEventListener("submit", (e) => e.preventDefault());
  $("#jobs-status").addEventListener("change", (e) => { state.jobs.status = e.target.value; state.jobs.offset = 0; refresh(); });
  let typing = null;
  $("#jobs-search").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.jobs.q = e.target.value.trim(); state.jobs.offset = 0; refresh(); }, 250);
  });
  $("#jobs-prev").addEventListener("click", () => { state.jobs.offset = Math.max(0, state.jobs.offset - state.jobs.limit); refresh(); });
  $("#jobs-next").addEventListener("click", () => { state.jobs.offset += state.jobs.limit; refresh(); });
  const today = new Date();
  $("#usage-end").value = isoDay(today);
  $("#usage-start").value = isoDay(new Date(today.getTime() - 29 * 86400000));
  $("#usage-form").addEventListener("submit", (e) => loadUsage(e).catch((p) => p.status === 401 && signOut("Your API key is no longer accepted.")));
  $("#usage-csv").addEventListener("click", exportCsv);
  if (state.key) start();
  else $("#api-key").focus();
});
