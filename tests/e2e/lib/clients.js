'use strict';
// clients.js -- the clients the end-to-end tests drive the hub with.
//
//  * GrpcClient: @grpc/grpc-js on proto/mhtas/v1/hub.proto (proto-loader,
//    keepCase false, longs as strings, enums as names, defaults, oneofs), one
//    channel with its own connection per client (local subchannel pool, so
//    closing one client really closes its TCP connection), promisified unary
//    calls with `authorization: Bearer <token>`, and subscribe() returning a
//    stream whose events a test awaits with waitFor(predicate, timeoutMs).
//  * rawUnary(): a unary call with hand-made request bytes (malformed tests).
//  * WsClient: the console's WebSocket, "mhtas.v1.json" (text frames, proto3
//    JSON) or "mhtas.v1.proto" (binary frames, protobufjs on ws.proto). One
//    request() per frame with an automatic request id, awaiting the reply
//    with the same id; events collected for waitFor().
//
// Every wait has a time-out that fails with what was awaited and what had
// arrived by then; nothing here sleeps in place of an event.

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');
const WebSocket = require('ws');
const path = require('node:path');

const { PROTO_DIR, ALLOWED_ORIGIN } = require('./hub');

const DEFAULT_WAIT_MS = 3000;
const DEFAULT_DEADLINE_MS = 5000;

// gRPC status codes, by name, for assertions and messages.
const Status = grpc.status;
const STATUS_NAME = Object.fromEntries(Object.entries(grpc.status).map(([k, v]) => [v, k]));

// ------------------------------------------------------------------ waiting

function describe(x) {
  if (x === undefined) return 'undefined';
  try {
    const s = JSON.stringify(x);
    return s.length > 600 ? s.slice(0, 600) + '...' : s;
  } catch {
    return String(x);
  }
}

// Polls fn() until it returns a truthy value (for conditions no event
// announces, e.g. "the socket is closed"). Resolves that value.
async function waitUntil(fn, timeoutMs, label, intervalMs = 20) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${label}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// Races a promise against a time-out that rejects with `label`.
function withTimeout(promise, timeoutMs, label) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${label}`)), timeoutMs);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// The kind of an mhtas.v1.Event, from grpc-js (oneofs: `kind`) or from
// proto3 JSON (the one member present).
const EVENT_KINDS = ['offer', 'incident', 'message', 'queue', 'board', 'notice', 'status'];
function eventKind(ev) {
  if (!ev) return undefined;
  if (ev.kind) return ev.kind;
  return EVENT_KINDS.find((k) => ev[k] !== undefined && ev[k] !== null);
}

// The incident an event is about (offer or incident update), or undefined.
function eventIncident(ev) {
  if (!ev) return undefined;
  if (ev.offer && ev.offer.incident) return ev.offer.incident;
  if (ev.incident && ev.incident.incident) return ev.incident.incident;
  return undefined;
}

function summarizeEvent(ev) {
  const kind = eventKind(ev);
  const inc = eventIncident(ev);
  const parts = [`seq=${ev.seq}`, kind];
  if (inc) parts.push(`id=${inc.id}`, `state=${inc.state}`, `pr=${inc.practitioner || ''}`);
  if (kind === 'incident' && ev.incident.transition) parts.push(`cause=${ev.incident.transition.cause}`);
  if (kind === 'message') parts.push(`from=${ev.message.fromUser}`, `text=${JSON.stringify(ev.message.text)}`);
  if (kind === 'status') parts.push(`user=${ev.status.userId}`, `state=${ev.status.state}`);
  if (kind === 'notice') parts.push(`notice=${ev.notice.kind}`, `text=${JSON.stringify(ev.notice.text)}`);
  return parts.join(' ');
}

// An append-only list of things received (events, frames) that tests await.
class EventLog {
  constructor(name, summarize = describe) {
    this.name = name;
    this.items = [];
    this.ended = null; // an Error (or 'end') once nothing more can arrive
    this._waiters = new Set();
    this._summarize = summarize;
  }

  push(item) {
    this.items.push(item);
    for (const w of [...this._waiters]) w();
  }

  end(reason) {
    if (this.ended) return;
    this.ended = reason || 'end';
    for (const w of [...this._waiters]) w();
  }

  recent(n = 12) {
    const xs = this.items.slice(-n).map((x) => '    ' + this._summarize(x));
    return xs.length ? xs.join('\n') : '    (nothing)';
  }

  // Resolves the first item (at index >= from) for which pred is true;
  // rejects on time-out or when the stream ended without one.
  waitFor(pred, timeoutMs = DEFAULT_WAIT_MS, label = 'a matching item', { from = 0 } = {}) {
    return new Promise((resolve, reject) => {
      let i = from;
      let timer = null;
      const done = (err, v) => {
        this._waiters.delete(check);
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(v);
      };
      const check = () => {
        for (; i < this.items.length; i++) {
          let ok;
          try {
            ok = pred(this.items[i]);
          } catch (e) {
            return done(e);
          }
          if (ok) return done(null, this.items[i]);
        }
        if (this.ended) {
          const why = this.ended instanceof Error ? this.ended.message : String(this.ended);
          done(new Error(`${this.name}: ended (${why}) while waiting for ${label}; last received:\n${this.recent()}`));
        }
      };
      timer = setTimeout(
        () => done(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${label}; last received:\n${this.recent()}`)),
        timeoutMs,
      );
      this._waiters.add(check);
      check();
    });
  }

  filter(pred) {
    return this.items.filter(pred);
  }
}

