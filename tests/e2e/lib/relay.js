'use strict';
// relay.js -- the radio relay (bin/mhtas-relay) and its simulated radio
// terminal (bin/mhtas-pei-sim) for the end-to-end tests.
//
//  * startRelay(hub, opts): writes a relay config next to the hub's (hub
//    address, a listen port of 0, callsigns, radio settings), spawns the
//    relay with the dispatcher's token in MHTAS_TOKEN, waits for
//    "MHTAS_RELAY_READY port=N pid=P". stop()/stopChecked() as for the hub.
//  * LineClient: the dispatcher line protocol over TCP. command(line)
//    resolves { final, lines } once the command's OK/ERR line arrived (the
//    relay answers one command at a time, in order); every line is also in
//    `lines` (an EventLog) for waitFor(pred).
//  * startPeiSim(dir): the simulated terminal on a pseudo-terminal, its
//    device link in `link`; its output lines parsed into `events`
//    ({ type, t (microseconds since the epoch), fields, text }); send(cmd).
//
// The binaries are taken from the hub's build directory (MHTAS_HUB's
// directory: bin/ or build/san/bin/), or MHTAS_RELAY / MHTAS_PEI_SIM.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const { HUB_BIN } = require('./hub');
const { EventLog } = require('./clients');

const RELAY_BIN = process.env.MHTAS_RELAY
  ? path.resolve(process.env.MHTAS_RELAY)
  : path.join(path.dirname(HUB_BIN), 'mhtas-relay');
const PEI_SIM_BIN = process.env.MHTAS_PEI_SIM
  ? path.resolve(process.env.MHTAS_PEI_SIM)
  : path.join(path.dirname(HUB_BIN), 'mhtas-pei-sim');

const READY_TIMEOUT_MS = Number(process.env.MHTAS_READY_TIMEOUT_MS || 10000);
const SANITIZER = /(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:)/;

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

function requireBinary(bin, what) {
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch {
    throw new Error(`${what} ${bin} is missing or not executable: run make (it builds it next to the hub)`);
  }
}

function ini(sections) {
  let s = '; written by tests/e2e/lib/relay.js\n';
  for (const [name, kv] of Object.entries(sections)) {
    s += `\n[${name}]\n`;
    for (const [k, v] of Object.entries(kv)) if (v !== undefined && v !== null) s += `${k} = ${v}\n`;
  }
  return s;
}

// ------------------------------------------------------------ the relay

class Relay {
  constructor(child, dir, configText) {
    this.child = child;
    this.dir = dir;
    this.configText = configText;
    this.port = 0;
    this._stderr = [];
    this.exitInfo = null;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(child);
        resolve(this.exitInfo);
      });
    });
    this._stderrWaiters = new Set();
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      this._stderr.push(d);
      if (process.env.MHTAS_E2E_VERBOSE) process.stderr.write(`[relay ${child.pid}] ${d}`);
      for (const w of [...this._stderrWaiters]) w();
    });
  }

  // Resolves the first match of `re` in the relay's log (stderr), waiting
  // for it to be written.
  waitForLog(re, timeoutMs = 3000) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this.stderr);
        if (!m) return false;
        this._stderrWaiters.delete(check);
        clearTimeout(timer);
        resolve(m);
        return true;
      };
      const timer = setTimeout(() => {
        this._stderrWaiters.delete(check);
        reject(new Error(`the relay's log has no ${re} after ${timeoutMs} ms:\n${this.stderrTail()}`));
      }, timeoutMs);
      this._stderrWaiters.add(check);
      check();
    });
  }

  get stderr() {
    return this._stderr.join('');
  }

  get alive() {
    return this.exitInfo === null;
  }

  stderrTail(n = 4000) {
    const s = this.stderr;
    return s.length > n ? '...' + s.slice(s.length - n) : s;
  }

  async stop() {
    if (!this.alive) return { ...this.exitInfo, graceful: true };
    this.child.kill('SIGTERM');
    let timer;
    const t = new Promise((r) => {
      timer = setTimeout(() => r('timeout'), 5000);
    });
    const r = await Promise.race([this.exited, t]);
    clearTimeout(timer);
    if (r === 'timeout') {
      this.child.kill('SIGKILL');
      return { ...(await this.exited), graceful: false };
    }
    return { ...r, graceful: true };
  }

  // stop(), then fail unless it exited 0 by itself without a sanitizer report.
  async stopChecked() {
    const r = await this.stop();
    const san = SANITIZER.exec(this.stderr);
    if (san) throw new Error(`the relay's stderr holds a sanitizer report (${san[1]}):\n${this.stderrTail(8000)}`);
    if (!r.graceful) throw new Error(`the relay did not exit within 5 s of SIGTERM\n${this.stderrTail()}`);
    if (r.code !== 0) throw new Error(`the relay exited with code ${r.code} signal ${r.signal}\n${this.stderrTail()}`);
    return r;
  }
}

