// Browser test of examples/admin: the official Socket.IO Admin UI (served by the example from
// its npm copy) in Debian Chromium driven by playwright-core, loopback only. Logs in through
// the UI's form, checks that both servers and both test clients show, makes the second
// client join a room and disconnects the first one from the UI, with a screenshot per step.
// Usage: node admin.js URL SHOT_DIR SID1 SID2 USER PASSWORD   (exit 0 on pass)
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const { chromium } = require(path.join(__dirname, "..", "node_modules", "playwright-core"));

const TIMEOUT = 20000;

(async () => {
  const [url, shots, sid1, sid2, user, password] = process.argv.slice(2);
  if (!password) throw new Error("usage: node admin.js URL SHOT_DIR SID1 SID2 USER PASSWORD");
  fs.mkdirSync(shots, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sockeye-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ],
    viewport: { width: 1280, height: 720 },
  });
  // The UI fades pages in: let the transition end before each picture.
  const shot = async (page, name) => {
    await page.waitForTimeout(800);
    await page.screenshot({ path: path.join(shots, name) });
  };
  // Hash routes without reloading the app (a reload would show the login form again while
  // it logs back in with its session id).
  const route = (hash) => page.evaluate((h) => { location.hash = h; }, hash);
  const page = ctx.pages()[0] || (await ctx.newPage());
  // innerText follows the CSS (the status badge is upper-cased): compared without case.
  const hasText = (text) => page.waitForFunction(
    (t) => document.body.innerText.toLowerCase().includes(t.toLowerCase()), text,
    { timeout: TIMEOUT });
  try {
    // Nothing may leave loopback (the UI links web fonts and icons from CDNs: they just miss).
    await ctx.route("**/*", (route) => {
      const u = new URL(route.request().url());
      return u.hostname === "127.0.0.1" ? route.continue() : route.abort();
    });
    page.on("pageerror", (e) => console.log("[ui] page error:", e.message));
    // The UI reads its server URL from localStorage: the login form then only needs the
    // credentials.
    await page.addInitScript((u) => {
      localStorage.setItem("server_url", u);
      localStorage.setItem("namespace", "/admin");
    }, url);
    await page.goto(`${url}/admin-ui/`);
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Connect" }).click();
    await hasText("Connected");
    await page.locator(".v-dialog").first().waitFor({ state: "hidden", timeout: TIMEOUT });

    await route("#/servers/");
    await hasText("node-a");
    await hasText("node-b");
    await shot(page, "admin-servers.png");

    await route("#/sockets/");
    await hasText(sid1);
    await hasText(sid2);
    await shot(page, "admin-sockets.png");

    // Join: the second client's page, "Join a room".
    await page.locator("tr", { hasText: sid2 }).first().click();
    await hasText("Join a room");
    await page.getByLabel("Join a room").fill("ui-room");
    await page.locator("form:has(.select-room) button[type=submit]").click();
    await hasText("ui-room");
    await shot(page, "admin-join.png");

    // Disconnect: the first client's row in the socket list.
    await route("#/sockets/");
    await hasText(sid1);
    await page.locator("tr", { hasText: sid1 }).locator("button").first().click();
    // The click reaches the row too, which opens the socket's page: back to the list.
    await route("#/sockets/");
    await hasText(sid2);
    await page.waitForFunction(
      (t) => !document.body.innerText.includes(t), sid1, { timeout: TIMEOUT });
    await shot(page, "admin-disconnect.png");
    console.log("admin UI: login, servers, sockets, join, disconnect: ok");
  } catch (e) {
    await shot(page, "admin-failure.png").catch(() => {});
    throw e;
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
