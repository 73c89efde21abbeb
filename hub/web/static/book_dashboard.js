// The dashboard's "booked and walk-in per slot today" table, kept live from staff-floor.
"use strict";
(() => {
  const table = document.getElementById("bookings");
  if (!table) return;
  const cols = ["booked", "checked_in", "no_show", "walk_in", "capacity"];
  ow.live("staff-floor", "", (s) => {
    if (!s.bookings || !s.bookings.length) return;
    const body = table.tBodies[0];
    body.replaceChildren(...s.bookings.map((r) => {
      const tr = ow.el("tr", {"data-slot": r.slot}, ow.el("th", {}, r.slot));
      for (const k of cols) tr.append(ow.el("td", {class: k}, String(r[k])));
      return tr;
    }));
  });
})();
