// The dashboard's pre-review and one-trip figures (预审 / 一次办成: hub/web/trips_view.py),
// kept live from staff-floor: today's from the core, the last 30 days' from the tables.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  if (!$("trips")) return;
  const pct = (x) => (x === null || x === undefined ? "–" : Math.round(x * 1000) / 10 + "%");
  ow.live("staff-floor", "", (s) => {
    const t = s.trips && s.trips.today;
    if (!t) return;
    $("tr-left").textContent = t.kiosk_left;
    $("tr-anyway").textContent = t.queued_anyway;
    $("tr-returned").textContent = t.returned;
    $("tr-onetrip").textContent = pct(t.one_trip_rate);
    $("tr-repeat").textContent = t.repeat_visits + " / " + t.with_token;
    const p = s.trips.period;
    $("tr-period").hidden = $("tr-period-rate").hidden = !p;
    if (p) {
      $("tr-p-left").textContent = p.kiosk_left;
      $("tr-p-onetrip").textContent = pct(p.one_trip_rate);
    }
  });
})();
