// Booking (/book) and the kiosk's check-in (/kiosk/checkin). Needs ow.js and public.js.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const show = (el, text) => { el.textContent = text; el.hidden = false; };

  // ---- /book ------------------------------------------------------------------------
  const form = $("book-form");
  if (form) {
    let slot = "";
    const radio = (box, value, label, sub, checked, onPick) => {
      const b = ow.el("button", {type: "button", role: "radio", "data-value": value,
                                 "aria-checked": String(checked)}, label);
      if (sub !== null) b.append(ow.el("small", {}, sub));
      b.addEventListener("click", () => {
        for (const o of box.querySelectorAll("button")) o.setAttribute("aria-checked", "false");
        b.setAttribute("aria-checked", "true");
        onPick(value);
      });
      box.append(b);
      return b;
    };
    const load = async (day) => {
      slot = "";
      const q = new URLSearchParams({item: $("item").value});
      if (day) q.set("day", day);
      const r = await fetch("/book/slots.json?" + q);
      const data = await r.json();
      $("days").replaceChildren();
      $("slots").replaceChildren();
      if (!r.ok) { show($("error"), data.msg); return; }
      for (const d of data.days) radio($("days"), d.day, d.label, null, d.day === data.day, load);
      for (const s of data.slots) {
        const b = radio($("slots"), s.slot, s.time,
                        s.free > 0 ? ow.fmt(OW_B.free, {n: s.free}) : OW_B.full, false,
                        (v) => { slot = v; });
        if (s.free <= 0) b.disabled = true;
      }
      $("no-slots").hidden = data.slots.some((s) => s.free > 0);
    };
    $("item").addEventListener("change", () => load(""));
    load("");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("error").hidden = true;
      $("next").hidden = true;
      if (!slot) { show($("error"), OW_B.pick); return; }
      const body = {item: $("item").value, slot};
      const card = $("card") ? $("card").value.trim() : "";
      if (card) Object.assign(body, {card, device: OW_B.device});
      else body.phone = $("phone") ? $("phone").value : "";
      // the ID number (optional): hashed at the hub into the token the card gives
      if (!card && $("id-number") && $("id-number").value.trim()) body.id_number = $("id-number").value;
      $("submit").disabled = true;
      try {
        const b = await ow.post("/book", body);
        form.hidden = true;
        $("done").hidden = false;
        $("d-what").textContent = ow.fmt(OW_B.what, {item: b.item, day: b.day, time: b.time});
        $("d-code").textContent = b.code;
        $("d-qr").innerHTML = b.qr;  // an SVG made by the hub (segno)
        $("d-qr").dataset.text = b.qr_text;
        $("d-qr-code").textContent = b.code;  // the QR's label: the code it stands for
        $("d-window").textContent = ow.fmt(OW_B.window, {from: b.checkin_from, to: b.checkin_to});
        // With a number, the booking's reminders also come to this page while it is open
        // (the notice channel "page": remote_notices.js shows them, with a tone).
        if (body.phone && window.owNotices) {
          const poll = async () => {
            try {
              const r = await fetch("/book/notices.json?code=" + encodeURIComponent(b.code));
              if (r.ok) window.owNotices(await r.json());
            } catch (e) { /* offline a moment: the next poll */ }
          };
          setInterval(poll, 30000);
          document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
        }
      } catch (e) {
        show($("error"), e.message);
        const next = (e.data && e.data.next) || [];
        if (next.length) {
          $("next-slots").replaceChildren();
          for (const n of next) {
            radio($("next-slots"), n.slot, n.time, n.day.slice(4, 6) + "-" + n.day.slice(6),
                  false, (v) => { slot = v; });
          }
          $("next").hidden = false;
        }
      } finally {
        $("submit").disabled = false;
      }
    });
  }
  const cancel = $("cancel-form");
  if (cancel) {
    cancel.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const r = await ow.post("/book/cancel", {code: $("cancel-code").value});
        show($("cancel-msg"), ow.fmt(OW_B.cancelled, {code: r.cancelled}));
      } catch (e) {
        show($("cancel-msg"), e.message);
      }
    });
  }

  // ---- /kiosk/checkin: the scanner types the QR's text and Enter ----------------------
  const checkin = $("checkin-form");
  if (checkin) {
    checkin.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const code = $("code").value.trim();
      if (!code) return;
      $("c-error").hidden = true;
      $("c-ticket").hidden = true;
      $("checkin-btn").disabled = true;
      try {
        const t = await ow.post("/kiosk/checkin", {device: OW_C.device, code});
        $("c-kind").textContent = t.late ? OW_C.late : OW_C.appointment;
        $("c-number").textContent = t.number;
        $("c-what").textContent = ow.fmt(OW_C.what, {item: t.item, time: t.slot});
        $("c-ticket").dataset.late = String(t.late);
        $("c-ticket").hidden = false;
      } catch (e) {
        show($("c-error"), e.message);
      } finally {
        $("checkin-btn").disabled = false;
        $("code").value = "";
        $("code").focus();
      }
    });
  }
})();
