'use strict';
// redis.js -- a real redis-server for tests that need the care-summary cache:
// start it on a free port (in a temporary directory, no persistence), kill it
// and start it again, and load people into it with bin/mhtas-gen-people and
// bin/mhtas-import. Taken from tests/e2e/test/30-care.test.js so that other
// tests (the desktop client's) drive the cache the same way.
//
//   const { RedisServer, testNumbers } = require('../e2e/lib/redis');
//   RedisServer.requireInstalled();          // throws: a missing redis-server FAILS, never skips
//   const redis = new RedisServer();
//   await redis.start();                     // redis.port
//   redis.load([record, ...], { generated: 200, seed: 30 });
//   await redis.kill(); await redis.start(); // the same port again
//   await redis.stop();                      // kill and remove the directory
//
// Every redis-server started here is killed when the test process exits.

const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { REPO_ROOT } = require('./hub');

const BINDIR = process.env.MHTAS_BINDIR || path.join(REPO_ROOT, 'bin');

const live = new Set();
process.on('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
});

// ------------------------------------------------------------ NHS numbers

// The ten digits with the modulus-11 check digit, or null when the nine
// give check digit 10 (no valid number).
function nhsWithCheck(nine) {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(nine[i]) * (10 - i);
  let c = 11 - (sum % 11);
  if (c === 11) c = 0;
  return c === 10 ? null : nine + String(c);
}

// n valid NHS numbers in the never-issued 999 range, from 999 00<start>.
function testNumbers(n, start = 7100) {
  const out = [];
  for (let i = start; out.length < n; i++) {
    const x = nhsWithCheck(`999${String(i).padStart(6, '0')}`);
    if (x) out.push(x);
  }
  return out;
}

// An ISO time `days` ago, as the import format takes it.
function daysAgo(days) {
  return new Date(Date.now() - days * 86400000).toISOString().replace(/\.\d+Z$/, 'Z');
}

// ------------------------------------------------------------ the server

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// One PING: true when the server answers +PONG within 500 ms.
function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class RedisServer {
  // Throws (the test fails) when redis-server cannot be run.
  static requireInstalled() {
    const which = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
    if (which.error || which.status !== 0) {
      throw new Error('redis-server is not installed (apt-get install redis-server): this test needs a real Redis');
    }
  }

  constructor() {
    this.port = 0;
    this.dir = '';
    this.child = null;
    this.exited = null;
  }

  get running() {
    return this.child !== null;
  }

  // Starts redis-server (on a free port the first time, the same port after)
  // and waits until it answers PING.
  async start() {
    if (this.child) return;
    if (!this.port) this.port = await freePort();
    if (!this.dir) this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mhtas-redis-'));
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    live.add(child);
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise((r) => child.once('exit', r));
    child.once('error', (e) => (err += String(e)));
    for (let i = 0; i < 100; i++) {
      if (await ping(this.port)) {
        this.child = child;
        this.exited = exited;
        return;
      }
      if (child.exitCode !== null) break;
      await sleep(50);
    }
    child.kill('SIGKILL');
    live.delete(child);
    throw new Error(`redis-server did not start on port ${this.port}: ${err}`);
  }

  // SIGKILL, as a crash would; resolves when it has exited.
  async kill() {
    if (!this.child) return;
    const { child, exited } = this;
    this.child = null;
    child.kill('SIGKILL');
    await exited;
    live.delete(child);
  }

  // Kills it and removes its directory.
  async stop() {
    await this.kill();
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
    this.dir = '';
  }

  // Imports `records` (import-format objects, docs/CACHE.md) after
  // `generated` people from mhtas-gen-people (seed `seed`). Returns the
  // importer's last line.
  load(records = [], { generated = 200, seed = 30 } = {}) {
    assert.ok(this.child, 'redis-server is not running');
    let input = '';
    if (generated > 0) {
      const gen = spawnSync(path.join(BINDIR, 'mhtas-gen-people'), ['--count', String(generated), '--seed', String(seed)], {
        encoding: 'utf8',
        maxBuffer: 256 * 1024 * 1024,
      });
      assert.equal(gen.status, 0, `mhtas-gen-people: ${gen.stderr}`);
      input += gen.stdout;
    }
    input += records.map((r) => JSON.stringify(r) + '\n').join('');
    const imp = spawnSync(
      path.join(BINDIR, 'mhtas-import'),
      ['--host', '127.0.0.1', '--port', String(this.port), '--no-progress', '-'],
      { input, encoding: 'utf8' },
    );
    assert.equal(imp.status, 0, `mhtas-import: ${imp.stdout}\n${imp.stderr}`);
    return imp.stdout.trim().split('\n').pop();
  }
}

module.exports = { RedisServer, nhsWithCheck, testNumbers, daysAgo, freePort, ping };
