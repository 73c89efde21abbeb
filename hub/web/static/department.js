// The department page (窗口吹哨 科室报到): the help calls of one department (or, for the
// supervisors, of all: "*"), live over SSE as whole snapshots. A new call sounds a tone
// (Web Audio: no file to fetch); where the browser blocks sound until the user acts, the
// page says so and offers a button. Each call shows a count-up timer, ticking here from the
// hub's clock (`now` of each snapshot), and the buttons of its next steps.
"use strict";
function department(feed) {
  const T = JSON.parse(document.getElementById("ow-strings").textContent);
  Object.assign(T, JSON.parse(document.getElementById("ow-dept-strings").textContent));
  const locale = document.documentElement.lang || "zh-CN";
  const zh = locale.startsWith("zh"), tw = locale === "zh-TW";
  const $ = (sel) => document.querySelector(sel);
  const el = ow.el;
  const name = (x) => (x ? (tw ? x.zh_tw || x.zh : zh ? x.zh : x.en) || x.zh || x.en : "");
  let skew = 0;
  const now = () => Date.now() / 1000 + skew;
  const seen = new Set();
  let first = true;
  const body = document.body;
  body.dataset.beeps = "0";

  // ---- sound -------------------------------------------------------------------------
  const AC = window.AudioContext || window.webkitAudioContext;
  const audio = AC ? new AC() : null;
  function soundState() {
    const st = audio ? audio.state : "unsupported";
    body.dataset.sound = st;
    $("#sound-blocked").hidden = st === "running";
  }
  if (audio) audio.onstatechange = soundState;
  soundState();
  $("#sound-on").addEventListener("click", async () => {
    if (audio) { try { await audio.resume(); } catch (e) { /* still blocked: the notice stays */ } }
    soundState();
  });
  function beep() {
    body.dataset.beeps = String(Number(body.dataset.beeps) + 1); // every attempt, heard or not
    if (!audio) return;
    if (audio.state !== "running") { audio.resume().catch(() => {}).finally(soundState); }
    const t0 = audio.currentTime;
    for (const [i, f] of [[0, 880], [1, 660], [2, 880]]) {
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = f;
      g.gain.setValueAtTime(0.0001, t0 + i * 0.25);
      g.gain.exponentialRampToValueAtTime(0.3, t0 + i * 0.25 + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t0 + i * 0.25 + 0.22);
      o.connect(g).connect(audio.destination);
      o.start(t0 + i * 0.25);
      o.stop(t0 + i * 0.25 + 0.24);
    }
    body.dataset.played = String(audio.state === "running");
  }

  // ---- rendering -----------------------------------------------------------------------
  const pad = (x) => String(x).padStart(2, "0");
  function since(ts) {
    const s = Math.max(0, Math.floor(now() - ts));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + pad(m) : String(m)) + ":" + pad(s % 60);
  }
  const secs = (a, b) => (a === null || b === null ? "–" : Math.round(b - a) + " " + T.s);

  async function act(step, r, button) {
    $("#msg").textContent = "";
    button.disabled = true;
    try {
      render(await ow.post("/department/" + step, {request: r.request}));
    } catch (e) {
      button.disabled = false;
      if (e.status === 401) { location.href = "/login?next=/department"; return; }
      const d = e.data || {};
      $("#msg").textContent = T["err_" + d.code] || d.msg || T.failed;
    }
  }

  function row(r) {
    const buttons = [];
    const add = (step) => {
      const b = el("button", {class: "small step-" + step, "data-step": step}, T["do_" + step]);
      b.addEventListener("click", () => act(step, r, b));
      buttons.push(b);
    };
    if (r.state === "requested") add("answer");
    if (r.state === "requested" || r.state === "answered") add("arrived");
    if (r.state === "answered" || r.state === "arrived") add("resolved");
    const st = el("td", {class: "call-state"}, T[r.state] || r.state);
    if (r.escalated_at !== null && r.answered_at === null) st.append(el("span", {class: "tag escalated"}, T.escalated));
    if (r.by_name && r.state !== "requested") st.append(el("span", {class: "muted"}, " · " + r.by_name));
    return el("tr", {"data-request": r.request, "data-window": r.window, "data-state": r.state,
                     "data-department": r.department || "", "data-escalated": r.escalated_at !== null && r.answered_at === null ? "1" : "0"},
      el("td", {}, T.win.replace("{n}", r.window)), el("td", {}, r.clerk_name || ""),
      el("td", {}, r.department_name ? name(r.department_name) : T.any_dept),
      el("td", {}, r.ticket ? r.ticket + " " + name(r.item) : ""),
      el("td", {class: "timer", "data-at": r.at}, since(r.at)), st, el("td", {}, ...buttons));
  }

  function render(s) {
    skew = s.now - Date.now() / 1000;
    let fresh = 0;
    for (const r of s.open) {
      if (!seen.has(r.request) && r.state === "requested" && !first) fresh += 1;
      seen.add(r.request);
    }
    first = false;
    if (fresh) { beep(); if (document.hidden) document.title = "(" + fresh + ") " + T.new_call; }
    $("#open-count").textContent = s.open.length ? "(" + s.open.length + ")" : "";
    $("#none-open").hidden = s.open.length > 0;
    $("#calls tbody").replaceChildren(...s.open.map(row));
    const esc = $("#escalated");
    if (esc) { esc.hidden = !s.escalated; esc.textContent = T.escalated_n.replace("{n}", s.escalated); }
    $("#done tbody").replaceChildren(...s.done.map((r) => el("tr", {"data-request": r.request},
      el("td", {}, T.win.replace("{n}", r.window)),
      el("td", {}, r.department_name ? name(r.department_name) : T.any_dept),
      el("td", {}, r.by_name || ""), el("td", {}, secs(r.at, r.answered_at)),
      el("td", {}, secs(r.at, r.arrived_at)), el("td", {}, secs(r.at, r.resolved_at)))));
    body.dataset.rendered = String(Number(body.dataset.rendered || 0) + 1);
  }

  ow.live("staff-dept", feed, render);
  const title = document.title; // a new call shows in the tab's title until it is looked at
  document.addEventListener("visibilitychange", () => { if (!document.hidden) document.title = title; });
  setInterval(() => {
    for (const td of document.querySelectorAll("td.timer")) td.textContent = since(Number(td.dataset.at));
  }, 1000);
}
