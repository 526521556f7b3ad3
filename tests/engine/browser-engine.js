// Debian Chromium (driven by playwright-core, never a downloaded browser; loopback only) loads
// a page over HTTPS with a self-signed certificate and runs the official engine.io-client
// bundle on it: WebSocket only, a 64 KiB compressible text message and a binary one echoed.
// Prints one JSON line: {"title": "PASS"|..., "log": [...], "protocol": <page's HTTP version>}.
// Usage: node browser-engine.js URL
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const { chromium } = require(path.join(__dirname, "..", "node_modules", "playwright-core"));

(async () => {
  const url = process.argv[2];
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sockeye-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    ignoreHTTPSErrors: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
      "--ignore-certificate-errors",
    ],
  });
  const log = [];
  try {
    await ctx.route("**/*", (route) => {
      const u = new URL(route.request().url());
      return u.hostname === "127.0.0.1" ? route.continue() : route.abort();
    });
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.on("console", (m) => log.push(m.text()));
    page.on("pageerror", (e) => log.push("page error: " + e.message));
    const response = await page.goto(url);
    await page.waitForFunction(() => document.title === "PASS" || document.title === "FAIL", null, { timeout: 20000 });
    const title = await page.title();
    const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    console.log(JSON.stringify({ title, log, protocol, status: response.status() }));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e), log }));
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})();
