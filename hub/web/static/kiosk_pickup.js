// The kiosk's pick-up page (/kiosk/pickup, hub/web/pickup.py): the case code typed or read
// by the scanner (a keyboard) -> a pick-up ticket printed on this kiosk, or, for a case
// returned for correction, its correction slip printed; in a city, the resident's other
// open cases anywhere in the city (`city` of the answer). Needs ow.js and public.js.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const pick = (m) => (OW_P.lang === "en" ? m.en : OW_P.lang === "zh_TW" ? m.zh_tw : m.zh);
  $("pickup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const id of ["p-error", "p-ticket", "p-returned", "p-city"]) $(id).hidden = true;
    $("pickup-btn").disabled = true;
    try {
      const r = await fetch("/kiosk/pickup", {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": ow.csrf()},
        body: JSON.stringify({device: OW_P.device, code: $("code").value})});
      const j = await r.json().catch(() => ({}));
      if (!r.ok) {
        $("p-error").textContent = j.msg || String(r.status);
        $("p-error").hidden = false;
      } else if (j.state === "returned") {
        $("p-materials").replaceChildren(...j.materials.map((m) => ow.el("li", {}, pick(m))));
        $("p-returned").hidden = false;
      } else {
        $("p-number").textContent = j.number;
        $("p-where").textContent = ow.fmt(OW_P.take, {w: j.windows.join("、")});
        $("p-ticket").hidden = false;
      }
      const city = Array.isArray(j.city) ? j.city : [];
      if (city.length) {
        const state = (c) => (OW_P.lang === "en" ? c.state_en
          : OW_P.lang === "zh_TW" ? c.state_zh_tw : c.state_zh);
        $("p-city-cases").replaceChildren(...city.map((c) => ow.el("li", {"data-key": c.key},
          `${pick(c.item)} · ${state(c)}` + (c.due_day ? ` · ${OW_P.due} ${c.due_day}` : "")
          + (c.pickup ? ` · ${OW_P.pickup_at} ${c.pickup_name ? pick(c.pickup_name) : c.pickup}` : ""))));
        $("p-city").hidden = false;
      }
      $("code").value = "";
    } finally {
      $("pickup-btn").disabled = false;
      $("code").focus();
    }
  });
})();
