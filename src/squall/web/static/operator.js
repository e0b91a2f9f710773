// The operator page: signs in with an operator token (sessionStorage, this tab only) and
// reads /admin/keys, /admin/queue and /admin/top. Queue depth over time is sampled by this
// page while it is open (the server keeps no history of it).
"use strict";
const $ = (selector) => document.querySelector(selector);
const state = { token: sessionStorage.getItem("squall.operatorToken"), timer: null, depth: [], charts: {} };
const REFRESH_MS = 5000, DEPTH_POINTS = 120;

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== null && value !== undefined) node.setAttribute(name, value);
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
};
const number = (n) => Number(n).toLocaleString("en-US");
const bytes = (n) => { const u = ["B", "KB", "MB", "GB", "TB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return `${n.toFixed(i ? 1 : 0)} ${u[i]}`; };
const age = (ms) => ms === null || ms === undefined ? "–" : ms < 120000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60000)} min`;

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (response.status === 401) { signOut("That operator token was not accepted. Check it and try again."); throw new Error("401"); }
  return response.json();
}

function signOut(message) {
  clearInterval(state.timer);
  sessionStorage.removeItem("squall.operatorToken");
  state.token = null;
  $("#operator").hidden = true; $("#account").hidden = true; $("#sign-in").hidden = false;
  $("#sign-in-error").hidden = !message; $("#sign-in-error").textContent = message || "";
}

async function refresh() {
  const [keys, queue, top] = await Promise.all([api("/admin/keys?limit=500&sort=jobs&order=desc"), api("/admin/queue"), api("/admin/top")]);
  $("#sign-in").hidden = true; $("#operator").hidden = false; $("#account").hidden = false;
  $('[data-stat="pending"]').textContent = number(queue.pending);
  $('[data-stat="processing"]').textContent = number(queue.processing);
  $('[data-stat="oldest"]').textContent = age(queue.oldest_wait_ms);
  $('[data-stat="claims"]').textContent = number(queue.claims_last_minute);
  $("#keys-body").replaceChildren(...keys.keys.map((k) => el("tr", { "data-key": k.id },
    el("td", {}, k.client_name), el("td", {}, k.type), el("td", {}, k.state), el("td", {}, number(k.jobs.total)),
    el("td", {}, number(k.jobs.pending)), el("td", {}, number(k.jobs.processing)), el("td", {}, bytes(k.stored_bytes)),
    el("td", {}, bytes(k.reserved_bytes)), el("td", {}, `${(100 * k.failure_rate_24h).toFixed(1)}%`),
    el("td", {}, k.limits.max_concurrent_jobs ?? "–"), el("td", {}, k.limits.rate_limit_per_minute ?? "–"))));
  $("#priority-body").replaceChildren(...queue.by_priority.map((p) => el("tr", {},
    el("td", {}, p.priority), el("td", {}, number(p.pending)), el("td", {}, number(p.processing)), el("td", {}, age(p.oldest_wait_ms)))));
  $("#workers-body").replaceChildren(...queue.workers.map((w) => el("tr", { "data-alive": String(w.alive) },
    el("td", {}, w.id), el("td", {}, w.host), el("td", {}, w.pid), el("td", {}, w.jobs),
    el("td", {}, `${age(w.last_heartbeat_ago_ms)} ago`), el("td", {}, w.alive ? "alive" : `dead (${w.jobs} leases held)`))));
  state.depth.push({ at: new Date().toLocaleTimeString(), pending: queue.pending });
  state.depth = state.depth.slice(-DEPTH_POINTS);
  chart("depth", "line", state.depth.map((d) => d.at), [{ label: "Waiting", data: state.depth.map((d) => d.pending), borderColor: "#2563eb" }]);
  chart("top", "bar", top.keys.map((k) => k.client_name), [{ label: "Jobs", data: top.keys.map((k) => k.jobs), backgroundColor: "#2563eb" }]);
  document.body.dataset.ready = "operator";
}

function chart(name, type, labels, datasets) {
  const existing = state.charts[name];
  if (existing) { existing.data.labels = labels; existing.data.datasets = datasets; existing.update("none"); return; }
  state.charts[name] = new Chart($(`#${name}-chart`), { type, data: { labels, datasets },
    options: { animation: false, maintainAspectRatio: false, plugins: { legend: { display: false } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } } });
}

function start() {
  refresh().catch(() => {});
  clearInterval(state.timer);
  state.timer = setInterval(() => refresh().catch(() => {}), REFRESH_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("#token").value.trim();
    sessionStorage.setItem("squall.operatorToken", state.token);
    start();
  });
  $("#sign-out").addEventListener("click", () => signOut());
  if (state.token) start();
});
