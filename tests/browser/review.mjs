// Drives the footage review page in headless Chromium. Run by tests/browser.rs with
// FOOTAGE_URL, FOOTAGE_TOKEN, FOOTAGE_EXPECT (JSON), FOOTAGE_SHOT.
//
// expect.mode "grid" (no tile server): the opening view (latest footage, newest first, with
// its tracks on the Leaflet map over the degree grid), markup in an officer id shown as text,
// the uploads and service panels fed by fixtures (page.route), near query, result rows, map
// and timeline, video playback from the first hit, read-write buttons, a screenshot.
// expect.mode "tiles" (footage.toml names a tile server): the tile layer replaces the grid, the
// browser asks the tile origin for tiles (answered here by page.route) and nothing else outside
// the server; the attribution is text; /api/uploads answers 404 and the panel stays hidden.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const url = process.env.FOOTAGE_URL;
const token = process.env.FOOTAGE_TOKEN;
const expect = JSON.parse(process.env.FOOTAGE_EXPECT);
const shot = process.env.FOOTAGE_SHOT;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
}

// A 1×1 PNG, the tile server's answer.
const PNG = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==", "base64");

// Shapes as the uploads (tus) and service parts of the station service answer them.
const UPLOADS_FIXTURE = { uploads: [{
  id: "9f0c2d", officer: "<img src=x onerror=window.__xss=2>", device: "AX-B3-00123",
  length: 1000000, offset: 250000, created: "2026-12-02T08:00:00Z", updated: "2026-12-02T08:01:00Z",
  expires: "2026-12-09T08:00:00Z", caller: "dock-7", completed: null,
}, {
  id: "77aa01", officer: "MET-000101", device: "AX-1", length: 500, offset: 500,
  created: "2026-12-02T07:00:00Z", updated: "2026-12-02T07:01:00Z", caller: "dock-7",
  completed: { id: 1, sha256: "00", duplicate: false },
}] };
const SERVICE_FIXTURE = {
  started: "2026-12-02T07:00:00Z",
  drain_timeout_s: 30,
  jobs: {
    retention: { enabled: true, every_s: 900, running: false, runs: 3, errors: 0, last_start: "2026-12-02T08:00:00Z",
                 last_outcome: { uploaded: 2, deleted: 0 }, last_error: null, next_run: "2026-12-02T08:15:00Z" },
    disk: { enabled: true, every_s: 60, running: false, runs: 10, errors: 1, last_error: "disk <b>slow</b>", next_run: "2026-12-02T08:02:00Z" },
  },
  scrub: { enabled: true, bytes_per_sec: 52428800, status: { progress: 0.42, findings: 0 } },
  disks: [{ path: "data", available: true, free_bytes: 123456789, total_bytes: 1000000000, used_ratio: 0.88, high_watermark: 0.9, over_watermark: false }],
};

