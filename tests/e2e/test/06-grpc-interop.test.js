'use strict';
// 06 -- interoperability with a stock gRPC client (@grpc/grpc-js): every
// unary method of mhtas.v1.Hub called at least once with its status checked,
// Subscribe streaming with resume (after_seq: exactly the later events, no
// duplicates, none missing), the same resume over the WebSocket, and the
// binary "mhtas.v1.proto" WebSocket subprotocol.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startHub } = require('../lib/hub');
const { GrpcClient, WsClient, is, unaryMethodNames, grpcErrorText, eventKind } = require('../lib/clients');
const { sampleDetails, practitionerOnShift, closeAll } = require('../lib/fixture');

let hub;
const opened = [];
const called = new Set();

before(async () => {
  hub = await startHub({ name: 'interop', config: { routing: { strategy: 'linear', offer_timeout_ms: 10000 } } });
});

after(async () => {
  closeAll(opened);
  if (hub) await hub.stopChecked();
});

function client(id) {
  const c = new GrpcClient(hub.grpcAddress, hub.token(id), { name: id });
  opened.push(c);
  // Record every method called, to check the whole service was exercised.
  const call = c.call.bind(c);
  c.call = (method, req, opts) => {
    called.add(method);
    return call(method, req, opts);
  };
  return c;
}

async function expectCode(promise, code, what) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.code, code, `${what}: expected status ${code}, got ${grpcErrorText(e)}`);
    return true;
  });
}

const causesOf = (inc) => (inc.history || []).map((t) => t.cause);

