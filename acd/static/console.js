// The supervisor console: queues and agents in detail; actions for supervisors.
"use strict";

const ROLE = document.querySelector('meta[name="role"]').content;
const CSRF = document.querySelector('meta[name="csrf"]').content;
const CAN_ACT = ROLE === "supervisor";

function queueRows(s) {
  const e = Live.esc;
  return s.queues.map((q) => `<tr data-testid="queue-${e(q.queue_id)}">
    <td>${e(q.queue_id)}</td><td class="n">${e(q.waiting ?? "-")}</td>
    <td class="n">${q.waiting > 0 && typeof q.ts === "number" ? Live.ticker(s.site, q.ts, q.longest_wait_s) : Live.duration(q.longest_wait_s ?? 0)}</td>
    <td class="n">${e(q.offered ?? "-")}</td><td class="n">${e(q.answered ?? "-")}</td>
    <td class="n">${e(q.abandoned ?? "-")}</td>
    <td class="n grade ${e(q.rate_grade)}">${Live.pct(q.answer_rate)}</td>
    <td class="n grade ${e(q.sl_grade)}">${Live.pct(q.sl_offered)}</td>
    <td class="n">${Live.pct(q.target)}</td>
    <td class="n">${e(q.agents_available ?? "-")} / ${e(q.agents_logged_in ?? "-")}</td></tr>`).join("");
}

function actionButtons(site, a) {
  if (!CAN_ACT || a.status === "logged_out" || !a.status) return "";
  const e = Live.esc;
  const b = (action, label) =>
    `<button data-site="${e(site)}" data-agent="${e(a.agent_id)}" data-action="${action}">${label}</button>`;
  return b("ready", "Ready") + b("not_ready", "Not ready") + b("logout", "Log out");
}

function agentRows(s) {
  const e = Live.esc;
  return s.agents.map((a) => {
    const reason = a.reason === null || a.reason === undefined ? "" : `${a.reason} ${a.reason_label || ""}`;
    return `<tr data-testid="agent-${e(a.agent_id)}">
      <td>${e(a.agent_id)}</td><td>${e(a.name)}</td>
      <td class="status ${e(a.status)}" data-testid="agent-status">${e(String(a.status ?? "?").replace("_", " "))}</td>
      <td data-testid="agent-state">${e(String(a.state ?? "?").replace("_", " "))}</td>
      <td data-testid="agent-reason">${e(reason.trim())}</td>
      <td class="n">${Live.ticker(s.site, a.since)}</td>
      <td class="n">${e(a.calls_today ?? "-")}</td><td>${e(a.device ?? "")}</td>
      ${CAN_ACT ? `<td class="act">${actionButtons(s.site, a)}</td>` : ""}</tr>`;
  }).join("");
}

function siteSection(s) {
  const e = Live.esc;
  const ctl = Live.controller(s.controller);
  return `<section class="site" data-testid="site-${e(s.site)}">
    <header><h2>${e(s.site)}</h2>
      <span class="pill ${ctl.up ? "up" : "down"}" data-testid="controller">${e(ctl.text)}</span>
      <span class="pill ${e(s.link)}" data-testid="link">link ${e(s.link)}</span></header>
    <table class="grid"><thead><tr><th>Queue</th><th>Waiting</th><th>Longest</th><th>Offered</th>
      <th>Answered</th><th>Abandoned</th><th>Answer rate</th><th>Service level</th><th>Target</th>
      <th>Available / logged in</th></tr></thead><tbody>${queueRows(s)}</tbody></table>
    <table class="grid"><thead><tr><th>Agent</th><th>Name</th><th>Status</th><th>State</th>
      <th>Reason</th><th>Time in state</th><th>Calls today</th><th>Handset</th>
      ${CAN_ACT ? "<th>Actions</th>" : ""}</tr></thead><tbody>${agentRows(s)}</tbody></table>
  </section>`;
}

function fillSelect(select, options) {
  const chosen = select.value;
  const wanted = options.map(([v, label]) => `${v}\u0000${label}`).join("\n");
  if (select.dataset.options === wanted) return;
  select.dataset.options = wanted;
  select.innerHTML = options.map(([v, label]) =>
    `<option value="${Live.esc(v)}">${Live.esc(label)}</option>`).join("");
  if (options.some(([v]) => String(v) === chosen)) select.value = chosen;
}

Live.onState((snap) => {
  const siteSelect = document.getElementById("site");
  fillSelect(siteSelect, [["", "all sites"], ...snap.sites.map((s) => [s.site, s.site])]);
  const sites = snap.sites.filter((s) => !siteSelect.value || s.site === siteSelect.value);
  const reasons = new Map();
  for (const s of sites) for (const [code, label] of Object.entries(s.reasons || {})) reasons.set(code, label);
  if (!reasons.size) reasons.set("0", "");
  fillSelect(document.getElementById("reason"), [...reasons].map(([c, l]) => [c, `${c} ${l}`.trim()]));
  Live.showAlarms(sites);
  document.getElementById("sites").innerHTML =
    sites.map(siteSection).join("") || "<p class='waiting'>No site has published yet.</p>";
});

function say(text, ok) {
  const li = document.createElement("li");
  li.className = ok ? "ok" : "refused";
  li.dataset.testid = "reply";
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  const list = document.getElementById("replies");
  list.prepend(li);
  while (list.children.length > 5) list.lastChild.remove();
}

async function act(button) {
  const { site, agent, action } = button.dataset;
  const body = {};
  if (action === "not_ready") body.reason = Number(document.getElementById("reason").value);
  const what = `agent ${agent} (${site}): ${action.replace("_", " ")}` +
    (body.reason !== undefined ? ` (reason ${body.reason})` : "");
  try {
    const r = await fetch(`/api/agent/${encodeURIComponent(site)}/${encodeURIComponent(agent)}/${action}`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
      body: JSON.stringify(body),
    });
    const reply = await r.json();
    say(`${what}: ${reply.ok ? "accepted" : "refused: " + reply.error}`, reply.ok);
  } catch (err) {
    say(`${what}: not sent (${err})`, false);
  }
}

setInterval(() => { // today's hourly chart, read again from the records every minute
  document.getElementById("today-chart").src = "/chart/today.svg?t=" + Date.now();
}, 60000);

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("actions").hidden = !CAN_ACT;
  document.getElementById("site").addEventListener("change", Live.redraw);
  document.getElementById("sites").addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-action]");
    if (button && CAN_ACT) act(button);
  });
});
