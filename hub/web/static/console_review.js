// The console's pre-review part (hub/web/returns.py): what the kiosk's pre-review found
// for the resident at the window, the items often done with theirs (多问一句), and
// "returned for materials" (退回补材料) with its tips slip. staff.js calls owReview on
// every snapshot of the window; all text goes in with textContent (ow.el).
"use strict";
window.owReview = (() => {
  const R = JSON.parse(document.getElementById("ow-review-strings").textContent);
  const $ = (id) => document.getElementById(id);
  const el = ow.el;
  const locale = document.documentElement.lang || "zh-CN";
  const name = (x) => (locale === "zh-TW" ? x.zh_tw || x.zh : locale.startsWith("zh") ? x.zh : x.en);
  let shownFor = null;  // the ticket whose return choices are on screen (kept across updates)

  return function render(s, n, done) {
    const t = s.ticket;
    const box = $("review-box");
    if (!box) return;
    if (s.returned) showSlip(s.returned);
    else if (t) $("return-slip").hidden = true;  // the next resident: the slip was given
    if (!t) {
      box.hidden = true;
      shownFor = null;
      return;
    }
    box.hidden = false;
    const p = t.prereview;
    $("prereview").textContent = !p ? R.no_review
      : [p.outcome === "complete" ? R.complete : R.queued_anyway,
         ...(p.tips ? [R.tips_printed] : [])].join(" · ");
    $("prereview").dataset.outcome = p ? p.outcome : "";
    $("related").replaceChildren(...(t.related.length ? t.related.map((r) => el("li", {},
      el("b", {}, r.id + " "), name(r), ...(r.seen ? [el("span", {class: "muted"},
        " · " + R.seen.replace("{n}", r.seen))] : [])))
      : [el("li", {class: "muted"}, R.no_related)]));
    const serving = t.state === "serving";
    $("act-return").disabled = !serving;
    if (shownFor === t.id) return;  // keep the clerk's ticks while the snapshot updates
    shownFor = t.id;
    $("return-materials").replaceChildren(...t.review_materials.map((m) => {
      const box_ = el("input", {type: "checkbox", name: "missing", value: m.key});
      box_.checked = m.status === "missing";
      const tag = m.status ? [el("span", {class: "tag " + m.status}, R[m.status])] : [];
      return el("li", {"data-key": m.key, "data-status": m.status || ""},
        el("label", {}, box_, " " + name(m) + (m.required ? "" : " (" + R.optional + ")")),
        " ", ...tag);
    }));
    $("act-return").onclick = async () => {
      const missing = [...document.querySelectorAll('#return-materials input:checked')].map((x) => x.value);
      if (!confirm(R.confirm.replace("{t}", t.number))) return;
      try {
        const r = await ow.post("/console/return", {window: n, missing});
        done(r);
      } catch (e) {
        $("msg").textContent = (e.data && e.data.msg) || e.message;
      }
    };
  };

  function showSlip(r) {
    const slip = $("return-slip");
    slip.hidden = false;
    $("return-number").textContent = r.number;
    const a = $("return-link");
    a.href = r.tips_path;  // this hub, as the clerk's browser reaches it
    $("return-qr").innerHTML = r.qr;  // our own SVG
    $("return-printed").textContent = r.printed_on ? R.printed_on.replace("{d}", r.printed_on) : R.offered;
  }
})();
