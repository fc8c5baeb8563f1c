'use strict';
// 04 -- malformed input. For each case the hub must answer with a specific
// error (or close that one connection) and keep serving everyone else: after
// every case /healthz, a fresh gRPC call and a fresh WebSocket still work,
// and a bystander console socket stays open and keeps receiving events.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const http2 = require('node:http2');

const { startHub } = require('../lib/hub');
const { GrpcClient, WsClient, rawUnary, grpcErrorText, is } = require('../lib/clients');
const { sampleDetails, operatorConsole, assertStillServing, closeAll } = require('../lib/fixture');

const MAX_MESSAGE_BYTES = 65536;
const PREFACE_TIMEOUT_MS = 1500;
const RAISE = '/mhtas.v1.Hub/RaiseIncident';

let hub;
let bystander;
const opened = [];

before(async () => {
  hub = await startHub({
    name: 'malformed',
    config: { limits: { max_message_bytes: MAX_MESSAGE_BYTES, preface_timeout_ms: PREFACE_TIMEOUT_MS } },
  });
  bystander = await operatorConsole(hub);
  opened.push(bystander);
});

after(async () => {
  closeAll(opened);
  if (hub) await hub.stopChecked();
});

// The bystander still has an open socket and sees a new incident raised now.
async function bystanderStillServed(label) {
  assert.ok(bystander.isOpen, `the bystander console socket was closed after ${label}: ${JSON.stringify(bystander.closeInfo)}`);
  const c = new GrpcClient(hub.grpcAddress, hub.token('op.one'), { name: 'raiser' });
  try {
    const inc = (await c.call('RaiseIncident', { details: sampleDetails() })).incident;
    await bystander.waitFor(is.update(inc.id), 3000, `the bystander to see incident ${inc.id} raised after ${label}`);
  } finally {
    c.close();
  }
}

// Opens a TCP connection, writes `bytes`, and resolves once the hub closes
// it: { ms, received } (rejects if it stays open past timeoutMs).
function tcpUntilClosed(port, bytes, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const chunks = [];
    const sock = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`the hub kept the connection open for ${timeoutMs} ms (received ${Buffer.concat(chunks).length} bytes)`));
    }, timeoutMs);
    sock.on('connect', () => {
      if (bytes && bytes.length) sock.write(bytes);
    });
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {}); // ECONNRESET counts as closed
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ ms: Date.now() - t0, received: Buffer.concat(chunks) });
    });
  });
}

// A deterministic pseudo-random byte generator (xorshift32), so a failure
// can be replayed.
function prng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      b[i] = x & 0xff;
    }
    return b;
  };
}

function h2frame(type, flags, streamId, payload) {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, payload]);
}
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

