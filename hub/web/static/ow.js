// OneWindow pages: the little shared script. A live feed sends its whole snapshot when the
// stream opens, then deltas ("patch" events: operations on the last state, hub/web/
// livepatch.py); each page's handler is given the whole state either way. EventSource
// reconnects by itself (the server sends retry: 1000) and the server starts a new stream
// with the whole state.
"use strict";
const ow = {
  live(channel, arg, onData) {
    const url = "/live/" + channel + (arg ? "/" + encodeURIComponent(arg) : "");
    // One stream per feed per page, however many parts of the page follow it: a browser
    // holds at most 6 connections to a host over HTTP/1.1, every tab's streams included
    // (three console tabs with two streams each left no room for a click's POST).
    const feeds = ow._feeds || (ow._feeds = new Map());
    let feed = feeds.get(url);
    if (!feed) {
      feed = {url, channel, handlers: [], state: undefined, id: null, es: null};
      feeds.set(url, feed);
      ow._open(feed);
    }
    feed.handlers.push(onData);
    return feed.es;
  },
  _open(feed) {
    const es = new EventSource(feed.url);
    feed.es = es;
    feed.state = undefined;
    es.addEventListener(feed.channel, (e) => {
      feed.state = JSON.parse(e.data);
      feed.id = e.lastEventId;
      ow._deliver(feed);
    });
    es.addEventListener("patch", (e) => {
      const p = JSON.parse(e.data);
      if (feed.state === undefined || String(p.base) !== feed.id) {
        // not the frame this delta follows: start again from the whole state
        es.close();
        ow._open(feed);
        return;
      }
      feed.state = ow.patch(feed.state, p.ops);
      feed.id = e.lastEventId;
      ow._deliver(feed);
    });
  },
  _deliver(feed) {
    // each handler its own copy, as when each parsed the frame itself: the next delta
    // applies to the state as sent, whatever a handler did with its copy
    // (structuredClone where there is one: a resident's older phone browser may lack it)
    const copy = typeof structuredClone === "function" ? structuredClone
      : (x) => JSON.parse(JSON.stringify(x));
    for (const h of feed.handlers) h(copy(feed.state));
  },
  // Apply a live delta's operations (hub/web/livepatch.py) to doc; returns the result.
  patch(doc, ops) {
    for (const op of ops) {
      const [kind, path] = op;
      if (kind === "s" && path.length === 0) { doc = op[2]; continue; }
      let parent = doc;
      const upto = kind === "l" ? path.length : path.length - 1;
      for (let i = 0; i < upto; i++) parent = parent[path[i]];
      if (kind === "s") parent[path[path.length - 1]] = op[2];
      else if (kind === "d") delete parent[path[path.length - 1]];
      else if (kind === "l") parent.splice(op[2], op[3], ...op[4]);
      else throw new Error("live patch: unknown operation " + kind);
    }
    return doc;
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
