// The wallboard: per site, queue cards and the floor, big enough for a TV at 3 m.
"use strict";

const BUCKETS = [
  ["ready", "Ready"], ["on-call", "On a call"], ["wrap-up", "Wrap-up"],
  ["not-ready", "Not ready"], ["logged-out", "Logged out"],
];

function bucket(agent) {
  if (agent.status === "logged_out" || !agent.status) return "logged-out";
  if (agent.status === "not_ready") return "not-ready";
  if (agent.state === "idle") return "ready";
  if (agent.state === "wrap_up") return "wrap-up";
  return "on-call";
}

function words(text) {
  return String(text ?? "?").replace(/_/g, " ");
}

function queueCard(site, q) {
  const e = Live.esc;
  const longest = q.waiting > 0 && typeof q.ts === "number"
    ? Live.ticker(site, q.ts, q.longest_wait_s)
    : Live.duration(q.longest_wait_s ?? 0);
  const sl = q.sl_threshold ? ` (${q.sl_threshold} s)` : "";
  return `<article class="queue" data-testid="queue-${e(q.queue_id)}">
    <h3>${e(q.queue_id)}</h3>
    <div class="big ${q.waiting > 0 ? "warn" : ""}" data-testid="waiting">${e(q.waiting ?? "-")}</div>
    <div class="label">waiting</div>
    <dl>
      <dt>Longest wait</dt><dd data-testid="longest">${longest}</dd>
      <dt>Answered / offered</dt><dd data-testid="answered-offered">${e(q.answered ?? "-")} / ${e(q.offered ?? "-")}</dd>
      <dt>Answer rate</dt><dd class="grade ${e(q.rate_grade)}" data-testid="answer-rate">${Live.pct(q.answer_rate)}</dd>
      <dt>Service level${e(sl)}</dt><dd class="grade ${e(q.sl_grade)}" data-testid="sl">${Live.pct(q.sl_offered)}</dd>
      <dt>Target</dt><dd>${Live.pct(q.target)}</dd>
    </dl>
  </article>`;
}

function agentTile(site, a) {
  const e = Live.esc;
  const what = a.status === "not_ready"
    ? "not ready" + (a.reason_label ? " - " + a.reason_label : a.reason !== null ? " " + a.reason : "")
    : bucket(a) === "ready" ? "ready" : words(a.state);
  return `<li class="agent ${bucket(a)}" data-testid="agent-${e(a.agent_id)}" data-bucket="${bucket(a)}">
    <span class="name">${e(a.name || a.agent_id)}</span>
    <span class="state" data-testid="agent-state">${e(what)}</span>
    <span class="time">${Live.ticker(site, a.since)}</span>
  </li>`;
}

function siteSection(s) {
  const e = Live.esc;
  const counts = Object.fromEntries(BUCKETS.map(([k]) => [k, 0]));
  for (const a of s.agents) counts[bucket(a)] += 1;
  const ctl = Live.controller(s.controller);
  const online = ctl.up ? "up" : ctl.down ? "down" : "unknown";
  const present = s.agents.filter((a) => bucket(a) !== "logged-out");
  return `<section class="site" data-testid="site-${e(s.site)}">
    <header>
      <h2>${e(s.site)}</h2>
      <span class="pill ${online}" data-testid="controller">${e(ctl.text)}</span>
      <span class="pill ${e(s.link)}" data-testid="link">link ${e(s.link)}</span>
    </header>
    <div class="queues">${s.queues.map((q) => queueCard(s.site, q)).join("") || "<p>no queue figures yet</p>"}</div>
    <div class="counts">${BUCKETS.map(([k, label]) =>
      `<div class="count ${k}" data-testid="count-${k}"><b>${counts[k]}</b>${label}</div>`).join("")}</div>
    <ul class="agents">${present.map((a) => agentTile(s.site, a)).join("")}</ul>
  </section>`;
}

Live.onState((snap) => {
  const only = new URLSearchParams(location.search).get("site");
  const sites = snap.sites.filter((s) => !only || s.site === only);
  Live.showAlarms(sites);
  document.getElementById("sites").innerHTML =
    sites.map(siteSection).join("") || "<p class='waiting'>No site has published yet.</p>";
});
