// The interop app's admin mode (shared/interop-app.md §5) against the official
// socket.io-client: wrong credentials get connect_error "invalid credentials"; the right
// ones get session, config, all_sockets and server_stats on /admin, and a `join` command
// reaches an ordinary client's socket; the UI's index.html is served at /admin-ui/.
// Usage: node tests/interop/admin-client.js PORT USER PASSWORD   (exit 0 on pass)
"use strict";
const path = require("path");
const { io } = require(path.join(__dirname, "..", "node_modules", "socket.io-client"));

const [port, user, password] = process.argv.slice(2);
const url = `http://127.0.0.1:${port}`;
const fail = (why) => { console.error("FAIL:", why); process.exit(1); };
setTimeout(() => fail("timed out"), 20000).unref();

const once = (socket, event) => new Promise((resolve) => socket.once(event, (...args) => resolve(args)));

(async () => {
  const bad = io(`${url}/admin`, { auth: { username: user, password: "wrong" }, reconnection: false, forceNew: true });
  const [err] = await Promise.race([once(bad, "connect_error"), once(bad, "connect").then(() => fail("wrong password accepted"))]);
  if (err.message !== "invalid credentials") fail(`connect_error ${err.message}`);
  bad.close();

  const client = io(url, { reconnection: false, forceNew: true });
  await once(client, "connect");

  const admin = io(`${url}/admin`, { auth: { username: user, password }, reconnection: false, forceNew: true });
  const session = once(admin, "session");
  const config = once(admin, "config");
  const all = once(admin, "all_sockets");
  const stats = once(admin, "server_stats");
  const [sessionId] = await session;
  if (!/^[0-9a-f]{16}$/.test(sessionId)) fail(`session ${sessionId}`);
  const [{ supportedFeatures }] = await config;
  if (!supportedFeatures.includes("JOIN") || !supportedFeatures.includes("ALL_EVENTS")) fail(`features ${supportedFeatures}`);
  const [sockets] = await all;
  if (!sockets.some((s) => s.id === client.id && s.nsp === "/")) fail("all_sockets misses the client");
  const [serverStats] = await stats;
  if (!serverStats.namespaces.some((n) => n.name === "/")) fail("server_stats without /");

  const joined = once(admin, "room_joined");
  admin.emit("join", "/", "admin-room", client.id);
  const [nsp, room, id] = await joined;
  if (nsp !== "/" || room !== "admin-room" || id !== client.id) fail(`room_joined ${nsp} ${room} ${id}`);

  const page = await fetch(`${url}/admin-ui/`);
  const html = await page.text();
  if (page.status !== 200 || !html.includes("<title>")) fail(`/admin-ui/ answered ${page.status}`);
  admin.close();
  client.close();
  console.log("admin mode: 1 passed, 0 failed");
  process.exit(0);
})().catch((e) => fail(e.stack || e));
