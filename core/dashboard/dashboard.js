// edgeprov dashboard: reads /api/ with the operator token and draws the fleet table or a node's
// page (its timeline as bars on a time axis, its log), redrawn as /api/events tells of changes.
// Every text from the server goes in with textContent or an SVG text node, never as markup.
"use strict";

(function () {
  const TOKEN_KEY = "edgeprov.token";
  const SVG = "http://www.w3.org/2000/svg";
  const FLEET_PAGES_MAX = 50; // pages of /api/fleet read for one table

  const $ = (id) => document.getElementById(id);
  let token = "";
  let revision = 0;        // the last revision the page knows of (events resume after it)
  let view = { kind: "fleet", uuid: "" };
  let refreshTimer = 0;
  let refreshing = false, refreshAgain = false;
  let stream = null;       // the AbortController of the event stream
  let live = true;

  // ---- the token and the view, from the address's fragment ---------------------------------
  // "#token=T" or "#node=UUID&token=T": the token is kept in sessionStorage and taken out of the
  // address at once (it never goes to the server in a URL, nor into history).
  function readFragment() {
    const params = new URLSearchParams(location.hash.replace(/^#/, ""));
    const t = params.get("token");
    if (t) {
      sessionStorage.setItem(TOKEN_KEY, t);
      params.delete("token");
    }
    if (params.get("live") === "0") live = false;
    const node = params.get("node") || "";
    view = /^[0-9a-fA-F-]{36}$/.test(node) ? { kind: "node", uuid: node.toLowerCase() } : { kind: "fleet", uuid: "" };
    if (t) {
      const rest = params.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    }
    token = sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function show(section) {
    for (const id of ["login", "fleet", "node"]) $(id).hidden = id !== section;
  }

  async function api(path) {
    const resp = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (resp.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      token = "";
      throw Object.assign(new Error("the operator token was refused"), { unauthorized: true });
    }
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (!resp.ok) throw new Error((body && body.error) || ("HTTP " + resp.status));
    return body;
  }

  // ---- helpers ---------------------------------------------------------------------------------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function bytesText(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = Number(n) || 0, u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return u === 0 ? v + " B" : v.toFixed(1) + " " + units[u];
  }

  function durationText(s) {
    if (s === null || s === undefined || s < 0) return "-";
    s = Math.round(s);
    if (s >= 3600) return Math.floor(s / 3600) + "h" + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
    if (s >= 60) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
    return s + "s";
  }

  function timeText(t) {
    return t ? new Date(t * 1000).toISOString().replace(".000Z", "Z") : "-";
  }

  function stateBadge(state) {
    const s = el("span", "state", state || "-");
    if (/^[A-Z_]+$/.test(state || "")) s.classList.add(state);
    return s;
  }

  function progressBar(done, total) {
    const bar = el("div", "bar");
    const fill = el("div", "fill");
    const pct = total > 0 ? Math.min(100, (100 * done) / total) : 0;
    fill.style.width = pct.toFixed(1) + "%";
    bar.appendChild(fill);
    bar.appendChild(el("span", "label", total > 0 ? Math.floor(pct) + "% " + bytesText(done) + " / " + bytesText(total) : ""));
    bar.setAttribute("role", "progressbar");
    bar.setAttribute("aria-valuenow", String(Math.floor(pct)));
    return bar;
  }

  // ---- the fleet table ---------------------------------------------------------------------------
  async function loadFleet() {
    let hosts = [], page = "", pages = 0, first = null;
    do {
      const body = await api("/api/fleet" + (page ? "?page=" + encodeURIComponent(page) : ""));
      if (!first) first = body;
      hosts = hosts.concat(body.hosts || []);
      page = body.next || "";
    } while (page && ++pages < FLEET_PAGES_MAX);
    if (first && first.revision > revision) revision = first.revision;
    drawFleet(hosts);
  }

  function drawFleet(hosts) {
    const rows = $("fleet-rows");
    rows.replaceChildren();
    for (const h of hosts) {
      const tr = el("tr");
      tr.dataset.uuid = h.uuid;
      const uuid = el("td", "uuid");
      const link = el("a", null, h.uuid);
      link.href = "#node=" + encodeURIComponent(h.uuid);
      uuid.appendChild(link);
      tr.appendChild(uuid);
      tr.appendChild(el("td", "serial", h.serial || "-"));
      tr.appendChild(el("td", "site", h.site || "-"));
      const state = el("td", "state-cell");
      state.appendChild(stateBadge(h.state));
      tr.appendChild(state);
      tr.appendChild(el("td", "action", h.action ? h.action + " (" + h.action_index + "/" + h.actions + ")" : "-"));
      const progress = el("td", "progress");
      if (h.bytes_total > 0) progress.appendChild(progressBar(h.bytes_done, h.bytes_total));
      else progress.textContent = "-";
      tr.appendChild(progress);
      tr.appendChild(el("td", "elapsed", durationText(h.elapsed_s)));
      const status = el("td", "status", h.status || "");
      status.title = h.status || "";
      tr.appendChild(status);
      rows.appendChild(tr);
    }
    $("fleet-count").textContent = hosts.length + (hosts.length === 1 ? " host" : " hosts");
    $("fleet-empty").hidden = hosts.length > 0;
  }

  // ---- a node's page -----------------------------------------------------------------------------
  async function loadNode(uuid) {
    const body = await api("/api/node/" + encodeURIComponent(uuid));
    if (body.revision > revision) revision = body.revision;
    drawNode(body);
  }

  function fact(dl, name, value) {
    dl.appendChild(el("dt", null, name));
    dl.appendChild(el("dd", null, value === null || value === undefined || value === "" ? "-" : value));
  }

  function drawNode(n) {
    const h = n.host;
    $("node-title").textContent = h.serial ? h.serial + " (" + h.uuid + ")" : h.uuid;
    $("node-state").replaceChildren(stateBadge(h.state));
    $("crumb").textContent = "/ " + h.uuid;
    const dl = $("node-facts");
    dl.replaceChildren();
    fact(dl, "host state", h.host_state + " (desired " + h.desired_state + ")");
    fact(dl, "site", h.site);
    fact(dl, "OS profile", h.os_profile);
    // Full-disk encryption as the inventory asks for it (the OS profile's own setting is the site's).
    const fdeBy = [h.fde ? "the host" : "", n.instance && n.instance.fde ? "the instance" : ""].filter(Boolean);
    fact(dl, "disk encryption", fdeBy.length ? "asked by " + fdeBy.join(" and ") : "not asked by the host or instance");
    fact(dl, "address", h.ip + (h.peer_ip && h.peer_ip !== h.ip ? " (seen from " + h.peer_ip + ")" : ""));
    fact(dl, "instance", n.instance ? n.instance.id + " " + n.instance.state : null);
    fact(dl, "action", h.action ? h.action + " (" + h.action_index + "/" + h.actions + ")" : null);
    fact(dl, "status", h.status);
    fact(dl, "elapsed", durationText(h.elapsed_s));
    drawTimeline(n.timeline || [], n.now);
    drawLog(n.log || []);
  }

  // The timeline: one row per phase; an action is a bar from its start to its end (or now),
  // a moment a diamond; a time axis above with offsets from the first phase.
  function drawTimeline(phases, now) {
    const box = $("timeline");
    box.replaceChildren();
    const rowH = 22, top = 26, labelW = 330, width = 1100, right = 40;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("id", "timeline-svg");
    const height = top + Math.max(1, phases.length) * rowH + 8;
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "timeline of the node's phases");
    const add = (parent, tag, attrs, text) => {
      const e = document.createElementNS(SVG, tag);
      for (const k in attrs) e.setAttribute(k, String(attrs[k]));
      if (text !== undefined) e.textContent = String(text);
      parent.appendChild(e);
      return e;
    };
    if (!phases.length) {
      add(svg, "text", { x: 10, y: top, class: "empty" }, "The node has not fetched or said anything yet.");
      box.appendChild(svg);
      return;
    }
    const t0 = Math.min(...phases.map((p) => p.start));
    const t1 = Math.max(...phases.map((p) => (p.kind === "action" ? p.end || now : p.start)), t0 + 1);
    const span = t1 - t0;
    const x = (t) => labelW + ((t - t0) / span) * (width - labelW - right);
    const axis = add(svg, "g", { class: "axis" });
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400]
      .find((s) => span / s <= 10) || 86400;
    for (let t = 0; t <= span; t += step) {
      add(axis, "line", { x1: x(t0 + t), x2: x(t0 + t), y1: top - 6, y2: height - 4 });
      add(axis, "text", { x: x(t0 + t) + 2, y: top - 10 }, "+" + durationText(t));
    }
    phases.forEach((p, i) => {
      const y = top + i * rowH;
      const g = add(svg, "g", { class: "row " + p.kind });
      const label = p.kind === "action"
        ? p.phase + "  " + (p.state || "") + "  " + durationText((p.end || now) - p.start) +
          (p.bytes_total ? "  " + bytesText(p.bytes_done) + "/" + bytesText(p.bytes_total) : "")
        : p.phase;
      add(g, "text", { x: 4, y: y + 15 }, label.length > 52 ? label.slice(0, 51) + "\u2026" : label).appendChild(
        Object.assign(document.createElementNS(SVG, "title"), { textContent: label }));
      if (p.kind === "action") {
        const x0 = x(p.start), x1 = Math.max(x(p.end || now), x0 + 3);
        const bar = add(g, "rect", { x: x0, y: y + 4, width: x1 - x0, height: rowH - 8, rx: 3,
                                     class: "phase " + (/^[A-Z_]+$/.test(p.state || "") ? p.state : "") });
        bar.appendChild(Object.assign(document.createElementNS(SVG, "title"), {
          textContent: p.phase + ": " + timeText(p.start) + " to " + (p.end ? timeText(p.end) : "now") }));
      } else {
        const cx = x(p.start), cy = y + rowH / 2;
        add(g, "path", { d: "M" + cx + " " + (cy - 6) + " l6 6 l-6 6 l-6 -6 z", class: "moment" })
          .appendChild(Object.assign(document.createElementNS(SVG, "title"), { textContent: p.phase + ": " + timeText(p.start) }));
      }
    });
    box.appendChild(svg);
  }

  function drawLog(lines) {
    const box = $("log");
    const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.replaceChildren();
    for (const l of lines) {
      const line = el("div", "line");
      line.appendChild(el("span", "meta", new Date(l.time * 1000).toISOString().slice(11, 19) + " " + l.action_name + " "));
      line.appendChild(document.createTextNode(l.text));
      box.appendChild(line);
    }
    if (!lines.length) box.appendChild(el("div", "meta", "No log line yet."));
    $("log-count").textContent = lines.length ? "(last " + lines.length + " lines)" : "";
    if (atEnd) box.scrollTop = box.scrollHeight;
  }

  // ---- what is shown, and when it is drawn again ---------------------------------------------
  async function refresh() {
    if (refreshing) { refreshAgain = true; return; }
    refreshing = true;
    try {
      if (!token) { show("login"); return; }
      if (view.kind === "node") {
        show("node");
        await loadNode(view.uuid);
        $("node-error").textContent = "";
      } else {
        show("fleet");
        $("crumb").textContent = "";
        await loadFleet();
        $("fleet-error").textContent = "";
      }
    } catch (e) {
      if (e.unauthorized) {
        $("login-error").textContent = e.message;
        show("login");
        stopEvents();
      } else {
        $(view.kind === "node" ? "node-error" : "fleet-error").textContent = e.message;
      }
    } finally {
      refreshing = false;
      if (refreshAgain) { refreshAgain = false; scheduleRefresh(); }
    }
  }

  function scheduleRefresh() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => { refreshTimer = 0; refresh(); }, 250); // changes come in bursts
  }

  // ---- live: server-sent events read with fetch (EventSource cannot send the token) ---------
  function setLive(on) {
    const l = $("live");
    l.textContent = on ? "live" : "offline";
    l.classList.toggle("on", on);
    l.classList.toggle("off", !on);
  }

  function stopEvents() {
    if (stream) stream.abort();
    stream = null;
    setLive(false);
  }

  function onEvent(name, data) {
    let d = {};
    try { d = JSON.parse(data || "{}"); } catch (e) { d = {}; }
    if (name === "ready") {
      setLive(true);
      return;
    }
    if (name === "resync" || (name === "change" &&
        (view.kind === "fleet" ? d.kind !== "log" : !d.host || d.host === view.uuid))) scheduleRefresh();
  }

  async function runEvents() {
    if (!live || !token || stream) return;
    const ctl = new AbortController();
    stream = ctl;
    try {
      const resp = await fetch("/api/events?after=" + revision,
                               { headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" },
                                 cache: "no-store", signal: ctl.signal });
      if (!resp.ok || !resp.body) throw new Error("HTTP " + resp.status);
      const reader = resp.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let name = "message", data = "", id = "";
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue; // a keep-alive comment
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const value2 = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "event") name = value2;
            else if (field === "data") data += value2;
            else if (field === "id") id = value2;
          }
          if (/^[0-9]+$/.test(id) && Number(id) > revision) revision = Number(id);
          onEvent(name, data);
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    if (stream === ctl) {
      stream = null;
      setLive(false);
      setTimeout(runEvents, 2000);
    }
  }

  // ---- start -------------------------------------------------------------------------------------
  function start() {
    readFragment();
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const t = $("login-token").value.trim();
      $("login-token").value = "";
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      token = t;
      $("login-error").textContent = "";
      refresh().then(runEvents);
    });
    window.addEventListener("hashchange", () => {
      readFragment();
      refresh().then(runEvents);
    });
    refresh().then(runEvents);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