test('every unary method through grpc-js', async () => {
  const op = client('op.one');
  const disp = client('disp.one');
  const sup = client('sup.one');

  // -- WhoAmI, every role
  for (const [c, id, role] of [
    [op, 'op.one', 'ROLE_OPERATOR'],
    [disp, 'disp.one', 'ROLE_DISPATCHER'],
    [sup, 'sup.one', 'ROLE_SUPERVISOR'],
  ]) {
    const who = await c.call('WhoAmI', {});
    assert.equal(who.user.id, id);
    assert.equal(who.user.role, role);
    assert.match(who.lastSeq, /^[0-9]+$/, 'lastSeq is a uint64 (string)');
    assert.deepEqual([...who.boroughs].sort(), ['Manchester', 'Oldham', 'Salford']);
  }

  const pa = await practitionerOnShift(hub, 'p.a');
  opened.push(pa);
  const pb = await practitionerOnShift(hub, 'p.b');
  opened.push(pb);
  called.add('StartShift');
  const paCall = (m, r) => (called.add(m), pa.client.call(m, r));
  const pbCall = (m, r) => (called.add(m), pb.client.call(m, r));

  // -- RaiseIncident, GetIncident, ListIncidents
  const details = sampleDetails({
    priority: 'PRIORITY_IMMEDIATE',
    person: { familyName: "O'Neill", givenNames: 'Siobhán', dateOfBirth: '1990-04-01', address: '1 Example Street', postcode: 'M4 5AB', nhsNumber: '9434765919' },
    flags: ['CONCERN_FLAG_WEAPON', 'CONCERN_FLAG_SUBSTANCE'],
    rcrp: 'RCRP_DECISION_POLICE_ATTEND_RISK_TO_LIFE',
    rcrpReason: 'knife seen',
  });
  const id1 = (await op.call('RaiseIncident', { details, idempotencyKey: 'interop-1' })).incident.id;
  const got = (await op.call('GetIncident', { incidentId: id1 })).incident;
  assert.equal(got.id, id1);
  for (const k of ['policeRef', 'priority', 'borough', 'place', 'concerns', 'question', 'rcrp', 'rcrpReason']) {
    assert.equal(got.details[k], details[k], `details.${k} round trip`);
  }
  assert.deepEqual(got.details.person, { ageYears: 0, ...details.person }, 'details.person round trip (UTF-8 and all)');
  assert.deepEqual(got.details.flags, details.flags);
  assert.deepEqual(got.details.callsigns, details.callsigns);
  assert.equal(got.provider, 'GMMH');
  assert.ok(Number(got.raisedAtMs) > 0, 'raisedAtMs');
  assert.ok(Number(got.slaDeadlineMs) > Number(got.raisedAtMs), 'slaDeadlineMs after raisedAtMs');
  await expectCode(op.call('GetIncident', { incidentId: '987654321' }), 5, 'GetIncident of an unknown id');

  const list = (await op.call('ListIncidents', {})).incidents;
  assert.ok(list.some((i) => i.id === id1), 'ListIncidents (all open) holds the new incident');
  const listOldham = (await op.call('ListIncidents', { borough: 'Oldham' })).incidents;
  assert.ok(!listOldham.some((i) => i.id === id1), 'ListIncidents filtered by borough');

  // -- Decline (p.a), Accept (p.b)
  await pa.sub.waitFor(is.offer(id1, 'p.a'), 3000, `the offer of ${id1} to p.a`);
  const mine = (await paCall('ListIncidents', { mineOnly: true })).incidents;
  assert.ok(Array.isArray(mine), 'ListIncidents mine_only answers a list');
  const declined = await paCall('Decline', { incidentId: id1, reason: 'on another call' });
  assert.deepEqual(declined, {}, 'DeclineResponse is empty');
  await pb.sub.waitFor(is.offer(id1, 'p.b'), 3000, `the re-offer of ${id1} to p.b after the decline`);
  const acc = (await pbCall('Accept', { incidentId: id1 })).incident;
  assert.equal(acc.state, 'INCIDENT_STATE_ACCEPTED');
  // p.a, who declined, can no longer take it.
  await assert.rejects(paCall('Accept', { incidentId: id1 }), (e) => {
    assert.ok([5, 7, 9].includes(e.code), `p.a accepting an incident p.b holds: ${grpcErrorText(e)}`);
    return true;
  });

  // -- PostMessage, idempotent by client_msg_id
  const m1 = (await pbCall('PostMessage', { incidentId: id1, text: 'Advice one', clientMsgId: 'c-1' })).message;
  const m1again = (await pbCall('PostMessage', { incidentId: id1, text: 'Advice one', clientMsgId: 'c-1' })).message;
  assert.equal(m1again.number, m1.number, 'a resend with the same client_msg_id is not posted twice');
  const msgs = (await op.call('GetIncident', { incidentId: id1 })).incident.messages;
  assert.equal(msgs.filter((m) => m.clientMsgId === 'c-1').length, 1, 'one copy on the record');
  await expectCode(pbCall('PostMessage', { incidentId: id1, text: '' }), 3, 'an empty message');

  // -- ProposeOutcome, AgreeOutcome (query back, then agree)
  await expectCode(
    pbCall('ProposeOutcome', { incidentId: id1, outcome: { codes: ['OUTCOME_CODE_S136_DETENTION'], summary: 's136 without details' } }),
    3,
    'S136_DETENTION without s136 details',
  );
  const prop = (await pbCall('ProposeOutcome', { incidentId: id1, outcome: { codes: ['OUTCOME_CODE_VOLUNTARY_AE'], summary: 'Agrees to go to A&E' } })).incident;
  assert.equal(prop.state, 'INCIDENT_STATE_OUTCOME_PROPOSED');
  const queried = await op.call('AgreeOutcome', { incidentId: id1, agree: false, query: 'Who will take her?', idempotencyKey: 'q-1' });
  assert.notEqual(queried.incident.state, 'INCIDENT_STATE_CLOSED', 'a query sends the proposal back');
  assert.ok(causesOf(queried.incident).includes('CAUSE_OUTCOME_QUERIED'), `history ${causesOf(queried.incident)}`);
  await pbCall('ProposeOutcome', { incidentId: id1, outcome: { codes: ['OUTCOME_CODE_VOLUNTARY_AE', 'OUTCOME_CODE_AMBULANCE_REQUESTED'], summary: 'Ambulance to A&E' } });
  const agreed = await op.call('AgreeOutcome', { incidentId: id1, agree: true, idempotencyKey: 'a-1' });
  assert.equal(agreed.incident.state, 'INCIDENT_STATE_CLOSED');
  assert.equal(typeof agreed.durable, 'boolean');
  const agreedAgain = await op.call('AgreeOutcome', { incidentId: id1, agree: true, idempotencyKey: 'a-1' });
  assert.equal(agreedAgain.incident.state, 'INCIDENT_STATE_CLOSED', 'a resend of the agreement answers the same');

  // -- Reassign (supervisor): back to the queue
  const id2 = (await op.call('RaiseIncident', { details: sampleDetails(), idempotencyKey: 'interop-2' })).incident.id;
  await pa.sub.waitFor(is.offer(id2, 'p.a'), 3000, `the offer of ${id2} to p.a`);
  await paCall('Accept', { incidentId: id2 });
  const re = (await sup.call('Reassign', { incidentId: id2, practitioner: '', reason: 'supervisor moves it' })).incident;
  assert.equal(re.id, id2);
  assert.ok(causesOf(re).includes('CAUSE_REASSIGNED'), `history ${causesOf(re)}`);
  assert.notEqual(re.state, 'INCIDENT_STATE_ACCEPTED', `after reassign to the queue: ${re.state}`);

  // -- CancelIncident
  const id3 = (await op.call('RaiseIncident', { details: sampleDetails({ borough: 'Oldham' }), idempotencyKey: 'interop-3' })).incident.id;
  const cancelled = (await op.call('CancelIncident', { incidentId: id3, reason: 'resolved at scene', idempotencyKey: 'cx-1' })).incident;
  assert.equal(cancelled.state, 'INCIDENT_STATE_CANCELLED');
  assert.equal(cancelled.cancelReason, 'resolved at scene');
  await expectCode(op.call('CancelIncident', { incidentId: id3, reason: 'again', idempotencyKey: 'cx-2' }), 9, 'cancelling a cancelled incident');

  // -- SetAvailability, EndShift (p.c, with nothing on)
  const pc = client('p.c');
  const pcSub = pc.subscribe('0');
  assert.ok(pcSub);
  await pc.call('StartShift', {});
  await expectCode(pc.call('SetAvailability', { paused: true, reason: '' }), 3, 'pausing without a reason');
  const paused = (await pc.call('SetAvailability', { paused: true, reason: 'comfort break' })).status;
  assert.equal(paused.state, 'PRACTITIONER_STATE_PAUSED');
  assert.equal(paused.pauseReason, 'comfort break');
  const resumed = (await pc.call('SetAvailability', { paused: false })).status;
  assert.equal(resumed.state, 'PRACTITIONER_STATE_AVAILABLE');
  const ended = (await pc.call('EndShift', {})).status;
  assert.equal(ended.state, 'PRACTITIONER_STATE_OFF_SHIFT');

  // -- GetBoard
  const board = (await sup.call('GetBoard', {})).board;
  const byId = Object.fromEntries(board.practitioners.map((p) => [p.userId, p]));
  assert.ok(byId['p.a'] && byId['p.b'], `the board lists p.a and p.b: ${JSON.stringify(Object.keys(byId))}`);
  assert.equal(byId['p.a'].connected, true);
  assert.ok(board.onShift >= 2, `onShift ${board.onShift}`);

  // -- Care records (30-care.test.js runs them against a real Redis): this
  // hub has no [cache], so a look-up that passes the rules is UNAVAILABLE
  // with the reason; police are refused; a share needs an incident held.
  const bg = {
    lawfulBasis: 'LAWFUL_BASIS_VITAL_INTERESTS',
    reason: 'interop',
    breakGlass: true,
    breakGlassReason: 'BREAK_GLASS_REASON_RISK_TO_LIFE',
    breakGlassText: 'interop test',
  };
  await assert.rejects(pbCall('GetCareSummary', { nhsNumber: '9434765919', ...bg }), (e) => {
    assert.equal(e.code, 14, grpcErrorText(e));
    assert.match(e.details, /no care-record cache is configured/);
    return true;
  });
  await expectCode(pbCall('SearchPersons', { familyName: 'Smith', dateOfBirth: '1980-01-01', ...bg }), 14, 'SearchPersons without a cache');
  await expectCode(
    pbCall('ShareWithPolice', { incidentId: id1, nhsNumber: '9434765919', parts: ['CARE_PART_RISKS'], summary: 'x', lawfulBasis: 'LAWFUL_BASIS_DIRECT_CARE', reason: 'r' }),
    9,
    'a share into a closed incident',
  );
  await expectCode(op.call('SearchPersons', { familyName: 'Smith', dateOfBirth: '1980-01-01', ...bg }), 7, 'an operator searching');
  const audit = await sup.call('ListAudit', {});
  assert.deepEqual(audit.entries, [], 'no audit records: nothing was looked up');
  await expectCode(op.call('ListAudit', {}), 7, 'an operator listing the audit trail');
});

