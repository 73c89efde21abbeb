// The console's desk part (hub/core/desk.py, issue 18): the tickets this window would call
// next, each of which can be called out of turn with a reason (journaled with the clerk);
// the reason a pause is for; and keyboard shortcuts for clerks who keep their hands on the
// keyboard (F1 or N call next, R recall, S start, C complete); in a city, the resident's
// open cases at other centres. A key does nothing while the clerk types in a box, while a
// dialog is open, with Ctrl/Alt/Meta held, or when its button is disabled: it presses the
// very button the mouse would. staff.js calls owDesk.render on every snapshot of the
// window; text goes in with textContent (ow.el).
"use strict";
window.owDesk = (() => {
  const D = JSON.parse(document.getElementById("ow-desk-call-strings").textContent);
  const $ = (id) => document.getElementById(id);
  const el = ow.el;
  const locale = document.documentElement.lang || "zh-CN";
  const name = (x) => (locale === "zh-TW" ? x.zh_tw || x.zh : locale.startsWith("zh") ? x.zh : x.en);
  const KEYS = {F1: "act-call", n: "act-call", r: "act-recall", s: "act-start", c: "act-complete"};
  let n = null, done = null, post = null, marks = null;
  let calling = null;  // the ticket the call dialog is open for

  function typing(t) {
    if (!t || !t.tagName) return false;
    const tag = t.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || t.isContentEditable;
  }

  function onKey(e) {
    if (e.ctrlKey || e.altKey || e.metaKey || e.repeat) return;
    if (typing(e.target) || document.querySelector("dialog[open]")) return;
    const id = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (!id) return;
    e.preventDefault();  // F1: not the browser's help
    const b = $(id);
    if (b && !b.disabled) b.click();
  }

  function setup(window_, render_, post_, marks_) {
    n = window_; done = render_; post = post_; marks = marks_;
    document.addEventListener("keydown", onKey);
    for (const [keys, id] of [["F1 N", "act-call"], ["R", "act-recall"], ["S", "act-start"],
                              ["C", "act-complete"]]) {
      const b = $(id);
      if (b) { b.title = keys.replace(" ", " / "); b.setAttribute("aria-keyshortcuts", keys); }
    }
    const dlg = $("call-dialog");
    dlg.addEventListener("close", async () => {
      const t = calling;
      calling = null;
      if (dlg.returnValue !== "ok" || !t) return;
      const reason = $("call-reason").value, note = $("call-note").value.trim();
      $("call-form").reset();
      const r = await post("/console/call_ticket", {window: n, ticket: t.id, reason, note});
      if (r) done(r);
    });
    // "other" needs a note: the dialog does not close without one
    $("call-ok").addEventListener("click", (e) => {
      const reason = $("call-reason");
      const note = $("call-note");
      note.setCustomValidity(reason.value === "other" && !note.value.trim() ? D.note_needed : "");
      if (!reason.value || !note.checkValidity()) {
        e.preventDefault();
        (reason.value ? note : reason).reportValidity();
      }
    });
  }

  function callDialog(u) {
    calling = u;
    $("call-number").textContent = u.number;
    $("call-form").reset();
    $("call-dialog").showModal();
    $("call-reason").focus();
  }

  // One waiting ticket: number, marks (priority, booking with its slot, sent here), item,
  // minutes waited; `call`: with a button that calls it out of turn.
  function row(u, call) {
    const li = el("li", {"data-ticket": u.number, "data-priority": u.priority},
      el("b", {class: "q-number"}, u.number));
    if (!u.appointment_at) li.append(...marks(u));  // a booking: its slot says it
    if (u.appointment_at) {
      const at = new Date(u.appointment_at * 1000).toLocaleTimeString(
        locale.startsWith("zh") ? locale : "en-GB", {hour: "2-digit", minute: "2-digit"});
      li.append(" ", el("span", {class: "tag booked"}, D.booked.replace("{t}", at)));
    }
    if (u.targeted) li.append(" ", el("span", {class: "tag sent"}, D.sent_here));
    li.append(" " + name(u) + " · " + Math.round(u.waited_min) + " " + D.min);
    if (call) li.append(" ", callButton(u));
    return li;
  }

  function callButton(u) {
    const b = el("button", {class: "small secondary call-ticket", "data-call": u.number}, D.call);
    b.addEventListener("click", () => callDialog(u));
    return b;
  }

  function render(s) {
    const w = s.window;
    const st = $("win-state");
    if (w.state === "paused" && w.pause_reason !== null && w.pause_reason !== undefined) {
      st.textContent += " · " + (D.pause_reasons[w.pause_reason] || w.pause_reason);
      st.dataset.reason = w.pause_reason;
      $("pause-reason").value = "";  // the next pause asks for its own reason
    } else {
      delete st.dataset.reason;
    }
    const may = w.state === "idle" || w.state === "calling" || w.state === "serving";
    const next = (s.queue.next || []).map((u) => row(u, may));
    $("next-list").replaceChildren(...(next.length ? next : [el("li", {class: "muted more"}, D.nobody_next)]));
    cityPanel(s.city);
  }

  // The resident's open cases elsewhere in the city (hub/web/console_city.py): the panel
  // is on the page only in a city; the hub asks the city in the background, so `asking`
  // comes first and the answer (or `unreachable`) in a later snapshot.
  function cityPanel(c) {
    const box = $("city-box");
    if (!box || !c) return;
    box.dataset.state = c.state;
    $("city-source").textContent = c.source === "card" ? D.city_from_card : "";
    const rows = c.state === "ok" ? c.cases : [];
    $("city-state").textContent = c.state === "ok" ? (rows.length ? "" : D.city_none)
      : (D["city_" + c.state] || c.state);
    // a centre by its name as the city knows it (the hub falls back to its id)
    const centre = (n, id) => (n ? name(n) : id || "—");
    const said = (r) => (locale === "zh-TW" ? r.state_zh_tw : locale.startsWith("zh") ? r.state_zh : r.state_en);
    $("city-cases").replaceChildren(...rows.map((r) => el("li", {"data-key": r.key},
      el("b", {}, name(r.item)),
      " · " + said(r) + " · " + D.city_due.replace("{d}", r.due_day || "—") + " · " +
        D.city_approver + " " + centre(r.approver_name, r.approver) + " · " + D.city_pickup +
        " " + centre(r.pickup_name, r.pickup))));
  }

  // The pause's reason code, or null (and the clerk is told) when none is chosen.
  function pauseReason() {
    const sel = $("pause-reason");
    if (sel.value) return sel.value;
    $("msg").textContent = D.pause_reason_needed;
    sel.focus();
    return null;
  }

  return {setup, render, callButton, pauseReason};
})();
