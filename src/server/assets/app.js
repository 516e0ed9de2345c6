// footage review page. Plain JavaScript and the bundled Leaflet (served by the binary under
// /vendor/leaflet-1.9.4/): no other library, no request outside the server except map tiles
// from the station's own tile server when footage.toml names one ([map] tiles); without it the
// map is a degree grid drawn in the browser.
//
// Rule: text that comes from the store or from docks (officer and device ids, labels, upload
// metadata, service messages) is put on the page as text nodes only (el(), textContent),
// never through innerHTML or Leaflet's HTML strings (tooltips get DOM nodes).
"use strict";

const $ = (sel) => document.querySelector(sel);
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#843c39"];
const M_PER_DEG = 111195;
// The page opens on this many of the newest segments.
const LATEST_COUNT = 20;
// Panels poll while the tab is visible. The service state comes from /api/stats, which is
// audited (one entry per call), so it is polled less often than the uploads.
const POLL_UPLOADS_MS = 5000;
const POLL_SERVICE_MS = 15000;
const HOME = [51.508, -0.1247];

const state = {
  token: localStorage.getItem("footage.token") || "",
  who: null,          // {name, read_only, role, tokens_required}
  mode: null,         // "latest" or "search": what the results are
  params: null,       // URLSearchParams of the current search
  results: [],        // find lines: info fields + hits
  next: null,
  tracks: new Map(),  // id -> GeoJSON Feature
  selected: null,     // id
  jumpTo: null,       // seconds to seek to once the video has loaded
  config: null,       // /api/config
  uploadsAbsent: false, // /api/uploads answered 404: this server has no uploads
};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path, options) {
  const opts = Object.assign({ headers: {} }, options || {});
  if (state.token) opts.headers["Authorization"] = "Bearer " + state.token;
  const resp = await fetch(path, opts);
  let body = null;
  try { body = await resp.json(); } catch (_) { body = null; }
  if (!resp.ok) {
    const msg = body && body.error ? body.error : resp.status + " " + resp.statusText;
    const err = new Error(msg);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function setStatus(text, isError) {
  const s = $("#status");
  s.textContent = text;
  s.className = isError ? "error" : "muted";
}

const ms = (t) => Date.parse(t);
const hhmmss = (t) => t.slice(11, 19);
function duration(a, b) {
  const s = Math.round((ms(b) - ms(a)) / 1000);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`
       : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}
const colorOf = (id) => PALETTE[state.results.findIndex((r) => r.id === id) % PALETTE.length] || "#555";

// ---- who am I -------------------------------------------------------------------------

async function checkWho() {
  const w = $("#whoami");
  try {
    state.who = await api("/api/whoami");
    w.textContent = state.who.tokens_required
      ? `signed in as ${state.who.name}${state.who.read_only ? " (read-only)" : ""}`
      : `no tokens on this server: acting as ${state.who.name}`;
    w.className = "muted";
  } catch (e) {
    state.who = null;
    w.textContent = e.status === 401 ? "a token is needed" : "error: " + e.message;
    w.className = "error";
    updateActions();
    return;
  }
  updateActions();
  await Promise.all([loadConfig(), state.mode ? null : latest(true)]);
  pollUploads();
  pollService();
}

$("#token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("#token").value.trim();
  if (state.token) localStorage.setItem("footage.token", state.token);
  else localStorage.removeItem("footage.token");
  checkWho();
});

// ---- search ----------------------------------------------------------------------------

function searchParams() {
  const f = new FormData($("#search"));
  const p = new URLSearchParams();
  for (const key of ["officer", "device"]) {
    for (const v of String(f.get(key) || "").split(",")) if (v.trim()) p.append(key, v.trim());
  }
  for (const key of ["from", "to", "case", "tag", "category"]) {
    const v = String(f.get(key) || "").trim();
    if (v) p.set(key, v);
  }
  const near = String(f.get("near") || "").replace(/\s+/g, "");
  const radius = String(f.get("radius") || "").trim();
  const box = String(f.get("bbox") || "").replace(/\s+/g, "");
  if (near) { p.set("near", near); p.set("radius", radius || "150"); }
  else if (box) p.set("bbox", box);
  p.set("limit", "100");
  return p;
}

async function search(more) {
  const p = more ? new URLSearchParams(state.params) : searchParams();
  if (more && state.next) p.set("cursor", state.next);
  setStatus("searching…");
  try {
    const page = await api("/api/segments?" + p.toString());
    if (!more) {
      state.mode = "search";
      state.params = p;
      state.results = [];
      state.selected = null;
    }
    state.results.push(...page.segments);
    state.next = page.next;
    $("#more").disabled = !state.next;
    setStatus(`${state.results.length} segment${state.results.length === 1 ? "" : "s"}` +
              (state.next ? " (more available)" : ""));
    $("#results-caption").textContent = "Search results, by start time";
    renderResults();
    await loadTracks();
    drawMap(!more);
    drawQuery();
    drawTimeline();
    if (!state.selected && state.results.length) select(state.results[0].id);
    document.body.dataset.searched = String(Date.now());
  } catch (e) {
    setStatus(e.message, true);
  }
}

$("#search").addEventListener("submit", (ev) => { ev.preventDefault(); search(false); });
$("#more").addEventListener("click", () => search(true));
$("#clear-place").addEventListener("click", () => {
  const f = $("#search").elements;
  f.near.value = "";
  f.radius.value = "";
  f.bbox.value = "";
  drawQuery();
});
$("#latest").addEventListener("click", () => latest(false));

// The store's newest segments, newest first: what the page opens on before any search. No
// segment is selected (selecting one issues a video ticket, which the reviewer asks for).
// `opening`: the automatic load at sign-in, which a search started meanwhile wins over.
async function latest(opening) {
  setStatus("loading the latest footage…");
  try {
    const page = await api(`/api/latest?limit=${LATEST_COUNT}`);
    if (opening && state.mode === "search") return;
    state.mode = "latest";
    state.params = null;
    state.next = null;
    state.selected = null;
    state.results = Array.isArray(page.segments) ? page.segments : [];
    $("#more").disabled = true;
    const n = state.results.length;
    setStatus(n ? `latest footage: the ${n} newest segment${n === 1 ? "" : "s"}` : "the store has no footage yet");
    $("#results-caption").textContent = "Latest footage, newest first";
    renderResults();
    await loadTracks();
    drawMap(true);
    drawTimeline();
    document.body.dataset.latest = String(n);
  } catch (e) {
    setStatus(e.message, true);
  }
}

function renderResults() {
  const tbody = $("#results tbody");
  tbody.replaceChildren();
  for (const r of state.results) {
    const labels = [...r.categories, ...r.tags, ...r.cases.map((c) => "case " + c)];
    if (r.holds.length) labels.unshift("HOLD " + r.holds.join(","));
    const hits = r.hits ? r.hits.map((h) => hhmmss(h.from)).join(" ") : "";
    const tr = el("tr", { "data-id": r.id, class: r.id === state.selected ? "selected" : "" },
      el("td", {}, el("span", { class: "swatch" }), r.id),
      el("td", {}, r.officer),
      el("td", {}, r.start.slice(0, 19).replace("T", " ")),
      el("td", {}, duration(r.start, r.end)),
      el("td", {}, labels.join(", ")),
      el("td", { class: "hits" }, hits));
    tr.querySelector(".swatch").style.background = colorOf(r.id);
    tr.addEventListener("click", () => select(r.id));
    tbody.append(tr);
  }
}

async function loadTracks() {
  const missing = state.results.filter((r) => r.gps_fixes > 0 && !state.tracks.has(r.id));
  // A few requests at a time.
  for (let i = 0; i < missing.length; i += 6) {
    await Promise.all(missing.slice(i, i + 6).map(async (r) => {
      try { state.tracks.set(r.id, await api(`/api/segments/${r.id}/track.geojson`)); } catch (_) { /* shown without a track */ }
    }));
  }
}

// ---- map -------------------------------------------------------------------------------
// Leaflet map: a base layer (the station's tiles, or the degree grid), then the query's place,
// the tracks, and on top the stretches that matched the query.

function queryArea() {
  const f = $("#search").elements;
  const near = f.near.value.split(",").map(Number);
  const radius = Number(f.radius.value || 150);
  if (near.length === 2 && near.every(Number.isFinite) && radius >= 0) return { lat: near[0], lon: near[1], radius };
  return null;
}

function queryBox() {
  const b = $("#search").elements.bbox.value.split(",").map(Number);
  if (b.length === 4 && b.every(Number.isFinite)) return b;
  return null;
}

function coordsOf(feature) {
  const g = feature && feature.geometry;
  if (!g || !Array.isArray(g.coordinates)) return [];
  return g.type === "Point" ? [g.coordinates] : g.coordinates;
}

function niceStep(span) {
  const target = span / 6;
  const p = Math.pow(10, Math.floor(Math.log10(target)));
  for (const m of [1, 2, 5, 10]) if (m * p >= target) return m * p;
  return 10 * p;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// Graticule lines and their labels in degrees, drawn on canvas tiles: the map's base when no
// tile server is configured, so the page needs no network at all.
const DegreeGrid = L.GridLayer.extend({
  createTile(coords) {
    const tile = L.DomUtil.create("canvas", "grid-tile");
    const size = this.getTileSize();
    tile.width = size.x;
    tile.height = size.y;
    const ctx = tile.getContext("2d");
    const map = this._map;
    const origin = coords.scaleBy(size);
    const nw = map.unproject(origin, coords.z);
    const se = map.unproject(origin.add(size), coords.z);
    // One step for the whole zoom level (a tile spans 360/2^z degrees of longitude): about
    // two lines per tile.
    const step = niceStep(360 / Math.pow(2, coords.z) * 3);
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    const px = (lat, lon) => map.project([lat, lon], coords.z).subtract(origin);
    ctx.strokeStyle = "#d5dbe5";
    ctx.fillStyle = "#7d8696";
    ctx.lineWidth = 1;
    ctx.font = "10px system-ui, sans-serif";
    for (let k = Math.ceil(nw.lng / step); k * step <= se.lng; k++) {
      const lon = k * step;
      const x = Math.round(px(nw.lat, lon).x) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, size.y); ctx.stroke();
      // Labels stay inside their tile (a neighbour tile would cut them): left of the line
      // when there is no room to its right.
      const text = lon.toFixed(digits);
      const w = ctx.measureText(text).width;
      ctx.fillText(text, x + 2 + w <= size.x ? x + 2 : x - 2 - w, size.y - 3);
    }
    for (let k = Math.ceil(se.lat / step); k * step <= nw.lat; k++) {
      const lat = k * step;
      const y = Math.round(px(lat, nw.lng).y) + 0.5;
      ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(size.x, y); ctx.stroke();
      ctx.fillText(lat.toFixed(digits), 2, y >= 12 ? y - 2 : y + 11);
    }
    return tile;
  },
});

const view = { map: null, base: null, grid: null, tiles: null, control: null,
               query: null, tracks: null, hits: null, handles: null, drawingBox: null,
               boxJustDrawn: false };

function initMap() {
  const map = L.map("map", { boxZoom: false, maxZoom: 22, zoomSnap: 0.5 });
  map.setView(HOME, 15);
  view.map = map;
  view.grid = new DegreeGrid({ className: "degree-grid", maxZoom: 22 });
  view.grid.addTo(map);
  view.base = view.grid;
  view.query = L.layerGroup().addTo(map);
  view.tracks = L.featureGroup().addTo(map);
  view.hits = L.layerGroup().addTo(map);
  view.handles = L.layerGroup().addTo(map);
  map.on("click", (ev) => {
    // The click that ends a shift-drag is not a point.
    if (view.boxJustDrawn) { view.boxJustDrawn = false; return; }
    const f = $("#search").elements;
    f.near.value = `${ev.latlng.lat.toFixed(5)},${ev.latlng.lng.toFixed(5)}`;
    if (!f.radius.value) f.radius.value = "150";
    f.bbox.value = "";
    drawQuery();
  });
  // Shift-drag draws a box (Leaflet's own box zoom is off).
  map.on("mousedown", (ev) => {
    view.boxJustDrawn = false;
    if (!ev.originalEvent.shiftKey) return;
    map.dragging.disable();
    const a = ev.latlng;
    view.drawingBox = L.rectangle([a, a], { className: "query-box", color: "#d62828", weight: 1.5,
                                            dashArray: "4 3", fillOpacity: 0.08, interactive: false }).addTo(view.query);
    const move = (e) => view.drawingBox.setBounds([a, e.latlng]);
    const up = (e) => {
      map.off("mousemove", move);
      map.off("mouseup", up);
      map.dragging.enable();
      const b = L.latLngBounds(a, e.latlng);
      view.drawingBox = null;
      view.boxJustDrawn = true;
      const f = $("#search").elements;
      f.bbox.value = [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()].map((v) => v.toFixed(5)).join(",");
      f.near.value = "";
      f.radius.value = "";
      drawQuery();
    };
    map.on("mousemove", move);
    map.on("mouseup", up);
  });
  drawQuery();
}

// The base layer: the station's tiles when /api/config names a tile server (the degree grid
// stays available in the layer control), the grid otherwise.
function applyMapConfig(cfg) {
  const m = cfg && cfg.map;
  if (!m || typeof m.tiles !== "string" || !m.tiles || view.tiles) return;
  view.tiles = L.tileLayer(m.tiles, {
    className: "station-tiles",
    maxZoom: Number.isFinite(m.max_zoom) ? m.max_zoom : 19,
    // Leaflet puts attributions in as HTML: escape the configured text.
    attribution: m.attribution ? escapeHtml(m.attribution) : "",
  });
  view.map.removeLayer(view.grid);
  view.tiles.addTo(view.map);
  view.base = view.tiles;
  view.control = L.control.layers({ "Station map": view.tiles, "Degree grid": view.grid }, null, { collapsed: true }).addTo(view.map);
  $("#map-note").textContent = "(station tiles; click to search near a point, drag the handles, shift-drag for a box)";
  document.body.dataset.tiles = "station";
}

async function loadConfig() {
  try {
    state.config = await api("/api/config");
    applyMapConfig(state.config);
  } catch (_) { /* an older server: the grid stays */ }
  document.body.dataset.config = "1";
}

const QUERY_STYLE = { color: "#d62828", weight: 1.5, dashArray: "4 3", fillOpacity: 0.08, interactive: false };

function handle(latlng, cls, label) {
  return L.marker(latlng, { draggable: true, keyboard: true, title: label, alt: label,
                            icon: L.divIcon({ className: "query-handle " + cls, iconSize: [12, 12] }) });
}

// The query's place: the near circle (with a handle to move it and one to resize it) or the box.
function drawQuery() {
  view.query.clearLayers();
  view.handles.clearLayers();
  const area = queryArea();
  const f = $("#search").elements;
  if (area) {
    const c = L.circle([area.lat, area.lon], Object.assign({ radius: area.radius, className: "query-circle" }, QUERY_STYLE)).addTo(view.query);
    const edgeOf = (lat, lon, r) => L.latLng(lat, lon + r / M_PER_DEG / Math.max(0.01, Math.cos(lat * Math.PI / 180)));
    const center = handle([area.lat, area.lon], "center", "move the search circle").addTo(view.handles);
    const edge = handle(edgeOf(area.lat, area.lon, area.radius), "edge", "resize the search circle").addTo(view.handles);
    center.on("drag", () => {
      const p = center.getLatLng();
      c.setLatLng(p);
      edge.setLatLng(edgeOf(p.lat, p.lng, c.getRadius()));
    });
    center.on("dragend", () => {
      const p = center.getLatLng();
      f.near.value = `${p.lat.toFixed(5)},${p.lng.toFixed(5)}`;
    });
    edge.on("drag", () => c.setRadius(view.map.distance(c.getLatLng(), edge.getLatLng())));
    edge.on("dragend", () => {
      f.radius.value = String(Math.max(1, Math.round(c.getRadius())));
      drawQuery();
    });
  } else {
    const b = queryBox();
    if (b) L.rectangle([[b[0], b[1]], [b[2], b[3]]], Object.assign({ className: "query-box" }, QUERY_STYLE)).addTo(view.query);
  }
}

function tooltip(text) {
  // A DOM node, not a string: Leaflet would put a string in as HTML.
  return el("span", {}, text);
}

// Tracks, then (on top) the stretches that matched the query. `fit`: zoom to the results.
function drawMap(fit) {
  if (!view.map) return;
  view.tracks.clearLayers();
  view.hits.clearLayers();
  const bounds = L.latLngBounds([]);
  for (const r of state.results) {
    const t = state.tracks.get(r.id);
    if (!t) continue;
    const cs = coordsOf(t).filter((c) => Array.isArray(c) && Number.isFinite(c[0]) && Number.isFinite(c[1]));
    if (!cs.length) continue;
    const latlngs = cs.map((c) => [c[1], c[0]]);
    const color = colorOf(r.id);
    const sel = r.id === state.selected;
    const opts = { color, weight: sel ? 5 : 3, opacity: sel ? 1 : 0.75, bubblingMouseEvents: false,
                   className: "track" + (sel ? " selected" : "") };
    const shape = cs.length === 1
      ? L.circleMarker(latlngs[0], Object.assign(opts, { radius: 5, fillColor: color, fillOpacity: 0.9 }))
      : L.polyline(latlngs, opts);
    shape.bindTooltip(tooltip(`#${r.id} ${r.officer} ${r.start}`), { sticky: true });
    shape.on("click", () => select(r.id));
    shape.addTo(view.tracks);
    const node = shape.getElement();
    if (node) node.setAttribute("data-id", r.id);
    for (const ll of latlngs) bounds.extend(ll);
    const times = (t.properties && t.properties.times) || [];
    for (const h of r.hits || []) {
      const from = ms(h.from), to = ms(h.to);
      const part = latlngs.filter((_, i) => { const tt = ms(times[i]); return tt >= from && tt <= to; });
      const hopts = { color: "#d62828", interactive: false, className: "hit" };
      let mark = null;
      if (part.length === 1) mark = L.circleMarker(part[0], Object.assign(hopts, { radius: 5, weight: 1.5, fillOpacity: 1 }));
      else if (part.length > 1) mark = L.polyline(part, Object.assign(hopts, { weight: 7, opacity: 0.85 }));
      if (mark) mark.addTo(view.hits);
    }
  }
  if (fit) {
    const area = queryArea();
    if (area) bounds.extend(L.latLng(area.lat, area.lon).toBounds(2 * area.radius));
    if (bounds.isValid()) view.map.fitBounds(bounds, { padding: [24, 24], maxZoom: 18 });
  }
}

// ---- timeline --------------------------------------------------------------------------

function drawTimeline() {
  const tl = $("#timeline");
  tl.replaceChildren();
  const W = 640, LEFT = 92, ROW = 18, TOP = 16;
  const officers = [...new Set(state.results.map((r) => r.officer))].sort();
  const H = TOP + Math.max(1, officers.length) * ROW + 6;
  tl.setAttribute("viewBox", `0 0 ${W} ${H}`);
  if (!state.results.length) return;
  const p = state.params || new URLSearchParams();
  let t0 = p.get("from") ? ms(p.get("from")) : Math.min(...state.results.map((r) => ms(r.start)));
  let t1 = p.get("to") ? ms(p.get("to")) : Math.max(...state.results.map((r) => ms(r.end)));
  if (!(t1 > t0)) t1 = t0 + 60000;
  const x = (t) => LEFT + (Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0) * (W - LEFT - 6);
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (t1 - t0) * i / 4;
    const iso = new Date(t).toISOString();
    const label = t1 - t0 > 2 * 86400000 ? iso.slice(5, 16).replace("T", " ") : iso.slice(11, 16);
    tl.append(svg("text", { class: "tl-axis", x: x(t), y: 10, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle" }, label));
    tl.append(svg("line", { x1: x(t), x2: x(t), y1: 12, y2: H, stroke: "#eceef2" }));
  }
  officers.forEach((o, i) => {
    tl.append(svg("text", { class: "tl-label", x: 2, y: TOP + i * ROW + 12 }, o));
  });
  for (const r of state.results) {
    const row = officers.indexOf(r.officer);
    const x0 = x(ms(r.start)), x1 = Math.max(x(ms(r.end)), x0 + 2);
    const rect = svg("rect", { class: "tl-seg" + (r.id === state.selected ? " selected" : ""), x: x0, y: TOP + row * ROW + 2,
                               width: x1 - x0, height: ROW - 5, fill: colorOf(r.id), "data-id": r.id });
    rect.append(svg("title", {}, `#${r.id} ${r.start} – ${r.end}`));
    rect.addEventListener("click", () => select(r.id));
    tl.append(rect);
    for (const h of r.hits || []) {
      const hx0 = x(ms(h.from)), hx1 = Math.max(x(ms(h.to)), hx0 + 1.5);
      tl.append(svg("rect", { class: "tl-hit", x: hx0, y: TOP + row * ROW + ROW - 5, width: hx1 - hx0, height: 3 }));
    }
  }
}

// ---- one segment -----------------------------------------------------------------------

function renderDetails(info) {
  const rows = [["id", info.id], ["officer", info.officer], ["device", info.device],
    ["start", info.start], ["end", info.end], ["length", duration(info.start, info.end)],
    ["bytes", info.bytes.toLocaleString("en")], ["SHA-256", info.sha256],
    ["categories", info.categories.join(", ") || "—"], ["cases", info.cases.join(", ") || "—"],
    ["tags", info.tags.join(", ") || "—"], ["legal holds", info.holds.join(", ") || "none"],
    ["GPS fixes", info.gps_fixes], ["tier", info.tier],
    ["pinned", !info.pinned_until ? "no" : info.pinned_until === "indefinitely"
      ? "kept local indefinitely" : "kept local until " + info.pinned_until],
    ["ingested", info.ingested]];
  $("#details tbody").replaceChildren(...rows.map(([k, v]) =>
    el("tr", { "data-field": k }, el("th", {}, k), el("td", {}, v))));
  $("#seg-title").textContent = `#${info.id} ${info.officer}`;
}

function hitOffsets(r) {
  return (r.hits || []).map((h) => Math.max(0, (ms(h.from) - ms(r.start)) / 1000));
}

async function select(id) {
  state.selected = id;
  const r = state.results.find((x) => x.id === id);
  for (const tr of document.querySelectorAll("#results tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  drawMap(false);
  drawTimeline();
  if (!r) return;
  renderDetails(r);
  const offsets = hitOffsets(r);
  const hb = $("#hit-buttons");
  hb.replaceChildren(...offsets.map((off, i) => {
    const b = el("button", { type: "button" }, `hit ${i + 1} at ${hhmmss(r.hits[i].from)} (+${Math.round(off)} s)`);
    b.addEventListener("click", () => { $("#player").currentTime = off; $("#player").play().catch(() => {}); });
    return b;
  }));
  state.jumpTo = offsets.length ? offsets[0] : null;
  const video = $("#player");
  video.dataset.segment = "";
  try {
    const v = await api(`/api/segments/${id}/video-url`);
    if (state.selected !== id) return;
    video.dataset.segment = id;
    video.src = v.url;
  } catch (e) {
    $("#action-status").textContent = "video: " + e.message;
  }
  updateActions();
}

$("#player").addEventListener("loadedmetadata", () => {
  const v = $("#player");
  if (state.jumpTo !== null) {
    v.currentTime = Math.min(state.jumpTo, Math.max(0, v.duration - 0.1));
    state.jumpTo = null;
  }
  v.dataset.ready = "1";
});

function updateActions() {
  const canChange = !!state.who && !state.who.read_only && !!state.selected;
  for (const b of document.querySelectorAll("#actions button")) {
    // Releasing a legal hold needs the holds role.
    b.disabled = !canChange || (b.dataset.kind === "release" && state.who.role !== "holds");
  }
  $("#action-status").textContent = !state.who ? "sign in to change segments"
    : state.who.read_only ? "read-only token: changes are disabled" : "";
}

for (const form of document.querySelectorAll("#actions form")) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const kind = ev.submitter ? ev.submitter.dataset.kind : "add";
    const value = form.elements.value.value.trim();
    const id = state.selected;
    const action = form.dataset.action;
    // Keeping footage on the station needs no value (a pin with no end, a restore).
    if (!id || (!value && action !== "keep")) return;
    let path, body;
    if (action === "hold") { path = kind === "release" ? "release" : "hold"; body = { case: value }; }
    else if (action === "category") { path = "category"; body = { category: value, remove: kind === "remove" }; }
    else if (action === "keep") { path = kind; body = kind === "pin" && value ? { until: value } : {}; }
    else { path = "tags"; body = { tag: value, remove: kind === "remove" }; }
    try {
      const answer = await api(`/api/segments/${id}/${path}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      // A restore answers {queued, waiting, segments: [info]}; every other change, the info.
      const info = Array.isArray(answer.segments) ? answer.segments[0] : answer;
      const i = state.results.findIndex((x) => x.id === id);
      if (i >= 0) state.results[i] = Object.assign({}, state.results[i], info);
      renderResults();
      renderDetails(info);
      $("#action-status").textContent = path !== "restore" ? "saved"
        : answer.waiting ? "restore queued: the service brings the footage back to the station"
        : "already on the station";
    } catch (e) {
      $("#action-status").textContent = e.message;
    }
  });
}

// ---- station panels: uploads in progress, the service's background work ----------------
// Both endpoints come from other parts of the service and may be absent or differ in shape:
// read them defensively, show whatever is there, and never as HTML.

function fmtBytes(n) {
  if (!Number.isFinite(n)) return String(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function pick(obj, ...keys) {
  for (const k of keys) {
    const v = k.split(".").reduce((o, p) => (o && typeof o === "object" ? o[p] : undefined), obj);
    if (v !== undefined && v !== null && v !== "") return v;
  }
  return undefined;
}

function renderUploads(body) {
  const list = Array.isArray(body) ? body
    : body && Array.isArray(body.uploads) ? body.uploads
    : body && Array.isArray(body.sessions) ? body.sessions : [];
  // Completed sessions stay listed for a while (a dock may ask HEAD for its segment): they are
  // not in progress.
  const sessions = list.filter((s) => s && typeof s === "object");
  const open = sessions.filter((s) => !s.completed);
  const done = sessions.length - open.length;
  const ul = $("#uploads");
  ul.replaceChildren(...open.map((s) => {
    const id = pick(s, "id", "upload_id");
    const officer = pick(s, "officer", "metadata.officer", "meta.officer");
    const device = pick(s, "device", "metadata.device", "meta.device");
    const length = Number(pick(s, "length", "upload_length", "size"));
    const offset = Number(pick(s, "offset", "upload_offset", "received") || 0);
    const who = pick(s, "caller", "actor", "user");
    const updated = pick(s, "updated", "updated_at", "last_write");
    const created = pick(s, "created", "created_at");
    const known = Number.isFinite(length) && length > 0;
    const pct = known ? Math.min(100, Math.max(0, Math.round(offset / length * 100))) : null;
    const title = [officer, device].filter((x) => x !== undefined).map(String).join(" · ") || String(id ?? "upload");
    const bar = el("progress", { max: known ? length : 1, value: known ? Math.min(offset, length) : 0 });
    bar.setAttribute("aria-label", `upload ${title}`);
    if (!known) bar.removeAttribute("value");
    const line = known ? `${fmtBytes(offset)} of ${fmtBytes(length)} (${pct}%)` : `${fmtBytes(offset)} received, length not known yet`;
    const extra = [who !== undefined ? `by ${who}` : "", created ? `started ${created}` : "", updated ? `last data ${updated}` : ""].filter(Boolean).join(", ");
    return el("li", { class: "upload", "data-id": String(id ?? "") },
      el("div", { class: "upload-title" }, title), bar,
      el("div", { class: "muted small" }, line + (extra ? "; " + extra : "")));
  }));
  $("#uploads-status").textContent = (open.length ? `${open.length} in progress` : "none in progress")
    + (done ? `; ${done} completed recently` : "");
  $("#uploads-panel").hidden = false;
}

async function pollUploads() {
  if (document.hidden || state.uploadsAbsent || !state.who) return;
  try {
    renderUploads(await api("/api/uploads"));
  } catch (e) {
    if (e.status === 404) {
      // This server takes no uploads over HTTP: no panel, no more polling.
      state.uploadsAbsent = true;
      $("#uploads-panel").hidden = true;
    } else {
      $("#uploads-status").textContent = e.status === 403 ? "this token may not see uploads" : "uploads: " + e.message;
      $("#uploads-panel").hidden = false;
    }
  }
  document.body.dataset.uploadsPolled = String(Date.now());
}

const label = (k) => String(k).replace(/_/g, " ");

// Any JSON value as nested lists: keys as terms, numbers of bytes in units, fractions named
// "progress" as a bar, errors in red.
function renderValue(key, v, depth) {
  if (v === null || v === undefined) return el("span", { class: "muted" }, "—");
  if (Array.isArray(v)) {
    if (!v.length) return el("span", { class: "muted" }, "none");
    if (depth > 4) return el("span", {}, JSON.stringify(v));
    return el("ol", { class: "kv-list" }, ...v.map((x) => el("li", {}, renderValue(key, x, depth + 1))));
  }
  if (typeof v === "object") {
    if (depth > 4) return el("span", {}, JSON.stringify(v));
    const dl = el("dl", { class: "kv" });
    for (const [k, x] of Object.entries(v)) dl.append(el("dt", {}, label(k)), el("dd", { "data-key": k }, renderValue(k, x, depth + 1)));
    return dl;
  }
  const k = String(key || "").toLowerCase();
  if (typeof v === "number" && /progress|fraction|ratio/.test(k) && v >= 0 && v <= 1) {
    const bar = el("progress", { max: 1, value: v });
    bar.setAttribute("aria-label", label(key));
    return el("span", {}, bar, ` ${Math.round(v * 100)}%`);
  }
  if (typeof v === "number" && /per_sec$/.test(k) && /bytes/.test(k)) return el("span", { title: String(v) }, fmtBytes(v) + "/s");
  if (typeof v === "number" && /bytes|free|space/.test(k)) return el("span", { title: String(v) }, fmtBytes(v));
  if (typeof v === "number" && /watermark/.test(k) && v >= 0 && v <= 1) return el("span", {}, `${Math.round(v * 100)}%`);
  return el("span", { class: /error|fail/.test(k) && v ? "error" : "" }, String(v));
}

async function pollService() {
  if (document.hidden || !state.who) return;
  try {
    const stats = await api("/api/stats");
    const svc = stats && stats.service;
    const panel = $("#service-panel");
    if (svc === undefined || svc === null) { panel.hidden = true; return; }
    $("#service").replaceChildren(renderValue("service", svc, 0));
    panel.hidden = false;
  } catch (_) { /* shown again on the next poll that works */ }
  document.body.dataset.servicePolled = String(Date.now());
}

setInterval(pollUploads, POLL_UPLOADS_MS);
setInterval(pollService, POLL_SERVICE_MS);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) { pollUploads(); pollService(); }
});

// ---- start -----------------------------------------------------------------------------

$("#token").value = state.token;
initMap();
drawTimeline();
checkWho();
