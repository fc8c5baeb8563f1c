'use strict';
// desk.js -- bin/mhtas-desk under xvfb-run for the desk tests: its stdout
// lines ("MHTAS_DESK ...") collected, waitLine(regex) for the next match
// (rejecting at once when the desk's script fails or the desk exits).

const { spawn, execFileSync } = require('node:child_process');
const path = require('node:path');

const { REPO_ROOT } = require('../../e2e/lib/hub');

const DESK_BIN = process.env.MHTAS_DESK ? path.resolve(process.env.MHTAS_DESK) : path.join(REPO_ROOT, 'bin', 'mhtas-desk');

function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

// The desk process: stdout lines collected, waitLine(regex) for the next match.
class Desk {
  constructor(args, env) {
    this.lines = [];
    this.stderr = '';
    this.waiters = new Set();
    this.child = spawn('xvfb-run', ['-a', '-s', '-screen 0 1366x768x24', DESK_BIN, ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // own process group: xvfb-run, Xvfb and the desk are killed together
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        for (const w of [...this.waiters]) w();
        resolve(this.exitInfo);
      });
    });
    let buf = '';
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        this.lines.push(line);
        if (process.env.MHTAS_E2E_VERBOSE) process.stderr.write(`[desk] ${line}\n`);
        for (const w of [...this.waiters]) w();
      }
    });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d) => {
      this.stderr += d;
      if (process.env.MHTAS_E2E_VERBOSE) process.stderr.write(`[desk err] ${d}`);
    });
  }

  tail() {
    return `stdout:\n  ${this.lines.slice(-25).join('\n  ')}\nstderr (tail):\n${this.stderr.slice(-3000)}`;
  }

  waitLine(re, timeoutMs = 15000, from = 0) {
    return new Promise((resolve, reject) => {
      let i = from;
      const check = () => {
        for (; i < this.lines.length; i++) {
          const m = re.exec(this.lines[i]);
          if (m) return done(null, m);
          if (/script-failed/.test(this.lines[i])) return done(new Error(`desk script failed: ${this.lines[i]}\n${this.tail()}`));
        }
        if (this.exitInfo) done(new Error(`desk exited (${JSON.stringify(this.exitInfo)}) while waiting for ${re}\n${this.tail()}`));
      };
      const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for desk line ${re}\n${this.tail()}`)), timeoutMs);
      const done = (err, v) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (err) reject(err);
        else resolve(v);
      };
      this.waiters.add(check);
      check();
    });
  }

  // The exit ({code, signal}), or 'timeout' after ms. The timer is cleared
  // either way (a pending timer would keep the test process alive).
  waitExit(ms) {
    let timer;
    const t = new Promise((r) => {
      timer = setTimeout(() => r('timeout'), ms);
    });
    return Promise.race([this.exited, t]).finally(() => clearTimeout(timer));
  }

  kill() {
    if (this.exitInfo) return;
    try {
      process.kill(-this.child.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
}

// The environment a desk runs in: its token, its own config directory and
// runtime directory (drafts; a sibling "run"), no accessibility bus.
function deskEnv(token, configHome) {
  return {
    ...process.env,
    MHTAS_TOKEN: token,
    XDG_CONFIG_HOME: configHome,
    XDG_RUNTIME_DIR: path.join(path.dirname(configHome), 'run'),
    GTK_A11Y: 'none',
    NO_AT_BRIDGE: '1',
  };
}

// Stops a desk (SIGTERM, then SIGKILL to its process group after 3 s).
async function stopDesk(desk) {
  if (!desk) return;
  desk.kill();
  await desk.waitExit(3000);
  try {
    process.kill(-desk.child.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

module.exports = { Desk, DESK_BIN, which, deskEnv, stopDesk };
