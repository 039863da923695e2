// Test harness for the console: a fresh `berth serve` per test (its own data directory and
// embedded database, on a free port), a token minted for it, and headless Chromium.

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const binary = process.env.BERTH_BIN ?? join(root, "target/debug/berth");
/** Where screenshots go. */
export const output = process.env.BERTH_TEST_OUTPUT ?? join(root, "target/test-output/console");
mkdirSync(output, { recursive: true });

/** Starts Berth with its defaults on a fresh data directory. */
export async function startBerth() {
  const dataDir = mkdtempSync(join(tmpdir(), "berth-console-"));
  const log = openSync(join(dataDir, "server.log"), "w");
  const child = spawn(binary, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    stdio: ["ignore", "pipe", log],
  });
  const url = await new Promise((resolvePromise, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`berth did not start: ${seen}`)), 30_000);
    child.stdout.on("data", (chunk) => {
      seen += chunk;
      const match = seen.match(/listening on (http:\/\/\S+)/);
      if (match) {
        clearTimeout(timer);
        resolvePromise(match[1]);
      }
    });
    child.on("exit", (code) =>
      reject(new Error(`berth exited with ${code}; see ${dataDir}/server.log`)),
    );
  });
  const token = mint(dataDir, "console-tester", "admin");
  return {
    url,
    host: new URL(url).host,
    token,
    dataDir,
    mint: (subject, scope) => mint(dataDir, subject, scope),
    /** Calls the REST API directly (to set things up, or to compare with what the page shows). */
    async api(method, path, body) {
      const response = await fetch(url + path, {
        method,
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : null };
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode === null ? child.on("exit", r) : r()));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function mint(dataDir, subject, scope) {
  const run = spawnSync(
    binary,
    ["token", "--data-dir", dataDir, "--sub", subject, "--scope", scope],
    {
      encoding: "utf8",
    },
  );
  if (run.status !== 0) throw new Error(`berth token failed: ${run.stderr}`);
  return run.stdout.trim();
}

/** Headless Chromium from the system package. */
export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

/**
 * Runs `body(page, berth)` against a fresh server in a fresh browser context, saves a screenshot
 * named after the test whatever the outcome, and fails on any script error the page raised.
 */
export async function withConsole(
  browser,
  name,
  body,
  { viewport = { width: 1280, height: 900 } } = {},
) {
  const berth = await startBerth();
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on(
    "console",
    (m) => m.type() === "error" && !/status of 4\d\d/.test(m.text()) && errors.push(m.text()),
  );
  try {
    await body(page, berth);
    if (errors.length) throw new Error(`the page raised errors: ${errors.join("; ")}`);
  } finally {
    await snap(page, name).catch(() => {});
    await context.close();
    await berth.stop();
  }
}

/** Saves a screenshot of the page as it is now. */
export function snap(page, name) {
  return page.screenshot({ path: join(output, `${name}.png`), fullPage: true });
}

/** Signs in through the sign-in page with `token`. */
export async function signIn(page, berth, token = berth.token) {
  await page.goto(berth.url);
  await page.getByLabel("Access token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Registries", level: 1 }).waitFor();
}
