// edgestock dashboards: what the agent's and the hub's pages share.
// No framework, no build step: DOM helpers, the token, the API, the
// stream and a sparkline.
"use strict";

const es = {};

// el makes an element: el("td", {class: "n"}, "text", child, …).
es.el = (tag, attrs, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
};

es.$ = (sel) => document.querySelector(sel);

// The token lives in local storage, per origin; "" when none is needed.
es.token = () => localStorage.getItem("edgestock.token") || "";

es.setToken = (t) => {
  if (t) localStorage.setItem("edgestock.token", t);
  else localStorage.removeItem("edgestock.token");
};

// NeedToken is what api throws on 401 and 403: the page asks for one.
class NeedToken extends Error {}
es.NeedToken = NeedToken;

// api GETs path and returns its JSON; 401 and 403 throw NeedToken.
es.api = async (path) => {
  const headers = {};
  const t = es.token();
  if (t) headers.Authorization = "Bearer " + t;
  const resp = await fetch(path, {headers});
  if (resp.status === 401 || resp.status === 403) {
    const body = await resp.json().catch(() => ({}));
    throw new NeedToken((body.error && body.error.message) || resp.statusText);
  }
  if (!resp.ok) throw new Error(path + ": " + resp.status + " " + resp.statusText);
  return resp.json();
};

// stream follows /v1/stream with query (URLSearchParams) and calls
// handlers[event type](data). EventSource reconnects by itself and sends
// Last-Event-ID, so the stream resumes with no gap.
es.stream = (query, handlers, onState) => {
  const q = new URLSearchParams(query);
  if (es.token()) q.set("access_token", es.token());
  const src = new EventSource("/v1/stream?" + q.toString());
  for (const [type, fn] of Object.entries(handlers)) {
    src.addEventListener(type, (e) => fn(JSON.parse(e.data)));
  }
  src.onopen = () => onState && onState("live");
  src.onerror = () => onState && onState(src.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  return src;
};

// askToken shows the token form with why, and calls then() once a token
// is saved.
es.askToken = (why, then) => {
  const form = es.$("#token-form");
  es.$("#token-why").textContent = why;
  form.hidden = false;
  form.onsubmit = (e) => {
    e.preventDefault();
    es.setToken(es.$("#token-input").value.trim());
    form.hidden = true;
    then();
  };
};

// connect runs check (an API read) until it succeeds, asking for a token
// when the API needs one and trying again with backoff while it cannot be
// reached, then begin. It returns again(): start over, after the backoff
// (a stream closed for good, a token the API now refuses).
es.connect = (check, begin) => {
  let wait = 1000;
  const attempt = async () => {
    try {
      await check();
    } catch (e) {
      if (e instanceof NeedToken) return es.askToken(e.message, attempt);
      es.showLink("unreachable");
      setTimeout(attempt, wait);
      wait = Math.min(wait * 2, 30000);
      return;
    }
    wait = 1000;
    begin();
  };
  attempt();
  return () => setTimeout(attempt, wait);
};

// sparkline draws values (oldest first) as an SVG polyline.
es.sparkline = (values, width = 120, height = 24) => {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  if (values.length > 1) {
    const lo = Math.min(...values), hi = Math.max(...values);
    const span = hi - lo || 1;
    const pts = values.map((v, i) =>
      `${(i * (width - 2)) / (values.length - 1) + 1},${height - 2 - ((v - lo) * (height - 4)) / span}`);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  }
  return svg;
};

// push appends v to a history, keeping the last n.
es.push = (list, v, n = 60) => {
  list.push(v);
  if (list.length > n) list.splice(0, list.length - n);
};

es.ago = (iso) => {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return s.toFixed(0) + " s ago";
  if (s < 3600) return (s / 60).toFixed(0) + " min ago";
  return (s / 3600).toFixed(1) + " h ago";
};

es.fmt = (n) => (n === undefined || n === null ? "–" : Number(n).toLocaleString("en"));

// Table keeps one row per key in a tbody, rendered by row(key, item),
// sorted by key, showing those filter(key) keeps, at most max of them.
class Table {
  constructor(tbody, row, max = 500) {
    this.tbody = tbody;
    this.row = row;
    this.max = max;
    this.items = new Map();
    this.filter = () => true;
    this.dirty = false;
  }
  set(key, item) {
    this.items.set(key, item);
    this.schedule();
  }
  schedule() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => this.render());
  }
  render() {
    this.dirty = false;
    const keys = [...this.items.keys()].filter(this.filter).sort();
    const rows = keys.slice(0, this.max).map((k) => this.row(k, this.items.get(k)));
    this.tbody.replaceChildren(...rows);
    const more = keys.length - rows.length;
    if (this.tbody.dataset.more !== undefined || more > 0) this.tbody.dataset.more = String(Math.max(more, 0));
  }
}
es.Table = Table;

// Log keeps the newest n entries first in a list element.
class Log {
  constructor(list, row, n = 50) {
    this.list = list;
    this.row = row;
    this.n = n;
  }
  add(item) {
    this.list.prepend(this.row(item));
    while (this.list.children.length > this.n) this.list.lastChild.remove();
  }
}
es.Log = Log;

// status shows the stream's state in the header.
es.showLink = (state) => {
  const s = es.$("#link");
  s.textContent = state;
  s.className = "badge " + (state === "live" ? "ok" : "warn");
};
