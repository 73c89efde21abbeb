// The hall screen: current and recent calls, estimated waits, and each call announced once,
// in order, never overlapping (a recall is a new call and is announced again).
// window.__owRenders records when each new call reached the screen (the benchmark reads it);
// window.__owVoice records each clip played.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  window.__owRenders = [];
  window.__owVoice = [];
  const seen = new Set(OW_HALL.seen || []);

  // ---- voice: one clip at a time ------------------------------------------------------
  const audio = new Audio();
  const queue = [];
  let playing = false;
  function pump() {
    if (playing || !queue.length) return;
    const url = queue.shift();
    playing = true;
    audio.src = url;
    audio.play().then(() => {
      window.__owVoice.push({url, at: Date.now()});
    }).catch((e) => {
      playing = false;
      if (e && e.name === "NotAllowedError") {  // autoplay refused: needs one tap
        queue.unshift(url);
        $("sound").hidden = false;
      } else {
        pump();
      }
    });
  }
  audio.addEventListener("ended", () => { playing = false; pump(); });
  audio.addEventListener("error", () => { playing = false; pump(); });
  $("sound").addEventListener("click", () => { $("sound").hidden = true; pump(); });
  function announce(call) {
    for (const lang of OW_HALL.voices) {
      queue.push("/hall/voice/" + encodeURIComponent(call.id) + ".wav?lang=" + lang);
    }
    pump();
  }

  // ---- the board ------------------------------------------------------------------------
  // A priority ticket shows 优先 beside its number, and nothing more about its resident.
  const tag = () => ow.el("span", {class: "prio-tag"}, OW_T.priority);
  // A line's name in the page's language: zh_TW its Traditional (else the Simplified),
  // English its English (else the Chinese).
  const lineName = (w) => (OW_HALL.lang === "zh_CN" ? w.zh
    : OW_HALL.lang === "zh_TW" ? (w.zh_tw || w.zh) : (w.en || w.zh));
  function render(s) {
    const fresh = s.calls.filter((c) => !seen.has(c.id));
    const cur = s.calls[0];
    $("now-number").textContent = cur ? cur.ticket : "—";
    $("now-prio").hidden = !(cur && cur.priority);
    $("now-window").textContent = cur ? ow.fmt(OW_T.go, {w: cur.window}) : "";
    const body = $("recent").tBodies[0];
    body.replaceChildren(...s.calls.slice(1).map((c) =>
      ow.el("tr", {}, ow.el("td", {}, c.ticket, ...(c.priority ? [" ", tag()] : [])),
            ow.el("td", {}, String(c.window)))));
    $("waits").replaceChildren(...s.waits.map((w) => ow.el("li", {},
      ow.el("span", {class: "prefix"}, w.prefix),
      ow.el("span", {class: "name"}, lineName(w)),
      ow.el("span", {class: "n"}, String(w.waiting)),
      w.minutes === null ? ow.el("span", {class: "min"}, "—")
        : ow.el("span", {class: "min"}, String(w.minutes),
                ow.el("small", {class: "range"}, ` (${w.lo}–${w.hi})`)))));
    if (fresh.length) {
      const now = $("now");
      now.classList.remove("flash");
      void now.offsetWidth;  // restart the animation
      now.classList.add("flash");
      requestAnimationFrame(() => {
        const at = Date.now();
        for (const c of fresh) {
          window.__owRenders.push({id: c.id, ticket: c.ticket, window: c.window, ts: c.ts, at});
        }
      });
    }
    for (const c of fresh.reverse()) {  // oldest first
      seen.add(c.id);
      announce(c);
    }
  }
  ow.live("hall", "", render);

  function tick() {
    const d = new Date();
    // The page's own locale (<html lang>: zh-CN, zh-TW or en), en as en-GB (24-hour).
    const locale = document.documentElement.lang || "zh-CN";
    $("clock").textContent = d.toLocaleTimeString(locale === "en" ? "en-GB" : locale,
                                                  {hour: "2-digit", minute: "2-digit"});
  }
  tick();
  setInterval(tick, 10000);
})();
