// env.mjs -- a real hub serving the real console, a headless Debian chromium
// driven by playwright-core, and a practitioner on gRPC.
//
// The hub is started by ../../lib/hub.js (the shared e2e helper: temp config,
// users file with token hashes from `mhtas-hub --hash-token`, MHTAS_READY),
// with three overrides for the browser:
//   hub.static_dir         = <repo>/client/web (absolute)
//   hub.http_port          = a free port chosen here (the page's origin must be
//                            known before the hub starts, for the Origin check)
//   console.allowed_origins = http://127.0.0.1:<that port>

import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..', '..');
export const STATIC_DIR = path.join(REPO_ROOT, 'client', 'web');
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'tests', 'e2e', 'screenshots');
export const CHROMIUM = process.env.MHTAS_CHROMIUM || '/usr/bin/chromium';

const hubLib = require('../../lib/hub.js');
export const { hubBinaryExists, HUB_BIN } = hubLib;

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Starts a hub for the browser; resolves the hub.js Hub plus .origin and .consoleUrl.
export async function startConsoleHub({ config = {}, name = 'browser' } = {}) {
  let lastErr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const cfg = {
      ...config,
      hub: { ...(config.hub || {}), static_dir: STATIC_DIR },
      console: { ...(config.console || {}), allowed_origins: origin },
    };
    try {
      const hub = await hubLib.startHub({ name, config: cfg, sets: [`hub.http_port=${port}`] });
      if (hub.httpPort !== port) throw new Error(`hub listens on ${hub.httpPort}, asked for ${port}`);
      hub.origin = origin;
      hub.consoleUrl = `${origin}/`;
      return hub;
    } catch (e) {
      lastErr = e;
      if (!/EADDRINUSE|in use|bind/i.test(String(e.message))) throw e;
    }
  }
  throw lastErr;
}

export async function launchBrowser() {
  const { chromium } = require('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mhtas-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1366, height: 768 },
  });
  const close = async () => {
    await context.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}

// A page that records console errors, CSP violations and uncaught errors.
export async function newPage(context) {
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  return page;
}

export async function signIn(page, hub, userId) {
  await page.goto(hub.consoleUrl);
  await page.fill('#f-token', hub.token(userId));
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector('#conn[data-state="online"]', { timeout: 10000 });
}

export function screenshotPath(name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  return path.join(SCREENSHOT_DIR, name);
}