// Event predicates, shared by gRPC and WebSocket logs.
const is = {
  offer: (id, practitioner) => (ev) =>
    eventKind(ev) === 'offer' &&
    String(ev.offer.incident && ev.offer.incident.id) === String(id) &&
    (practitioner === undefined || ev.offer.incident.practitioner === practitioner),
  update: (id, { state, cause, practitioner } = {}) => (ev) =>
    eventKind(ev) === 'incident' &&
    String(ev.incident.incident && ev.incident.incident.id) === String(id) &&
    (state === undefined || ev.incident.incident.state === state) &&
    (cause === undefined || (ev.incident.transition && ev.incident.transition.cause === cause)) &&
    (practitioner === undefined || ev.incident.incident.practitioner === practitioner),
  message: (id, { text, from } = {}) => (ev) =>
    eventKind(ev) === 'message' &&
    String(ev.message.incidentId) === String(id) &&
    (text === undefined || ev.message.text === text) &&
    (from === undefined || ev.message.fromUser === from),
  status: (userId, state) => (ev) =>
    eventKind(ev) === 'status' && ev.status.userId === userId && (state === undefined || ev.status.state === state),
  notice: (kind) => (ev) => eventKind(ev) === 'notice' && (kind === undefined || ev.notice.kind === kind),
};

// -------------------------------------------------------------------- gRPC

const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let _hubService = null;
function hubService() {
  if (!_hubService) {
    const def = protoLoader.loadSync('mhtas/v1/hub.proto', LOADER_OPTIONS);
    _hubService = grpc.loadPackageDefinition(def).mhtas.v1.Hub;
  }
  return _hubService;
}

// The unary methods of mhtas.v1.Hub, from the proto (not a hand-kept list).
function unaryMethodNames() {
  const svc = hubService().service;
  return Object.keys(svc).filter((k) => !svc[k].responseStream && !svc[k].requestStream);
}

// One channel, one connection: a client's close() must close its own TCP
// connection (the default global subchannel pool would share it between
// clients with the same target). No retries: every call is one attempt.
const CHANNEL_OPTIONS = {
  'grpc.use_local_subchannel_pool': 1,
  'grpc.enable_retries': 0,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  'grpc.max_send_message_length': 16 * 1024 * 1024,
};