/**
 * Starts a relay for `hub`. Options:
 *   user:      the dispatcher user whose token it uses (default disp.one)
 *   callsigns: { MX21: 2001001, ... }
 *   radio:     { device, max_part_chars, retry_base_ms, ... } ([radio] keys); omitted: no radio
 *   relay:     extra [relay] keys
 *   name:      label for the temp directory
 */
async function startRelay(hub, opts = {}) {
  requireBinary(RELAY_BIN, 'relay binary');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mhtas-relay-${opts.name || 'e2e'}-`));
  const sections = {
    hub: { host: '127.0.0.1', port: hub.grpcPort },
    relay: { listen_host: '127.0.0.1', listen_port: 0, ...(opts.relay || {}) },
  };
  if (opts.radio) sections.radio = { default_borough: 'Manchester', ...opts.radio };
  sections.callsigns = opts.callsigns || {};
  const text = ini(sections);
  const configPath = path.join(dir, 'relay.ini');
  fs.writeFileSync(configPath, text);
  const env = { ...process.env, MHTAS_TOKEN: hub.token(opts.user || 'disp.one') };
  const child = spawn(RELAY_BIN, ['--config', configPath], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  const relay = new Relay(child, dir, text);
  child.stdout.setEncoding('utf8');
  await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`relay did not print MHTAS_RELAY_READY within ${READY_TIMEOUT_MS} ms\nconfig:\n${text}\nstderr:\n${relay.stderrTail()}`));
    }, READY_TIMEOUT_MS);
    child.once('exit', (code, signal) =>
      setImmediate(() => {
        clearTimeout(timer);
        reject(new Error(`relay exited (code ${code}, signal ${signal}) before MHTAS_RELAY_READY\nconfig:\n${text}\nstderr:\n${relay.stderrTail()}`));
      }),
    );
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /MHTAS_RELAY_READY port=(\d+) pid=(\d+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        relay.port = Number(m[1]);
        resolve();
      }
    });
  });
  return relay;
}

// ------------------------------------------------------------ the line protocol

class LineClient {
  constructor(socket, name) {
    this.socket = socket;
    this.lines = new EventLog(name);
    this._buf = '';
    this._pending = []; // { lines: [], resolve }
    socket.setEncoding('latin1');
    socket.on('data', (d) => this._data(d));
    socket.on('close', () => this.lines.end('connection closed'));
    socket.on('error', (e) => this.lines.end(e));
  }

  static connect(port, name = 'dispatcher') {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve(new LineClient(s, name)));
      s.once('error', reject);
    });
  }

  _data(d) {
    // The relay writes UTF-8; decode per line so a character split across
    // chunks is not garbled.
    this._buf += d;
    let nl;
    while ((nl = this._buf.indexOf('\n')) >= 0) {
      const raw = this._buf.slice(0, nl);
      this._buf = this._buf.slice(nl + 1);
      const line = Buffer.from(raw, 'latin1').toString('utf8').replace(/\r$/, '');
      this.lines.push(line);
      if (line.startsWith('EVENT ') || line.startsWith('HELLO ')) continue;
      const p = this._pending[0];
      if (!p) continue;
      p.lines.push(line);
      if (/^(OK|ERR)( |$)/.test(line)) {
        this._pending.shift();
        p.resolve({ final: line, lines: p.lines });
      }
    }
  }

  send(line) {
    this.socket.write(Buffer.from(line + '\n', 'utf8'));
  }

  // Sends one command; resolves { final, lines } with its reply.
  command(line, timeoutMs = 5000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no reply to ${JSON.stringify(line)} within ${timeoutMs} ms; last lines:\n${this.lines.recent()}`)),
        timeoutMs,
      );
      this._pending.push({
        lines: [],
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
      });
      this.send(line);
    });
  }

  waitFor(pred, timeoutMs, label, opts) {
    const p = typeof pred === 'string' ? (l) => l.startsWith(pred) : pred instanceof RegExp ? (l) => pred.test(l) : pred;
    return this.lines.waitFor(p, timeoutMs, label || String(pred), opts);
  }

  close() {
    this.socket.destroy();
  }
}