describe('gRPC port', () => {
  test('raw TCP garbage: the connection is closed, the hub lives', async () => {
    const r = await tcpUntilClosed(hub.grpcPort, prng(7)(4096), 5000);
    assert.ok(r.ms < 5000);
    await assertStillServing(hub, 'TCP garbage on the gRPC port');
  });

  test('an HTTP/1.1 request to the gRPC port: closed', async () => {
    await tcpUntilClosed(hub.grpcPort, Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'), 5000);
    await assertStillServing(hub, 'HTTP/1.1 on the gRPC port');
  });

  test('a silent connection is closed after preface_timeout_ms', async () => {
    const r = await tcpUntilClosed(hub.grpcPort, null, PREFACE_TIMEOUT_MS + 3000);
    assert.ok(r.ms >= PREFACE_TIMEOUT_MS - 300, `closed after ${r.ms} ms, before preface_timeout_ms ${PREFACE_TIMEOUT_MS}`);
    await assertStillServing(hub, 'a silent gRPC connection');
  });

  test('a valid preface then an oversized HTTP/2 frame: GOAWAY and close', async () => {
    const settings = h2frame(0x4, 0, 0, Buffer.alloc(0));
    // A DATA frame announcing 1 MiB on stream 1 (over the 16 KiB default max frame size).
    const huge = Buffer.alloc(9);
    huge.writeUIntBE(1 << 20, 0, 3);
    huge[3] = 0x0;
    huge.writeUInt32BE(1, 5);
    const r = await tcpUntilClosed(hub.grpcPort, Buffer.concat([H2_PREFACE, settings, huge, prng(3)(1024)]), 5000);
    // The hub's reply should hold a GOAWAY frame (type 7) somewhere.
    let off = 0;
    let sawGoaway = false;
    while (off + 9 <= r.received.length) {
      const len = r.received.readUIntBE(off, 3);
      if (r.received[off + 3] === 0x7) sawGoaway = true;
      off += 9 + len;
    }
    assert.ok(sawGoaway, `expected a GOAWAY before the close; received ${r.received.length} bytes`);
    await assertStillServing(hub, 'an oversized HTTP/2 frame');
  });

  test('a request body that is not a valid protobuf -> INVALID_ARGUMENT', async () => {
    const token = hub.token('op.one');
    const cases = {
      'a length-delimited field longer than the message': Buffer.from([0x0a, 0xff, 0xff, 0x03, 0x41, 0x42]),
      'wire type 7 (no such wire type)': Buffer.from([0x0f, 0x01, 0x02]),
      'a varint that never ends': Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      'a length-delimited field cut short': Buffer.from([0x2a, 0x05, 0x41]),
    };
    // WhoAmI's request is empty, so a body that decodes (unknown fields are
    // skipped) would be served: there INVALID_ARGUMENT can only come from the
    // decoder, not from a missing required field.
    for (const method of ['/mhtas.v1.Hub/WhoAmI', RAISE]) {
      for (const [what, bytes] of Object.entries(cases)) {
        const r = await rawUnary(hub.grpcAddress, method, bytes, { token });
        assert.equal(r.code, 3, `${method} with ${what}: expected INVALID_ARGUMENT, got ${r.code} ${r.details}`);
        assert.ok(r.details, `${method} with ${what}: the status should say what was wrong`);
      }
    }
    // Control: an unknown but well-formed field is skipped (proto3), the call is served.
    const ok = await rawUnary(hub.grpcAddress, '/mhtas.v1.Hub/WhoAmI', Buffer.from([0xf8, 0x01, 0x05]), { token });
    assert.equal(ok.code, 0, `WhoAmI with an unknown varint field 31: expected OK, got ${ok.code} ${ok.details}`);
    await assertStillServing(hub, 'invalid protobuf bodies');
  });

  test('strings that are not valid UTF-8, or hold a NUL -> INVALID_ARGUMENT', async () => {
    const token = hub.token('op.one');
    // RaiseIncidentRequest{ details(1){ police_ref(1): <bytes> } }
    const raise = (ref) => {
      const inner = Buffer.concat([Buffer.from([0x0a, ref.length]), ref]);
      return Buffer.concat([Buffer.from([0x0a, inner.length]), inner]);
    };
    for (const [what, ref] of [
      ['invalid UTF-8', Buffer.from([0x47, 0x4d, 0x50, 0xff, 0xfe])],
      ['an embedded NUL', Buffer.from('GMP\u0000-1', 'latin1')],
    ]) {
      const r = await rawUnary(hub.grpcAddress, RAISE, raise(ref), { token });
      assert.equal(r.code, 3, `police_ref with ${what}: expected INVALID_ARGUMENT, got ${r.code} ${r.details}`);
    }
    await assertStillServing(hub, 'bad strings');
  });

  test('random bodies (seeded) never crash the hub: each gets INVALID_ARGUMENT', async () => {
    const token = hub.token('op.one');
    const rnd = prng(20261123);
    for (let i = 0; i < 40; i++) {
      const body = rnd(1 + (rnd(1)[0] % 200));
      const r = await rawUnary(hub.grpcAddress, RAISE, body, { token });
      assert.equal(r.code, 3, `random body #${i} ${body.toString('hex')}: expected INVALID_ARGUMENT, got ${r.code} ${r.details}`);
    }
    await assertStillServing(hub, 'random bodies');
  });

  test('a message over max_message_bytes -> RESOURCE_EXHAUSTED', async () => {
    const c = new GrpcClient(hub.grpcAddress, hub.token('op.one'), { name: 'big' });
    opened.push(c);
    const details = sampleDetails({ concerns: 'x'.repeat(MAX_MESSAGE_BYTES + 1000) });
    await assert.rejects(c.call('RaiseIncident', { details }), (e) => {
      assert.equal(e.code, 8, `expected RESOURCE_EXHAUSTED, got ${grpcErrorText(e)}`);
      return true;
    });
    // Well over: 1 MiB of bytes.
    const r = await rawUnary(hub.grpcAddress, RAISE, Buffer.alloc(1 << 20, 0x41), { token: hub.token('op.one') });
    assert.equal(r.code, 8, `1 MiB body: expected RESOURCE_EXHAUSTED, got ${r.code} ${r.details}`);
    // The same client goes on working on its connection.
    assert.equal((await c.call('WhoAmI', {})).user.id, 'op.one');
    await assertStillServing(hub, 'oversize gRPC messages');
  });

  test('an unknown method or service -> UNIMPLEMENTED', async () => {
    const token = hub.token('op.one');
    for (const p of ['/mhtas.v1.Hub/NoSuchMethod', '/mhtas.v2.Hub/WhoAmI', '/grpc.health.v1.Health/Check', '/']) {
      const r = await rawUnary(hub.grpcAddress, p, Buffer.alloc(0), { token });
      assert.equal(r.code, 12, `${p}: expected UNIMPLEMENTED, got ${r.code} ${r.details}`);
    }
    await assertStillServing(hub, 'unknown methods');
  });

  test('a domain validation error names the field: missing police_ref -> INVALID_ARGUMENT', async () => {
    const c = new GrpcClient(hub.grpcAddress, hub.token('op.one'), { name: 'op' });
    opened.push(c);
    await assert.rejects(c.call('RaiseIncident', { details: sampleDetails({ policeRef: '' }) }), (e) => {
      assert.equal(e.code, 3, grpcErrorText(e));
      assert.match(e.details, /police_ref|policeRef/, `the message should name the field: ${e.details}`);
      return true;
    });
    await assert.rejects(c.call('RaiseIncident', { details: sampleDetails({ borough: 'Atlantis' }) }), (e) => {
      assert.equal(e.code, 3, grpcErrorText(e));
      assert.match(e.details, /borough/, `the message should name the field: ${e.details}`);
      return true;
    });
    await bystanderStillServed('gRPC validation errors');
  });
});

// One call by hand over node's own HTTP/2 client, for what grpc-js will not
// send. Resolves { status, grpcStatus, grpcMessage, data, rst } where
// grpcStatus comes from the trailers (or a trailers-only response).
function rawH2(port, { path = '/mhtas.v1.Hub/WhoAmI', headers = {}, chunks = [], timeoutMs = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    const out = { status: undefined, grpcStatus: undefined, grpcMessage: undefined, data: Buffer.alloc(0), rst: undefined };
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer to the hand-made call on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    const grab = (h) => {
      if (h['grpc-status'] !== undefined) out.grpcStatus = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) out.grpcMessage = decodeURIComponent(h['grpc-message']);
    };
    req.on('response', (h) => {
      out.status = h[':status'];
      grab(h);
    });
    req.on('trailers', grab);
    req.on('data', (d) => (out.data = Buffer.concat([out.data, d])));
    req.on('error', () => {});
    req.on('close', () => {
      clearTimeout(timer);
      out.rst = req.rstCode;
      session.close();
      resolve(out);
    });
    for (const c of chunks) req.write(c);
    req.end();
  });
}