const profile = mkdtempSync(join(tmpdir(), "footage-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1500, height: 1100 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--autoplay-policy=no-user-gesture-required"],
});
const errors = [];
const external = [];
const tileRequests = [];
let status = 0;
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    // The 404 this test answers for /api/uploads in the tiles run is expected (the panel stays hidden).
    if (expect.mode === "tiles" && /status of 404/.test(m.text())) return;
    errors.push(m.text());
  });
  page.on("request", (r) => {
    if (r.url().startsWith(url)) return;
    if (expect.tiles && r.url().startsWith(new URL(expect.tiles.replace(/[{}]/g, "")).origin)) tileRequests.push(r.url());
    else external.push(r.url());
  });
  page.setDefaultTimeout(15000);
  if (expect.tiles) {
    const origin = new URL(expect.tiles.replace(/[{}]/g, "")).origin;
    await page.route(origin + "/**", (route) => route.fulfill({ status: 200, contentType: "image/png", body: PNG }));
  }
  if (expect.mode === "tiles") {
    // A server without the uploads endpoint (an older footage, or one behind a proxy that
    // does not pass it): its 404 must hide the panel.
    await page.route("**/api/uploads", (route) => route.fulfill({ status: 404, contentType: "application/json", body: '{"error":"not found"}' }));
  }
  if (expect.mode === "grid") {
    await page.route("**/api/uploads", (route) => route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(UPLOADS_FIXTURE) }));
    await page.route("**/api/stats", async (route) => {
      const resp = await route.fetch();
      const json = await resp.json();
      json.service = SERVICE_FIXTURE;
      await route.fulfill({ response: resp, json });
    });
  }

  await page.goto(url + "/");
  await page.waitForSelector("#whoami");
  // Before sign-in the map is there, over the degree grid (no network needed).
  await page.waitForSelector("#map.leaflet-container .leaflet-layer.degree-grid canvas");
  // Without a token the API refuses; with one we are signed in, read-write.
  await page.waitForFunction(() => document.querySelector("#whoami").textContent.includes("token is needed"));
  await page.fill("#token", token);
  await page.click("#token-form button");
  await page.waitForFunction(() => document.querySelector("#whoami").textContent.startsWith("signed in as"));
  // The 401 answers before the token was entered are expected; count errors from here on.
  errors.length = 0;

  // The opening view: the newest segments, newest first, with their tracks, before any search.
  await page.waitForFunction((n) => document.body.dataset.latest === String(n)
      && document.querySelectorAll("#results tbody tr").length === n, expect.latest_ids.length);
  const latestIds = await page.$$eval("#results tbody tr", (rows) => rows.map((r) => r.dataset.id));
  check(JSON.stringify(latestIds) === JSON.stringify(expect.latest_ids), `latest rows ${latestIds} = ${expect.latest_ids}`);
  await page.waitForFunction((n) => document.querySelectorAll("#map .track").length === n, expect.latest_ids.length);
  const latestTracks = await page.$$eval("#map .track", (t) => t.map((x) => x.dataset.id));
  check(latestTracks.length === expect.latest_ids.length, `latest tracks on the map: ${latestTracks}`);
  const searchEmpty = await page.$$eval("#search input", (i) => i.every((x) => x.value === ""));
  check(searchEmpty, "no search form was filled");

  if (expect.mode === "tiles") {
    await page.waitForSelector("#map .leaflet-layer.station-tiles img.leaflet-tile-loaded");
    const grid = await page.$$eval("#map .leaflet-layer.degree-grid", (g) => g.length);
    check(grid === 0, "the degree grid gives way to the station tiles");
    check(tileRequests.length > 0, "tiles were asked for");
    const want = expect.tiles.split("{z}")[0];
    check(tileRequests.every((u) => u.startsWith(want) && /\/\d+\/\d+\/\d+\.png$/.test(u)), "tile URLs follow the template: " + tileRequests.slice(0, 3).join(", "));
    const attribution = await page.$eval("#map .leaflet-control-attribution", (a) => a.textContent);
    check(attribution.includes(expect.attribution), `attribution shown as text: ${attribution}`);
    const bold = await page.$$eval("#map .leaflet-control-attribution b", (b) => b.length);
    check(bold === 0, "attribution markup not interpreted");
    // No uploads endpoint (answered 404 above): the panel stays hidden.
    await page.waitForFunction(() => document.body.dataset.uploadsPolled);
    const hidden = await page.$eval("#uploads-panel", (p) => p.hidden);
    check(hidden, "uploads panel hidden when /api/uploads answers 404");
    await page.screenshot({ path: shot, fullPage: true });
    check(external.length === 0, "no request left the server but tiles: " + external.join(", "));
    check(errors.length === 0, "no page errors: " + errors.join(" | "));
    console.log(JSON.stringify({ ok: true, mode: "tiles", latest: latestIds, tile_requests: tileRequests.length, screenshot: shot }));
  } else {
    // Markup in an officer id is text everywhere it is shown.
    const hostileRow = await page.$eval(`#results tbody tr[data-id='${expect.latest_ids[0]}'] td:nth-child(2)`, (c) => c.textContent);
    check(hostileRow === expect.hostile_officer, `officer shown as text: ${hostileRow}`);
    const grid = await page.$$eval("#map .leaflet-layer.degree-grid canvas", (g) => g.length);
    check(grid > 0, "degree grid tiles drawn");
    const tiles = await page.$$eval("#map .station-tiles", (g) => g.length);
    check(tiles === 0, "no tile layer without a tile server");

    // Uploads in progress (fixture): a progress bar, markup as text.
    await page.waitForFunction(() => !document.querySelector("#uploads-panel").hidden
        && document.querySelectorAll("#uploads li").length === 1);
    const upStatus = await page.$eval("#uploads-status", (e) => e.textContent);
    check(upStatus.includes("1 in progress") && upStatus.includes("1 completed"), `uploads status: ${upStatus}`);
    const up = await page.$eval("#uploads li", (li) => ({
      title: li.querySelector(".upload-title").textContent,
      value: li.querySelector("progress").value, max: li.querySelector("progress").max,
      text: li.textContent, imgs: li.querySelectorAll("img").length }));
    check(up.title.includes(UPLOADS_FIXTURE.uploads[0].officer), `upload officer as text: ${up.title}`);
    check(up.imgs === 0, "no element made from upload metadata");
    check(up.value === 250000 && up.max === 1000000, `progress ${up.value}/${up.max}`);
    check(up.text.includes("25%") && up.text.includes("dock-7"), `upload line: ${up.text}`);

    // The service's background state (fixture), shown generically.
    await page.waitForFunction(() => !document.querySelector("#service-panel").hidden);
    const svc = await page.$eval("#service", (s) => ({ text: s.textContent, bars: s.querySelectorAll("progress").length,
                                                      bold: s.querySelectorAll("b").length }));
    check(svc.text.includes("retention") && svc.text.includes("next run"), `service jobs: ${svc.text}`);
    check(svc.text.includes("disk <b>slow</b>") && svc.bold === 0, "service error shown as text");
    check(svc.bars === 2, `scrub progress and disk use as bars: ${svc.bars}`);
    check(svc.text.includes("117.7 MiB") && svc.text.includes("50.0 MiB/s"), `bytes in units: ${svc.text}`);
    const xss = await page.evaluate(() => window.__xss);
    check(xss === undefined, "no script ran from footage or upload metadata");

    // A near query.
    await page.fill("#search input[name=near]", expect.near);
    await page.fill("#search input[name=radius]", String(expect.radius));
    await page.click("#search-button");
    await page.waitForFunction((n) => document.querySelectorAll("#results tbody tr").length === n
        && document.body.dataset.searched, expect.ids.length);
    const ids = await page.$$eval("#results tbody tr", (rows) => rows.map((r) => r.dataset.id));
    check(JSON.stringify(ids) === JSON.stringify(expect.ids), `rows ${ids} = ${expect.ids}`);
    const officers = await page.$$eval("#results tbody tr td:nth-child(2)", (c) => c.map((x) => x.textContent));
    check(JSON.stringify(officers) === JSON.stringify(expect.officers), `officers ${officers}`);

    // Map: one track per result, red hit stretches, the query circle; timeline rows.
    const tracks = await page.$$eval("#map .track", (t) => t.length);
    const hits = await page.$$eval("#map .hit", (t) => t.length);
    const circles = await page.$$eval("#map .query-circle", (t) => t.length);
    const bars = await page.$$eval("#timeline .tl-seg", (t) => t.length);
    check(tracks === expect.ids.length, `tracks on the map: ${tracks}`);
    check(hits >= expect.ids.length, `hit stretches: ${hits}`);
    check(circles === 1, "query circle");
    check(bars === expect.ids.length, `timeline bars: ${bars}`);

    // The first result is selected; its video starts at the first hit.
    await page.waitForFunction(() => document.querySelector("#player").dataset.ready === "1");
    const seg = await page.$eval("#player", (v) => v.dataset.segment);
    check(seg === expect.ids[0], `player shows ${seg}`);
    const t0 = await page.$eval("#player", (v) => v.currentTime);
    check(Math.abs(t0 - expect.first_hit_s) < 0.6, `starts at the first hit: ${t0} vs ${expect.first_hit_s}`);
    const sha = await page.$eval("#details tr[data-field='SHA-256'] td", (c) => c.textContent);
    check(sha === expect.sha256, "SHA-256 shown");

    // It plays: currentTime advances.
    await page.$eval("#player", (v) => v.play());
    await page.waitForFunction((t) => document.querySelector("#player").currentTime > t + 1.0, t0, { timeout: 15000 });
    const t1 = await page.$eval("#player", (v) => v.currentTime);
    const paused = await page.$eval("#player", (v) => v.paused);

    // Clicking the map moves the search point (the circle follows).
    const before = await page.$eval("#search input[name=near]", (i) => i.value);
    const box = await page.$eval("#map", (m) => { const r = m.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; });
    await page.mouse.click(box.x + box.w * 0.2, box.y + box.h * 0.8);
    const after = await page.$eval("#search input[name=near]", (i) => i.value);
    check(after !== before && /^-?\d+\.\d+,-?\d+\.\d+$/.test(after), `map click sets near: ${before} -> ${after}`);
    check(await page.$$eval("#map .query-circle", (t) => t.length) === 1, "one query circle after the click");
    // Dragging the edge handle resizes the circle.
    const edge = await page.$eval("#map .query-handle.edge", (h) => { const r = h.getBoundingClientRect(); return { x: r.x + r.width / 2, y: r.y + r.height / 2 }; });
    await page.mouse.move(edge.x, edge.y);
    await page.mouse.down();
    await page.mouse.move(edge.x + 60, edge.y, { steps: 6 });
    await page.mouse.up();
    const radius = await page.$eval("#search input[name=radius]", (i) => Number(i.value));
    check(radius > expect.radius, `dragging the edge handle grows the radius: ${radius}`);
    // Shift-drag draws a box, which replaces the circle.
    await page.keyboard.down("Shift");
    await page.mouse.move(box.x + box.w * 0.6, box.y + box.h * 0.3);
    await page.mouse.down();
    await page.mouse.move(box.x + box.w * 0.8, box.y + box.h * 0.5, { steps: 6 });
    await page.mouse.up();
    await page.keyboard.up("Shift");
    const bbox = await page.$eval("#search input[name=bbox]", (i) => i.value);
    const nearAfter = await page.$eval("#search input[name=near]", (i) => i.value);
    const b = bbox.split(",").map(Number);
    check(b.length === 4 && b.every(Number.isFinite) && b[0] < b[2] && b[1] < b[3], `shift-drag sets the box: ${bbox}`);
    check(nearAfter === "", "the box replaces the circle");
    check(await page.$$eval("#map .query-box", (t) => t.length) === 1, "one query box");
    check(await page.$$eval("#map .query-circle", (t) => t.length) === 0, "no circle with a box");

    // Read-write token: the change buttons work.
    const disabled = await page.$eval("#actions button", (b) => b.disabled);
    check(!disabled, "change buttons enabled for a read-write token");
    await page.fill("#actions form[data-action=tags] input", "reviewed");
    await page.click("#actions form[data-action=tags] button[data-kind=add]");
    await page.waitForFunction(() => document.querySelector("#details tr[data-field=tags] td").textContent.includes("reviewed"));
    // Pin with no end, from the page: the details say so.
    await page.click("#actions form[data-action=keep] button[data-kind=pin]");
    await page.waitForFunction(() => document.querySelector("#details tr[data-field=pinned] td").textContent === "kept local indefinitely");

    await page.screenshot({ path: shot, fullPage: true });
    // A search over the drawn box goes out as bbox and answers.
    const searchedBefore = await page.evaluate(() => document.body.dataset.searched);
    await page.click("#search-button");
    await page.waitForFunction((t) => document.body.dataset.searched !== t, searchedBefore);
    const boxStatus = await page.$eval("#status", (e) => ({ text: e.textContent, cls: e.className }));
    check(boxStatus.cls !== "error" && /segment/.test(boxStatus.text), `box search: ${boxStatus.text}`);
    check(await page.$$eval("#map .query-box", (t) => t.length) === 1, "the box stays drawn");
    check(external.length === 0, "no request left the server: " + external.join(", "));
    check(errors.length === 0, "no page errors: " + errors.join(" | "));
    console.log(JSON.stringify({ ok: true, mode: "grid", latest: latestIds, rows: ids, tracks, hits, start_s: t0, played_to_s: t1, paused, screenshot: shot }));
  }
} catch (e) {
  status = 1;
  console.error("review.mjs: " + (e && e.stack ? e.stack : e));
  if (errors.length) console.error("page errors: " + errors.join(" | "));
  try { await context.pages()[0].screenshot({ path: shot.replace(/\.png$/, "-failed.png"), fullPage: true }); } catch (_) {}
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