test('GetIndicators (supervisors) counts what the first test did', async () => {
  // The first test raised 3 incidents: one PRIORITY_IMMEDIATE closed with
  // VOLUNTARY_AE + AMBULANCE_REQUESTED, one URGENT reassigned (open), one
  // URGENT cancelled.
  const sup = client('sup.one');
  await expectCode(client('op.one').call('GetIndicators', {}), 7, 'an operator asking for the indicators');
  const ind = (await sup.call('GetIndicators', {})).indicators;
  assert.equal(ind.raised, 3, `raised: ${JSON.stringify(ind)}`);
  assert.equal(ind.closed, 1, 'closed');
  assert.equal(ind.cancelled, 1, 'cancelled');
  const imm = ind.byPriority.find((p) => p.priority === 'PRIORITY_IMMEDIATE');
  assert.ok(imm, `byPriority has PRIORITY_IMMEDIATE: ${JSON.stringify(ind.byPriority)}`);
  assert.equal(imm.raised, 1);
  assert.equal(imm.toAccept.count, 1, 'one IMMEDIATE incident accepted');
  assert.equal(imm.toOutcome.count, 1, 'one IMMEDIATE incident with an agreed outcome');
  assert.ok(Number(imm.toAccept.p95Ms) >= Number(imm.toAccept.p50Ms), 'p95 >= p50');
  const outcomes = Object.fromEntries(ind.outcomes.map((o) => [o.code, o.count]));
  assert.equal(outcomes.OUTCOME_CODE_VOLUNTARY_AE, 1, `outcomes ${JSON.stringify(ind.outcomes)}`);
  assert.equal(outcomes.OUTCOME_CODE_AMBULANCE_REQUESTED, 1, `outcomes ${JSON.stringify(ind.outcomes)}`);
  assert.equal(ind.s136Detentions, 0);
  assert.equal(ind.divertedFromPolice, 0);
  // A window in the future holds nothing.
  const future = (await sup.call('GetIndicators', { fromMs: String(Date.now() + 3600e3), toMs: String(Date.now() + 7200e3) })).indicators;
  assert.equal(future.raised, 0, 'no incident raised in a future window');
});

