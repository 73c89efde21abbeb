// Staff pages: clerk console, specialist, dashboard, fleet, accounts. Each page follows its
// live channel (whole snapshots) and posts actions with ow.post (CSRF header). All text from
// the hub goes in with textContent (ow.el), never as HTML.
"use strict";
const staff = (() => {
  const T = JSON.parse(document.getElementById("ow-strings").textContent);
  // The page's language (<html lang>): zh-CN, zh-TW or en. Chinese pages show the Chinese
  // names, a zh-TW page their Traditional (zh_tw) where the hub sent one.
  const locale = document.documentElement.lang || "zh-CN";
  const zh = locale.startsWith("zh");
  const tw = locale === "zh-TW";
  const $ = (sel) => document.querySelector(sel);
  const el = ow.el;
  const name = (x) => (tw ? x.zh_tw || x.zh : zh ? x.zh : x.en) || x.zh || x.en || "";
  let skew = 0; // hub clock - browser clock, from each snapshot's `now`
  const now = () => Date.now() / 1000 + skew;
  const mins = (s) => Math.max(0, Math.round(s / 60));
  const clock = (ts) => new Date(ts * 1000).toLocaleTimeString(zh ? locale : "en-GB",
    {hour: "2-digit", minute: "2-digit"});
  const fill = (node, ...children) => { node.replaceChildren(...children); };
  const pct = (x) => (x === null || x === undefined ? "–" : Math.round(x * 1000) / 10 + "%");
  const win = (n) => T.win.replace("{n}", n);
  const num = (x) => (x === null || x === undefined ? "–" : String(x));

  function failed(e) {
    if (e.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname); return; }
    const m = $("#msg");
    if (m) m.textContent = refusal(e.data) || (e.data && e.data.msg) || e.message || T.failed;
  }
  // A refusal the page words itself, in its own language, from the facts the hub sent.
  function refusal(d) {
    const text = d && T["err_" + d.code];
    if (!text) return "";
    return text.replace("{n}", d.window).replace("{own}", d.own === null ? "–" : d.own)
      .replace("{t}", d.ticket);
  }
  async function post(url, body) {
    const m = $("#msg");
    if (m) m.textContent = "";
    try { return await ow.post(url, body); } catch (e) { failed(e); return null; }
  }

  // ---- clerk console ----------------------------------------------------------------
  // Every action names the window this page is for (n): the hub acts there or says why not,
  // never at the user's own window instead.
  function console_(n) {
    // this page's own strings (console.html), beside the shared ones
    const own = document.getElementById("ow-console-strings");
    if (own) Object.assign(T, JSON.parse(own.textContent));
    const buttons = document.querySelectorAll("[data-act]");
    let last = null;
    // The department a help call names: the current ticket's item's unless the clerk
    // picked another for this ticket (窗口吹哨 科室报到).
    const dept = $("#help-dept");
    let picked = null, pickedFor = null;
    if (dept) dept.addEventListener("change", () => { picked = dept.value; pickedFor = last && last.ticket ? last.ticket.id : null; });
    for (const b of buttons) {
      b.addEventListener("click", async () => {
        const body = {window: n};
        if (b.dataset.act === "help" && dept) body.department = dept.value;
        if (b.dataset.act === "pause" && window.owDesk) {  // with its reason (console_desk.js)
          body.reason = window.owDesk.pauseReason();
          if (body.reason === null) return;
        }
        const r = await post("/console/" + b.dataset.act, body);
        if (r) render(r);
      });
    }
    const dlg = $("#transfer-dialog");
    $("#act-transfer").addEventListener("click", () => dlg.showModal());
    dlg.addEventListener("close", async () => {
      if (dlg.returnValue !== "ok") return;
      const body = {window: n, to_window: $("#to-window").value || null, to_item: $("#to-item").value || null,
                    note: $("#transfer-note").value};
      const r = await post("/console/transfer", body);
      if (r) { render(r); $("#transfer-form").reset(); }
    });

    function enable(s) {
      const st = s.window.state, t = s.ticket;
      const on = {
        call: st === "idle" || st === "calling" || st === "serving",
        recall: st === "calling", start: st === "calling", complete: !!t,
        skip: st === "calling", transfer: !!t, pause: st === "idle", resume: st === "paused",
        open: st === "closed", close: st === "idle" || st === "paused",
        help: !(s.help && s.help.answered_at === null),
      };
      for (const b of buttons) b.disabled = !on[b.dataset.act];
      $("#act-transfer").disabled = !on.transfer;
    }

    function render(s) {
      if (s.error) return;
      last = s;
      skew = s.now - Date.now() / 1000;
      const w = s.window;
      const st = $("#win-state");
      st.textContent = T[w.state] || w.state;
      st.dataset.state = w.state;
      $("#win-clerk").textContent = w.clerk_name || "";
      $("#queue").textContent = s.queue.waiting + " " + T.queue_waiting + (s.queue.waiting
        ? " · " + T.longest + " " + Math.round(s.queue.longest_min) + " " + T.min : "");
      enable(s);
      if (dept) {
        const here = s.ticket ? s.ticket.id : null;
        if (picked === null || pickedFor !== here) { picked = null; dept.value = s.help_department || ""; }
      }
      helpState(s.help);
      queueList(s.queue);
      if (window.owReview) window.owReview(s, n, render);  // pre-review (console_review.js)
      if (window.owDesk) window.owDesk.render(s);  // next up, pause reason (console_desk.js)
      const t = s.ticket;
      if (!t) {
        fill($("#current"), el("p", {class: "muted"}, T.none));
        fill($("#checklist")); fill($("#files")); fill($("#visits"));
        return;
      }
      const items = t.items.map((i) => el("li", {}, el("b", {}, i.id + " "), name(i)));
      const facts = [T[t.state] || t.state, T[t.priority] || t.priority,
                     T.waiting + " " + Math.round(t.waited_min) + " " + T.min];
      if (t.recalls) facts.push(T.recalls + " " + t.recalls);
      if (t.transferred) facts.push(T.transferred);
      fill($("#current"),
        el("div", {class: "ticket-number", id: "current-number"}, t.number),
        el("p", {class: "muted"}, facts.join(" · ")),
        el("ul", {class: "items", id: "current-items"}, ...items),
        ...(t.note ? [el("p", {class: "note"}, T.note + ": " + t.note)] : []));
      const multi = t.items.length > 1;
      fill($("#checklist"), ...t.materials.map((m) => el("li", {class: m.required ? "req" : "opt"},
        el("label", {}, el("input", {type: "checkbox"}), " " + name(m) + (multi ? " (" + m.item + ")" : "") +
          " — " + (m.required ? T.required : T.optional)))));
      fill($("#files"), ...(t.files.length ? t.files.map(fileLink) : [el("li", {class: "muted"}, T.no_files)]));
      let visits;
      if (!t.known_resident) visits = [el("li", {class: "muted"}, T.unknown_resident)];
      else if (!t.visits.length) visits = [el("li", {class: "muted"}, T.no_visits)];
      else visits = t.visits.map((v) => el("li", {},
        el("b", {}, v.number + " "), v.day + " · " + name(v) + " · " +
          (v.case ? T.case + " " + v.due_day : (T[v.state] || v.state)),
        ...(v.files.length ? [el("ul", {}, ...v.files.map(fileLink))] : [])));
      fill($("#visits"), ...visits);
    }

    // The waiting tickets this window serves; a normal one can be marked priority (爱心优先)
    // once the clerk confirms: the hub journals it with the clerk's name.
    function queueList(q) {
      const list = q.list || [];
      const rows = list.map((u) => {
        const li = el("li", {"data-ticket": u.number, "data-priority": u.priority},
          el("b", {class: "q-number"}, u.number));
        if (u.priority !== "normal") li.append(" ", el("span", {class: "tag " + u.priority}, T[u.priority]));
        li.append(" " + name(u) + " · " + Math.round(u.waited_min) + " " + T.min);
        if (u.priority === "normal") {
          const b = el("button", {class: "small secondary mark-priority", "data-mark": u.number}, T.mark_priority);
          b.addEventListener("click", async () => {
            if (!confirm(T.confirm_priority.replace("{t}", u.number))) return;
            const r = await post("/console/priority", {window: n, ticket: u.id});
            if (r) render(r);
          });
          li.append(" ", b);
        }
        // any waiting ticket can be called out of turn, with a reason (console_desk.js)
        if (window.owDesk && last && ["idle", "calling", "serving"].includes(last.window.state)) {
          li.append(" ", window.owDesk.callButton(u));
        }
        return li;
      });
      if (q.waiting > list.length) rows.push(el("li", {class: "muted more"}, T.queue_more.replace("{n}", q.waiting - list.length)));
      fill($("#queue-list"), ...rows);
    }

    function fileLink(f) {
      const a = el("a", {href: "/console/files/" + encodeURIComponent(f.ticket) + "/" +
                         encodeURIComponent(f.file) + "?window=" + n,
                         target: "_blank", rel: "noopener"},
                   f.kind + " " + f.file);
      return el("li", {}, a, el("span", {class: "muted"}, " " + Math.round(f.bytes / 1024) + " KB · " + clock(f.at)));
    }

    function helpState(h) {
      const box = $("#help-state");
      if (!h) { fill(box); box.dataset.state = ""; return; }
      if (h.answered_at === null) {
        box.dataset.state = "waiting";
        fill(box, el("span", {}, T.help_waiting + " " + clock(h.at)));
      } else {
        box.dataset.state = "answered";
        fill(box, el("span", {}, T.help_answered + " " + (h.by_name || h.by) + " · " + T.after +
                         " " + Math.round(h.answer_s) + " " + T.s));
      }
    }

    if (window.owDesk) {  // call out of turn, keyboard shortcuts (console_desk.js)
      window.owDesk.setup(n, render, post, (u) => (u.priority !== "normal"
        ? [" ", el("span", {class: "tag " + u.priority}, T[u.priority])] : []));
    }
    ow.live("staff-window", String(n), render);
    setInterval(() => { if (last) enable(last); }, 5000);
  }

  // ---- specialist ---------------------------------------------------------------------
  function specialist() {
    let last = null;
    function render(s) {
      last = s;
      skew = s.now - Date.now() / 1000;
      $("#open-count").textContent = s.open.length ? "(" + s.open.length + ")" : "";
      $("#none-open").hidden = s.open.length > 0;
      fill($("#open tbody"), ...s.open.map((r) => {
        const b = el("button", {"data-request": r.request, class: "answer"}, T.answer);
        b.addEventListener("click", async () => {
          b.disabled = true;
          const ok = await post("/specialist/answer", {request: r.request});
          if (!ok) b.disabled = false;
        });
        return el("tr", {"data-window": r.window},
          el("td", {}, win(r.window)), el("td", {}, r.clerk_name || ""),
          el("td", {}, r.ticket ? r.ticket + " " + name(r.item) : ""),
          el("td", {class: "age", "data-at": r.at}, mins(now() - r.at) + " " + T.min),
          el("td", {}, b));
      }));
      fill($("#answered tbody"), ...s.answered.map((r) => el("tr", {},
        el("td", {}, win(r.window)), el("td", {}, r.clerk_name || ""),
        el("td", {}, r.by_name || r.by), el("td", {}, Math.round(r.answer_s) + " " + T.s))));
    }
    ow.live("staff-help", "", render);
    setInterval(() => {
      for (const td of document.querySelectorAll("td.age")) {
        td.textContent = mins(now() - Number(td.dataset.at)) + " " + T.min;
      }
    }, 10000);
    return last;
  }

  // ---- dashboard ----------------------------------------------------------------------
  function dashboard(manage) {
    const own = document.getElementById("ow-dashboard-strings");
    const D = own ? JSON.parse(own.textContent) : {};  // the dashboard's own strings
    const dlg = $("#skills-dialog");
    let skillsWindow = null;
    dlg.addEventListener("close", async () => {
      if (dlg.returnValue !== "ok" || skillsWindow === null) return;
      const all = $("#skill-all").checked;
      const skills = all ? ["*"] : [...document.querySelectorAll("input[name=skill]:checked")].map((i) => i.value);
      const r = await post("/dashboard/windows/" + skillsWindow + "/skills", {skills});
      if (r) render(r);
    });

    function render(s) {
      skew = s.now - Date.now() / 1000;
      const m = s.summary;
      $("#s-tickets").textContent = m.tickets;
      $("#s-served").textContent = m.served;
      $("#s-waiting").textContent = m.waiting;
      $("#s-no_shows").textContent = m.no_shows;
      $("#s-avg").textContent = num(m.avg_wait_min);
      $("#s-p90").textContent = num(m.p90_wait_min);
      $("#s-onewin").textContent = pct(m.one_window_rate);
      $("#s-sat").textContent = pct(m.satisfaction_rate);
      $("#s-help").textContent = m.help_answered + " / " + m.help_requests;
      if (s.admission && $("#s-can_serve")) $("#s-can_serve").textContent = s.admission.can_serve;
      const h = s.history;  // past days, from the history tables (null without a journal)
      $("#history").hidden = !h;
      if (h) {
        $("#h-tickets").textContent = h.tickets;
        $("#h-served").textContent = h.served;
        $("#h-avg").textContent = num(h.avg_wait_min);
        $("#h-onewin").textContent = pct(h.one_window_rate);
        $("#h-sat").textContent = pct(h.satisfaction_rate);
      }
      for (const [tier, v] of Object.entries(s.tiers || {})) {
        const row = document.querySelector(`#tier-waits tr[data-tier="${tier}"]`);
        if (!row) continue;
        row.querySelector(".waiting").textContent = v.waiting;
        row.querySelector(".longest").textContent = num(v.longest_waiting_min);
        row.querySelector(".called").textContent = v.called;
        row.querySelector(".p90").textContent = num(v.p90_wait_min);
        row.querySelector(".max").textContent = num(v.max_wait_min);
      }
      fill($("#alerts"), ...(s.alerts.length ? s.alerts.map((a) => {
        let text = T["alert_" + a.kind] + ": ";
        if (a.kind === "help") text += win(a.window) + " · " + a.waiting_min + " " + T.min;
        else if (a.kind === "queue") text += name(a) + " · " + a.waiting;
        else if (a.kind === "wait") text += name(a) + " · " + Math.round(a.longest_min) + " " + T.min;
        else if (a.kind === "device") text += devAlert(a);
        else text += name(a) + " · " + a.waiting;
        // promised cases' deadlines (hub/web/case_alerts.py): to that department's queue
        if (a.href) return el("li", {class: "alert " + a.kind}, el("a", {href: a.href}, text));
        return el("li", {class: "alert " + a.kind}, text);
      }) : [el("li", {class: "muted"}, T.none)]));
      fill($("#windows tbody"), ...s.windows.map((w) => {
        const acts = el("td", {class: "acts"});
        if (manage) {
          const open = w.state === "closed";
          const b = el("button", {class: "small " + (open ? "" : "secondary"),
                                  "data-window": w.number, "data-do": open ? "open" : "close"},
                       open ? T.open_window : T.close_window);
          b.addEventListener("click", async () => {
            if (!open && !confirm(T.confirm_close)) return;
            const r = await post("/dashboard/windows/" + w.number + "/" + b.dataset.do, {});
            if (r) render(r);
          });
          const k = el("button", {class: "small secondary", "data-skills": w.number}, T.skills);
          k.addEventListener("click", () => {
            skillsWindow = w.number;
            $("#skills-window").textContent = w.number;
            for (const i of document.querySelectorAll("input[name=skill]")) i.checked = w.lines.includes(i.value);
            $("#skill-all").checked = false;
            dlg.showModal();
          });
          acts.append(b, " ", k);
        }
        return el("tr", {"data-window": w.number, "data-state": w.state},
          el("td", {}, String(w.number)), stateCell(w),
          el("td", {}, w.clerk_name || ""), el("td", {}, w.ticket || ""),
          el("td", {}, w.since_min === null || w.state === "closed" ? "" : String(Math.round(w.since_min))),
          el("td", {}, w.queue === null ? "–" : String(w.queue)),
          el("td", {class: "served"}, String(w.served || 0)),
          el("td", {class: "small skills"}, w.all_lines ? T.all
            : w.line_names.map((l) => l.prefix + " " + name(l)).join("、")), acts);
      }));
      fill($("#queues tbody"), ...s.queues.map((q) => el("tr", {class: q.waiting > s.targets.queue_limit || q.longest_min > s.targets.target_min ? "hot" : ""},
        el("td", {}, q.item + " " + name(q)), el("td", {}, String(q.waiting)),
        el("td", {}, String(Math.round(q.longest_min))),
        estimateCell(q))));
      fill($("#lines tbody"), ...s.lines.map((l) => el("tr", {"data-line": l.line},
        el("td", {}, l.prefix + " " + name(l)), el("td", {}, String(l.waiting)),
        el("td", {class: "longest"}, String(Math.round(l.longest_min))), estimateCell(l))));
    }
    // A paused window says why (the pause's reason code), when the hub keeps one.
    function stateCell(w) {
      const td = el("td", {class: "state", "data-state": w.state}, T[w.state] || w.state);
      if (w.state === "paused" && w.pause_label) {
        td.append(" ", el("span", {class: "reason", "data-reason": w.pause_reason || ""},
                          name(w.pause_label)));
      }
      return td;
    }
    function estimateCell(q) {
      if (q.estimate_min === null) return el("td", {class: "estimate"}, "∞");
      const td = el("td", {class: "estimate" + (q.estimate_floored ? " floored" : "")},
                    String(Math.round(q.estimate_min)));
      if (q.estimate_floored) td.title = D.estimate_floored;
      return td;
    }
    ow.live("staff-floor", "", render);
    // Waits grow with no event at all: refresh the numbers now and then.
    setInterval(async () => {
      const r = await fetch("/dashboard/state", {headers: {Accept: "application/json"}});
      if (r.ok) render(await r.json());
    }, 30000);
  }

  // ---- fleet ----------------------------------------------------------------------------
  // hub/fleetwatch.py's alerts: {dev, what: offline | paper_out | cover_open |
  // printer_offline | reconnects, seconds?, count?}
  function devAlert(a) {
    let text = a.dev + " · " + (T["dev_" + a.what] || a.what);
    if (a.seconds !== undefined) text += " · " + a.seconds + " " + T.s;
    if (a.count !== undefined) text += " · " + a.count + "×";
    return text;
  }
  // Every word of the fleet page in the page's language (fleet.html's own strings): roles,
  // states, alert and refusal codes, durations; "last seen" as an age from the hub's clock
  // with the centre's local time beside it (the browser's zone may differ).
  function fleet() {
    const F = JSON.parse(document.getElementById("ow-fleet-strings").textContent);
    const fmt = (key, vars) => Object.entries(vars).reduce((t, [k, v]) => t.replace("{" + k + "}", v), F[key]);
    function uptime(s) {
      if (s === null || s === undefined) return "";
      const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      return h ? fmt("h_min", {h, m}) : fmt("min", {m});
    }
    function age(d) {
      if (d.seen_s === null || d.seen_s === undefined) return F.not_seen;
      const s = d.seen_s + Math.max(0, Math.round(now() - d.at));  // grown since the frame
      const text = s < 60 ? fmt("ago_s", {n: s}) : s < 3600 ? fmt("ago_min", {n: Math.floor(s / 60)})
        : s < 86400 ? fmt("ago_h", {n: Math.floor(s / 3600)}) : fmt("ago_d", {n: Math.floor(s / 86400)});
      return text + " · " + d.seen_text;
    }
    const code = (c) => F["code_" + c] || T["dev_" + c] || c;
    function render(s) {
      skew = s.now - Date.now() / 1000;
      $("#fleet-count").textContent = s.online + " / " + s.total + " " + T.online;
      fill($("#fleet tbody"), ...s.devices.map((d) => el("tr", {"data-dev": d.id, class: d.online ? "on" : "off"},
        el("td", {}, d.id), el("td", {class: "role", "data-role": d.role}, F["role_" + d.role] || d.role),
        el("td", {}, d.window === null ? "" : String(d.window)),
        el("td", {class: "state", "data-state": d.online ? "online" : "offline"},
           (d.online ? T.online : T.offline) + " (" + (F["state_" + d.state] || d.state) + ")"),
        el("td", {}, d.board || ""), el("td", {}, d.fw || ""), el("td", {class: "uptime"}, uptime(d.uptime)),
        el("td", {}, d.rssi === null ? "" : String(d.rssi)),
        el("td", {class: "seen", "data-seen-s": d.seen_s === null ? "" : d.seen_s}, age({...d, at: s.now})),
        el("td", {}, String(d.errors)), el("td", {class: "dev-alerts"}, d.alerts.map(code).join("、")))));
      fill($("#fleet-alerts"), ...(s.alerts.length ? s.alerts.map((a) =>
        el("li", {class: "alert device " + a.what, "data-dev": a.dev}, devAlert(a)))
        : [el("li", {class: "muted"}, T.none)]));
      fill($("#refused"), ...(s.refused.length ? s.refused.map((r) => el("li", {"data-dev": r.dev},
        r.at_text + " · " + r.dev + " · " + F.command + " " + r.id + " · " + (r.code ? code(r.code) : F.no_code)))
        : [el("li", {class: "muted"}, T.none)]));
    }
    ow.live("staff-fleet", "", render);
  }

  // ---- accounts -------------------------------------------------------------------------
  function accounts() {
    $("#new-account").addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = Object.fromEntries(new FormData(e.target).entries());
      if (await post("/accounts", body)) location.reload();
    });
    for (const b of document.querySelectorAll("button[data-active]")) {
      b.addEventListener("click", async () => {
        const user = b.closest("tr").dataset.user;
        if (await post("/accounts/" + encodeURIComponent(user), {active: b.dataset.active === "true"})) location.reload();
      });
    }
  }

  // ---- promised items (back office) ------------------------------------------------------
  function cases() {
    for (const b of document.querySelectorAll("button[data-action]")) {
      b.addEventListener("click", async () => {
        const id = b.closest("tr").dataset.case;
        const body = {reason: $("#case-reason").value};
        if (await post("/cases/" + encodeURIComponent(id) + "/" + b.dataset.action, body)) location.reload();
      });
    }
  }

  return {console: console_, specialist, dashboard, fleet, accounts, cases};
})();
