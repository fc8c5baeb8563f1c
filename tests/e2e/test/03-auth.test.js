'use strict';
// 03 -- who may talk to the hub, and do what: bearer tokens on gRPC, the
// first-frame auth of the WebSocket, the auth deadline, role checks, and the
// Origin check of the WebSocket upgrade.

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');

const { startHub, ALLOWED_ORIGIN } = require('../lib/hub');
const { GrpcClient, WsClient, grpcErrorText } = require('../lib/clients');
const { sampleDetails, operatorConsole, assertStillServing, closeAll } = require('../lib/fixture');

const PREFACE_TIMEOUT_MS = 1500;

let hub;
const opened = [];

before(async () => {
  hub = await startHub({ name: 'auth', config: { limits: { preface_timeout_ms: PREFACE_TIMEOUT_MS } } });
});

after(async () => {
  closeAll(opened);
  if (hub) await hub.stopChecked();
});

function grpcClient(token, name) {
  const c = new GrpcClient(hub.grpcAddress, token, { name });
  opened.push(c);
  return c;
}

async function expectCode(promise, code, what) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.code, code, `${what}: expected status ${code}, got ${grpcErrorText(e)}`);
    assert.ok(e.details && e.details.length > 0, `${what}: the status should carry a message`);
    return true;
  });
}

describe('gRPC bearer tokens', () => {
  test('no authorization metadata -> UNAUTHENTICATED', async () => {
    await expectCode(grpcClient(null, 'anon').call('WhoAmI', {}), 16, 'WhoAmI without a token');
  });

  test('a wrong token -> UNAUTHENTICATED', async () => {
    await expectCode(grpcClient('not-a-real-token', 'wrong').call('WhoAmI', {}), 16, 'WhoAmI with a wrong token');
    // A token of another hub user with one character changed.
    const t = hub.token('op.one');
    const near = t.slice(0, -1) + (t.endsWith('a') ? 'b' : 'a');
    await expectCode(grpcClient(near, 'near').call('RaiseIncident', { details: sampleDetails() }), 16, 'RaiseIncident with a near-miss token');
  });

  test('a malformed authorization header -> UNAUTHENTICATED', async () => {
    const c = grpcClient(null, 'malformed');
    const { Metadata } = require('@grpc/grpc-js');
    for (const value of [`Basic ${hub.token('op.one')}`, 'Bearer', 'Bearer ', hub.token('op.one')]) {
      const md = new Metadata();
      md.set('authorization', value);
      await expectCode(c.call('WhoAmI', {}, { metadata: md }), 16, `authorization: ${JSON.stringify(value.replace(/tok-.*/, 'tok-...'))}`);
    }
  });

  test('Subscribe with a wrong token ends with UNAUTHENTICATED', async () => {
    const sub = grpcClient('nope', 'sub-wrong').subscribe('0');
    const st = await sub.waitStatus(3000);
    assert.equal(st.code, 16, `Subscribe status: ${st.code} ${st.details}`);
  });

  test('the right token is accepted and WhoAmI names the user', async () => {
    const who = await grpcClient(hub.token('p.a'), 'p.a').call('WhoAmI', {});
    assert.equal(who.user.id, 'p.a');
    assert.equal(who.user.role, 'ROLE_PRACTITIONER');
    assert.equal(who.user.provider, 'GMMH');
    assert.deepEqual([...who.boroughs].sort(), ['Manchester', 'Oldham', 'Salford']);
    await assertStillServing(hub, 'the rejected gRPC calls');
  });
});

describe('WebSocket first-frame auth', () => {
  test('a wrong token -> error frame 16, then the socket is closed', async () => {
    const ws = await WsClient.connect(hub.wsUrl, { name: 'ws-wrong' });
    opened.push(ws);
    const f = await ws.request('auth', { token: 'not-a-real-token' });
    assert.ok(f.error, `expected an error frame, got ${JSON.stringify(f)}`);
    assert.equal(f.error.code, 16, `error code: ${JSON.stringify(f.error)}`);
    assert.ok(!f.auth, 'no auth body with the error');
    const c = await ws.waitClose(3000);
    // RFC 6455 7.1.1: the server ends the connection with a Close frame, so
    // the console can tell "refused" (e.g. 1008) from a network failure (1006).
    assert.notEqual(c.code, 1006, 'closed with a close frame, not dropped');
  });

  test('a first frame that is not auth -> error frame, then the socket is closed', async () => {
    const ws = await WsClient.connect(hub.wsUrl, { name: 'ws-noauth' });
    opened.push(ws);
    const f = await ws.request('whoAmI', {});
    assert.ok(f.error && f.error.code, `expected an error frame, got ${JSON.stringify(f)}`);
    assert.ok([16, 3].includes(f.error.code), `error code for a non-auth first frame: ${JSON.stringify(f.error)}`);
    assert.ok(!f.whoAmI, 'the request was not served');
    const c = await ws.waitClose(3000);
    assert.notEqual(c.code, 1006, 'closed with a close frame, not dropped');
  });

  test('a first frame that is not auth, on the binary subprotocol -> error frame, close', async () => {
    const ws = await WsClient.connect(hub.wsUrl, { protocol: 'mhtas.v1.proto', name: 'ws-proto-noauth' });
    opened.push(ws);
    const f = await ws.request('getBoard', {});
    assert.ok(f.error && f.error.code, `expected an error frame, got ${JSON.stringify(f)}`);
    assert.ok(!f.getBoard, 'the request was not served');
    await ws.waitClose(3000);
  });

  test('no auth frame within preface_timeout_ms -> the socket is closed', async () => {
    const ws = await WsClient.connect(hub.wsUrl, { name: 'ws-silent' });
    opened.push(ws);
    const t = Date.now();
    await ws.waitClose(PREFACE_TIMEOUT_MS + 3000);
    const c = await ws.closed;
    const took = Date.now() - t;
    assert.ok(took >= PREFACE_TIMEOUT_MS - 300, `closed after ${took} ms, before preface_timeout_ms ${PREFACE_TIMEOUT_MS}`);
    assert.notEqual(c.code, 1006, 'closed with a close frame, not dropped');
  });

  test('the right token -> the user, every borough, the last seq', async () => {
    const ws = await WsClient.connect(hub.wsUrl, { name: 'ws-ok' });
    opened.push(ws);
    const f = await ws.request('auth', { token: hub.token('sup.one') });
    assert.ok(!f.error, `auth failed: ${JSON.stringify(f)}`);
    assert.equal(f.requestId, '1');
    assert.equal(f.auth.user.id, 'sup.one');
    assert.equal(f.auth.user.role, 'ROLE_SUPERVISOR');
    assert.equal(f.auth.user.displayName, 'Sam Supervisor');
    assert.deepEqual([...f.auth.boroughs].sort(), ['Manchester', 'Oldham', 'Salford']);
    assert.match(f.auth.lastSeq || '0', /^[0-9]+$/, 'lastSeq is a uint64 string (absent when 0)');
    // A second auth on an authenticated socket is not a way to switch users.
    const again = await ws.request('auth', { token: hub.token('op.one') });
    if (!again.error) assert.equal(again.auth.user.id, 'sup.one', 'a second auth frame must not switch the socket to another user');
    await assertStillServing(hub, 'the WebSocket auth failures');
  });
});

