// The resident's case on the phone page (hub/web/pickup.py `case_view`): at the back
// office with its due day, returned with the materials to correct and why, ready with the
// pick-up window(s), collected. The case code comes only with the page's first render
// (the ticket's holder): the live feed, shared by everyone watching, never carries it.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const fmt = (s, v) => s.replace(/\{(\w+)\}/g, (_, k) => (k in v ? String(v[k]) : ""));
  const pick = (t) => (OW_LANG === "en" ? t.en : OW_LANG === "zh_TW" ? t.zh_tw : t.zh);
  let code = OW_TICKET.case && OW_TICKET.case.code ? OW_TICKET.case.code : null;
  const KEY = new URLSearchParams(location.search).get("k");
  const HOLDER = OW_TICKET.holder === true && KEY !== null;
  let phoneWanted = !!(OW_TICKET.case && OW_TICKET.case.phone_kept === false);
  document.addEventListener("DOMContentLoaded", () => {
    const form = $("case-phone-form");
    if (!form) return;
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("case-phone-save").disabled = true;
      try {
        const r = await fetch("/t/" + encodeURIComponent(OW_TICKET.id) + "/phone", {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-CSRF-Token": ow.csrf()},
          body: JSON.stringify({phone: $("case-phone").value, k: KEY,
                                lang: OW_LANG.replace("_", "-")})});
        const j = await r.json().catch(() => ({}));
        if (r.ok) {
          phoneWanted = false;
          form.hidden = true;
          $("case-phone-done").textContent = fmt(OW_CASE_T.phone_kept, {p: j.phone});
          $("case-phone-done").hidden = false;
        } else {
          $("case-phone-msg").textContent = j.msg || String(r.status);
        }
      } finally {
        $("case-phone-save").disabled = false;
      }
    });
  });
  window.owCase = (c) => {
    const box = $("case");
    if (!c) { box.hidden = true; return; }
    box.hidden = false;
    box.dataset.state = c.state;
    $("case-state").textContent = pick({zh: c.state_zh, zh_tw: c.state_zh_tw, en: c.state_en});
    let detail = "";
    if (c.state === "open") detail = fmt(OW_CASE_T.open, {due: c.due_day});
    else if (c.state === "returned") detail = OW_CASE_T.returned;
    else if (c.state === "ready") detail = c.windows.length
      ? fmt(OW_CASE_T.ready, {w: c.windows.join(OW_LANG === "en" ? ", " : "、")})
      : OW_CASE_T.ready_any;
    else if (c.state === "closed") {
      detail = fmt(c.collected ? OW_CASE_T.closed : OW_CASE_T.done, {at: c.closed_at || ""});
    }
    $("case-detail").textContent = detail;
    const list = $("case-materials");
    list.replaceChildren(...c.materials.map((m) => {
      const li = document.createElement("li");
      li.textContent = pick(m);
      return li;
    }));
    $("case-reason").textContent = c.state === "returned" && c.reason
      ? OW_CASE_T.reason + c.reason : "";
    if (c.code) code = c.code;
    // the holder may leave a number for the case's notices while it is in progress
    $("case-phone-form").hidden = !(HOLDER && phoneWanted && c.state !== "closed");
    const showCode = code !== null && (c.state === "returned" || c.state === "ready");
    $("case-code-line").hidden = !showCode;
    $("case-code").textContent = showCode ? code : "";
  };
})();
