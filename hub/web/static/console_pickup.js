// The console's case desk (hub/web/pickup.py, GET /console/pickup/state): hand over the
// results of the pick-up ticket at this window (统一窗口出件: `handed_over` by the clerk),
// give the resident's mobile number for a case accepted here today (its notices: returned
// for material, ready for pick-up; sealed at the hub, answered masked), and at a pick-up
// window the results uncollected for days. Redrawn whenever the console redraws. Needs ow.js.
"use strict";
function owCaseDesk(n) {
  const T = JSON.parse(document.getElementById("ow-desk-strings").textContent);
  const $ = (id) => document.getElementById(id);
  const el = ow.el;
  const lang = document.documentElement.lang || "zh-CN";
  const name = (x) => (lang === "en" ? x.en : lang === "zh-TW" ? x.zh_tw : x.zh);
  const say = (text) => { $("desk-msg").textContent = text; };
  async function act(url, body) {
    say("");
    try {
      const r = await ow.post(url, body);
      await refresh();
      return r;
    } catch (e) {
      say((e.data && e.data.msg) || e.message);
      return null;
    }
  }
  async function refresh() {
    const r = await fetch("/console/pickup/state?window=" + n, {credentials: "same-origin"});
    if (!r.ok) return;
    const s = await r.json();
    $("desk-handing").replaceChildren(...s.handing.map((k) => {
      const li = el("li", {"data-case": k.id}, `${k.number} ${name(k.item)} · ${name({
        zh: k.state_zh, zh_tw: k.state_zh_tw, en: k.state_en})} `);
      if (k.state === "ready") {
        const b = el("button", {type: "button", class: "handover"}, T.hand_over);
        b.addEventListener("click", () => act("/console/pickup/handover",
                                              {case: k.id, window: n}));
        li.append(b);
      }
      return li;
    }));
    $("desk-handing-box").hidden = !s.handing.length;
    const pick = $("desk-case");
    const chosen = pick.value;
    pick.replaceChildren(...s.accepted.map((k) => el("option", {value: k.id},
      `${k.number} ${name(k.item)}${k.phone ? " · " + T.has_phone : ""}`)));
    if (chosen) pick.value = chosen;
    $("desk-phone-box").hidden = !s.accepted.length;
    $("desk-uncollected").replaceChildren(...s.uncollected.map((k) => el("li", {},
      `${k.number} ${name(k.item)} · ${T.waiting.replace("{d}", k.days)}`)));
    $("desk-uncollected-box").hidden = !s.uncollected.length;
  }
  $("desk-phone-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await act("/console/pickup/phone", {case: $("desk-case").value,
      phone: $("desk-phone").value, lang: $("desk-lang").value, window: n});
    if (r) { $("desk-phone").value = ""; say(T.phone_kept.replace("{p}", r.phone)); }
  });
  // Follows the console itself rather than a stream of its own (a browser keeps at most 6
  // connections to the hub, every tab's streams included): whenever the console redraws
  // the window's state or its current resident from the live feed, look again.
  let pending = null;
  const again = () => {
    if (pending === null) pending = setTimeout(() => { pending = null; refresh(); }, 150);
  };
  const watch = new MutationObserver(again);
  for (const id of ["win", "current"]) {
    const node = $(id);
    if (node) watch.observe(node, {subtree: true, childList: true, characterData: true,
                                   attributes: true});
  }
  refresh();
}
