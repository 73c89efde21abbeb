// Public pages (kiosk, hall, phone): small shared helpers on top of ow.js.
"use strict";
ow.fmt = (s, args) => s.replace(/\{(\w+)\}/g, (_, k) => String(args[k]));
// The language links keep the page's other parameters (?device=, ?voice=).
for (const a of document.querySelectorAll(".langs a")) {
  const lang = new URL(a.href, location.href).searchParams.get("lang");
  const u = new URL(location.href);
  u.searchParams.set("lang", lang);
  a.href = u.pathname + u.search;
}
