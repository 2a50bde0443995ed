// The operations center's wall: one page for every screen. The URL says which scenario
// (/wall/scenario/NAME, optionally ?screen=N for one screen of it) or which single panel
// (/wall/panel/NAME). One EventSource per page feeds every panel on it; the collector
// sends a snapshot first, then changes. Text from the field is only ever set as text.
// Every text a person reads goes through `_`, which looks it up in the translations the
// page carries (the `web` catalog in the page's language, <script id="texts">); numbers,
// days and times are written as readers of that language write them.
"use strict";

const LANG = document.documentElement.lang || "en";
const TEXTS = JSON.parse(document.getElementById("texts").textContent || "{}");
const LOCALE = LANG === "vi" ? "vi-VN" : "en-GB";
const ASKED = new URLSearchParams(location.search).get("lang");
// The screen's `?lang=`, kept on the links it opens.
const LANG_QUERY = ASKED ? `?lang=${encodeURIComponent(ASKED)}` : "";

function _(text) { return TEXTS[text] || text; }

// A translated text's named placeholders filled in: fill(_("{n} s ago"), { n: 5 }).
function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

const state = {
  layout: null, devices: [], latest: new Map(), health: {}, alerts: [], alarms: [],
  environment: null, seenAlerts: new Set(), firstAlerts: true,
};
const panels = [];
const STATE_ORDER = { offline: 0, silent: 1, unknown: 2, "never seen": 3, online: 4 };
// Translators: the letters on a box's map icon (at most 3 or 4 letters), by its kind.
const KIND_LABEL = {
  air: _("AIR"), domestic_water: _("H2O"), surface_water: _("SW"), wastewater: _("WW"),
  seawater: _("SEA"), noise: _("dB"), camera_pole: _("CAM"), wifi_ap: _("AP"), weather: _("WX"),
};
const KIND_NAME = {
  air: _("air stations"), domestic_water: _("domestic water"), surface_water: _("surface water"),
  wastewater: _("wastewater"), seawater: _("seawater"), noise: _("noise"),
  camera_pole: _("camera poles"), wifi_ap: _("wifi access points"), weather: _("weather"),
};
const STATE_NAME = {
  online: _("online"), silent: _("silent"), offline: _("offline"), "never seen": _("never seen"),
  unknown: _("unknown"),
};
const ROLE_NAME = { ops: _("operations"), police: _("police"), env: _("environment"), technician: _("technician") };
const SEVERITY_NAME = { info: _("information"), warning: _("warning"), critical: _("critical") };
const MATCH_NAME = { exact: _("exact"), confusion: _("confusable characters"), one_character: _("one character off") };
const PRIORITY_NAME = { high: _("high"), normal: _("normal"), low: _("low") };
const AVERAGING_NAME = {
  "1h": _("1 h"), "8h": _("8 h"), "24h": _("24 h"), day: _("day"), night: _("night"),
};
const WATER_KINDS = {
  water: ["domestic_water", "surface_water"], wastewater: ["wastewater"],
  seawater: ["seawater"], noise: ["noise"],
};
const PANEL_TITLE = {
  map: _("Island map"), fleet: _("Fleet health"), alarms: _("Active alarms"),
  police: _("Police alerts"), air: _("Air quality · VN_AQI"),
  water: _("Domestic and surface water"), wastewater: _("Wastewater"), seawater: _("Seawater"),
  noise: _("Noise"), wifi: _("Public wifi"), series: _("Time series"),
};

function named(table, value) { return table[value] || value; }

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

const WHOLE = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
const FOUR_DIGITS = new Intl.NumberFormat(LOCALE, { maximumSignificantDigits: 4 });

// A number as the screen's readers write it: 1.234 and 12,35 in Vietnamese.
function shown(value) {
  if (value === null || value === undefined) return "–";
  return Math.abs(value) >= 1000 ? WHOLE.format(value) : FOUR_DIGITS.format(value);
}

function ago(iso) {
  if (!iso) return _("never");
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 90) return fill(_("{n} s ago"), { n: Math.round(s) });
  if (s < 5400) return fill(_("{n} min ago"), { n: Math.round(s / 60) });
  if (s < 172800) return fill(_("{n} h ago"), { n: Math.round(s / 3600) });
  return fill(_("{n} days ago"), { n: Math.round(s / 86400) });
}