test('Subscribe: live events, and resume after a seq gives exactly the later events', async () => {
  const op = client('op.one');
  const sub1 = op.subscribe('0');
  const before = BigInt((await op.call('WhoAmI', {})).lastSeq);

  // Some events: three incidents (nobody covers Oldham's provider, so they queue).
  const ids = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await op.call('RaiseIncident', { details: sampleDetails({ borough: 'Oldham' }), idempotencyKey: `sub-${i}` })).incident.id);
  }
  await sub1.waitFor(is.update(ids[2]), 3000, `the live stream to see incident ${ids[2]}`);
  const seqs1 = sub1.events.map((e) => BigInt(e.seq));
  assert.ok(seqs1.length >= 3, `at least one event per raise, got ${seqs1.length}`);
  assert.ok(seqs1[0] > before, `after_seq 0 means live only: first event ${seqs1[0]} is not after lastSeq ${before} at subscription`);
  for (let i = 1; i < seqs1.length; i++) assert.ok(seqs1[i] > seqs1[i - 1], `seqs strictly increase: ${seqs1.join(',')}`);
  for (const e of sub1.events) assert.ok(Number(e.atMs) > 0, 'every event has at_ms');

  // Resume after the first incident's first event.
  const cut = seqs1[0];
  const last = seqs1[seqs1.length - 1];
  const sub2 = op.subscribe(String(cut));
  await sub2.waitFor((e) => BigInt(e.seq) >= last, 3000, `the resumed stream to reach seq ${last}`);
  const seqs2 = sub2.events.map((e) => BigInt(e.seq)).filter((s) => s <= last);
  assert.deepEqual(
    seqs2.map(String),
    seqs1.filter((s) => s > cut).map(String),
    'the resumed stream holds exactly the events after the cut, in order',
  );
  assert.equal(new Set(sub2.events.map((e) => e.seq)).size, sub2.events.length, 'no duplicates in the resumed stream');
  // Replayed events are the same events.
  const bySeq1 = new Map(sub1.events.map((e) => [e.seq, e]));
  for (const e of sub2.events.filter((x) => BigInt(x.seq) <= last)) {
    assert.equal(eventKind(e), eventKind(bySeq1.get(e.seq)), `event ${e.seq} kind`);
    assert.equal(e.atMs, bySeq1.get(e.seq).atMs, `event ${e.seq} at_ms`);
  }

  // A new event reaches both streams exactly once.
  const id4 = (await op.call('RaiseIncident', { details: sampleDetails({ borough: 'Oldham' }), idempotencyKey: 'sub-4' })).incident.id;
  await sub1.waitFor(is.update(id4), 3000, 'the live stream to see the 4th incident');
  await sub2.waitFor(is.update(id4), 3000, 'the resumed stream to see the 4th incident');
  const c1 = (await op.call('CancelIncident', { incidentId: id4, reason: 'barrier', idempotencyKey: 'sub-4-cx' })).incident;
  await sub1.waitFor(is.update(id4, { state: 'INCIDENT_STATE_CANCELLED' }), 3000, 'cancel on the live stream');
  await sub2.waitFor(is.update(id4, { state: 'INCIDENT_STATE_CANCELLED' }), 3000, 'cancel on the resumed stream');
  assert.equal(c1.state, 'INCIDENT_STATE_CANCELLED');
  const tail1 = sub1.events.filter((e) => BigInt(e.seq) > last).map((e) => e.seq);
  const tail2 = sub2.events.filter((e) => BigInt(e.seq) > last).map((e) => e.seq);
  assert.deepEqual(tail2, tail1, 'both streams carry the same new events');
  assert.equal(new Set(sub2.events.map((e) => e.seq)).size, sub2.events.length, 'still no duplicates');

  // WhoAmI's last_seq has caught up with what was delivered.
  const lastSeq = BigInt((await op.call('WhoAmI', {})).lastSeq);
  const maxSeen = sub1.events.reduce((m, e) => (BigInt(e.seq) > m ? BigInt(e.seq) : m), 0n);
  assert.ok(lastSeq >= maxSeen, `WhoAmI lastSeq ${lastSeq} < seq seen ${maxSeen}`);

  // The same resume over the WebSocket (JSON) gives the same events.
  const ws = await WsClient.connect(hub.wsUrl, { name: 'op ws resume' });
  opened.push(ws);
  await ws.auth(hub.token('op.one'));
  const ack = await ws.subscribe(String(cut));
  assert.ok(BigInt(ack.lastSeq || '0') >= maxSeen, `subscribe ack lastSeq ${ack.lastSeq}`);
  await ws.waitFor((e) => BigInt(e.seq) >= maxSeen, 3000, `the WebSocket replay to reach seq ${maxSeen}`);
  const wsSeqs = ws.events.map((e) => e.seq).filter((s) => BigInt(s) <= maxSeen);
  const grpcSeqs = sub1.events.map((e) => e.seq).filter((s) => BigInt(s) > cut && BigInt(s) <= maxSeen);
  assert.deepEqual(wsSeqs, grpcSeqs, 'WebSocket resume = gRPC resume');

  sub1.cancel();
  sub2.cancel();
  const st = await sub2.waitStatus(3000);
  assert.equal(st.code, 1, 'a cancelled stream ends CANCELLED on the client');
  // The connection is fine after cancelling streams.
  assert.equal((await op.call('WhoAmI', {})).user.id, 'op.one');
});

