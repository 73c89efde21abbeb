// The remote take page (/remote): an item and a mobile number, POST /remote/take.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("remote-form");
  if (!form) return;
  // Before a number is taken: whether one taken now is expected to be served today (the
  // kiosk's admission verdict), and a booking instead where the centre takes bookings.
  const admission = async () => {
    const item = $("item").value;
    try {
      const a = await (await fetch(`/kiosk/admission?item=${encodeURIComponent(item)}`)).json();
      const say = a.refuse ? (a.verdict === "closed" ? OW_R.closed : OW_R.full)
        : a.warn ? OW_R.late : null;
      $("admission").hidden = say === null;
      $("admission-text").textContent = say || "";
      $("admission-book").hidden = !(say && a.book);
      if (a.book) $("admission-book").href = a.book;
      $("take").disabled = Boolean(a.refuse);
    } catch (e) {
      $("admission").hidden = true;  // the take itself still says it
    }
  };
  $("item").addEventListener("change", admission);
  admission();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("error").hidden = true;
    $("take").disabled = true;
    try {
      const t = await ow.post("/remote/take", {item: $("item").value, phone: $("phone").value});
      form.hidden = true;
      $("taken").hidden = false;
      $("r-number").textContent = t.number;
      $("r-ahead").textContent = t.ahead === 0 ? OW_R.next : ow.fmt(OW_R.ahead, {n: t.ahead});
      $("r-wait").textContent = t.wait === null ? OW_R.nowindow
        : t.wait_lo === null ? ow.fmt(OW_R.wait, {n: t.wait})
        : ow.fmt(OW_R.wait_range, {n: t.wait, lo: t.wait_lo, hi: t.wait_hi});
      $("r-link").href = t.url;
    } catch (e) {
      $("error").textContent = e.message;
      $("error").hidden = false;
    } finally {
      $("take").disabled = false;
      admission();
    }
  });
})();