function bearer(token) {
  const md = new grpc.Metadata();
  if (token !== null && token !== undefined) md.set('authorization', `Bearer ${token}`);
  return md;
}

function grpcErrorText(e) {
  return `${STATUS_NAME[e.code] || e.code} (${e.code}): ${e.details}`;
}

class GrpcClient {
  // token: the bearer token (null: send no authorization header).
  constructor(address, token, { name = 'grpc' } = {}) {
    const Hub = hubService();
    this.address = address;
    this.token = token;
    this.name = name;
    this.client = new Hub(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    this.subs = new Set();
  }

  // Calls a unary method; resolves the response, rejects with the grpc-js
  // error (e.code, e.details). opts.token overrides the client's token
  // (null: none); opts.metadata replaces the metadata entirely.
  call(method, req = {}, opts = {}) {
    const fn = this.client[method];
    if (typeof fn !== 'function') throw new Error(`no method ${method} on mhtas.v1.Hub`);
    const md = opts.metadata || bearer('token' in opts ? opts.token : this.token);
    const deadline = new Date(Date.now() + (opts.deadlineMs || DEFAULT_DEADLINE_MS));
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, md, { deadline }, (err, resp) => {
        if (err) {
          err.method = method;
          reject(err);
        } else resolve(resp);
      });
    });
  }

  // Server-streaming Subscribe; returns a GrpcSubscription.
  subscribe(afterSeq = '0', opts = {}) {
    const md = opts.metadata || bearer('token' in opts ? opts.token : this.token);
    const sub = new GrpcSubscription(this.client.Subscribe({ afterSeq: String(afterSeq) }, md), `${this.name} Subscribe(${afterSeq})`);
    this.subs.add(sub);
    return sub;
  }

  // Cancels every stream and closes the channel (and its connection).
  close() {
    for (const s of this.subs) s.cancel();
    this.subs.clear();
    this.client.close();
  }
}

class GrpcSubscription {
  constructor(call, name) {
    this.call = call;
    this.name = name;
    this.log = new EventLog(name, summarizeEvent);
    this.error = null;
    this.status = null;
    this.gotMetadata = false;
    this.finished = new Promise((resolve) => {
      call.on('status', (st) => {
        this.status = st;
        resolve(st);
      });
    });
    call.on('metadata', () => {
      this.gotMetadata = true;
    });
    call.on('data', (ev) => this.log.push(ev));
    // An 'error' listener is mandatory: without one grpc-js throws.
    call.on('error', (e) => {
      this.error = e;
      this.log.end(e);
    });
    call.on('end', () => this.log.end('stream ended'));
  }

  get events() {
    return this.log.items;
  }

  waitFor(pred, timeoutMs, label, opts) {
    return this.log.waitFor(pred, timeoutMs, label, opts);
  }

  // Resolves the stream's final status ({code, details}) or rejects on time-out.
  waitStatus(timeoutMs = DEFAULT_WAIT_MS) {
    return withTimeout(this.finished, timeoutMs, `${this.name}: the stream's status`);
  }

  cancel() {
    if (!this.status) this.call.cancel();
  }
}

// A unary call with hand-made request bytes, e.g. bytes that are not a valid
// protobuf. Resolves { code: 0, bytes } or { code, details } -- never rejects
// for a gRPC status, so tests assert on the code.
function rawUnary(address, methodPath, requestBytes, { token, deadlineMs = DEFAULT_DEADLINE_MS } = {}) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const md = bearer(token);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      methodPath,
      (b) => b,
      (b) => b,
      requestBytes,
      md,
      { deadline: new Date(Date.now() + deadlineMs) },
      (err, resp) => {
        client.close();
        if (err) resolve({ code: err.code, details: err.details, error: err });
        else resolve({ code: 0, bytes: resp });
      },
    );
  });
}

// ---------------------------------------------------------------- WebSocket

let _wsRoot = null;
function wsRoot() {
  if (!_wsRoot) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(PROTO_DIR, target));
    root.loadSync('mhtas/v1/ws.proto', { keepCase: false });
    root.resolveAll();
    _wsRoot = root;
  }
  return _wsRoot;
}