function grpcPrefix(flag, len) {
  const b = Buffer.alloc(5);
  b[0] = flag;
  b.writeUInt32BE(len, 1);
  return b;
}

describe('gRPC port, hand-made HTTP/2 requests', () => {
  const auth = () => ({ authorization: `Bearer ${hub.token('op.one')}` });

  test('control: a well-formed hand-made WhoAmI is served', async () => {
    const r = await rawH2(hub.grpcPort, { headers: auth(), chunks: [grpcPrefix(0, 0)] });
    assert.equal(r.status, 200);
    assert.equal(r.grpcStatus, 0, `grpc-status ${r.grpcStatus} ${r.grpcMessage}`);
    assert.ok(r.data.length >= 5, 'one length-prefixed response message');
  });

  test('the compressed flag with no grpc-encoding -> an error status (not served)', async () => {
    const r = await rawH2(hub.grpcPort, { headers: auth(), chunks: [grpcPrefix(1, 3), Buffer.from([1, 2, 3])] });
    assert.ok(r.grpcStatus !== undefined && r.grpcStatus !== 0, `grpc-status ${r.grpcStatus} ${r.grpcMessage} (HTTP ${r.status}, rst ${r.rst})`);
    await assertStillServing(hub, 'a compressed message');
  });

  test('a length prefix promising more than the stream carries -> an error status', async () => {
    const r = await rawH2(hub.grpcPort, { headers: auth(), chunks: [grpcPrefix(0, 100), Buffer.alloc(10, 0x08)] });
    assert.ok(r.grpcStatus !== undefined && r.grpcStatus !== 0, `grpc-status ${r.grpcStatus} ${r.grpcMessage} (HTTP ${r.status}, rst ${r.rst})`);
    await assertStillServing(hub, 'a truncated message');
  });

  test('two request messages on a unary call -> an error status', async () => {
    const r = await rawH2(hub.grpcPort, { headers: auth(), chunks: [grpcPrefix(0, 0), grpcPrefix(0, 0)] });
    assert.ok(r.grpcStatus !== undefined && r.grpcStatus !== 0, `grpc-status ${r.grpcStatus} ${r.grpcMessage} (HTTP ${r.status}, rst ${r.rst})`);
  });

  test('a content-type that is not application/grpc is refused (HTTP 415 by the gRPC spec)', async () => {
    const r = await rawH2(hub.grpcPort, { headers: { ...auth(), 'content-type': 'application/json' }, chunks: [Buffer.from('{}')] });
    assert.ok(r.status === 415 || (r.grpcStatus !== undefined && r.grpcStatus !== 0), `HTTP ${r.status}, grpc-status ${r.grpcStatus} ${r.grpcMessage}`);
  });

  test('a header block over max_header_bytes is refused and the hub lives', async () => {
    const r = await rawH2(hub.grpcPort, { headers: { ...auth(), 'x-padding': 'p'.repeat(40000) }, chunks: [grpcPrefix(0, 0)] }).catch((e) => ({ error: e }));
    assert.ok(r.error || r.rst || r.status !== 200 || r.grpcStatus !== 0, `a 40 KB header was served as if fine: ${JSON.stringify(r)}`);
    await assertStillServing(hub, 'an oversize header block');
  });
});

