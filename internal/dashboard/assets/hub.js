// The hub's dashboard: warehouses (online, lag), stock and ATS per
// channel, order lines and the hub's alerts, live from /v1/stream.
"use strict";

(() => {
  const warehouses = new Map(); // id → last warehouse event
  const stock = new Map(); // sku → {total, wh: {id: on_hand}, ats: {channel: n}}
  let channels = (localStorage.getItem("edgestock.channels") || "").split(",").filter(Boolean);
  let src = null;

  const alerts = new es.Log(es.$("#alerts"), (a) =>
    es.el("li", {"data-kind": a.kind},
      es.el("span", {class: "when"}, new Date(a.at).toLocaleString()),
      es.el("span", {class: "badge " + (a.kind === "warehouse_online" ? "ok" : "bad")}, a.kind), " ", a.warehouse));

  const renderWarehouses = () => {
    const rows = [...warehouses.values()].sort((a, b) => a.warehouse.localeCompare(b.warehouse)).map((w) => {
      const lag = w.last_contact ? (Date.now() - new Date(w.last_contact).getTime()) / 1000 : null;
      const state = w.served_elsewhere ? ["served by another hub process", ""]
        : w.online ? (w.pending ? ["catching up", "warn"] : ["online", "ok"]) : ["offline", "bad"];
      return es.el("tr", {"data-warehouse": w.warehouse, "data-online": String(w.online)},
        es.el("td", {}, w.warehouse),
        es.el("td", {}, es.el("span", {class: "badge " + state[1]}, state[0])),
        es.el("td", {class: "n"}, lag === null ? "–" : Math.max(0, lag).toFixed(1) + " s"),
        es.el("td", {class: "muted"}, es.ago(w.last_contact)),
        es.el("td", {class: "n"}, es.fmt(w.entries_pulled)),
        es.el("td", {class: "n"}, es.fmt(w.entries_pushed)),
        es.el("td", {class: "muted"}, w.last_error || ""));
    });
    es.$("#warehouses").replaceChildren(...rows);
    const online = [...warehouses.values()].filter((w) => w.online).length;
    es.$("#summary").textContent = `${online} of ${warehouses.size} warehouses online`;
  };

  const onWarehouse = (w) => {
    warehouses.set(w.warehouse, w);
    renderWarehouses();
  };

  const table = new es.Table(es.$("#stock"), (sku, s) => {
    const ids = [...warehouses.keys()].sort();
    return es.el("tr", {"data-sku": sku},
      es.el("td", {}, sku),
      es.el("td", {class: "n total"}, es.fmt(s.total)),
      ...ids.map((id) => es.el("td", {class: "n", "data-warehouse": id}, es.fmt(s.wh[id]))),
      ...channels.map((c) => es.el("td", {class: "n ats", "data-channel": c}, es.fmt(s.ats[c]))));
  }, 300);
  const renderHead = () => {
    const ids = [...warehouses.keys()].sort();
    es.$("#stock-head").replaceChildren(es.el("tr", {},
      es.el("th", {}, "SKU"), es.el("th", {class: "n"}, "total"),
      ...ids.map((id) => es.el("th", {class: "n"}, id)),
      ...channels.map((c) => es.el("th", {class: "n"}, "ATS " + c))));
  };
  const entry = (sku) => {
    let s = stock.get(sku);
    if (!s) stock.set(sku, (s = {total: 0, wh: {}, ats: {}}));
    return s;
  };
  const onStock = (c) => {
    const s = entry(c.sku);
    s.total = c.total;
    s.wh[c.warehouse] = c.on_hand;
    table.set(c.sku, s);
  };
  const onATS = (a) => {
    const s = entry(a.sku);
    s.ats[a.channel] = a.ats;
    table.set(a.sku, s);
  };

  const orders = new es.Log(es.$("#orders"), (l) =>
    es.el("tr", {"data-line": l.id},
      es.el("td", {}, l.id), es.el("td", {}, l.channel), es.el("td", {}, l.sku),
      es.el("td", {class: "n"}, es.fmt(l.qty)), es.el("td", {}, l.warehouse),
      es.el("td", {}, es.el("span", {class: "badge " + (l.cancelled ? "warn" : "ok")}, l.cancelled ? "cancelled" : "booked"))), 50);
  const onOrder = (l) => {
    const old = es.$(`#orders tr[data-line="${CSS.escape(l.id)}"]`);
    if (old) old.remove();
    orders.add(l);
  };

  const search = es.$("#search");
  search.oninput = () => {
    const p = search.value.trim();
    table.filter = (sku) => sku.startsWith(p);
    table.render();
  };
  new MutationObserver(() => {
    const more = Number(es.$("#stock").dataset.more || 0);
    es.$("#stock-more").textContent = more > 0 ? `${more} more SKUs: narrow the search to see them` : "";
  }).observe(es.$("#stock"), {attributes: true});

  const open = () => {
    if (src) src.close();
    const q = new URLSearchParams();
    channels.forEach((c) => q.append("channel", c));
    renderHead();
    src = es.stream(q, {warehouse: (w) => { onWarehouse(w); renderHead(); }, stock: onStock, ats: onATS, order: onOrder, alert: (a) => alerts.add(a)},
      (state) => {
        es.showLink(state);
        if (state === "closed") { // closed for good: check the API (a token?) and open again
          src = null;
          again();
        }
      });
  };
  const chan = es.$("#channels");
  chan.value = channels.join(", ");
  chan.onchange = () => {
    channels = chan.value.split(/[\s,]+/).filter(Boolean);
    localStorage.setItem("edgestock.channels", channels.join(","));
    stock.forEach((s) => (s.ats = {}));
    open(); // from the start: the snapshot of the new channels' ATS
  };

  // Once the API answers: follow the stream.
  let ticking = false;
  const begin = () => {
    renderWarehouses();
    open();
    if (!ticking) setInterval(renderWarehouses, 1000); // the lag column moves on its own
    ticking = true;
  };
  let again = () => {};
  document.body.dataset.loaded = String(Date.now());
  again = es.connect(async () => {
    (await es.api("/v1/warehouses")).warehouses.forEach((w) => warehouses.set(w.warehouse, w));
  }, begin);
})();
