// footage review page. Plain JavaScript, no libraries, no external resources: the map is an
// SVG drawn from the GPS tracks with a lat/lon grid (no online tiles).
"use strict";

const $ = (sel) => document.querySelector(sel);
const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#843c39"];
const M_PER_DEG = 111195;

const state = {
  token: localStorage.getItem("footage.token") || "",
  who: null,          // {name, read_only, role, tokens_required}
  params: null,       // URLSearchParams of the current search
  results: [],        // find lines: info fields + hits
  next: null,
  tracks: new Map(),  // id -> GeoJSON Feature
  selected: null,     // id
  jumpTo: null,       // seconds to seek to once the video has loaded
  mapView: null,      // projection of the last map drawing
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
  }
  updateActions();
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
  if (near) { p.set("near", near); p.set("radius", radius || "150"); }
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
      state.params = p;
      state.results = [];
      state.selected = null;
    }
    state.results.push(...page.segments);
    state.next = page.next;
    $("#more").disabled = !state.next;
    setStatus(`${state.results.length} segment${state.results.length === 1 ? "" : "s"}` +
              (state.next ? " (more available)" : ""));
    renderResults();
    await loadTracks();
    drawMap();
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
  $("#search").elements.near.value = "";
  $("#search").elements.radius.value = "";
  drawMap();
});

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

function queryArea() {
  const f = $("#search").elements;
  const near = f.near.value.split(",").map(Number);
  const radius = Number(f.radius.value || 150);
  if (near.length === 2 && near.every(Number.isFinite)) return { lat: near[0], lon: near[1], radius };
  return null;
}

function coordsOf(feature) {
  const g = feature.geometry;
  return g.type === "Point" ? [g.coordinates] : g.coordinates;
}

function niceStep(span) {
  const target = span / 6;
  const p = Math.pow(10, Math.floor(Math.log10(target)));
  for (const m of [1, 2, 5, 10]) if (m * p >= target) return m * p;
  return 10 * p;
}

