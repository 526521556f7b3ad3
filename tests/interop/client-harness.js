// What the interop scripts (node-client.js, recovery-client.js, conformance.js) share: loading
// packages from tests/node_modules, the `PORT [case ...]` arguments, bounded waits, and the
// case runner that prints one JSON summary line on stdout and sets the exit code.
"use strict";

const path = require("path");

const MODULES = path.join(__dirname, "..", "node_modules");

/** Loads package `name` from tests/node_modules; exits 2 with a hint when it is missing. */
function requireTestModule(name) {
  try {
    return require(path.join(MODULES, name));
  } catch (e) {
    console.error(`${name} not found under ${MODULES}: run \`npm ci\` in tests/ (${e.message})`);
    process.exit(2);
  }
}

/** The version of package `name` installed in tests/node_modules. */
function testModuleVersion(name) {
  return require(path.join(MODULES, name, "package.json")).version;
}

/**
 * Reads `node SCRIPT PORT [case ...]`: the port and the cases picked (an empty Set: all).
 * Exits 2 on bad usage.
 */
function cliArgs(script) {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error(`usage: node ${script} PORT [case ...]`);
    process.exit(2);
  }
  return { port, only: new Set(process.argv.slice(3)) };
}

/** Generous bound for any single wait: the machine is small and shared. */
const WAIT_MS = 10000;
/** Bound for a whole case. */
const CASE_MS = 60000;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves with the argument list of the next `event` on `emitter`. */
function next(emitter, event, what = event, ms = WAIT_MS) {
  return withTimeout(
    new Promise((resolve) => emitter.once(event, (...args) => resolve(args))),
    ms,
    what,
  );
}

/** Emits `event` with `args` and resolves with the acknowledgement's argument list. */
function ack(socket, event, ...args) {
  return withTimeout(
    new Promise((resolve) => socket.emit(event, ...args, (...reply) => resolve(reply))),
    WAIT_MS,
    `ack of ${event}`,
  );
}

// Known server bugs, INTEROP_XFAIL (comma-separated case names): such a case still runs and its
// outcome is reported (`xfail` with the error, or `xpass`), but it does not fail the run. Some
// known bugs are races, so a pass does not prove a fix: the list is pruned by reading the
// summaries.
function applyXfail(entry, xfail) {
  if (!xfail.has(entry.name)) return;
  if (entry.ok) {
    entry.xpass = true;
  } else {
    entry.ok = true;
    entry.xfail = entry.error;
    delete entry.error;
  }
}

/**
 * Runs `cases` (name → async (scope) => optional info) one after another, each with a fresh
 * `newScope()` closed afterwards and bounded by `caseMs`; `only` (a Set, empty for all) picks
 * cases. Prints `{...summary, passed, failed, results}` and exits 0 only if every case passed
 * (1 otherwise, also when the runner itself fails).
 */
async function runCases(cases, options) {
  try {
    await runEach(cases, options);
  } catch (e) {
    // Not a case failing (those are caught per case): the runner itself broke.
    console.error(e);
    process.exit(1);
  }
}

async function runEach(cases, { only, newScope, summary, caseMs = CASE_MS }) {
  const xfail = new Set((process.env.INTEROP_XFAIL ?? "").split(",").filter(Boolean));
  const results = [];
  for (const [name, run] of Object.entries(cases)) {
    if (only.size > 0 && !only.has(name)) continue;
    const scope = newScope();
    const started = Date.now();
    const entry = { name };
    try {
      const extra = await withTimeout(run(scope), caseMs, `case ${name}`);
      entry.ok = true;
      if (extra) entry.info = extra;
    } catch (e) {
      entry.ok = false;
      entry.error = e && e.stack ? e.stack.split("\n").slice(0, 6).join("\n") : String(e);
    } finally {
      scope.close();
    }
    entry.ms = Date.now() - started;
    applyXfail(entry, xfail);
    results.push(entry);
    if (!entry.ok) console.error(`FAIL ${name}: ${entry.error}`);
    else if (entry.xfail) console.error(`XFAIL ${name} (known server bug): ${entry.xfail}`);
  }
  const failed = results.filter((r) => !r.ok).length;
  console.log(JSON.stringify({ ...summary, passed: results.length - failed, failed, results }));
  process.exit(failed === 0 && results.length > 0 ? 0 : 1);
}

module.exports = {
  WAIT_MS,
  requireTestModule,
  testModuleVersion,
  cliArgs,
  withTimeout,
  next,
  ack,
  runCases,
};
