// The hall screen: current and recent calls, estimated waits, and each call announced once,
// in order, never overlapping (a recall is a new call and is announced again).
// window.__owRenders records when each new call reached the screen (the benchmark reads it);
// window.__owVoice records each clip played; document.body.dataset.sound says whether the
// browser lets the page speak: "on", "blocked" (autoplay policy: the red bar asks for one
// click; a kiosk-mode launch never needs it, docs/hall-screen.md) or "off" (?voice=off).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  window.__owRenders = [];
  window.__owVoice = [];
  const seen = new Set(OW_HALL.seen || []);

  // ---- sound: allowed by the browser? --------------------------------------------------
  // 0.1 s of silence (8 kHz, 8-bit WAV), played at start: the autoplay policy answers it
  // as it would the first call, before a resident's call is lost to it.
  function silence() {
    const n = 800, buf = new Uint8Array(44 + n), dv = new DataView(buf.buffer);
    const put = (at, s) => { for (let i = 0; i < s.length; i++) buf[at + i] = s.charCodeAt(i); };
    put(0, "RIFF"); dv.setUint32(4, 36 + n, true); put(8, "WAVEfmt "); dv.setUint32(16, 16, true);
    dv.setUint16(20, 1, true); dv.setUint16(22, 1, true); dv.setUint32(24, 8000, true);
    dv.setUint32(28, 8000, true); dv.setUint16(32, 1, true); dv.setUint16(34, 8, true);
    put(36, "data"); dv.setUint32(40, n, true); buf.fill(128, 44);
    return URL.createObjectURL(new Blob([buf], {type: "audio/wav"}));
  }
  function setSound(state) {
    document.body.dataset.sound = state;
    $("sound").hidden = state !== "blocked";
  }
  const blocked = (e) => e && e.name === "NotAllowedError";
  function probe() {
    const a = new Audio(silence());
    return a.play().then(() => { setSound("on"); pump(); },
                         (e) => { if (blocked(e)) setSound("blocked"); else pump(); });
  }

  // ---- voice: one clip at a time ------------------------------------------------------
  const audio = new Audio();
  const queue = [];
  let playing = false;
  function pump() {
    if (playing || !queue.length || document.body.dataset.sound === "blocked") return;
    const url = queue.shift();
    playing = true;
    audio.src = url;
    audio.play().then(() => {
      setSound("on");
      window.__owVoice.push({url, at: Date.now()});
    }).catch((e) => {
      playing = false;
      if (blocked(e)) {  // autoplay refused: needs one click
        queue.unshift(url);
        setSound("blocked");
      } else {
        pump();
      }
    });
  }
  audio.addEventListener("ended", () => { playing = false; pump(); });
  audio.addEventListener("error", () => { playing = false; pump(); });
  $("sound").addEventListener("click", () => { setSound("unknown"); probe(); });
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
  // "{n} min" split around its number: the number large, the words beside it smaller.
  const unit = (s) => (s ? [ow.el("span", {class: "unit"}, s)] : []);
  const around = (fmt, n) => {
    const [before, after] = fmt.split("{n}");
    return [...unit(before), String(n), ...unit(after)];
  };

  // Wait strip pages: as many lines as fit the strip, the next ones 8 s later.
  const PAGE_MS = 8000;
  let pages = [[0, 0]];
  let page = 0;
  function paginate() {
    const ul = $("waits");
    const items = [...ul.children];
    pages = [];
    let start = 0;
    while (start < items.length) {
      items.forEach((li, i) => { li.hidden = i < start; });
      const bottom = ul.getBoundingClientRect().top + ul.clientHeight;
      let end = start + 1;  // at least one line a page, however long
      while (end < items.length && items[end].getBoundingClientRect().bottom <= bottom + 0.5) {
        end++;
      }
      pages.push([start, end]);
      start = end;
    }
    if (!pages.length) pages = [[0, 0]];
    showPage(Math.min(page, pages.length - 1));
  }
  function showPage(i) {
    page = i;
    const [start, end] = pages[i];
    [...$("waits").children].forEach((li, k) => { li.hidden = k < start || k >= end; });
    $("waits-page").textContent = pages.length > 1 ? `${i + 1}/${pages.length}` : "";
    return pages.length;
  }
  setInterval(() => { if (pages.length > 1) showPage((page + 1) % pages.length); }, PAGE_MS);
  // Tests page through the strip: __owHall.pages() then __owHall.show(i).
  window.__owHall = {pages: () => pages.length, show: showPage};

  // Recent calls: the newest that fit, never a row cut in half.
  function fitRecent() {
    const box = document.querySelector(".recent .rows");
    const rows = [...$("recent").tBodies[0].rows];
    rows.forEach((r) => { r.hidden = false; });
    for (let i = rows.length - 1; i >= 0 && box.scrollHeight > box.clientHeight; i--) {
      rows[i].hidden = true;
    }
  }

  function render(s) {
    const fresh = s.calls.filter((c) => !seen.has(c.id));
    const cur = s.calls[0];
    $("now-number").textContent = cur ? cur.ticket : "—";
    $("now-prio").hidden = !(cur && cur.priority);
    // "Please go to window {w}" around the window's number, as large as the ticket's
    const [before, after] = OW_T.go.split("{w}");
    $("now-window").replaceChildren(...(cur ? [before, ow.el("span",
      {class: "win", id: "now-win"}, String(cur.window)), after] : []));
    if (cur) $("now-window").setAttribute("aria-label", ow.fmt(OW_T.go, {w: cur.window}));
    const body = $("recent").tBodies[0];
    body.replaceChildren(...s.calls.slice(1).map((c) =>
      ow.el("tr", {}, ow.el("td", {}, c.ticket, ...(c.priority ? [tag()] : [])),
            ow.el("td", {}, String(c.window)))));
    fitRecent();
    $("waits").replaceChildren(...s.waits.map((w) => ow.el("li", {"data-line": w.line},
      ow.el("span", {class: "prefix"}, w.prefix),
      ow.el("span", {class: "body"},
        ow.el("span", {class: "name"}, lineName(w)),
        ow.el("span", {class: "nums"},
          ow.el("span", {class: "n"}, ...around(OW_T.waiting, w.waiting)),
          w.minutes === null ? ow.el("span", {class: "min"}, "—")
            : ow.el("span", {class: "min"}, ...around(OW_T.min, w.minutes),
                    ow.el("span", {class: "range"}, ` (${w.lo}–${w.hi})`)))))));
    paginate();
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
  render(OW_HALL.snap);
  ow.live("hall", "", render);
  window.addEventListener("resize", () => { fitRecent(); paginate(); });
  if (OW_HALL.voices.length) probe(); else setSound("off");

  function tick() {
    const d = new Date();
    // The page's own locale (<html lang>: zh-CN, zh-TW or en), 24-hour in each (zh-TW's
    // default would say 上午/下午).
    const locale = document.documentElement.lang || "zh-CN";
    $("clock").textContent = d.toLocaleTimeString(locale === "en" ? "en-GB" : locale,
                                                  {hour: "2-digit", minute: "2-digit",
                                                   hourCycle: "h23"});
  }
  tick();
  setInterval(tick, 10000);
})();