describe('WebSocket', () => {
  // A fresh authenticated JSON socket per case.
  async function socket(protocol = 'mhtas.v1.json') {
    const ws = await WsClient.connect(hub.wsUrl, { protocol, name: `malformed ${protocol}` });
    opened.push(ws);
    await ws.auth(hub.token('op.one'));
    return ws;
  }

  // Sends `raw` and expects an error frame with code 3 whose message matches `re`.
  async function expectInvalid(raw, re, what) {
    const ws = await socket();
    const from = ws.frames.items.length;
    ws.sendRaw(raw, { binary: false });
    const f = await ws.waitError(3000, { from });
    assert.equal(f.error.code, 3, `${what}: expected code 3, got ${JSON.stringify(f.error)}`);
    if (re) {
      const text = `${f.error.message} ${f.error.field || ''}`;
      assert.match(text, re, `${what}: the error should name the field: ${JSON.stringify(f.error)}`);
    }
    return ws;
  }

  const validDetails = () => sampleDetails();

  test('invalid JSON -> error 3', async () => {
    await expectInvalid('{"requestId":"5","whoAmI":', null, 'truncated JSON');
    await expectInvalid('not json at all', null, 'not JSON');
    await expectInvalid('[1,2,3]', null, 'a JSON array');
    await assertStillServing(hub, 'invalid JSON frames');
  });

  test('an unknown field -> error 3 naming it', async () => {
    const frame = { requestId: '5', raiseIncident: { details: { ...validDetails(), bogusField: 1 } } };
    await expectInvalid(JSON.stringify(frame), /bogusField|bogus_field/, 'unknown field details.bogusField');
    await expectInvalid(JSON.stringify({ requestId: '6', noSuchMethod: {} }), /noSuchMethod|no_such_method/, 'unknown body field');
    await assertStillServing(hub, 'unknown fields');
  });

  test('a wrong type -> error 3 naming the field', async () => {
    await expectInvalid(
      JSON.stringify({ requestId: '7', raiseIncident: { details: { ...validDetails(), priority: 42.5 } } }),
      /priority/,
      'priority: 42.5',
    );
    await expectInvalid(
      JSON.stringify({ requestId: '8', raiseIncident: { details: { ...validDetails(), priority: 'PRIORITY_HIGH' } } }),
      /priority/,
      'priority: "PRIORITY_HIGH"',
    );
    await expectInvalid(JSON.stringify({ requestId: '9', getIncident: { incidentId: 'abc' } }), /incidentId|incident_id/, 'incidentId: "abc"');
    await expectInvalid(
      JSON.stringify({ requestId: '10', raiseIncident: { details: { ...validDetails(), callsigns: 'MX21' } } }),
      /callsigns/,
      'callsigns: a string, not a list',
    );
    await expectInvalid(JSON.stringify({ requestId: '11', whoAmI: {}, getBoard: {} }), null, 'two bodies in one frame');
    await assertStillServing(hub, 'wrong types');
  });

  test('a domain validation error names the field: missing police_ref -> error 3', async () => {
    const ws = await socket();
    const f = await ws.request('raiseIncident', { details: sampleDetails({ policeRef: '' }), idempotencyKey: 'no-ref' });
    assert.equal(f.error && f.error.code, 3, `reply: ${JSON.stringify(f)}`);
    assert.match(`${f.error.message} ${f.error.field || ''}`, /police_ref|policeRef/, JSON.stringify(f.error));
    // A request-level error leaves the socket usable.
    assert.equal((await ws.call('whoAmI', {})).user.id, 'op.one');
    await bystanderStillServed('a WebSocket validation error');
  });

  test('error frames carry Status.field, the offending field path (ws.proto), when it is known', async () => {
    const ws = await socket();
    const missing = await ws.request('raiseIncident', { details: sampleDetails({ policeRef: '' }) });
    assert.equal(missing.error && missing.error.code, 3, JSON.stringify(missing));
    assert.match(missing.error.field || '', /police_ref$/, `Status.field for a missing police_ref: ${JSON.stringify(missing.error)}`);
    const from = ws.frames.items.length;
    ws.sendRaw(JSON.stringify({ requestId: '77', raiseIncident: { details: { ...validDetails(), priority: 'PRIORITY_HIGH' } } }), { binary: false });
    const wrong = await ws.waitError(3000, { from });
    assert.match(wrong.error.field || '', /priority$/, `Status.field for a bad enum value: ${JSON.stringify(wrong.error)}`);
  });

  test('a message over max_message_bytes -> the socket is closed with 1009', async () => {
    const ws = await socket();
    const frame = JSON.stringify({ requestId: '12', raiseIncident: { details: sampleDetails({ concerns: 'y'.repeat(MAX_MESSAGE_BYTES + 1000) }) } });
    ws.sendRaw(frame, { binary: false });
    const c = await ws.waitClose(5000);
    assert.equal(c.code, 1009, `close code for an oversize message (reason ${JSON.stringify(c.reason)})`);
    await assertStillServing(hub, 'an oversize WebSocket message');
    await bystanderStillServed('an oversize WebSocket message');
  });

  test('a compressed message that inflates over max_message_bytes -> closed with 1009 (if permessage-deflate is offered)', async (t) => {
    const ws = await WsClient.connect(hub.wsUrl, { name: 'deflate', deflate: true });
    opened.push(ws);
    if (!/permessage-deflate/.test(ws.ws.extensions || '')) {
      t.diagnostic('the hub does not negotiate permessage-deflate: nothing to test');
      ws.close();
      return;
    }
    await ws.auth(hub.token('op.one'));
    // 4 MiB of one letter: a few KiB on the wire.
    const frame = JSON.stringify({ requestId: '13', raiseIncident: { details: sampleDetails({ concerns: 'z'.repeat(4 << 20) }) } });
    ws.sendRaw(frame, { binary: false });
    const c = await ws.waitClose(5000);
    assert.equal(c.code, 1009, `close code for a message inflating past the limit (reason ${JSON.stringify(c.reason)})`);
    await assertStillServing(hub, 'a deflate bomb');
  });

  test('binary garbage on mhtas.v1.proto -> error frame 3', async () => {
    const ws = await socket('mhtas.v1.proto');
    const rnd = prng(99);
    // A length-delimited field longer than the message: never a valid ClientFrame.
    const cases = [Buffer.from([0x12, 0xff, 0x7f, 0x01]), Buffer.concat([Buffer.from([0x0f]), rnd(64)])];
    for (const bytes of cases) {
      const from = ws.frames.items.length;
      ws.sendRaw(bytes, { binary: true });
      const f = await ws.waitError(3000, { from });
      assert.equal(f.error.code, 3, `garbage ${bytes.toString('hex').slice(0, 40)}: ${JSON.stringify(f.error)}`);
      if (!ws.isOpen) break;
    }
    assert.equal(ws.decodeErrors.length, 0, `the hub's frames were not valid ServerFrames: ${ws.decodeErrors.join('; ')}`);
    await assertStillServing(hub, 'binary garbage');
  });

  test('a text frame on the binary subprotocol, or binary on the JSON one: refused, hub lives', async () => {
    const p = await socket('mhtas.v1.proto');
    p.sendRaw(JSON.stringify({ requestId: '1', whoAmI: {} }), { binary: false });
    const j = await socket('mhtas.v1.json');
    j.sendRaw(Buffer.from([0x0a, 0x01, 0x31]), { binary: true });
    // Each gets an error frame or is closed; neither is answered as a request.
    for (const ws of [p, j]) {
      await Promise.race([ws.waitError(3000), ws.waitClose(3000)]);
      assert.ok(!ws.frames.items.some((f) => f.whoAmI), 'the wrongly framed request was served');
    }
    await assertStillServing(hub, 'wrongly typed frames');
    await bystanderStillServed('everything above');
  });
});
