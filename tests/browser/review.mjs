// Drives the footage review page in headless Chromium: near query, result rows, map and
// timeline, video playback from the first hit, read-write buttons, a screenshot.
// Run by tests/browser.rs with FOOTAGE_URL, FOOTAGE_TOKEN, FOOTAGE_EXPECT (JSON), FOOTAGE_SHOT.
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

const profile = mkdtempSync(join(tmpdir(), "footage-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1500, height: 950 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--autoplay-policy=no-user-gesture-required"],
});
const errors = [];
const external = [];
let status = 0;
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("request", (r) => { if (!r.url().startsWith(url)) external.push(r.url()); });
  page.setDefaultTimeout(15000);

  await page.goto(url + "/");
  await page.waitForSelector("#whoami");
  // Without a token the API refuses; with one we are signed in, read-write.
  await page.waitForFunction(() => document.querySelector("#whoami").textContent.includes("token is needed"));
  await page.fill("#token", token);
  await page.click("#token-form button");
  await page.waitForFunction(() => document.querySelector("#whoami").textContent.startsWith("signed in as"));
  // The 401 answers before the token was entered are expected; count errors from here on.
  errors.length = 0;

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

  // Read-write token: the change buttons work.
  const disabled = await page.$eval("#actions button", (b) => b.disabled);
  check(!disabled, "change buttons enabled for a read-write token");
  await page.fill("#actions form[data-action=tags] input", "reviewed");
  await page.click("#actions form[data-action=tags] button[data-kind=add]");
  await page.waitForFunction(() => document.querySelector("#details tr[data-field=tags] td").textContent.includes("reviewed"));

  await page.screenshot({ path: shot, fullPage: true });
  check(external.length === 0, "no request left the server: " + external.join(", "));
  check(errors.length === 0, "no page errors: " + errors.join(" | "));
  console.log(JSON.stringify({ ok: true, rows: ids, tracks, hits, start_s: t0, played_to_s: t1, paused, screenshot: shot }));
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
