'use strict';
// 07 -- never losing anything: the hub journals every state change under
// [hub] data_dir and answers a state-changing request only once it is on
// disk ("persist, then acknowledge"). So:
//   * after a clean restart (SIGTERM) every incident is back as it was:
//     state, details, history, messages, outcome;
//   * after a crash (SIGKILL) everything that was acknowledged is back;
//   * an agreed outcome is reported durable;
//   * a resend with the same idempotency key after a restart is recognised;
//   * ids and event sequence numbers keep growing across restarts.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startHub } = require('../lib/hub');
const { GrpcClient, is } = require('../lib/clients');
const { sampleDetails, practitionerOnShift, operatorConsole, closeAll } = require('../lib/fixture');

let hub;
const opened = [];

before(async () => {
  hub = await startHub({ name: 'restart', config: { routing: { strategy: 'linear', offer_timeout_ms: 10000 } } });
});

after(async () => {
  closeAll(opened);
  if (hub) await hub.stopChecked();
});

function grpc(id) {
  const c = new GrpcClient(hub.grpcAddress, hub.token(id), { name: id });
  opened.push(c);
  return c;
}

// What must survive: everything but the live-only fields.
function essentials(inc) {
  return {
    id: inc.id,
    state: inc.state,
    details: inc.details,
    raisedBy: inc.raisedBy,
    raisedAtMs: inc.raisedAtMs,
    practitioner: inc.practitioner,
    provider: inc.provider,
    history: (inc.history || []).map((t) => ({ seq: t.seq, atMs: t.atMs, from: t.from, to: t.to, cause: t.cause, actor: t.actor, practitioner: t.practitioner })),
    messages: (inc.messages || []).map((m) => ({ number: m.number, fromUser: m.fromUser, text: m.text, atMs: m.atMs })),
    outcome: inc.outcome && { codes: inc.outcome.codes, summary: inc.outcome.summary, proposedBy: inc.outcome.proposedBy, agreedBy: inc.outcome.agreedBy, agreedAtMs: inc.outcome.agreedAtMs },
    cancelReason: inc.cancelReason,
  };
}

test('a clean restart brings back every incident as it was; a crash loses nothing acknowledged', async () => {
  // ---- some history: a closed incident with messages and an outcome, a
  // queued one (Oldham: nobody from its provider on shift), a cancelled one.
  const op = await operatorConsole(hub);
  opened.push(op);
  const pa = await practitionerOnShift(hub, 'p.a');
  opened.push(pa);

  const closedId = (await op.call('raiseIncident', { details: sampleDetails(), idempotencyKey: 'rs-closed' })).incident.id;
  await pa.sub.waitFor(is.offer(closedId, 'p.a'), 3000, `the offer of ${closedId} to p.a`);
  await pa.client.call('Accept', { incidentId: closedId });
  await op.call('postMessage', { incidentId: closedId, text: 'What do you know about him?', clientMsgId: 'rs-m1' });
  await pa.client.call('PostMessage', { incidentId: closedId, text: 'Known to the CMHT; crisis plan on file.', clientMsgId: 'rs-m2' });
  await pa.client.call('ProposeOutcome', {
    incidentId: closedId,
    outcome: { codes: ['OUTCOME_CODE_REFER_CRISIS_TEAM', 'OUTCOME_CODE_NO_POLICE_ATTENDANCE'], summary: 'Crisis team to visit tonight.' },
  });
  const agreed = await op.call('agreeOutcome', { incidentId: closedId, agree: true, idempotencyKey: 'rs-agree' });
  assert.equal(agreed.incident.state, 'INCIDENT_STATE_CLOSED');
  assert.equal(agreed.durable, true, 'an agreed outcome is answered durable (on stable storage)');

  const queuedId = (await op.call('raiseIncident', { details: sampleDetails({ borough: 'Oldham' }), idempotencyKey: 'rs-queued' })).incident.id;
  const cancelledId = (await op.call('raiseIncident', { details: sampleDetails({ borough: 'Oldham' }), idempotencyKey: 'rs-cancelled' })).incident.id;
  await op.call('cancelIncident', { incidentId: cancelledId, reason: 'caller rang back, all fine', idempotencyKey: 'rs-cx' });

  // Snapshots through gRPC on both sides of the restart (grpc-js fills in
  // defaults; proto3 JSON omits them), so they compare field for field.
  const opBefore = grpc('op.one');
  const beforeRestart = {};
  for (const id of [closedId, queuedId, cancelledId]) beforeRestart[id] = essentials((await opBefore.call('GetIncident', { incidentId: id })).incident);
  assert.equal(beforeRestart[closedId].messages.length, 2);
  const seqBefore = BigInt((await opBefore.call('WhoAmI', {})).lastSeq);
  closeAll(opened.splice(0));

  // ---- clean restart
  const stopped = await hub.restart();
  assert.ok(stopped.alive, 'the hub came back');
  const op2 = grpc('op.one');
  for (const id of [closedId, queuedId, cancelledId]) {
    const inc = (await op2.call('GetIncident', { incidentId: id })).incident;
    assert.deepEqual(essentials(inc), beforeRestart[id], `incident ${id} after a clean restart`);
  }
  const seqAfter = BigInt((await op2.call('WhoAmI', {})).lastSeq);
  assert.ok(seqAfter >= seqBefore, `last_seq went back from ${seqBefore} to ${seqAfter} across a restart`);
  // Still routable: the queued incident is listed as open.
  const open = (await op2.call('ListIncidents', {})).incidents.map((i) => i.id);
  assert.ok(open.includes(queuedId), `the queued incident is open after the restart: ${open}`);
  assert.ok(!open.includes(closedId) && !open.includes(cancelledId), 'closed and cancelled incidents are not open');

  // ---- a resend after the restart is recognised
  const again = (await op2.call('RaiseIncident', { details: sampleDetails({ borough: 'Oldham' }), idempotencyKey: 'rs-queued' })).incident;
  assert.equal(again.id, queuedId, 'RaiseIncident resent with the same idempotency key after a restart');

  // ---- new ids and seqs keep growing
  const sub = op2.subscribe('0');
  const freshId = (await op2.call('RaiseIncident', { details: sampleDetails({ borough: 'Oldham' }), idempotencyKey: 'rs-fresh' })).incident.id;
  assert.ok(![closedId, queuedId, cancelledId].includes(freshId), `id ${freshId} was reused`);
  assert.ok(BigInt(freshId) > BigInt(cancelledId), `ids keep growing: ${freshId} after ${cancelledId}`);
  const ev = await sub.waitFor(is.update(freshId), 3000, `the event for incident ${freshId}`);
  assert.ok(BigInt(ev.seq) > seqBefore, `event seq ${ev.seq} is not after the last seq before the restart (${seqBefore})`);

  // ---- crash: acknowledged means on disk
  const crashId = (await op2.call('RaiseIncident', { details: sampleDetails({ borough: 'Oldham', place: 'acknowledged just before the crash' }), idempotencyKey: 'rs-crash' })).incident.id;
  const crashBefore = essentials((await op2.call('GetIncident', { incidentId: crashId })).incident);
  closeAll(opened.splice(0));
  await hub.restart({ kill: true });
  const op3 = grpc('op.one');
  const crashAfter = essentials((await op3.call('GetIncident', { incidentId: crashId })).incident);
  assert.deepEqual(crashAfter, crashBefore, `incident ${crashId}, acknowledged before a SIGKILL`);
  const closedAfterCrash = essentials((await op3.call('GetIncident', { incidentId: closedId })).incident);
  assert.deepEqual(closedAfterCrash, beforeRestart[closedId], 'the closed incident after the crash too');
});
