// practitioner.mjs -- an NHS practitioner on the other side of the console:
// a stock grpc-js client of mhtas.v1.Hub with a live Subscribe stream.

import { createRequire } from 'node:module';
import path from 'node:path';
import { REPO_ROOT } from './env.mjs';

const require = createRequire(import.meta.url);
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

let Hub = null;
function hubService() {
  if (!Hub) {
    const def = protoLoader.loadSync('mhtas/v1/hub.proto', {
      keepCase: false,
      longs: String,
      enums: String,
      defaults: true,
      oneofs: true,
      includeDirs: [path.join(REPO_ROOT, 'proto')],
    });
    Hub = grpc.loadPackageDefinition(def).mhtas.v1.Hub;
  }
  return Hub;
}

export class Practitioner {
  constructor(hub, id) {
    const Svc = hubService();
    this.id = id;
    this.token = hub.token(id);
    this.client = new Svc(hub.grpcAddress, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.enable_retries': 0,
    });
    this.events = [];
    this.waiters = new Set();
    this.stream = null;
  }

  md() {
    const m = new grpc.Metadata();
    m.set('authorization', `Bearer ${this.token}`);
    return m;
  }

  call(method, req = {}) {
    return new Promise((resolve, reject) => {
      this.client[method](req, this.md(), { deadline: new Date(Date.now() + 5000) }, (err, resp) => {
        if (err) {
          err.message = `${this.id} ${method}: ${err.message}`;
          reject(err);
        } else resolve(resp);
      });
    });
  }

  subscribe(afterSeq = '0') {
    this.stream = this.client.Subscribe({ afterSeq: String(afterSeq) }, this.md());
    this.stream.on('data', (ev) => {
      this.events.push(ev);
      for (const w of [...this.waiters]) w();
    });
    this.stream.on('error', () => {});
    return this.stream;
  }

  // Resolves the first event (from index `from`) matching pred.
  waitFor(pred, label, timeoutMs = 5000, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const ev = this.events.slice(from).find(pred);
        if (ev) {
          this.waiters.delete(check);
          clearTimeout(timer);
          resolve(ev);
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const recent = this.events.slice(-8).map((e) => `${e.seq}:${e.kind}`).join(', ');
        reject(new Error(`${this.id}: timed out waiting for ${label}; recent events: ${recent}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  async startShift() {
    this.subscribe('0');
    const r = await this.call('StartShift', {});
    return r.status;
  }

  close() {
    if (this.stream) this.stream.cancel();
    this.client.close();
  }
}