describe('roles', () => {
  let incidentId;

  before(async () => {
    const c = grpcClient(hub.token('op.one'), 'op');
    incidentId = (await c.call('RaiseIncident', { details: sampleDetails(), idempotencyKey: 'roles-1' })).incident.id;
  });

  test('a practitioner may not raise an incident (gRPC) -> PERMISSION_DENIED', async () => {
    await expectCode(grpcClient(hub.token('p.a'), 'p.a').call('RaiseIncident', { details: sampleDetails() }), 7, 'practitioner RaiseIncident');
  });

  test('a practitioner may not raise an incident (WebSocket) -> error 7', async () => {
    const ws = await WsClient.connect(hub.wsUrl, { name: 'p.a ws' });
    opened.push(ws);
    await ws.auth(hub.token('p.a'));
    const f = await ws.request('raiseIncident', { details: sampleDetails() });
    assert.equal(f.error && f.error.code, 7, `reply: ${JSON.stringify(f)}`);
    // The socket stays usable after a refused request.
    const who = await ws.call('whoAmI', {});
    assert.equal(who.user.id, 'p.a');
  });

  test('an operator may not accept an incident -> PERMISSION_DENIED', async () => {
    await expectCode(grpcClient(hub.token('op.one'), 'op').call('Accept', { incidentId }), 7, 'operator Accept');
  });

  test('an operator may not go on shift -> PERMISSION_DENIED', async () => {
    await expectCode(grpcClient(hub.token('op.one'), 'op').call('StartShift', {}), 7, 'operator StartShift');
  });

  test('an operator may not reassign (supervisors only) -> PERMISSION_DENIED', async () => {
    await expectCode(
      grpcClient(hub.token('op.one'), 'op').call('Reassign', { incidentId, practitioner: 'p.b', reason: 'test' }),
      7,
      'operator Reassign',
    );
  });

  test('a practitioner may not agree an outcome -> PERMISSION_DENIED', async () => {
    await expectCode(grpcClient(hub.token('p.a'), 'p.a').call('AgreeOutcome', { incidentId, agree: true }), 7, 'practitioner AgreeOutcome');
  });
});

describe('WebSocket Origin', () => {
  test('an upgrade from http://evil.example is refused', async () => {
    await assert.rejects(WsClient.connect(hub.wsUrl, { origin: 'http://evil.example', name: 'evil' }), (e) => {
      // Refused at the upgrade: an HTTP status (403) or a dropped connection,
      // never an open socket.
      if (e.statusCode !== undefined) assert.ok(e.statusCode >= 400, `refused with HTTP ${e.statusCode}`);
      return true;
    });
  });

  test('an origin that only starts like an allowed one is refused', async () => {
    await assert.rejects(WsClient.connect(hub.wsUrl, { origin: `${ALLOWED_ORIGIN}.evil.example`, name: 'evil2' }));
  });

  test('the allowed origin, and no Origin at all, are accepted', async () => {
    const a = await operatorConsole(hub, { subscribe: false });
    opened.push(a);
    const b = await WsClient.connect(hub.wsUrl, { origin: null, name: 'no-origin' });
    opened.push(b);
    const auth = await b.auth(hub.token('op.one'));
    assert.equal(auth.user.id, 'op.one');
  });

  test('an upgrade on a path other than /ws is refused', async () => {
    await assert.rejects(WsClient.connect(hub.wsUrl.replace(/\/ws$/, '/not-ws'), { name: 'wrong-path' }));
    await assertStillServing(hub, 'the refused upgrades');
  });
});
