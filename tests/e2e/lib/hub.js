'use strict';
// hub.js -- starts a real bin/mhtas-hub for one test.
//
// startHub() makes a temporary directory, writes a config (three boroughs, two
// NHS providers, short timers) and a users file whose token hashes come from
// `mhtas-hub --hash-token` (BLAKE2b-256: node's crypto only has the 64-byte
// blake2b512, which is a different function, so we ask the binary), spawns
// the hub on ephemeral ports and waits for its one stdout line
//   MHTAS_READY grpc_port=N http_port=M pid=P
// If the line does not come in time, or the hub exits first, the promise
// rejects with the hub's stderr so the failing test shows why.
//
// Every hub started here is killed when the test process exits, whatever
// happened (process 'exit' hook), on top of the stop() a test calls in its
// after() hook.

const { spawn, execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');
const HUB_BIN = process.env.MHTAS_HUB
  ? path.resolve(process.env.MHTAS_HUB)
  : path.join(REPO_ROOT, 'bin', 'mhtas-hub');
const PROTO_DIR = path.join(REPO_ROOT, 'proto');

// MHTAS_HUB_WRAPPER runs the hub under a tool, e.g. "valgrind -q
// --error-exitcode=99 --leak-check=full" (make valgrind): its errors make the
// hub's exit status non-zero, which stopChecked() fails on.
const HUB_WRAPPER = (process.env.MHTAS_HUB_WRAPPER || '').split(/\s+/).filter(Boolean);
const SLOW = HUB_WRAPPER.length ? 10 : 1;
const READY_TIMEOUT_MS = Number(process.env.MHTAS_READY_TIMEOUT_MS || 10000 * SLOW);
const STOP_TIMEOUT_MS = 5000 * SLOW;

// The allowed console origin every test uses; anything else is refused.
const ALLOWED_ORIGIN = 'http://127.0.0.1:8080';

// ------------------------------------------------------------ the fixture

// Boroughs and providers (the borough -> provider map is configuration).
const BOROUGHS = {
  Manchester: { provider: 'GMMH', neighbours: ['Salford', 'Oldham'] },
  Salford: { provider: 'GMMH', neighbours: ['Manchester'] },
  Oldham: { provider: 'Pennine', neighbours: ['Manchester'] },
};

// Users, in users-file order: with the linear strategy p.a is offered before
// p.b because it comes first. p.c works for the other provider.
const USERS = [
  { id: 'p.a', name: 'Asha Practitioner', role: 'practitioner', provider: 'GMMH', skills: ['camhs'], capacity: 3 },
  { id: 'p.b', name: 'Ben Practitioner', role: 'practitioner', provider: 'GMMH', skills: ['camhs', 'ld_autism'], capacity: 3 },
  { id: 'p.c', name: 'Cara Practitioner', role: 'practitioner', provider: 'Pennine', skills: [], capacity: 2 },
  { id: 'op.one', name: 'Olu Operator', role: 'operator' },
  { id: 'disp.one', name: 'Dee Dispatcher', role: 'dispatcher' },
  { id: 'sup.one', name: 'Sam Supervisor', role: 'supervisor' },
];

// Defaults of the main file, by section. Tests override single keys with
// startHub({ config: { routing: { offer_timeout_ms: 10000 } } }).
function defaultConfig() {
  return {
    hub: {
      listen_host: '127.0.0.1',
      grpc_port: 0,
      http_port: 0,
      log_level: 'info',
      users_file: 'users.ini',
      static_dir: 'static',
      data_dir: 'data',
    },
    limits: {
      max_message_bytes: 65536,
      preface_timeout_ms: 2000,
      idle_timeout_ms: 60000,
    },
    routing: {
      strategy: 'linear',
      offer_timeout_ms: 1500,
      auto_pause_after: 0,
      wrap_up_ms: 1000,
      disconnect_grace_ms: 5000,
      widen_neighbour_ms: 0,
      widen_anyone_ms: 0,
      sla_p1_ms: 60000,
      sla_p2_ms: 120000,
      sla_p3_ms: 600000,
      sla_p4_ms: 3600000,
    },
    console: {
      allowed_origins: [ALLOWED_ORIGIN, 'http://localhost:8080'].join(','),
    },
    skills: {
      under_18: 'camhs',
      ld_autism: 'ld_autism',
    },
  };
}

function iniSection(name, kv) {
  const lines = [`[${name}]`];
  for (const [k, v] of Object.entries(kv)) {
    if (v === undefined || v === null) continue;
    lines.push(`${k} = ${Array.isArray(v) ? v.join(',') : v}`);
  }
  return lines.join('\n') + '\n';
}

// ----------------------------------------------------------- token hashes

function hubBinaryExists() {
  try {
    fs.accessSync(HUB_BIN, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// The users-file form of a token's hash, from the hub binary itself.
function hashToken(token) {
  let out;
  try {
    out = execFileSync(HUB_BIN, ['--hash-token', token], { encoding: 'utf8', timeout: 5000 });
  } catch (e) {
    throw new Error(`${HUB_BIN} --hash-token failed: ${e.message}\n${e.stderr || ''}`);
  }
  const line = out.trim();
  if (!/^blake2b:[0-9a-f]{64}$/.test(line)) {
    throw new Error(`${HUB_BIN} --hash-token printed ${JSON.stringify(out)}, expected blake2b:<64 hex>`);
  }
  return line;
}

// ------------------------------------------------------------- processes

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

class Hub {
  constructor(dir, args, mainText, tokens, users) {
    this.dir = dir;
    this.args = args;
    this.mainText = mainText;
    this.tokens = tokens; // user id -> bearer token
    this.users = users;
    this.grpcPort = 0;
    this.httpPort = 0;
    this._stderr = [];
    this._stdout = [];
    this.runs = 0; // how many times the process was started
    this.child = null;
    this.exitInfo = null; // { code, signal } once the current process exited
    this.exited = Promise.resolve(null);
  }

  // Spawns the binary and resolves once it printed MHTAS_READY; rejects with
  // the command, config and stderr if it exits first or takes too long.
  _launch() {
    const args = this.args;
    const child = HUB_WRAPPER.length
      ? spawn(HUB_WRAPPER[0], [...HUB_WRAPPER.slice(1), HUB_BIN, ...args], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(HUB_BIN, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    this.runs += 1;
    if (this.runs > 1) this._stderr.push(`\n----- restart #${this.runs - 1} -----\n`);
    this._stdout = [];
    this.child = child;
    this.pid = child.pid;
    this.exitInfo = null;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(child);
        resolve(this.exitInfo);
      });
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      this._stderr.push(d);
      if (process.env.MHTAS_E2E_VERBOSE) process.stderr.write(`[hub ${child.pid}] ${d}`);
    });
    child.stdout.setEncoding('utf8');

    return new Promise((resolve, reject) => {
      let buf = '';
      let done = false;
      const finish = (err) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(this);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(
          new Error(
            `hub did not print MHTAS_READY within ${READY_TIMEOUT_MS} ms\n` +
              `command: ${HUB_BIN} ${args.join(' ')}\nstdout: ${this.stdout}\nstderr:\n${this.stderrTail()}`,
          ),
        );
      }, READY_TIMEOUT_MS);
      child.once('error', (e) => finish(new Error(`cannot spawn ${HUB_BIN}: ${e.message}`)));
      child.once('exit', (code, signal) => {
        // Let the last stderr chunk arrive before reporting.
        setImmediate(() =>
          finish(
            new Error(
              `hub exited (code ${code}, signal ${signal}) before MHTAS_READY\n` +
                `command: ${HUB_BIN} ${args.join(' ')}\nconfig:\n${this.mainText}\nstdout: ${this.stdout}\nstderr:\n${this.stderrTail()}`,
            ),
          ),
        );
      });
      child.stdout.on('data', (d) => {
        this._stdout.push(d);
        if (done) return;
        buf += d;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          const m = /^MHTAS_READY grpc_port=(\d+) http_port=(\d+) pid=(\d+)$/.exec(line);
          if (m) {
            this.grpcPort = Number(m[1]);
            this.httpPort = Number(m[2]);
            this.readyPid = Number(m[3]);
            finish();
            return;
          }
        }
      });
    });
  }

  // Stops the hub if it runs (SIGTERM; or SIGKILL with { kill: true }), then
  // starts it again on the same directory: same config, users, tokens and
  // data_dir. Ports are ephemeral, so they change: clients must reconnect.
  async restart({ kill = false } = {}) {
    if (kill) await this.kill();
    else await this.stop();
    return this._launch();
  }

  get stderr() {
    return this._stderr.join('');
  }

  get stdout() {
    return this._stdout.join('');
  }

  get alive() {
    return this.child !== null && this.exitInfo === null;
  }

  get grpcAddress() {
    return `127.0.0.1:${this.grpcPort}`;
  }

  get httpBase() {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.httpPort}/ws`;
  }

  token(userId) {
    const t = this.tokens[userId];
    if (!t) throw new Error(`no user ${userId} in this hub's users file`);
    return t;
  }

  // The last `n` characters of stderr, for failure messages.
  stderrTail(n = 4000) {
    const s = this.stderr;
    return s.length > n ? '...' + s.slice(s.length - n) : s;
  }

  // GET path on the HTTP port; resolves { status, headers, body }.
  async httpGet(p, timeoutMs = 3000) {
    const res = await fetch(this.httpBase + p, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, headers: res.headers, body: await res.text() };
  }

  // SIGTERM, then wait for the exit (SIGKILL after STOP_TIMEOUT_MS).
  // Resolves { code, signal, graceful } -- graceful is false when it had to be killed.
  async stop() {
    if (!this.child || !this.alive) return { ...this.exitInfo, graceful: true };
    this.child.kill('SIGTERM');
    let timer;
    const timedOut = new Promise((resolve) => {
      timer = setTimeout(() => resolve('timeout'), STOP_TIMEOUT_MS);
    });
    const r = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.child.kill('SIGKILL');
      const info = await this.exited;
      return { ...info, graceful: false };
    }
    return { ...r, graceful: true };
  }

  // stop(), then fail unless the hub exited 0 on its own and its stderr has
  // no sanitizer report (AddressSanitizer, LeakSanitizer, UBSan "runtime
  // error:"). For after() hooks, so a sanitizer build's findings fail the file.
  async stopChecked() {
    const r = await this.stop();
    const san = /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:)/.exec(this.stderr);
    if (san) throw new Error(`the hub's stderr holds a sanitizer report (${san[1]}):\n${this.stderrTail(8000)}`);
    if (!r.graceful) throw new Error(`the hub did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${this.stderrTail()}`);
    if (r.code !== 0) throw new Error(`the hub exited with code ${r.code} signal ${r.signal} after SIGTERM\n${this.stderrTail()}`);
    return r;
  }

  async kill() {
    if (!this.child || !this.alive) return this.exitInfo;
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

/**
 * Starts a hub. Options:
 *   config:  { section: { key: value } } merged over defaultConfig()
 *   users:   replaces USERS (same shape)
 *   boroughs: replaces BOROUGHS
 *   sets:    extra ["section.key=value"] passed as --set
 *   name:    a label for the temp directory
 * Resolves a Hub with grpcPort, httpPort, tokens, stop(), kill(), stderr.
 */
async function startHub(opts = {}) {
  if (!hubBinaryExists()) {
    throw new Error(`hub binary ${HUB_BIN} not found or not executable: run make (or set MHTAS_HUB)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mhtas-e2e-${opts.name || 'hub'}-`));
  fs.mkdirSync(path.join(dir, 'static'));
  fs.mkdirSync(path.join(dir, 'data'));
  fs.writeFileSync(path.join(dir, 'static', 'index.html'), '<!doctype html><title>mhtas e2e</title>\n');

  const cfg = defaultConfig();
  for (const [section, kv] of Object.entries(opts.config || {})) {
    cfg[section] = { ...(cfg[section] || {}), ...kv };
  }
  const boroughs = opts.boroughs || BOROUGHS;
  let main = '; written by tests/e2e/lib/hub.js\n';
  for (const [section, kv] of Object.entries(cfg)) main += '\n' + iniSection(section, kv);
  for (const [name, b] of Object.entries(boroughs)) {
    main += '\n' + iniSection(`borough:${name}`, { provider: b.provider, neighbours: b.neighbours });
  }
  const mainPath = path.join(dir, 'mhtas.ini');
  fs.writeFileSync(mainPath, main);

  const users = opts.users || USERS;
  const tokens = {};
  let usersIni = '; written by tests/e2e/lib/hub.js\n';
  for (const u of users) {
    const token = `tok-${u.id}-${crypto.randomBytes(12).toString('hex')}`;
    tokens[u.id] = token;
    usersIni +=
      '\n' +
      iniSection(`user:${u.id}`, {
        name: u.name,
        role: u.role,
        token_hash: hashToken(token),
        provider: u.provider,
        skills: u.skills && u.skills.length ? u.skills : undefined,
        boroughs: u.boroughs && u.boroughs.length ? u.boroughs : undefined,
        capacity: u.capacity,
      });
  }
  fs.writeFileSync(path.join(dir, cfg.hub.users_file), usersIni);

  const args = ['--config', mainPath, '--set', 'hub.grpc_port=0', '--set', 'hub.http_port=0'];
  for (const x of opts.sets || []) args.push('--set', x);

  const hub = new Hub(dir, args, main, tokens, users);
  return hub._launch();
}

module.exports = {
  REPO_ROOT,
  HUB_BIN,
  PROTO_DIR,
  ALLOWED_ORIGIN,
  BOROUGHS,
  USERS,
  defaultConfig,
  hashToken,
  hubBinaryExists,
  startHub,
};
