// OneWindow pages: the little shared script. Live updates come as whole snapshots over SSE;
// EventSource reconnects by itself (the server sends retry: 1000).
"use strict";
const ow = {
  live(channel, arg, onData) {
    const url = "/live/" + channel + (arg ? "/" + encodeURIComponent(arg) : "");
    // One stream per feed per page, however many parts of the page follow it: a browser
    // holds at most 6 connections to a host over HTTP/1.1, every tab's streams included
    // (three console tabs with two streams each left no room for a click's POST).
    const streams = ow._streams || (ow._streams = new Map());
    let es = streams.get(url);
    if (!es) {
      es = new EventSource(url);
      streams.set(url, es);
    }
    es.addEventListener(channel, (e) => onData(JSON.parse(e.data)));
    return es;
  },
  el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  },
  csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : "";
  },
  async post(url, body) {
    const r = await fetch(url, {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": ow.csrf()},
      body: JSON.stringify(body || {}),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error(data.msg || r.statusText), {status: r.status, data});
    return data;
  },
};