function drawMap() {
  const map = $("#map");
  map.replaceChildren();
  const W = 640, H = 420, PAD = 28;
  const pts = [];
  for (const r of state.results) {
    const t = state.tracks.get(r.id);
    if (t) for (const c of coordsOf(t)) pts.push(c);
  }
  const area = queryArea();
  if (area) {
    const dLat = area.radius / M_PER_DEG;
    const dLon = dLat / Math.max(0.01, Math.cos(area.lat * Math.PI / 180));
    pts.push([area.lon - dLon, area.lat - dLat], [area.lon + dLon, area.lat + dLat]);
  }
  if (!pts.length) pts.push([-0.1247 - 0.01, 51.508 - 0.006], [-0.1247 + 0.01, 51.508 + 0.006]);
  let minLon = Math.min(...pts.map((p) => p[0])), maxLon = Math.max(...pts.map((p) => p[0]));
  let minLat = Math.min(...pts.map((p) => p[1])), maxLat = Math.max(...pts.map((p) => p[1]));
  const midLat = (minLat + maxLat) / 2;
  const kx = Math.cos(midLat * Math.PI / 180);
  // At least ~100 m across, so a single fix still gets a sensible scale.
  const minSpan = 0.001;
  if (maxLat - minLat < minSpan) { minLat -= minSpan / 2; maxLat += minSpan / 2; }
  if ((maxLon - minLon) * kx < minSpan) { minLon -= minSpan / kx / 2; maxLon += minSpan / kx / 2; }
  const scale = Math.min((W - 2 * PAD) / ((maxLon - minLon) * kx), (H - 2 * PAD) / (maxLat - minLat));
  const cx = (minLon + maxLon) / 2, cy = midLat;
  const x = (lon) => W / 2 + (lon - cx) * kx * scale;
  const y = (lat) => H / 2 - (lat - cy) * scale;
  state.mapView = { W, H, cx, cy, kx, scale };

  // Grid.
  const g = svg("g", { class: "grid" });
  const lonSpan = (W / (kx * scale)), latSpan = (H / scale);
  const lonStep = niceStep(lonSpan), latStep = niceStep(latSpan);
  const lon0 = cx - lonSpan / 2, lat0 = cy - latSpan / 2;
  const digits = (step) => Math.max(0, -Math.floor(Math.log10(step)));
  for (let lon = Math.ceil(lon0 / lonStep) * lonStep; lon < lon0 + lonSpan; lon += lonStep) {
    g.append(svg("line", { x1: x(lon), x2: x(lon), y1: 0, y2: H }));
    g.append(svg("text", { x: x(lon) + 2, y: H - 3 }, lon.toFixed(digits(lonStep))));
  }
  for (let lat = Math.ceil(lat0 / latStep) * latStep; lat < lat0 + latSpan; lat += latStep) {
    g.append(svg("line", { x1: 0, x2: W, y1: y(lat), y2: y(lat) }));
    g.append(svg("text", { x: 2, y: y(lat) - 2 }, lat.toFixed(digits(latStep))));
  }
  map.append(g);

  // The query's place.
  const params = state.params;
  if (area) {
    map.append(svg("circle", { class: "query-circle", cx: x(area.lon), cy: y(area.lat),
                               r: Math.max(2, area.radius / M_PER_DEG * scale) }));
  } else if (params && params.get("bbox")) {
    const [a, b, c, d] = params.get("bbox").split(",").map(Number);
    map.append(svg("rect", { class: "query-box", x: x(b), y: y(c), width: x(d) - x(b), height: y(a) - y(c) }));
  }

  // Tracks, then (on top) the stretches that matched the query, then the query point.
  const hitLayer = [];
  for (const r of state.results) {
    const t = state.tracks.get(r.id);
    if (!t) continue;
    const cs = coordsOf(t);
    const color = colorOf(r.id);
    const cls = "track" + (r.id === state.selected ? " selected" : "");
    let shape;
    if (cs.length === 1) {
      shape = svg("circle", { class: cls, cx: x(cs[0][0]), cy: y(cs[0][1]), r: 4, fill: color, stroke: color });
    } else {
      shape = svg("polyline", { class: cls, stroke: color, points: cs.map((c) => `${x(c[0]).toFixed(1)},${y(c[1]).toFixed(1)}`).join(" ") });
    }
    shape.setAttribute("data-id", r.id);
    shape.append(svg("title", {}, `#${r.id} ${r.officer} ${r.start}`));
    shape.addEventListener("click", (ev) => { ev.stopPropagation(); select(r.id); });
    map.append(shape);
    for (const h of r.hits || []) {
      const from = ms(h.from), to = ms(h.to);
      const times = t.properties.times;
      const part = cs.filter((_, i) => { const tt = ms(times[i]); return tt >= from && tt <= to; });
      let mark = null;
      if (part.length === 1) {
        mark = svg("circle", { class: "hit", cx: x(part[0][0]), cy: y(part[0][1]), r: 4 });
      } else if (part.length > 1) {
        mark = svg("polyline", { class: "hit", points: part.map((c) => `${x(c[0]).toFixed(1)},${y(c[1]).toFixed(1)}`).join(" ") });
      }
      if (mark) {
        mark.append(svg("title", {}, `#${r.id} in the area ${hhmmss(h.from)}–${hhmmss(h.to)}`));
        hitLayer.push(mark);
      }
    }
  }
  map.append(...hitLayer);
  if (area) map.append(svg("circle", { class: "query-point", cx: x(area.lon), cy: y(area.lat), r: 2.5 }));
}

$("#map").addEventListener("click", (ev) => {
  const v = state.mapView;
  if (!v) return;
  const box = $("#map").getBoundingClientRect();
  const px = (ev.clientX - box.left) * v.W / box.width;
  const py = (ev.clientY - box.top) * v.H / box.height;
  const lon = v.cx + (px - v.W / 2) / (v.kx * v.scale);
  const lat = v.cy - (py - v.H / 2) / v.scale;
  const f = $("#search").elements;
  f.near.value = `${lat.toFixed(5)},${lon.toFixed(5)}`;
  if (!f.radius.value) f.radius.value = "150";
  drawMap();
});

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
    ["GPS fixes", info.gps_fixes], ["tier", info.tier], ["ingested", info.ingested]];
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
  drawMap();
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
    if (!value || !id) return;
    const action = form.dataset.action;
    let path, body;
    if (action === "hold") { path = kind === "release" ? "release" : "hold"; body = { case: value }; }
    else if (action === "category") { path = "category"; body = { category: value, remove: kind === "remove" }; }
    else { path = "tags"; body = { tag: value, remove: kind === "remove" }; }
    try {
      const info = await api(`/api/segments/${id}/${path}`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const i = state.results.findIndex((x) => x.id === id);
      if (i >= 0) state.results[i] = Object.assign({}, state.results[i], info);
      renderResults();
      renderDetails(info);
      $("#action-status").textContent = "saved";
    } catch (e) {
      $("#action-status").textContent = e.message;
    }
  });
}

// ---- start -----------------------------------------------------------------------------

$("#token").value = state.token;
drawMap();
drawTimeline();
checkWho();