// ------------------------------------------------------------ the radio terminal

class PeiSim {
  constructor(child, link) {
    this.child = child;
    this.link = link;
    this.events = new EventLog('pei-sim', (e) => e.raw);
    this._stderr = [];
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => this._stderr.push(d));
    child.stdout.setEncoding('utf8');
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const raw = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.events.push(PeiSim.parse(raw));
      }
    });
    child.once('exit', () => this.events.end('simulator exited'));
  }

  // "cmgs t=1 issi=2 ref=3 :text" -> { type: 'cmgs', t: 1, fields: {...}, text: 'text', raw }
  static parse(raw) {
    const cut = raw.indexOf(' :');
    const head = cut >= 0 ? raw.slice(0, cut) : raw;
    const text = cut >= 0 ? raw.slice(cut + 2) : '';
    const [type, ...kvs] = head.split(' ');
    const fields = {};
    for (const kv of kvs) {
      const eq = kv.indexOf('=');
      if (eq > 0) fields[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return { type, t: Number(fields.t || 0), fields, text, raw };
  }

  send(cmd) {
    this.child.stdin.write(cmd + '\n');
  }

  waitFor(pred, timeoutMs, label, opts) {
    return this.events.waitFor(pred, timeoutMs, label, opts);
  }

  cmgs() {
    return this.events.items.filter((e) => e.type === 'cmgs');
  }

  // Resolves the first `count` AT+CMGS the terminal received at event index >= from.
  async waitCmgs(from, count, timeoutMs = 5000, label = `${count} AT+CMGS`) {
    let seen = 0;
    await this.waitFor((e) => e.type === 'cmgs' && ++seen === count, timeoutMs, label, { from });
    return this.events.items.slice(from).filter((e) => e.type === 'cmgs').slice(0, count);
  }

  async stop() {
    try {
      this.send('quit');
    } catch {
      /* closed */
    }
    let timer;
    const t = new Promise((r) => {
      timer = setTimeout(() => r('timeout'), 3000);
    });
    const r = await Promise.race([this.exited, t]);
    clearTimeout(timer);
    if (r === 'timeout') this.child.kill('SIGKILL');
  }
}

async function startPeiSim(dir) {
  requireBinary(PEI_SIM_BIN, 'PEI simulator');
  const d = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'mhtas-pei-'));
  const link = path.join(d, 'radio0');
  const child = spawn(PEI_SIM_BIN, ['--link', link], { stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const sim = new PeiSim(child, link);
  await sim.waitFor((e) => e.type === 'ready', 5000, 'the simulator ready');
  return sim;
}

module.exports = { RELAY_BIN, PEI_SIM_BIN, startRelay, LineClient, startPeiSim };