function two(n) { return String(n).padStart(2, "0"); }

// A time of day as HH:mm (with seconds for live values), and its day when not today:
// dd/mm/yyyy in Vietnamese, the files' yyyy-mm-dd in English.
function clock(iso, seconds = false) {
  if (!iso) return "–";
  const t = new Date(iso);
  const time = `${two(t.getHours())}:${two(t.getMinutes())}${seconds ? `:${two(t.getSeconds())}` : ""}`;
  if (t.toDateString() === new Date().toDateString()) return time;
  const [d, m, y] = [two(t.getDate()), two(t.getMonth() + 1), t.getFullYear()];
  return LANG === "vi" ? `${time} ${d}/${m}/${y}` : `${y}-${m}-${d} ${time}`;
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
    el("h2", {}, PANEL_TITLE[name], el("a", { href: `/wall/panel/${name}${LANG_QUERY}`, target: "_blank", title: _("open this panel on its own") }, "⤢")),
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
      this.map.attributionControl.addAttribution(_("Coastline © OpenStreetMap contributors (ODbL)"));
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
        icon.title = `${d.name} · ${named(STATE_NAME, d.state)}`;
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
        }).bindTooltip(fill(_("alert · {where} · {time}"), { where: a.pole.name || a.device, time: clock(a.ts) })).addTo(this.alertPins);
      }
    }
  }

  popup(device) {
    const d = state.devices.find((x) => x.device === device) || { device };
    const rows = [...state.latest.values()].filter((s) => s.device === device)
      .map((s) => el("tr", {}, el("td", {}, s.parameter), el("td", { class: "num" }, shown(s.value)),
        el("td", {}, s.unit), el("td", {}, clock(s.ts, true))));
    const h = state.health[device];
    return el("div", { "data-popup": device },
      el("b", {}, d.name || device), el("div", {}, `${named(KIND_NAME, d.kind)} · ${device}`),
      el("div", { class: `state-${(d.state || "").replace(" ", "-")}` },
        fill(_("{state} · last seen {ago}"), { state: named(STATE_NAME, d.state), ago: ago(d.last_seen) })),
      h ? el("div", {}, fill(_("outbox: {waiting} waiting, {dropped} dropped"), { waiting: shown(h.outbox_depth), dropped: shown(h.outbox_dropped) })) : null,
      d.gaps ? el("div", {}, fill(_("{count} messages never received"), { count: shown(d.gaps) })) : null,
      rows.length ? el("table", {}, rows) : el("div", { class: "empty" }, _("no values yet")));
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
      el("div", { class: "count", "data-kind": kind }, el("b", {}, `${k.online}/${k.total}`),
        fill(_("{kind} online"), { kind: kind ? named(KIND_NAME, kind) : _("unregistered") }))));
    const down = state.devices.filter((d) => d.state !== "online")
      .sort((a, b) => (STATE_ORDER[a.state] - STATE_ORDER[b.state]) || ((a.last_seen || "") < (b.last_seen || "") ? -1 : 1));
    const downTable = down.length
      ? el("table", {}, el("tr", {}, el("th", {}, _("box")), el("th", {}, _("state")), el("th", {}, _("last seen"))),
        down.map((d) => el("tr", { "data-device": d.device }, el("td", {}, d.name), el("td", { class: `state-${d.state.replace(" ", "-")}` }, named(STATE_NAME, d.state)), el("td", {}, ago(d.last_seen)))))
      : el("p", { class: "empty" }, _("every box is online"));
    const backlog = Object.entries(state.health).filter(([, h]) => h.outbox_depth > 0 || h.outbox_dropped > 0)
      .sort((a, b) => b[1].outbox_depth - a[1].outbox_depth).slice(0, 10);
    const gaps = state.devices.filter((d) => d.gaps > 0 || d.resets > 0).sort((a, b) => b.gaps - a.gaps).slice(0, 10);
    this.body.replaceChildren(counts, el("h3", {}, _("Silent and offline, longest first")), downTable,
      el("h3", {}, _("Outbox backlogs")),
      backlog.length ? el("table", {}, backlog.map(([dev, h]) => el("tr", {}, el("td", {}, dev),
        el("td", { class: "num" }, fill(_("{count} waiting"), { count: shown(h.outbox_depth) })),
        el("td", { class: "num" }, fill(_("{count} dropped"), { count: shown(h.outbox_dropped) })))))
        : el("p", { class: "empty" }, _("no backlog")),
      el("h3", {}, _("Delivery gaps")),
      gaps.length ? el("table", {}, gaps.map((d) => el("tr", {}, el("td", {}, d.name),
        el("td", { class: "num" }, fill(_("{count} missing"), { count: shown(d.gaps) })),
        el("td", { class: "num" }, fill(_("{count} state resets"), { count: shown(d.resets) })))))
        : el("p", { class: "empty" }, _("nothing missing")));
  }
}

