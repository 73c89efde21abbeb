// The dashboard's admission control: the mode in force and who switched it, kept live from
// staff-floor; a supervisor switches it (POST /dashboard/admission, journaled with who).
"use strict";
(() => {
  const mode = document.getElementById("adm-mode");
  if (!mode) return;
  const labels = JSON.parse(mode.dataset.labels);
  const by = document.getElementById("adm-by");
  const summary = document.getElementById("s-admission");
  const form = document.getElementById("adm-form");
  const select = document.getElementById("adm-select");
  const msg = document.getElementById("adm-msg");

  function show(a) {
    for (const el of [mode, summary]) {
      if (!el) continue;
      el.dataset.mode = a.mode;
      el.textContent = labels[a.mode] || a.mode;
    }
    if (a.switched) {
      by.textContent = `${by.dataset.switchedBy} ${a.switched.by} · ${a.switched.at_text}`;
    } else {
      by.textContent = by.dataset.asConfigured;
    }
    if (select && document.activeElement !== select) select.value = a.mode;
  }

  ow.live("staff-floor", "", (s) => { if (s.admission) show(s.admission); });
  if (form) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      msg.textContent = "";
      try {
        show(await ow.post("/dashboard/admission", {mode: select.value}));
      } catch (err) {
        msg.textContent = err.message;
      }
    });
  }
})();