function wsTypes() {
  const root = wsRoot();
  return {
    ClientFrame: root.lookupType('mhtas.v1.ClientFrame'),
    ServerFrame: root.lookupType('mhtas.v1.ServerFrame'),
  };
}

// Binary helpers for the "mhtas.v1.proto" subprotocol; frames in and out in
// the same shape as proto3 JSON (camelCase, enums as names, 64-bit as
// strings, defaults omitted).
function encodeClientFrame(obj) {
  const { ClientFrame } = wsTypes();
  const err = ClientFrame.verify(ClientFrame.fromObject(obj));
  if (err) throw new Error(`bad ClientFrame ${describe(obj)}: ${err}`);
  return Buffer.from(ClientFrame.encode(ClientFrame.fromObject(obj)).finish());
}

function decodeServerFrame(buf) {
  const { ServerFrame } = wsTypes();
  const msg = ServerFrame.decode(buf);
  return ServerFrame.toObject(msg, { longs: String, enums: String, defaults: false, arrays: false, oneofs: false });
}

class WsError extends Error {
  constructor(frame, what) {
    super(`${what}: error frame code ${frame.error.code} (${STATUS_NAME[frame.error.code] || '?'}): ${frame.error.message}`);
    this.code = frame.error.code;
    this.details = frame.error.message;
    this.field = frame.error.field;
    this.frame = frame;
  }
}

function summarizeFrame(f) {
  if (f && f.event) return 'event ' + summarizeEvent(f.event);
  return describe(f);
}

class WsClient {
  /**
   * Opens ws://127.0.0.1:port/ws. opts: protocol ("mhtas.v1.json" |
   * "mhtas.v1.proto"), origin (default the allowed console origin; null for
   * none), name, deflate (offer permessage-deflate). Rejects when the upgrade is refused (err.statusCode set
   * when the hub answered with an HTTP status).
   */
  static connect(url, { protocol = 'mhtas.v1.json', origin = ALLOWED_ORIGIN, name = 'ws', timeoutMs = DEFAULT_WAIT_MS, maxPayload, deflate = false } = {}) {
    // permessage-deflate is off unless asked for, so frame sizes on the wire
    // are the sizes the test wrote.
    const wsOpts = { handshakeTimeout: timeoutMs, perMessageDeflate: deflate };
    if (origin !== null && origin !== undefined) wsOpts.origin = origin;
    if (maxPayload) wsOpts.maxPayload = maxPayload;
    const ws = new WebSocket(url, protocol, wsOpts);
    const client = new WsClient(ws, protocol, name);
    return new Promise((resolve, reject) => {
      const fail = (err) => {
        ws.removeAllListeners('open');
        reject(err);
      };
      ws.once('open', () => {
        if (ws.protocol !== protocol) {
          ws.terminate();
          reject(new Error(`${name}: server chose subprotocol ${JSON.stringify(ws.protocol)}, asked for ${protocol}`));
        } else resolve(client);
      });
      ws.once('unexpected-response', (req, res) => {
        const e = new Error(`${name}: upgrade refused with HTTP ${res.statusCode}`);
        e.statusCode = res.statusCode;
        res.resume();
        req.destroy();
        fail(e);
      });
      ws.once('error', (e) => fail(e));
    });
  }