test('the binary WebSocket subprotocol (mhtas.v1.proto)', async () => {
  const ws = await WsClient.connect(hub.wsUrl, { protocol: 'mhtas.v1.proto', name: 'proto ws' });
  opened.push(ws);
  const auth = await ws.auth(hub.token('op.one'));
  assert.equal(auth.user.id, 'op.one');
  assert.equal(auth.user.role, 'ROLE_OPERATOR');
  await ws.subscribe('0');
  const inc = (await ws.call('raiseIncident', { details: sampleDetails({ borough: 'Salford' }), idempotencyKey: 'proto-1' })).incident;
  assert.match(inc.id, /^[1-9][0-9]*$/);
  assert.equal(inc.details.borough, 'Salford');
  await ws.waitFor(is.update(inc.id), 3000, 'the event for the incident on the binary socket');
  const got = await ws.call('getIncident', { incidentId: inc.id });
  assert.equal(got.incident.id, inc.id);
  assert.equal(ws.decodeErrors.length, 0, `undecodable frames: ${ws.decodeErrors.join('; ')}`);
});

test('every unary method of mhtas.v1.Hub was called through grpc-js', () => {
  const missing = unaryMethodNames().filter((m) => !called.has(m));
  assert.deepEqual(missing, [], `unary methods not called: ${missing.join(', ')}`);
});
