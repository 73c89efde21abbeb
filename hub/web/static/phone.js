// The resident's phone page: the ticket's state, live over SSE (channel "ticket").
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  // The ticket's token from its QR link (?k=): only its holder may rate (hub/web/phone.py).
  const KEY = new URLSearchParams(location.search).get("k");
  const HOLDER = OW_TICKET.holder === true && KEY !== null;
  function render(s) {
    const card = $("ticket");
    if (!s.found) {
      card.dataset.state = "gone";
      $("status").textContent = OW_T.gone;
      $("detail").textContent = "";
      $("prio").hidden = true;
      return;
    }
    card.dataset.state = s.state;
    $("prio").hidden = !s.priority;  // a clerk may mark it priority while it waits
    let status = "", detail = "";
    if (s.state === "waiting") {
      status = s.ahead === 0 ? OW_T.next : ow.fmt(OW_T.ahead, {n: s.ahead});
      detail = s.wait === null ? OW_T.nowindow
        : s.wait_lo === null || s.wait_lo === undefined ? ow.fmt(OW_T.wait, {n: s.wait})
        : ow.fmt(OW_T.wait_range, {n: s.wait, lo: s.wait_lo, hi: s.wait_hi});
    } else if (s.state === "called") {
      status = ow.fmt(OW_T.called, {w: s.window});
      if (navigator.vibrate) navigator.vibrate([300, 150, 300]);
    } else if (s.state === "serving") {
      status = ow.fmt(OW_T.serving, {w: s.window});
    } else {
      status = OW_T[s.state] || s.state;
    }
    $("status").textContent = status;
    $("detail").textContent = detail;
    if (window.owNotices) window.owNotices(s);  // remote_notices.js: this page's notices
    if (window.owCase) window.owCase(s.case || null);  // case.js: the case after service
    $("rate").hidden = !s.can_rate || !HOLDER;  // after service: the five levels (好差评)
    $("rated").hidden = !s.rated;
  }
  // The national rating scale: 5 very satisfied .. 1 very dissatisfied, one per service.
  for (const b of document.querySelectorAll("#rate [data-score]")) {
    b.addEventListener("click", async () => {
      $("rate-msg").textContent = "";
      for (const x of document.querySelectorAll("#rate [data-score]")) x.disabled = true;
      try {
        const r = await fetch("/t/" + encodeURIComponent(OW_TICKET.id) + "/rate", {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json", "X-CSRF-Token": ow.csrf()},
          body: JSON.stringify({score: Number(b.dataset.score),
                                comment: $("rate-comment").value, k: KEY})});
        const j = await r.json().catch(() => ({}));
        if (r.ok) render(j);
        else $("rate-msg").textContent = OW_T["rate_" + j.code] || OW_T.rate_failed;
      } catch (e) {
        $("rate-msg").textContent = OW_T.rate_failed;
      } finally {
        for (const x of document.querySelectorAll("#rate [data-score]")) x.disabled = false;
      }
    });
  }
  render(OW_TICKET);
  ow.live("ticket", OW_TICKET.id, render);
})();
