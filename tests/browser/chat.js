// Browser test of examples/chat: Debian Chromium driven by playwright-core (never a downloaded
// browser), loopback only. Opens the chat page twice, sends a message from one tab and checks
// that it appears in the other, then saves a screenshot. With URL2, the second tab opens the
// page of another chat node (two nodes sharing Redis): the message crosses nodes.
// Usage: node chat.js URL SCREENSHOT.png [URL2]   (exit 0 on pass; CHAT_SELF_SIGNED=1 for an
// https URL with a self-signed certificate)
"use strict";
const path = require("path");
const fs = require("fs");
const os = require("os");
const { chromium } = require(path.join(__dirname, "..", "node_modules", "playwright-core"));

const TIMEOUT = 20000;

(async () => {
  const [url, shot, url2] = process.argv.slice(2);
  if (!url || !shot) throw new Error("usage: node chat.js URL SCREENSHOT.png [URL2]");
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sockeye-chromium-"));
  // CHAT_SELF_SIGNED=1: an https URL whose self-signed certificate the browser must accept.
  const selfSigned = process.env.CHAT_SELF_SIGNED === "1";
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    ignoreHTTPSErrors: selfSigned,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
      ...(selfSigned ? ["--ignore-certificate-errors"] : []),
    ],
    viewport: { width: 900, height: 500 },
  });
  try {
    // Nothing may leave loopback.
    await ctx.route("**/*", (route) => {
      const u = new URL(route.request().url());
      return u.hostname === "127.0.0.1" ? route.continue() : route.abort();
    });
    const alice = ctx.pages()[0] || (await ctx.newPage());
    const bob = await ctx.newPage();
    for (const [page, who, base] of [[alice, "alice", url], [bob, "bob", url2 || url]]) {
      page.on("console", (m) => console.log(`[${who}]`, m.text()));
      page.on("pageerror", (e) => console.log(`[${who}] page error:`, e.message));
      await page.goto(`${base}/?nick=${who}`);
      await page.waitForSelector("body[data-connected=yes]", { timeout: TIMEOUT });
    }
    // alice sees bob join: both are in the room before anything is sent.
    await alice.waitForFunction(
      () => document.getElementById("messages").textContent.includes("bob joined general"),
      null, { timeout: TIMEOUT });
    await alice.fill("#text", "hello from alice");
    await alice.press("#text", "Enter");
    await bob.waitForFunction(
      () => document.getElementById("messages").textContent.includes("alice: hello from alice"),
      null, { timeout: TIMEOUT });
    // The sender's own copy comes from its ack, not from the broadcast.
    await alice.waitForFunction(
      () => document.getElementById("messages").textContent.includes("me: hello from alice"),
      null, { timeout: TIMEOUT });
    fs.mkdirSync(path.dirname(shot), { recursive: true });
    await bob.screenshot({ path: shot });
    const transport = await bob.evaluate(() => document.getElementById("status").textContent);
    console.log("bob status:", transport);
    console.log("browser chat: 1 passed, 0 failed");
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
})().then(() => process.exit(0), (e) => {
  console.error("browser chat: 0 passed, 1 failed:", e && e.stack ? e.stack : e);
  process.exit(1);
});