// An alarm in the screen's words, from its figures: the collector writes its message once,
// in its own process's language, for the journal and the other systems; a rule type the
// wall does not know is shown as that message.
function alarmText(a) {
  const values = {
    device: a.device, subject: a.subject, value: shown(a.value), limit: shown(a.limit), unit: a.unit || "",
    averaging: named(AVERAGING_NAME, a.averaging), regulation: a.regulation || "", clause: a.clause || "",
  };
  const over = a.value !== null && a.limit !== null && a.value > a.limit;
  const texts = {
    offline: _("{device} is offline"),
    silent: a.value === null ? _("{device} is online but has never been heard") : _("{device} is online but silent: nothing heard for {value} s"),
    gaps: _("{device}: {value} messages missing from its stream"),
    outbox_drops: _("{device}: its outbox dropped {value} messages it never sent"),
    faults: _("{subject}: too many faulted readings"),
    threshold: over ? _("{subject}: {value} {unit} over {limit}") : _("{subject}: {value} {unit} under {limit}"),
    limit: over ? _("{subject}: {averaging} mean {value} {unit} over the limit {limit} {unit} of {regulation} ({clause})")
      : _("{subject}: {averaging} mean {value} {unit} under the limit {limit} {unit} of {regulation} ({clause})"),
    aqi: _("{device}: VN_AQI {value}, at or over the alarm level {limit}"),
  };
  return a.rule_type in texts ? fill(texts[a.rule_type], values) : a.message;
}

class AlarmsPanel {
  constructor(body) { this.body = body; }
  update() {
    if (!state.alarms.length) { this.body.replaceChildren(el("p", { class: "empty" }, _("no active alarm"))); return; }
    this.body.replaceChildren(...state.alarms.map((a) => el("div", { class: `alarm ${a.severity}`, "data-alarm": a.id },
      el("b", {}, `${named(SEVERITY_NAME, a.severity)} · ${a.rule}`), el("div", {}, alarmText(a)),
      el("div", { class: "dim" }, fill(_("{device} · since {time}"), { device: a.device, time: clock(a.raised_at) }),
        a.acked_by ? " · " + fill(_("acknowledged by {name}"), { name: a.acked_by }) : ""))));
  }
}

