// The live picture from /events (server-sent events), shared by the wallboard and the
// console: reconnects by itself, marks the page stale while the stream or the broker is
// lost, and ticks the times in state once a second on the controller's clock.
"use strict";

const Live = (() => {
  let snapshot = null;
  let streamOpen = false;
  let lastHeard = 0;
  let source = null;
  const offsets = {}; // site -> controller time minus ours (ms)
  const renderers = [];

  function esc(value) {
    return String(value ?? "").replace(/[&<>"']/g, (c) => ({
      "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
    }[c]));
  }

  function duration(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "-";
    const s = Math.max(0, Math.floor(seconds));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }

  function pct(value) {
    return typeof value === "number" ? (100 * value).toFixed(1) + "%" : "-";
  }

  // the controller pill: "controller online"; in a hot-standby pair who is active and
  // who waits ("controller pc-a online · standby pc-b", "controller pc-b STANDBY · active pc-a")
  function controller(c) {
    const standby = c.online === true && c.role === "standby";
    const state = standby ? "STANDBY" : c.online === true ? "online" : c.online === false ? "OFFLINE" : "unknown";
    let text = `controller ${c.instance ? c.instance + " " : ""}${state}`;
    if (c.role === "active" && c.online === true) text += ` · standby ${c.standby || "none"}`;
    if (standby) text += ` · active ${c.active || "none"}`;
    return { text, up: c.online === true && !standby, down: c.online === false };
  }

  function siteNow(site) {
    return Date.now() + (offsets[site] || 0);
  }

  // <span data-since=ms data-site=id> shows the time since; data-base adds seconds
  function ticker(site, since, base) {
    if (typeof since !== "number" || since <= 0) return "<span>-</span>";
    const b = typeof base === "number" ? ` data-base="${base}"` : "";
    return `<span class="tick" data-site="${esc(site)}" data-since="${since}"${b}></span>`;
  }

  function tick() {
    for (const el of document.querySelectorAll(".tick")) {
      const seconds = (siteNow(el.dataset.site) - Number(el.dataset.since)) / 1000;
      el.textContent = duration(seconds + Number(el.dataset.base || 0));
    }
  }

  function stale() {
    return !streamOpen || !snapshot || snapshot.broker !== "up";
  }

  function showStale() {
    const isStale = stale();
    document.body.classList.toggle("is-stale", isStale);
    const banner = document.getElementById("stale");
    if (banner) banner.hidden = !isStale;
  }

  function showAlarms(sites) {
    const box = document.getElementById("alarms");
    if (!box) return;
    const alarms = sites.flatMap((s) => s.alarms.map((a) => ({ ...a, site: s.site })));
    box.hidden = alarms.length === 0;
    box.innerHTML = alarms.map((a) =>
      `<div class="alarm ${esc(a.severity)}">${esc(a.site)}: ${esc(a.message || a.name)}</div>`
    ).join("");
  }

  function draw() {
    if (snapshot) {
      for (const site of snapshot.sites) offsets[site.site] = site.time - Date.now();
      for (const render of renderers) render(snapshot);
    }
    showStale();
    tick();
  }

  function connect() {
    if (source) source.close();
    source = new EventSource("/events");
    source.addEventListener("open", () => { streamOpen = true; lastHeard = Date.now(); showStale(); });
    source.addEventListener("state", (ev) => {
      snapshot = JSON.parse(ev.data);
      streamOpen = true;
      lastHeard = Date.now();
      draw();
    });
    source.addEventListener("ping", () => { lastHeard = Date.now(); });
    source.addEventListener("error", () => {
      streamOpen = false;
      showStale();
      if (source.readyState === EventSource.CLOSED) {
        // refused (logged out?) or the server is gone: look, then try again
        fetch("/api/state", { credentials: "same-origin" }).then((r) => {
          if (r.status === 401) location.href = "/login?next=" + location.pathname;
        }).catch(() => {}).finally(() => setTimeout(connect, 2000));
      }
    });
  }

  setInterval(() => {
    if (streamOpen && Date.now() - lastHeard > 15000) { // silent stream: start again
      streamOpen = false;
      connect();
    }
    showStale();
    tick();
  }, 1000);

  document.addEventListener("DOMContentLoaded", connect);
  return {
    esc, duration, pct, ticker, controller, showAlarms,
    onState: (f) => renderers.push(f), redraw: draw,
  };
})();
