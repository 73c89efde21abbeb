// The dashboard's arrivals chart (hub/web/arrivals_view.py), kept live from staff-floor:
// residents who took a ticket per half-hour today (bars; the slots gone by darker) beside
// the forecast for today (a line), the slot now in progress marked. Drawn as inline SVG:
// no library, nothing downloaded.
"use strict";
(() => {
  const box = document.getElementById("arrivals-chart");
  if (!box) return;
  const T = JSON.parse(document.getElementById("ow-dashboard-strings").textContent);
  const NS = "http://www.w3.org/2000/svg";
  const W = 720, H = 220, L = 30, R = 8, TOP = 10, B = 22;
  const svg = (tag, attrs) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    return e;
  };
  const fmt = (x) => String(Math.round(x));

  function draw(a) {
    const n = a.slots.length;
    const text = [T.so_far.replace("{n}", a.actual_total)];
    if (a.forecast_total !== null) {
      text.push(T.forecast_so_far.replace("{n}", fmt(a.forecast_so_far)));
      text.push(T.forecast_day.replace("{n}", fmt(a.forecast_total)));
      text.push(T["basis_" + a.method].replace("{n}", a.basis_days));
    } else {
      text.push(T["basis_" + a.method] || T.basis_none);
    }
    document.getElementById("arrivals-text").textContent = text.join(" · ");
    const root = svg("svg", {viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "xMidYMid meet"});
    if (!n) { box.replaceChildren(root); return; }
    const fc = a.forecast.map((v) => v || 0);
    const top = Math.max(4, ...a.actual, ...fc);
    const step = top > 40 ? 20 : top > 20 ? 10 : top > 8 ? 5 : 2;
    const ymax = Math.ceil(top / step) * step;
    const cw = (W - L - R) / n;
    const y = (v) => TOP + (H - TOP - B) * (1 - v / ymax);
    for (let v = 0; v <= ymax; v += step) {
      root.append(svg("line", {class: "axis", x1: L, x2: W - R, y1: y(v), y2: y(v)}));
      const t = svg("text", {x: L - 4, y: y(v) + 4, "text-anchor": "end"});
      t.textContent = v;
      root.append(t);
    }
    a.actual.forEach((v, i) => {
      const past = a.now === null || i <= a.now;
      const r = svg("rect", {class: "bar" + (past ? " past" : ""), x: L + i * cw + cw * 0.15,
                             y: y(v), width: cw * 0.7, height: y(0) - y(v),
                             "data-slot": a.slots[i], "data-count": v});
      const tip = svg("title", {});
      tip.textContent = a.slots[i] + " · " + v + (a.forecast[i] === null ? "" : " / " + a.forecast[i]);
      r.append(tip);
      root.append(r);
      if (i % 4 === 0) {
        const t = svg("text", {x: L + i * cw, y: H - 6});
        t.textContent = a.slots[i];
        root.append(t);
      }
    });
    if (a.forecast_total !== null) {
      // a step line: each slot's forecast across its own width
      const pts = [];
      fc.forEach((v, i) => { pts.push(`${L + i * cw},${y(v)}`, `${L + (i + 1) * cw},${y(v)}`); });
      root.append(svg("polyline", {class: "fc", points: pts.join(" ")}));
    }
    if (a.now !== null) {
      const x = L + (a.now + 0.5) * cw;
      root.append(svg("line", {class: "now", x1: x, x2: x, y1: TOP, y2: y(0)}));
    }
    box.replaceChildren(root);
  }

  ow.live("staff-floor", "", (s) => { if (s.arrivals) draw(s.arrivals); });
})();
