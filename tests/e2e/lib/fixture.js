'use strict';
// fixture.js -- small building blocks the test files share: a practitioner
// on shift with a live event stream, an operator's console socket, a sample
// incident, and the "is the hub still serving?" check.

const assert = require('node:assert/strict');
const { GrpcClient, WsClient, is } = require('./clients');

let refCounter = 0;

// What a control room knows when it raises a query (IncidentDetails, in the
// camelCase shape both grpc-js and proto3 JSON take).
function sampleDetails(overrides = {}) {
  refCounter += 1;
  return {
    policeRef: `GMP-20261123-${String(400 + refCounter).padStart(4, '0')}`,
    priority: 'PRIORITY_URGENT',
    borough: 'Manchester',
    place: 'Piccadilly Gardens, by the tram stop',
    person: { familyName: 'Testperson', givenNames: 'Alex', ageYears: 34, postcode: 'M1 1AA' },
    concerns: 'Standing near the tram lines; says voices are telling them to hurt themselves',
    flags: ['CONCERN_FLAG_SELF_HARM'],
    question: 'Is this person known to services, and is there a crisis plan?',
    callsigns: ['MX21', 'MX22'],
    rcrp: 'RCRP_DECISION_UNDER_REVIEW',
    rcrpReason: 'awaiting clinical advice',
    ...overrides,
  };
}

// A practitioner with a gRPC client, a live Subscribe stream and a started
// shift. Waits until the hub reports them AVAILABLE (from StartShift's
// answer, or from their own status event if the stream was registered after).
async function practitionerOnShift(hub, id) {
  const client = new GrpcClient(hub.grpcAddress, hub.token(id), { name: id });
  const sub = client.subscribe('0');
  const resp = await client.call('StartShift', {});
  assert.equal(resp.status.userId, id, `StartShift answered for ${resp.status.userId}, not ${id}`);
  if (resp.status.state !== 'PRACTITIONER_STATE_AVAILABLE') {
    await sub.waitFor(
      is.status(id, 'PRACTITIONER_STATE_AVAILABLE'),
      2000,
      `${id} AVAILABLE (StartShift answered state ${resp.status.state}, connected=${resp.status.connected})`,
    );
  }
  return { id, client, sub, status: resp.status };
}

// An operator's console: WebSocket (JSON unless told), authenticated and
// subscribed to live events.
async function operatorConsole(hub, { id = 'op.one', protocol = 'mhtas.v1.json', subscribe = true } = {}) {
  const ws = await WsClient.connect(hub.wsUrl, { protocol, name: `${id} console` });
  const auth = await ws.auth(hub.token(id));
  assert.equal(auth.user && auth.user.id, id, `auth answered ${JSON.stringify(auth)}`);
  if (subscribe) await ws.subscribe('0');
  return ws;
}

// The hub is alive, /healthz says ok, and a fresh gRPC client and a fresh
// WebSocket still get normal answers. `label` says after what.
async function assertStillServing(hub, label) {
  assert.ok(hub.alive, `hub exited after ${label}: ${JSON.stringify(hub.exitInfo)}\n${hub.stderrTail()}`);
  const h = await hub.httpGet('/healthz');
  assert.equal(h.status, 200, `/healthz after ${label}: HTTP ${h.status} ${h.body}`);
  assert.equal(h.body.trim(), 'ok', `/healthz body after ${label}`);
  const c = new GrpcClient(hub.grpcAddress, hub.token('op.one'), { name: 'probe' });
  try {
    const who = await c.call('WhoAmI', {});
    assert.equal(who.user.id, 'op.one', `WhoAmI after ${label}`);
  } finally {
    c.close();
  }
  const ws = await WsClient.connect(hub.wsUrl, { name: 'probe ws' });
  try {
    const a = await ws.auth(hub.token('op.one'));
    assert.equal(a.user.id, 'op.one', `WebSocket auth after ${label}`);
  } finally {
    ws.close();
  }
}

// Closes whatever a test opened, ignoring errors (for after() hooks).
function closeAll(...things) {
  for (const t of things.flat()) {
    if (!t) continue;
    try {
      if (t.client && typeof t.client.close === 'function' && t.sub) t.client.close();
      else if (typeof t.close === 'function') t.close();
    } catch {
      /* best effort */
    }
  }
}

module.exports = { sampleDetails, practitionerOnShift, operatorConsole, assertStillServing, closeAll };
