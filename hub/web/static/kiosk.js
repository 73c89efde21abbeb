// The kiosk: search as you type; on an item page pre-review (预审) the materials, "ask one
// more question" (多问一句: related items on the same ticket), then tips or a ticket.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  // A catalog text in the page's language: zh_TW its Traditional (else the Simplified),
  // English its English (else the Chinese).
  const lang = OW_KIOSK.lang;
  const name = (x) => (lang === "zh_TW" ? (x.zh_tw || x.zh)
    : lang === "zh_CN" || !x.en ? x.zh : x.en);

  // Back to the start after a while untouched: the next resident starts fresh.
  let idle;
  // Set while the tips for missing materials are shown and the resident has not chosen:
  // leaving then (the button, or walking away) is journaled as a wasted wait avoided.
  let leaving = null;
  const home = async () => {
    if (leaving) await leaving().catch(() => {});
    if (location.pathname !== "/kiosk") location.href = "/kiosk";
  };
  const poke = (ms) => { clearTimeout(idle); idle = setTimeout(home, ms || 120000); };
  for (const ev of ["pointerdown", "keydown"]) document.addEventListener(ev, () => poke());
  poke();

  // ---- search as you type (home page) ------------------------------------------------------
  const q = $("q"), results = $("live-results");
  if (q && results) {
    let timer, asked = "";
    q.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const text = q.value.trim();
        asked = text;
        if (!text) { results.replaceChildren(); return; }
        const r = await fetch("/kiosk/search.json?q=" + encodeURIComponent(text));
        const data = await r.json();
        if (asked !== text) return;
        results.replaceChildren(...data.items.slice(0, 8).map((i) => ow.el("li", {},
          ow.el("a", {href: "/kiosk/item/" + i.id}, ow.el("span", {class: "name"}, name(i))))));
      }, 150);
    });
  }

  // ---- item page ---------------------------------------------------------------------------
  if (typeof OW_ITEM === "undefined") return;
  const main = OW_ITEM.item;
  const byId = Object.fromEntries([main, ...OW_ITEM.related].map((i) => [i.id, i]));
  // The Traditional of this page's names (OW_ITEM carries zh_tw), for the review's answer,
  // which names items and materials by zh/en only.
  const traditional = new Map();
  for (const i of Object.values(byId)) {
    for (const x of [i, ...i.materials]) if (x.zh_tw) traditional.set(x.zh, x.zh_tw);
  }
  const named = (x) => name(x.zh_tw || !traditional.has(x.zh) ? x
    : {...x, zh_tw: traditional.get(x.zh)});
  const have = new Set();
  const extras = () => [...document.querySelectorAll('input[name="extra"]:checked')]
    .map((x) => x.value);

  function checklist() {
    // One list for every chosen item; a material two items need appears once.
    const merged = new Map();
    for (const id of [main.id, ...extras()]) {
      for (const m of byId[id].materials) {
        const had = merged.get(m.zh);
        merged.set(m.zh, {...m, required: m.required || (had ? had.required : false)});
      }
    }
    $("checklist").replaceChildren(...[...merged.values()].map((m) => {
      const box = ow.el("input", {type: "checkbox", name: "have", value: m.zh});
      box.checked = have.has(m.zh);
      box.addEventListener("change", () => {
        if (box.checked) have.add(m.zh); else have.delete(m.zh);
      });
      return ow.el("label", {class: "check " + (m.required ? "need" : "nice")}, box,
        ow.el("span", {}, name(m)),
        ow.el("small", {}, m.required ? OW_T.required : OW_T.optional));
    }));
  }
  for (const x of document.querySelectorAll('input[name="extra"]')) {
    x.addEventListener("change", checklist);
  }
  checklist();

  let tipsPrinted = false;  // journaled with the outcome (hub/core/prereview.py)
  const body = (more) => ({device: OW_KIOSK.device, item: main.id, extra_items: extras(),
                           have: [...have], tips_printed: tipsPrinted, ...more});
  async function leave() {
    leaving = null;
    await ow.post("/kiosk/left", body());
  }
  function show(id) {
    for (const s of ["detail", "tips", "ticket"]) $(s).hidden = s !== id;
    $("error").hidden = true;
    window.scrollTo(0, 0);
  }
  function fail(e) {
    $("error").textContent = OW_T.failed + " " + e.message;
    $("error").hidden = false;
  }

  async function check() {
    try {
      const r = await ow.post("/kiosk/review", body());
      if (r.ok) return take(false);
      $("tips-list").replaceChildren(...r.missing.map((m) => ow.el("div", {class: "tip"},
        ow.el("h2", {}, named(m)),
        ow.el("ul", {}, ...m.materials.map((x) => ow.el("li", {}, named(x)))))));
      $("tips-qr").innerHTML = r.qr;  // our own SVG
      $("tips-url").textContent = r.tips_url || "";  // the QR's text, for who cannot scan
      $("printed").hidden = true;
      $("insist-box").hidden = true;
      $("left-note").hidden = true;
      tipsPrinted = false;
      leaving = leave;
      show("tips");
    } catch (e) { fail(e); }
  }

  async function take(insist) {
    try {
      const t = await ow.post("/kiosk/take", body({insist}));
      leaving = null;
      $("t-number").textContent = t.number;
      $("t-items").replaceChildren(...t.items.map((i) => ow.el("li", {}, name(i))));
      $("t-ahead").textContent = ow.fmt(OW_T.ahead, {n: t.ahead});
      $("t-wait").textContent = t.wait === null ? OW_T.nowindow : ow.fmt(OW_T.wait, {n: t.wait});
      $("t-qr").innerHTML = t.qr;
      $("t-qr").dataset.url = t.url;
      $("t-url").textContent = t.url;
      show("ticket");
      poke(60000);
    } catch (e) { fail(e); }
  }

  $("check").addEventListener("click", check);
  $("back").addEventListener("click", () => { leaving = null; show("detail"); });
  $("leave").addEventListener("click", async () => {
    try {
      await leave();
      $("left-note").hidden = false;
      poke(8000);
    } catch (e) { fail(e); }
  });
  $("print-tips").addEventListener("click", async () => {
    try {
      await ow.post("/kiosk/tips/print", body());
      tipsPrinted = true;
      $("printed").hidden = false;
    } catch (e) { fail(e); }
  });
  $("insist-ask").addEventListener("click", (e) => {
    e.preventDefault();
    $("insist-box").hidden = false;
  });
  $("insist").addEventListener("click", () => take(true));
})();