  constructor(ws, protocol, name) {
    this.ws = ws;
    this.protocol = protocol;
    this.binary = protocol === 'mhtas.v1.proto';
    this.name = name;
    this.nextId = 1;
    this.frames = new EventLog(`${name} frames`, summarizeFrame);
    this.log = new EventLog(`${name} events`, summarizeEvent);
    this.decodeErrors = [];
    this.closeInfo = null;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason ? reason.toString() : '' };
        this.frames.end(`socket closed ${code} ${this.closeInfo.reason}`);
        this.log.end(`socket closed ${code} ${this.closeInfo.reason}`);
        resolve(this.closeInfo);
      });
    });
    ws.on('error', (e) => {
      this.lastError = e;
    });
    ws.on('message', (data, isBinary) => {
      let frame;
      try {
        if (this.binary) {
          if (!isBinary) throw new Error(`text frame on ${protocol}: ${data.toString().slice(0, 200)}`);
          frame = decodeServerFrame(data);
        } else {
          if (isBinary) throw new Error(`binary frame on ${protocol}`);
          frame = JSON.parse(data.toString('utf8'));
        }
      } catch (e) {
        this.decodeErrors.push(e);
        frame = { _undecodable: true, error_: e.message };
      }
      this.frames.push(frame);
      if (frame.event) this.log.push(frame.event);
    });
  }

  get events() {
    return this.log.items;
  }

  get isOpen() {
    return this.ws.readyState === WebSocket.OPEN;
  }

  // Sends one ClientFrame object (requestId included by the caller).
  sendFrame(frame) {
    if (this.binary) this.ws.send(encodeClientFrame(frame), { binary: true });
    else this.ws.send(JSON.stringify(frame), { binary: false });
  }

  // Sends raw bytes or text as one message.
  sendRaw(data, { binary = this.binary } = {}) {
    this.ws.send(data, { binary });
  }

  // Sends {requestId, [field]: body} and resolves the reply frame with the same id.
  async request(field, body = {}, { timeoutMs = DEFAULT_WAIT_MS } = {}) {
    const requestId = String(this.nextId++);
    const from = this.frames.items.length;
    this.sendFrame({ requestId, [field]: body });
    return this.frames.waitFor((f) => f.requestId === requestId, timeoutMs, `the reply to ${field} (requestId ${requestId})`, { from });
  }

  // Like request() but resolves the reply body, or throws WsError on an error frame.
  async call(field, body = {}, opts = {}) {
    const f = await this.request(field, body, opts);
    if (f.error && f.error.code) throw new WsError(f, `${this.name} ${field}`);
    if (!(field in f)) throw new Error(`${this.name} ${field}: reply without a ${field} body: ${describe(f)}`);
    return f[field];
  }

  auth(token) {
    return this.call('auth', { token });
  }

  subscribe(afterSeq = '0') {
    return this.call('subscribe', { afterSeq: String(afterSeq) });
  }

  // The next frame carrying an error (with any or no request id), from frame index `from`.
  waitError(timeoutMs = DEFAULT_WAIT_MS, { from = 0 } = {}) {
    return this.frames.waitFor((f) => f.error && f.error.code, timeoutMs, 'an error frame', { from });
  }

  waitFor(pred, timeoutMs, label, opts) {
    return this.log.waitFor(pred, timeoutMs, label, opts);
  }

  waitClose(timeoutMs = DEFAULT_WAIT_MS) {
    return withTimeout(this.closed, timeoutMs, `${this.name}: the socket to close`);
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}

// ----------------------------------------------------------------- metrics

// Parses Prometheus text exposition into [{ name, labels, value }].
function parseMetrics(text) {
  const out = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$/.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${JSON.stringify(raw)}`);
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/g;
      let lm;
      while ((lm = re.exec(m[3]))) labels[lm[1]] = lm[2];
    }
    const v = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

// The value of the first sample named `name` whose labels include `labels`.
function metricValue(samples, name, labels = {}) {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s ? s.value : undefined;
}

module.exports = {
  Status,
  STATUS_NAME,
  DEFAULT_WAIT_MS,
  EventLog,
  GrpcClient,
  GrpcSubscription,
  WsClient,
  WsError,
  bearer,
  decodeServerFrame,
  encodeClientFrame,
  eventIncident,
  eventKind,
  grpcErrorText,
  hubService,
  is,
  metricValue,
  parseMetrics,
  rawUnary,
  summarizeEvent,
  unaryMethodNames,
  waitUntil,
  withTimeout,
};
