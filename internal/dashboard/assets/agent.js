// The agent's dashboard: levels, alerts, devices, quarantine and the
// ingest rate, live from /v1/stream and a few polls.
"use strict";

(() => {
  const history = new Map(); // sku → on_hand values seen, for sparklines
  const rates = [];
  let src = null;

  const sum = (m) => Object.values(m || {}).reduce((a, b) => a + b, 0);

  const levels = new es.Table(es.$("#levels"), (sku, v) => {
    const cls = [v.low_stock ? "low" : "", v.on_hand < 0 ? "neg" : ""].join(" ").trim();
    return es.el("tr", {"data-sku": sku, class: cls || null},
      es.el("td", {}, sku),
      es.el("td", {class: "n onhand"}, es.fmt(v.on_hand)),
      es.el("td", {class: "n avail"}, es.fmt(v.available)),
      es.el("td", {class: "n"}, es.fmt(v.reserved)),
      es.el("td", {class: "n"}, es.fmt(v.safety)),
      es.el("td", {class: "n", title: JSON.stringify(v.allotted || {})}, es.fmt(sum(v.allotted))),
      es.el("td", {class: "n"}, es.fmt(v.committed)),
      es.el("td", {}, es.sparkline(history.get(sku) || [])),
      es.el("td", {class: "muted"}, es.ago(v.updated_at)));
  }, 300);
  const search = es.$("#search");
  search.oninput = () => {
    const p = search.value.trim();
    levels.filter = (sku) => sku.startsWith(p);
    levels.render();
  };
  const showMore = () => {
    const more = Number(es.$("#levels").dataset.more || 0);
    es.$("#levels-more").textContent = more > 0 ? `${more} more SKUs: narrow the search to see them` : "";
  };
  new MutationObserver(showMore).observe(es.$("#levels"), {attributes: true});

  const alerts = new es.Log(es.$("#alerts"), (a) => {
    const what = a.sku ? `${a.sku}` : a.device ? `device ${a.device}` : "";
    const figure = a.available ?? a.on_hand ?? a.unallotted;
    const kind = a.kind === "restocked" || a.kind.endsWith("_cleared") ? "ok" : a.kind === "low_stock" ? "warn" : "bad";
    return es.el("li", {"data-kind": a.kind},
      es.el("span", {class: "when"}, new Date(a.at).toLocaleTimeString()),
      es.el("span", {class: "badge " + kind}, a.kind), " ", what,
      figure !== undefined ? es.el("span", {class: "muted"}, ` (${figure})`) : null);
  });

  const onStock = (v) => {
    let h = history.get(v.sku);
    if (!h) history.set(v.sku, (h = []));
    es.push(h, v.on_hand);
    levels.set(v.sku, v);
  };

  async function status() {
    const s = await es.api("/v1/status");
    es.$("#warehouse").textContent = s.warehouse;
    es.$("#version").textContent = `v${s.version} · up ${Math.round(s.uptime_seconds / 60)} min`;
    es.$("#rate").textContent = s.events_per_second.toFixed(1);
    es.$("#applied").textContent = es.fmt(s.events_applied);
    es.$("#quarantined").textContent = es.fmt(s.quarantine);
    es.$("#holds").textContent = es.fmt(s.active_holds);
    es.$("#pending").textContent = es.fmt(s.pending_deltas);
    es.$("#hub").textContent = "hub: " + (s.last_hub_contact ? es.ago(s.last_hub_contact) : "never");
    es.push(rates, s.events_per_second);
    es.$("#rate-spark").replaceChildren(es.sparkline(rates, 160, 28));
  }

  async function devices() {
    const d = await es.api("/v1/devices?limit=50");
    es.$("#devices").replaceChildren(...d.devices.map((x) =>
      es.el("tr", {"data-device": x.device},
        es.el("td", {}, x.device), es.el("td", {}, x.source), es.el("td", {class: "muted"}, es.ago(x.last_seen)),
        es.el("td", {class: "n"}, es.fmt(x.applied)), es.el("td", {class: "n"}, es.fmt(x.duplicates)),
        es.el("td", {class: "n"}, es.fmt(x.rejected)), es.el("td", {}, x.last_reject || ""))));
  }

  // The quarantine is read from a cursor: all of it once, then what is
  // new; one read at a time.
  let qSince = 0;
  let qBusy = false;
  const quarantine = new es.Log(es.$("#quarantine"), (q) =>
    es.el("tr", {"data-seq": q.seq},
      es.el("td", {class: "n"}, q.seq), es.el("td", {class: "muted"}, new Date(q.received_at).toLocaleString()),
      es.el("td", {}, q.device), es.el("td", {}, es.el("span", {class: "badge bad"}, q.reason)),
      es.el("td", {}, q.message), es.el("td", {}, es.el("pre", {}, String(q.payload || q.payload_base64 || "").slice(0, 200)))), 30);
  async function quarantined() {
    if (qBusy) return;
    qBusy = true;
    try {
      for (;;) {
        const page = await es.api(`/v1/quarantine?since=${qSince}&limit=1000`);
        page.items.forEach((q) => quarantine.add(q));
        if (!page.items.length || page.next === qSince) break;
        qSince = page.next;
      }
      es.$("#quarantine-note").textContent = "";
    } catch (e) {
      if (!(e instanceof es.NeedToken)) throw e;
      es.$("#quarantine-note").textContent = "(an admin token shows it)";
    } finally {
      qBusy = false;
    }
  }

  let timers = [];
  const every = (fn, ms) => {
    const run = () => fn().catch((e) => (e instanceof es.NeedToken ? restart() : console.warn(e)));
    run();
    timers.push(setInterval(run, ms));
  };

  // Once the API answers: follow the stream and poll; start over when
  // the stream is closed for good (a refused token, a proxy's error page)
  // or a poll is refused.
  let restarting = false;
  const begin = () => {
    restarting = false;
    if (src) src.close();
    src = es.stream({}, {stock: onStock, alert: (a) => alerts.add(a)}, (state) => {
      es.showLink(state);
      if (state === "closed") restart();
    });
    timers.forEach(clearInterval);
    timers = [];
    every(status, 2000);
    every(devices, 3000);
    every(quarantined, 5000);
    timers.push(setInterval(() => levels.schedule(), 10000)); // the "updated … ago" column
  };
  let again = () => {};
  function restart() {
    if (restarting) return; // several polls may ask at once
    restarting = true;
    timers.forEach(clearInterval);
    timers = [];
    if (src) src.close();
    src = null;
    again();
  }
  document.body.dataset.loaded = String(Date.now());
  again = es.connect(status, begin);
})();
