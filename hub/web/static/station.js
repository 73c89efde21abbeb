// The community station page (协管员代收): look up an item, check its materials with the
// resident, photograph them, open the case. Every case goes first into a local queue
// (IndexedDB, with its photos) and is sent from there, so a station whose link to the centre
// drops keeps working and sends what it kept when the link returns. Each entry carries a key
// made here (crypto.randomUUID): sent twice (an answer lost on the way), the hub answers the
// earlier result instead of opening a second case.
//
// The resident's ID number is sealed to the hub's public key (ECIES: ECDH P-256, HKDF-SHA256,
// AES-GCM; hub/web/idseal.py opens it) the moment the case is opened, and the field is
// cleared: the queue holds only the seal, which only the hub can open.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const T = JSON.parse($("station-strings").textContent);
  const root = $("station");
  const SEAL_KEY = root.dataset.seal;
  const INSECURE = !window.isSecureContext || !window.crypto || !crypto.subtle;
  const locale = document.documentElement.lang || "zh-CN";
  const name = (x) => (locale === "zh-TW" ? x.zh_tw || x.zh : locale.startsWith("zh") ? x.zh
    : x.en || x.zh);
  const el = ow.el;
  const say = (text) => { $("msg").textContent = text || ""; };
  const done = (text) => { $("done").textContent = text || ""; };

  // ---- the local queue (IndexedDB) -------------------------------------------------------
  const DB = "ow-station-" + root.dataset.station;
  const opened = new Promise((resolve, reject) => {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => {
      r.result.createObjectStore("queue", {keyPath: "key"});
      r.result.createObjectStore("refused", {keyPath: "key"});
    };
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  async function store(name, mode, fn) {
    const db = await opened;
    return new Promise((resolve, reject) => {
      const tx = db.transaction(name, mode);
      const req = fn(tx.objectStore(name));
      tx.oncomplete = () => resolve(req ? req.result : undefined);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  }
  const all = async (name) => ((await store(name, "readonly", (s) => s.getAll())) || [])
    .sort((a, b) => a.seq - b.seq);

  // ---- the ID number: checked here, sealed to the hub ---------------------------------------
  const W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  function idOk(raw) {
    const n = raw.replace(/\s+/g, "").toUpperCase();
    if (/^[0-9]{17}[0-9X]$/.test(n)) {
      let sum = 0;
      for (let i = 0; i < 17; i++) sum += Number(n[i]) * W[i];
      return "10X98765432"[sum % 11] === n[17];
    }
    return /^[A-Z0-9]{6,20}$/.test(n) && !/^[0-9]+$/.test(n);
  }
  const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")),
    (c) => c.charCodeAt(0));
  async function seal(number) {
    const enc = new TextEncoder();
    const curve = {name: "ECDH", namedCurve: "P-256"};
    const hub = await crypto.subtle.importKey("raw", unb64u(SEAL_KEY), curve, false, []);
    const eph = await crypto.subtle.generateKey(curve, true, ["deriveBits"]);
    const epk = await crypto.subtle.exportKey("raw", eph.publicKey);
    const bits = await crypto.subtle.deriveBits({name: "ECDH", public: hub}, eph.privateKey, 256);
    const ikm = await crypto.subtle.importKey("raw", bits, "HKDF", false, ["deriveKey"]);
    const key = await crypto.subtle.deriveKey(
      {name: "HKDF", hash: "SHA-256", salt: epk, info: enc.encode("onewindow station id v1")},
      ikm, {name: "AES-GCM", length: 256}, false, ["encrypt"]);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = await crypto.subtle.encrypt({name: "AES-GCM", iv}, key, enc.encode(number));
    return [b64u(epk), b64u(iv), b64u(ct)].join(".");
  }

  // ---- photos: any camera image, kept as a JPEG of at most 1600 px -------------------------
  async function asJpeg(file) {
    const img = await createImageBitmap(file);
    const scale = Math.min(1, 1600 / Math.max(img.width, img.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(img.width * scale));
    canvas.height = Math.max(1, Math.round(img.height * scale));
    canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.85));
  }

  // ---- the form -----------------------------------------------------------------------------
  let item = null, photos = [];
  const checks = () => [...document.querySelectorAll("#materials input")];
  function missing() {
    return item ? item.materials.filter((m, k) => m.required && !checks()[k].checked) : [];
  }
  function refresh() {
    const miss = missing();
    $("missing").hidden = !miss.length;
    $("missing").textContent = miss.length ? T.missing + ": " + miss.map(name).join("、") : "";
    $("submit").disabled = INSECURE || !item || !SEAL_KEY || miss.length > 0 || !photos.length
      || !idOk($("id-number").value);
  }
  // The catalog, kept in the browser: items are looked up from it while the link is down
  // (online, the hub's own search answers: pinyin, synonyms).
  const CATALOG = "ow-station-catalog";
  let catalog = JSON.parse(localStorage.getItem(CATALOG) || "[]");
  fetch("/station/catalog.json").then((r) => (r.ok ? r.json() : null)).then((data) => {
    if (!data) return;
    catalog = data.items;
    localStorage.setItem(CATALOG, JSON.stringify(catalog));
  }).catch(() => link("offline"));
  const local = (text) => {
    const t = text.toLowerCase();
    return catalog.filter((i) => [i.id, i.zh, i.zh_tw, i.en].some(
      (x) => x && x.toLowerCase().includes(t)));
  };
  let asked = "";
  $("q").addEventListener("input", async () => {
    const text = $("q").value.trim();
    asked = text;
    if (!text) { $("results").replaceChildren(); return; }
    let items;
    try {
      const r = await fetch("/station/search.json?q=" + encodeURIComponent(text));
      if (!r.ok) throw new Error(r.statusText);
      items = (await r.json()).items;
    } catch (e) {
      items = local(text);
    }
    if (asked !== text) return;
    $("results").replaceChildren(...items.slice(0, 8).map((i) => el("li", {},
      Object.assign(el("button", {class: "secondary", "data-item": i.id}, name(i)),
        {onclick: () => choose(i.id)}))));
  });
  async function choose(id) {
    say("");
    item = catalog.find((i) => i.id === id) || null;
    if (!item) {
      try {
        item = await (await fetch("/station/items/" + encodeURIComponent(id))).json();
      } catch (e) { link("offline"); return; }
    }
    $("results").replaceChildren();
    $("item-name").textContent = name(item);
    $("materials").replaceChildren(...item.materials.map((m, k) => el("li",
      {class: m.required ? "req" : ""}, el("label", {class: "check"},
        Object.assign(el("input", {type: "checkbox", "data-k": String(k)}), {onchange: refresh}),
        name(m) + " (" + (m.required ? T.required : T.optional) + ")"))));
    $("chosen").hidden = false;
    refresh();
  }
  $("id-number").addEventListener("input", refresh);
  $("photo").addEventListener("change", async () => {
    for (const f of $("photo").files) {
      const jpeg = await asJpeg(f);
      photos.push(jpeg);
      $("thumbs").append(el("img", {src: URL.createObjectURL(jpeg), alt: ""}));
    }
    $("photo").value = "";
    refresh();
  });
  $("submit").addEventListener("click", async () => {
    say(""); done("");
    const number = $("id-number").value.replace(/\s+/g, "").toUpperCase();
    if (!idOk(number)) { say(T.bad_id); return; }
    if (!photos.length) { say(T.need_photo); return; }
    const entry = {
      key: crypto.randomUUID(), seq: Date.now() + Math.random(), item: item.id,
      label: name(item), sealed: await seal(number),
      materials: checks().filter((c) => c.checked).map((c) => c.dataset.k).join(","),
      photos, collected_at: Date.now() / 1000,
    };
    $("id-number").value = "";  // the clear number leaves the page here
    await store("queue", "readwrite", (s) => s.put(entry));
    item = null; photos = [];
    $("chosen").hidden = true; $("q").value = ""; $("thumbs").replaceChildren();
    done(T.queued + ": " + entry.label);
    await show();
    drain();
  });

  // ---- sending what the queue holds -----------------------------------------------------
  function link(state) {
    $("link").dataset.state = state;
    $("link-text").textContent = T[state];
  }
  let draining = false, again = null;
  async function drain() {
    if (draining) return;
    draining = true;
    clearTimeout(again);
    let stopped = false;
    try {
      for (const e of await all("queue")) {
        const form = new FormData();
        for (const k of ["key", "item", "materials", "collected_at"]) form.append(k, e[k]);
        form.append("id_sealed", e.sealed);
        e.photos.forEach((p, i) => form.append("photo", p, "photo-" + (i + 1) + ".jpg"));
        let r;
        try {
          r = await fetch("/station/cases", {method: "POST", body: form,
            headers: {"X-CSRF-Token": ow.csrf()}});
        } catch (err) { link("offline"); stopped = true; break; }
        // Logged out (or another account's session): kept, sent after logging in again.
        if (r.status === 401 || r.status === 403) { link("login"); stopped = true; break; }
        if (r.status >= 500) { link("offline"); stopped = true; break; }
        link("online");
        const data = await r.json().catch(() => ({}));
        if (r.ok) {
          done((data.repeat ? T.repeat : T.sent) + ": " + e.label + " " + data.case);
        } else {  // refused: said, kept aside, never sent again
          await store("refused", "readwrite", (s) => s.put({key: e.key, seq: e.seq,
            label: e.label, msg: data.msg || r.statusText, code: data.code || ""}));
        }
        await store("queue", "readwrite", (s) => s.delete(e.key));
      }
    } finally {
      draining = false;
    }
    await show();
    if (stopped) again = setTimeout(drain, 5000);  // and at once when the browser is online
  }
  window.addEventListener("online", drain);

  // ---- what the station sees ----------------------------------------------------------------
  async function show() {
    const queue = await all("queue"), refused = await all("refused");
    $("queue-count").textContent = String(queue.length);
    $("queue").replaceChildren(...queue.map((e) => el("li", {"data-key": e.key}, e.label)));
    $("refused").replaceChildren(...refused.map((e) => el("li", {"data-key": e.key,
      "data-code": e.code}, e.label + ": " + e.msg)));
    try {
      const r = await fetch("/station/cases");
      if (r.status === 401) { link("login"); return; }
      const data = await r.json();
      $("pending").textContent = String(data.pending);
      $("cases").tBodies[0].replaceChildren(...data.cases.map((k) => el("tr",
        {"data-case": k.case}, el("td", {}, k.case), el("td", {}, name(k)),
        el("td", {}, k.due_day || ""),
        el("td", {class: "state", "data-state": k.state}, T["st_" + k.state] || k.state),
        el("td", {}, k.batch ? T.handed + " " + k.batch : T.held))));
    } catch (e) { link("offline"); }
  }
  $("handover").addEventListener("click", async () => {
    say(""); done("");
    try {
      const b = await ow.post("/station/handover", {count: Number($("count").value)});
      done(T.batch_sent + ": " + b.id + " (" + b.cases.length + ")");
      $("count").value = "";
    } catch (e) { say((e.data && e.data.msg) || e.message); }
    await show();
  });

  // The seal and the keys need WebCrypto, which browsers give only to HTTPS pages (and
  // to the hub's own machine): said plainly instead of failing at the first case.
  if (INSECURE) say(T.insecure);
  show().then(drain);
})();
