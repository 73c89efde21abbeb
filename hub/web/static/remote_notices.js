// The notices of a remote ticket on its phone page ("your turn is near", "called to
// window N"): each shown once in the page's language, with a tone, a vibration and, where
// the resident allowed it, a system notification (the Notification API). phone.js hands
// every live snapshot to window.owNotices.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const lang = {"zh-TW": "zh_TW", "en": "en"}[document.documentElement.lang] || "zh_CN";
  const key = "ow-notices-seen";
  const seen = new Set(JSON.parse(sessionStorage.getItem(key) || "[]"));
  const shown = new Set();
  function tone() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      const ctx = new Ctx();
      for (const [at, hz] of [[0, 880], [0.25, 1175]]) {
        const o = ctx.createOscillator(), g = ctx.createGain();
        o.frequency.value = hz;
        g.gain.setValueAtTime(0.2, ctx.currentTime + at);
        g.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + at + 0.22);
        o.connect(g).connect(ctx.destination);
        o.start(ctx.currentTime + at);
        o.stop(ctx.currentTime + at + 0.23);
      }
    } catch (e) { /* no audio before a tap on some phones: the text and vibration stay */ }
  }
  function alert(text) {
    tone();
    if (navigator.vibrate) navigator.vibrate([400, 200, 400]);
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      try { new Notification(text, {tag: "ow-ticket"}); } catch (e) { /* mobile: page only */ }
    }
  }
  window.owNotices = (s) => {
    const list = s && s.notices;
    if (!list || !list.length) return;
    $("notices").hidden = false;
    const allow = $("notify-allow");
    if ("Notification" in window && Notification.permission === "default") allow.hidden = false;
    for (const n of list) {
      if (shown.has(n.id)) continue;
      shown.add(n.id);
      const text = n[lang] || n.zh_CN;
      const li = document.createElement("li");
      li.dataset.kind = n.kind;
      li.dataset.id = n.id;
      li.textContent = text;
      $("notice-list").prepend(li);
      if (!seen.has(n.id)) {
        seen.add(n.id);
        sessionStorage.setItem(key, JSON.stringify([...seen]));
        alert(text);
      }
    }
  };
  document.addEventListener("DOMContentLoaded", () => {
    const allow = $("notify-allow");
    if (allow) allow.addEventListener("click", async () => {
      allow.hidden = (await Notification.requestPermission()) !== "default";
    });
  });
})();