class PolicePanel {
  constructor(body) { this.body = body; }
  update() {
    const police = state.layout.role === "police";
    if (!state.alerts.length) { this.body.replaceChildren(el("p", { class: "empty" }, _("no alert in the last 24 hours"))); return; }
    this.body.replaceChildren(...state.alerts.map((a) => {
      const fresh = !state.firstAlerts && !state.seenAlerts.has(a.id);
      const where = a.pole ? a.pole.name : a.device;
      const parts = police
        ? [a.crop_jpeg_b64 ? el("img", { src: `data:image/jpeg;base64,${a.crop_jpeg_b64}`, alt: _("plate crop") }) : null,
          el("div", {}, el("span", { class: "plate", "data-plate": a.plate }, a.display || a.plate),
            el("div", {}, fill(_("matches {watched} ({match}) · {reason}"), { match: named(MATCH_NAME, a.match), watched: a.watched, reason: a.reason })),
            el("div", { class: "dim" }, `${where} · ${clock(a.ts)} · ${shown(Math.round(a.confidence * 100))} % · `,
              a.acked_at ? fill(_("acknowledged by {name}"), { name: a.acked_by }) : _("not acknowledged")))]
        : [el("div", {}, el("b", {}, _("Police alert")), el("div", { class: "dim" },
          fill(_("{where} · {time} · priority {priority}"), { where, time: clock(a.ts), priority: named(PRIORITY_NAME, a.priority) })))];
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
    if (!stations.length) { this.body.replaceChildren(el("p", { class: "empty" }, env ? _("no air station in the config") : _("loading…"))); return; }
    this.body.replaceChildren(...stations.map((s) => {
      const now = s.aqi && s.aqi.aqi;
      const trend = el("div", { class: "trend", title: _("hourly VN_AQI, last 24 hours") }, s.aqi_hours.map((h) =>
        el("span", { style: h.aqi ? `height:${Math.min(100, h.aqi.value / 3)}%;background:${h.aqi.colour}` : "height:2%;background:#30363d", title: clock(h.start) + " " + (h.aqi ? h.aqi.value : _("not rated")) })));
      // The band's name, colour and advice as Decision 1459 gives them, in this language.
      const band = now && env.bands ? env.bands[now.band] : null;
      return el("div", { "data-station": s.device },
        el("h3", {}, s.name),
        now ? el("div", { class: "aqi" }, el("span", { class: "value", style: `background:${now.colour}` }, now.value),
          el("div", {},
            el("b", { "data-band": now.band }, band ? fill(_("{band} ({colour})"), { band: band.name, colour: band.colour }) : now.band),
            el("div", {}, fill(_("dominant: {pollutant}"), { pollutant: now.dominant_name || now.dominant })),
            el("div", { class: "dim" }, fill(_("hour from {time}"), { time: clock(s.aqi.start) }))))
          : el("p", { class: "empty" }, _("no VN_AQI yet: too few valid hourly means")),
        band ? el("div", { class: "advice" },
          el("div", {}, el("b", {}, _("General public:")), " ", band.general),
          el("div", {}, el("b", {}, _("Sensitive groups:")), " ", band.sensitive)) : null,
        trend);
    }));
  }
}

class WaterPanel {
  constructor(body, kinds) { this.body = body; this.kinds = kinds; }
  update() {
    const env = state.environment;
    const stations = env ? env.stations.filter((s) => this.kinds.includes(s.kind)) : [];
    if (!stations.length) { this.body.replaceChildren(el("p", { class: "empty" }, env ? _("no such station in the config") : _("loading…"))); return; }
    this.body.replaceChildren(...stations.map((s) => {
      const raw = (p) => [...state.latest.values()].find((x) => x.device === s.device && x.parameter === p);
      return el("div", { "data-station": s.device }, el("h3", {}, s.name),
        el("table", {}, el("tr", {}, ...[_("parameter"), _("now"), _("mean"), _("limit"), ""].map((h) => el("th", {}, h))),
          s.means.filter((m) => m.averaging === "1h" || m.averaging === "day" || m.averaging === "night").map((m) => {
            const limit = m.limits.map((l) => `${l.min !== null ? `≥${shown(l.min)} ` : ""}${l.max !== null ? `≤${shown(l.max)}` : ""} ${l.unit} (${l.regulation})`).join("; ");
            const latest = raw(m.parameter);
            return el("tr", { class: m.exceeded ? "over" : "", "data-parameter": m.parameter },
              el("td", {}, `${m.name || m.parameter} (${named(AVERAGING_NAME, m.averaging)})`), el("td", { class: "num" }, latest ? `${shown(latest.value)} ${latest.unit}` : "–"),
              el("td", { class: "num" }, m.value === null ? "–" : `${shown(m.value)} ${m.unit}`),
              el("td", {}, limit || (m.why ? fill(_("not judged: {why}"), { why: m.why }) : _("no limit"))),
              el("td", {}, m.exceeded ? _("OVER") : ""));
          })));
    }));
  }
}

// uPlot's axes and legend in the screen's words: times as `clock` writes them, numbers as
// `shown` does (uPlot's own are American: "12:49am", "2,000").
function secondsClock(t, seconds) { return t === null ? "–" : clock(new Date(t * 1000).toISOString(), seconds); }
function legendValue(u, v) { return shown(v); }
const TIME_SERIES = { label: _("time"), value: (u, t) => secondsClock(t, true) };
function chartAxes() {
  return [
    { stroke: "#8b949e", values: (u, splits) => splits.map((t) => secondsClock(t, false)) },
    { stroke: "#8b949e", values: (u, splits) => splits.map(shown) },
  ];
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
    const series = [TIME_SERIES, ...[...bySite.keys()].map((site, i) => ({ label: site, value: legendValue, stroke: ["#58a6ff", "#3fb950", "#d29922", "#f778ba"][i % 4] }))];
    if (this.chart) this.chart.destroy();
    const width = this.chartBox.clientWidth || 400;
    this.chart = new uPlot({ width, height: 180, series, axes: chartAxes() }, data, this.chartBox);
    this.loaded = Date.now();
  }
  update() {
    if (Date.now() - this.loaded > 60000) { this.loaded = Date.now(); this.load().catch(() => { this.loaded = 0; }); }
    const aps = [...state.latest.values()].filter((s) => s.parameter === "clients").sort((a, b) => b.value - a.value);
    this.list.replaceChildren(aps.length
      ? el("table", {}, el("tr", {}, el("th", {}, _("access point")), el("th", {}, _("clients")), el("th", {}, _("at"))),
        aps.map((s) => el("tr", { "data-device": s.device }, el("td", {}, s.device), el("td", { class: "num" }, shown(s.value)), el("td", {}, clock(s.ts, true)))))
      : el("p", { class: "empty" }, _("no access point has reported clients")));
  }
}

class SeriesPanel {
  constructor(body) {
    this.body = body; this.chosen = null; this.window = 3600; this.points = [[], []];
    this.list = el("ul"); this.chartBox = el("div", { class: "chart" });
    const windows = el("select", { class: "window" }, [[_("1 hour"), 3600], [_("6 hours"), 21600], [_("24 hours"), 86400], [_("7 days"), 604800]]
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
    this.chart = new uPlot({ width, height: Math.max(160, this.chartBox.clientHeight - 10 || 200), series: [TIME_SERIES, { label: this.chosen, value: legendValue, stroke: "#58a6ff" }],
      axes: chartAxes() }, this.points, this.chartBox);
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
        `${s.device} · ${s.parameter} = ${shown(s.value)} ${s.unit}`, el("span", { class: "dim" }, ` ${clock(s.ts, true)}`));
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
  source.addEventListener("open", () => { live.dataset.state = "live"; live.textContent = "● " + _("live"); });
  source.addEventListener("error", () => { live.dataset.state = "lost"; live.textContent = "● " + _("reconnecting"); });
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
  try { state.environment = await getJson(`/wall/api/environment?lang=${LANG}`); updateAll(); } catch (e) { console.error(e); }
}

async function start() {
  const path = location.pathname.split("/").filter(Boolean);
  const params = new URLSearchParams(location.search);
  const single = path[1] === "panel" ? path[2] : null;
  const scenario = path[1] === "scenario" ? path[2] : null;
  state.layout = await getJson(`/wall/api/layout${scenario ? `?scenario=${encodeURIComponent(scenario)}` : ""}`);
  const layout = state.layout;
  document.getElementById("who").textContent = `${layout.user} (${named(ROLE_NAME, layout.role)})`;
  const select = document.getElementById("scenario");
  for (const name of layout.scenarios) select.append(el("option", { value: name, selected: name === layout.scenario }, name));
  select.onchange = () => { location.href = `/wall/scenario/${encodeURIComponent(select.value)}${LANG_QUERY}`; };
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
  setInterval(() => { document.getElementById("clock").textContent = clock(new Date().toISOString(), true); }, 1000);
  setInterval(updateAll, 10000);  // "2 min ago" keeps ageing between events
  if (names.some((n) => n === "air" || n in WATER_KINDS)) { refreshEnvironment(); setInterval(refreshEnvironment, 60000); }
  listen();
}

start();
