// The operations center's wall: one page for every screen. The URL says which scenario
// (/wall/scenario/NAME, optionally ?screen=N for one screen of it) or which single panel
// (/wall/panel/NAME). One EventSource per page feeds every panel on it; the collector
// sends a snapshot first, then changes. Text from the field is only ever set as text.
"use strict";

const state = {
  layout: null, devices: [], latest: new Map(), health: {}, alerts: [], alarms: [],
  environment: null, seenAlerts: new Set(), firstAlerts: true,
};
const panels = [];
const STATE_ORDER = { offline: 0, silent: 1, unknown: 2, "never seen": 3, online: 4 };
const KIND_LABEL = {
  air: "AIR", domestic_water: "H2O", surface_water: "SW", wastewater: "WW", seawater: "SEA",
  noise: "dB", camera_pole: "CAM", wifi_ap: "AP", weather: "WX",
};
const KIND_NAME = {
  air: "air stations", domestic_water: "domestic water", surface_water: "surface water",
  wastewater: "wastewater", seawater: "seawater", noise: "noise", camera_pole: "camera poles",
  wifi_ap: "wifi access points", weather: "weather",
};
const WATER_KINDS = {
  water: ["domestic_water", "surface_water"], wastewater: ["wastewater"],
  seawater: ["seawater"], noise: ["noise"],
};
const PANEL_TITLE = {
  map: "Island map", fleet: "Fleet health", alarms: "Active alarms", police: "Police alerts",
  air: "Air quality · VN_AQI", water: "Domestic and surface water", wastewater: "Wastewater",
  seawater: "Seawater", noise: "Noise", wifi: "Public wifi", series: "Time series",
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else if (key === "style") node.setAttribute("style", value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function shown(value) {
  if (value === null || value === undefined) return "–";
  return Math.abs(value) >= 1000 ? String(Math.round(value)) : String(Number(value.toPrecision(4)));
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString("en-GB", { hour12: false }) : "–";
}

function seriesKey(s) { return `${s.device}/${s.sensor}/${s.parameter}`; }

async function getJson(url) {
  const answer = await fetch(url, { credentials: "same-origin" });
  if (answer.status === 401) { location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`; }
  if (!answer.ok) throw new Error(`${url}: ${answer.status}`);
  return answer.json();
}

// ---- panels ---------------------------------------------------------------------------

function panelFrame(name) {
  const body = el("div", { class: "body" });
  const frame = el("section", { class: `panel panel-${name}`, "data-panel": name },
    el("h2", {}, PANEL_TITLE[name], el("a", { href: `/wall/panel/${name}`, target: "_blank" }, "⤢")),
    body);
  return { frame, body };
}

class MapPanel {
  constructor(body) {
    const holder = el("div", { class: "map" });
    body.replaceWith(holder);
    this.map = L.map(holder, { zoomControl: false, attributionControl: true, zoomSnap: 0.25 });
    this.map.setView([10.22, 103.96], 10.5);
    const layout = state.layout;
    if (layout.tiles_url) {
      L.tileLayer(layout.tiles_url, { attribution: layout.tiles_attribution || "" }).addTo(this.map);
    }
    this.markers = new Map();
    this.alertPins = L.layerGroup().addTo(this.map);
    fetch("/wall/static/vendor/phu-quoc-coast.geojson").then((r) => r.json()).then((coast) => {
      const land = L.geoJSON(coast, { style: { color: "#58a6ff", weight: 1, fillColor: "#23301f", fillOpacity: 1 } });
      land.addTo(this.map).bringToBack();
      this.map.attributionControl.addAttribution("Coastline © OpenStreetMap contributors (ODbL)");
      this.fit();
    });
    new ResizeObserver(() => this.map.invalidateSize()).observe(holder);
  }

  fit() {
    const points = state.devices.filter((d) => d.lat !== null).map((d) => [d.lat, d.lon]);
    const bounds = L.latLngBounds([[9.88, 103.83], [10.45, 104.09]]);
    for (const p of points) bounds.extend(p);
    this.map.fitBounds(bounds, { padding: [10, 10] });
  }

  update() {
    const present = new Set();
    for (const d of state.devices) {
      if (d.lat === null || d.lon === null) continue;
      present.add(d.device);
      const html = `<div class="box-icon" data-device="" data-state=""></div>`;
      let marker = this.markers.get(d.device);
      if (!marker) {
        marker = L.marker([d.lat, d.lon], { icon: L.divIcon({ html, className: "", iconSize: [26, 26] }) });
        marker.bindPopup(() => this.popup(d.device), { maxWidth: 420 });
        marker.addTo(this.map);
        this.markers.set(d.device, marker);
      }
      marker.setLatLng([d.lat, d.lon]);
      const icon = marker.getElement() && marker.getElement().querySelector(".box-icon");
      if (icon) {
        icon.dataset.device = d.device;
        icon.dataset.state = d.state;
        icon.dataset.kind = d.kind;
        icon.textContent = KIND_LABEL[d.kind] || "?";
        icon.title = `${d.name} · ${d.state}`;
      }
    }
    for (const [device, marker] of this.markers) {
      if (!present.has(device)) { marker.remove(); this.markers.delete(device); }
    }
    this.alertPins.clearLayers();
    for (const a of state.alerts.filter((x) => !x.acked_at).slice(0, 5)) {
      if (a.pole && a.pole.lat !== null && a.pole.lat !== undefined) {
        L.marker([a.pole.lat, a.pole.lon], {
          icon: L.divIcon({ html: '<div class="alert-pin"></div>', className: "", iconSize: [34, 34] }),
          zIndexOffset: 1000,
        }).bindTooltip(`alert · ${a.pole.name || a.device} · ${clock(a.ts)}`).addTo(this.alertPins);
      }
    }
  }

  popup(device) {
    const d = state.devices.find((x) => x.device === device) || { device };
    const rows = [...state.latest.values()].filter((s) => s.device === device)
      .map((s) => el("tr", {}, el("td", {}, s.parameter), el("td", { class: "num" }, shown(s.value)),
        el("td", {}, s.unit), el("td", {}, clock(s.ts))));
    const h = state.health[device];
    return el("div", { "data-popup": device },
      el("b", {}, d.name || device), el("div", {}, `${KIND_NAME[d.kind] || d.kind} · ${device}`),
      el("div", { class: `state-${(d.state || "").replace(" ", "-")}` }, `${d.state} · last seen ${ago(d.last_seen)}`),
      h ? el("div", {}, `outbox ${h.outbox_depth} waiting, ${h.outbox_dropped} dropped`) : null,
      d.gaps ? el("div", {}, `${d.gaps} messages never received`) : null,
      rows.length ? el("table", {}, rows) : el("div", { class: "empty" }, "no values yet"));
  }
}

class FleetPanel {
  constructor(body) { this.body = body; }
  update() {
    const byKind = new Map();
    for (const d of state.devices) {
      const k = byKind.get(d.kind) || { online: 0, total: 0 };
      k.total += 1; if (d.state === "online") k.online += 1;
      byKind.set(d.kind, k);
    }
    const counts = el("div", { class: "counts" }, [...byKind].map(([kind, k]) =>
      el("div", { class: "count", "data-kind": kind }, el("b", {}, `${k.online}/${k.total}`), `${KIND_NAME[kind] || kind || "unregistered"} online`)));
    const down = state.devices.filter((d) => d.state !== "online")
      .sort((a, b) => (STATE_ORDER[a.state] - STATE_ORDER[b.state]) || ((a.last_seen || "") < (b.last_seen || "") ? -1 : 1));
    const downTable = down.length
      ? el("table", {}, el("tr", {}, el("th", {}, "box"), el("th", {}, "state"), el("th", {}, "last seen")),
        down.map((d) => el("tr", { "data-device": d.device }, el("td", {}, d.name), el("td", { class: `state-${d.state.replace(" ", "-")}` }, d.state), el("td", {}, ago(d.last_seen)))))
      : el("p", { class: "empty" }, "every box is online");
    const backlog = Object.entries(state.health).filter(([, h]) => h.outbox_depth > 0 || h.outbox_dropped > 0)
      .sort((a, b) => b[1].outbox_depth - a[1].outbox_depth).slice(0, 10);
    const gaps = state.devices.filter((d) => d.gaps > 0 || d.resets > 0).sort((a, b) => b.gaps - a.gaps).slice(0, 10);
    this.body.replaceChildren(counts, el("h3", {}, "Silent and offline, longest first"), downTable,
      el("h3", {}, "Outbox backlogs"),
      backlog.length ? el("table", {}, backlog.map(([dev, h]) => el("tr", {}, el("td", {}, dev), el("td", { class: "num" }, `${h.outbox_depth} waiting`), el("td", { class: "num" }, `${h.outbox_dropped} dropped`))))
        : el("p", { class: "empty" }, "no backlog"),
      el("h3", {}, "Delivery gaps"),
      gaps.length ? el("table", {}, gaps.map((d) => el("tr", {}, el("td", {}, d.name), el("td", { class: "num" }, `${d.gaps} missing`), el("td", { class: "num" }, `${d.resets} state resets`))))
        : el("p", { class: "empty" }, "nothing missing"));
  }
}

class AlarmsPanel {
  constructor(body) { this.body = body; }
  update() {
    if (!state.alarms.length) { this.body.replaceChildren(el("p", { class: "empty" }, "no active alarm")); return; }
    this.body.replaceChildren(...state.alarms.map((a) => el("div", { class: `alarm ${a.severity}`, "data-alarm": a.id },
      el("b", {}, `${a.severity} · ${a.rule}`), el("div", {}, a.message),
      el("div", { class: "dim" }, `${a.device} · since ${clock(a.raised_at)}${a.acked_by ? ` · acknowledged by ${a.acked_by}` : ""}`))));
  }
}

class PolicePanel {
  constructor(body) { this.body = body; }
  update() {
    const police = state.layout.role === "police";
    if (!state.alerts.length) { this.body.replaceChildren(el("p", { class: "empty" }, "no alert in the last 24 hours")); return; }
    this.body.replaceChildren(...state.alerts.map((a) => {
      const fresh = !state.firstAlerts && !state.seenAlerts.has(a.id);
      const where = a.pole ? a.pole.name : a.device;
      const parts = police
        ? [a.crop_jpeg_b64 ? el("img", { src: `data:image/jpeg;base64,${a.crop_jpeg_b64}`, alt: "plate crop" }) : null,
          el("div", {}, el("span", { class: "plate", "data-plate": a.plate }, a.display || a.plate),
            el("div", {}, `${a.match} match of ${a.watched} · ${a.reason}`),
            el("div", { class: "dim" }, `${where} · ${clock(a.ts)} · ${Math.round(a.confidence * 100)} % · ${a.acked_at ? `acknowledged by ${a.acked_by}` : "not acknowledged"}`))]
        : [el("div", {}, el("b", {}, "Police alert"), el("div", { class: "dim" }, `${where} · ${clock(a.ts)} · priority ${a.priority}`))];
      return el("div", { class: `alert${a.acked_at ? " acked" : ""}${fresh ? " fresh" : ""}`, "data-alert": a.id }, parts);
    }));
    for (const a of state.alerts) state.seenAlerts.add(a.id);
    state.firstAlerts = false;
  }
}

class AirPanel {
  constructor(body) { this.body = body; }
  update() {
    const env = state.environment;
    const stations = env ? env.stations.filter((s) => s.kind === "air") : [];
    if (!stations.length) { this.body.replaceChildren(el("p", { class: "empty" }, env ? "no air station in the config" : "loading…")); return; }
    this.body.replaceChildren(...stations.map((s) => {
      const now = s.aqi && s.aqi.aqi;
      const trend = el("div", { class: "trend", title: "hourly VN_AQI, last 24 hours" }, s.aqi_hours.map((h) =>
        el("span", { style: h.aqi ? `height:${Math.min(100, h.aqi.value / 3)}%;background:${h.aqi.colour}` : "height:2%;background:#30363d", title: `${clock(h.start)} ${h.aqi ? h.aqi.value : "not rated"}` })));
      return el("div", { "data-station": s.device },
        el("h3", {}, s.name),
        now ? el("div", { class: "aqi" }, el("span", { class: "value", style: `background:${now.colour}` }, now.value),
          el("div", {}, el("b", {}, now.band), el("div", {}, `dominant: ${now.dominant}`), el("div", { class: "dim" }, `hour from ${clock(s.aqi.start)}`)))
          : el("p", { class: "empty" }, "no VN_AQI yet: too few valid hourly means"),
        trend);
    }));
  }
}

class WaterPanel {
  constructor(body, kinds) { this.body = body; this.kinds = kinds; }
  update() {
    const env = state.environment;
    const stations = env ? env.stations.filter((s) => this.kinds.includes(s.kind)) : [];
    if (!stations.length) { this.body.replaceChildren(el("p", { class: "empty" }, env ? "no such station in the config" : "loading…")); return; }
    this.body.replaceChildren(...stations.map((s) => {
      const raw = (p) => [...state.latest.values()].find((x) => x.device === s.device && x.parameter === p);
      return el("div", { "data-station": s.device }, el("h3", {}, s.name),
        el("table", {}, el("tr", {}, ...["parameter", "now", "mean", "limit", ""].map((h) => el("th", {}, h))),
          s.means.filter((m) => m.averaging === "1h" || m.averaging === "day" || m.averaging === "night").map((m) => {
            const limit = m.limits.map((l) => `${l.min !== null ? `≥${l.min} ` : ""}${l.max !== null ? `≤${l.max}` : ""} ${l.unit} (${l.regulation})`).join("; ");
            const latest = raw(m.parameter);
            return el("tr", { class: m.exceeded ? "over" : "", "data-parameter": m.parameter },
              el("td", {}, `${m.parameter} (${m.averaging})`), el("td", { class: "num" }, latest ? `${shown(latest.value)} ${latest.unit}` : "–"),
              el("td", { class: "num" }, m.value === null ? "–" : `${shown(m.value)} ${m.unit}`),
              el("td", {}, limit || (m.not_judged ? `not judged: ${m.not_judged}` : "no limit")),
              el("td", {}, m.exceeded ? "OVER" : ""));
          })));
    }));
  }
}

class WifiPanel {
  constructor(body) { this.body = body; this.chartBox = el("div", { class: "chart" }); this.list = el("div"); body.append(this.chartBox, this.list); this.loaded = 0; }
  async load() {
    const start = new Date(); start.setHours(0, 0, 0, 0);
    const rows = await getJson(`/aggregates?parameter=clients&every=15m&start=${start.toISOString()}&end=${new Date().toISOString()}`);
    const bySite = new Map();
    for (const r of rows) {
      const t = Date.parse(r.window_start) / 1000;
      const site = bySite.get(r.site) || new Map();
      site.set(t, (site.get(t) || 0) + (r.mean || 0));
      bySite.set(r.site, site);
    }
    const times = [...new Set([...bySite.values()].flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
    const data = [times, ...[...bySite.values()].map((m) => times.map((t) => m.get(t) ?? null))];
    const series = [{}, ...[...bySite.keys()].map((site, i) => ({ label: site, stroke: ["#58a6ff", "#3fb950", "#d29922", "#f778ba"][i % 4] }))];
    if (this.chart) this.chart.destroy();
    const width = this.chartBox.clientWidth || 400;
    this.chart = new uPlot({ width, height: 180, series, axes: [{ stroke: "#8b949e" }, { stroke: "#8b949e" }] }, data, this.chartBox);
    this.loaded = Date.now();
  }
  update() {
    if (Date.now() - this.loaded > 60000) { this.loaded = Date.now(); this.load().catch(() => { this.loaded = 0; }); }
    const aps = [...state.latest.values()].filter((s) => s.parameter === "clients").sort((a, b) => b.value - a.value);
    this.list.replaceChildren(aps.length
      ? el("table", {}, el("tr", {}, el("th", {}, "access point"), el("th", {}, "clients"), el("th", {}, "at")),
        aps.map((s) => el("tr", { "data-device": s.device }, el("td", {}, s.device), el("td", { class: "num" }, shown(s.value)), el("td", {}, clock(s.ts)))))
      : el("p", { class: "empty" }, "no access point has reported clients"));
  }
}

class SeriesPanel {
  constructor(body) {
    this.body = body; this.chosen = null; this.window = 3600; this.points = [[], []];
    this.list = el("ul"); this.chartBox = el("div", { class: "chart" });
    const windows = el("select", { class: "window" }, [["1 hour", 3600], ["6 hours", 21600], ["24 hours", 86400], ["7 days", 604800]]
      .map(([label, s]) => el("option", { value: s }, label)));
    windows.onchange = () => { this.window = Number(windows.value); this.load(); };
    body.append(el("div", { class: "series" }, this.list, el("div", { class: "chart" }, el("div", { class: "controls" }, windows), this.chartBox)));
  }
  choose(key) { this.chosen = key; this.load(); this.update(); }
  async load() {
    if (!this.chosen) return;
    const [device, , parameter] = this.chosen.split("/");
    const end = new Date(); const start = new Date(end - this.window * 1000);
    const q = `device=${encodeURIComponent(device)}&parameter=${encodeURIComponent(parameter)}&start=${start.toISOString()}&end=${end.toISOString()}`;
    let times = [], values = [];
    if (this.window <= 21600) {
      const rows = (await getJson(`/readings?${q}&limit=20000`)).filter((r) => seriesKey(r) === this.chosen);
      times = rows.map((r) => Date.parse(r.ts) / 1000); values = rows.map((r) => r.value);
    } else {
      const rows = (await getJson(`/aggregates?${q}&every=${this.window > 86400 ? "1h" : "5m"}`)).filter((r) => seriesKey(r) === this.chosen);
      times = rows.map((r) => Date.parse(r.window_start) / 1000); values = rows.map((r) => r.mean);
    }
    this.points = [times, values];
    this.draw();
  }
  draw() {
    if (this.chart) this.chart.destroy();
    const width = this.chartBox.clientWidth || 400;
    this.chart = new uPlot({ width, height: Math.max(160, this.chartBox.clientHeight - 10 || 200), series: [{}, { label: this.chosen, stroke: "#58a6ff" }],
      axes: [{ stroke: "#8b949e" }, { stroke: "#8b949e" }] }, this.points, this.chartBox);
  }
  samples(list) {
    let added = false;
    for (const s of list) {
      if (seriesKey(s) === this.chosen && s.value !== null) { this.points[0].push(Date.parse(s.ts) / 1000); this.points[1].push(s.value); added = true; }
    }
    if (added && this.chart) this.chart.setData(this.points);
  }
  update() {
    const all = [...state.latest.values()].sort((a, b) => seriesKey(a) < seriesKey(b) ? -1 : 1);
    if (!this.chosen && all.length) { this.choose(seriesKey(all[0])); return; }
    this.list.replaceChildren(...all.map((s) => {
      const item = el("li", { class: seriesKey(s) === this.chosen ? "chosen" : "", "data-series": seriesKey(s), "data-ts": s.ts, "data-value": s.value },
        `${s.device} · ${s.parameter} = ${shown(s.value)} ${s.unit}`, el("span", { class: "dim" }, ` ${clock(s.ts)}`));
      item.onclick = () => this.choose(seriesKey(s));
      return item;
    }));
  }
}

function makePanel(name, body) {
  if (name === "map") return new MapPanel(body);
  if (name === "fleet") return new FleetPanel(body);
  if (name === "alarms") return new AlarmsPanel(body);
  if (name === "police") return new PolicePanel(body);
  if (name === "air") return new AirPanel(body);
  if (name in WATER_KINDS) return new WaterPanel(body, WATER_KINDS[name]);
  if (name === "wifi") return new WifiPanel(body);
  return new SeriesPanel(body);
}

// ---- the page -------------------------------------------------------------------------

function updateAll() { for (const p of panels) { try { p.update(); } catch (e) { console.error(e); } } }

function take(list) {
  for (const s of list) state.latest.set(seriesKey(s), s);
}

function listen() {
  const live = document.getElementById("live");
  const source = new EventSource("/wall/stream");
  source.addEventListener("open", () => { live.dataset.state = "live"; live.textContent = "● live"; });
  source.addEventListener("error", () => { live.dataset.state = "lost"; live.textContent = "● reconnecting"; });
  source.addEventListener("snapshot", (e) => {
    const snap = JSON.parse(e.data);
    state.devices = snap.devices; state.health = snap.health; state.alerts = snap.alerts; state.alarms = snap.alarms;
    state.latest = new Map(); take(snap.latest);
    updateAll();
  });
  source.addEventListener("samples", (e) => {
    const list = JSON.parse(e.data);
    take(list);
    for (const p of panels) if (p.samples) p.samples(list);
    updateAll();
    window.wallLastSample = Date.now();
  });
  source.addEventListener("devices", (e) => { state.devices = JSON.parse(e.data); updateAll(); });
  source.addEventListener("health", (e) => { Object.assign(state.health, JSON.parse(e.data)); updateAll(); });
  source.addEventListener("alerts", (e) => { state.alerts = JSON.parse(e.data); updateAll(); });
  source.addEventListener("alarms", (e) => { state.alarms = JSON.parse(e.data); updateAll(); });
}

async function refreshEnvironment() {
  try { state.environment = await getJson("/wall/api/environment"); updateAll(); } catch (e) { console.error(e); }
}

async function start() {
  const path = location.pathname.split("/").filter(Boolean);
  const params = new URLSearchParams(location.search);
  const single = path[1] === "panel" ? path[2] : null;
  const scenario = path[1] === "scenario" ? path[2] : null;
  state.layout = await getJson(`/wall/api/layout${scenario ? `?scenario=${encodeURIComponent(scenario)}` : ""}`);
  const layout = state.layout;
  document.getElementById("who").textContent = `${layout.user} (${layout.role})`;
  const select = document.getElementById("scenario");
  for (const name of layout.scenarios) select.append(el("option", { value: name, selected: name === layout.scenario }, name));
  select.onchange = () => { location.href = `/wall/scenario/${encodeURIComponent(select.value)}`; };
  let names = single ? [single] : layout.screens;
  const grid = document.getElementById("grid");
  const screen = Number(params.get("screen"));
  if (!single && screen >= 1 && screen <= names.length) names = [names[screen - 1]];
  const [across, down] = names.length === 1 ? [1, 1] : layout.grid;
  grid.style.gridTemplateColumns = `repeat(${across}, minmax(0, 1fr))`;
  grid.style.gridTemplateRows = `repeat(${down}, minmax(0, 1fr))`;
  for (const name of names) {
    const { frame, body } = panelFrame(name);
    grid.append(frame);
    panels.push(makePanel(name, body));
  }
  setInterval(() => { document.getElementById("clock").textContent = new Date().toLocaleTimeString("en-GB", { hour12: false }); }, 1000);
  setInterval(updateAll, 10000);  // "2 min ago" keeps ageing between events
  if (names.some((n) => n === "air" || n in WATER_KINDS)) { refreshEnvironment(); setInterval(refreshEnvironment, 60000); }
  listen();
}

start();
