'use strict';
// 02 -- the end-to-end flow of the issue, across both front ends:
//
//   operator (WebSocket, proto3 JSON) raises an incident
//   practitioner A (gRPC, grpc-js; first in the users file, strategy linear)
//     is offered it and lets the offer time out (offer_timeout_ms 1500)
//   practitioner B is offered it and accepts
//   operator -> practitioner message over WS, practitioner -> operator over
//     gRPC; each side sees the other's message as an event
//   B proposes REFER_CMHT + NO_POLICE_ATTENDANCE, the operator agrees
//   both sides see CLOSED; the history holds every transition, timestamped.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startHub } = require('../lib/hub');
const { is, eventIncident } = require('../lib/clients');
const { sampleDetails, practitionerOnShift, operatorConsole, closeAll } = require('../lib/fixture');

const OFFER_TIMEOUT_MS = 1500;

let hub;
const opened = [];

before(async () => {
  hub = await startHub({ name: 'flow', config: { routing: { strategy: 'linear', offer_timeout_ms: OFFER_TIMEOUT_MS } } });
});

after(async () => {
  closeAll(opened);
  if (hub) await hub.stopChecked();
});

test('raise -> offer to A -> time-out -> offer to B -> accept -> messages -> outcome -> closed', async () => {
  const t0 = Date.now();
  const op = await operatorConsole(hub);
  opened.push(op);
  const pa = await practitionerOnShift(hub, 'p.a');
  opened.push(pa);
  const pb = await practitionerOnShift(hub, 'p.b');
  opened.push(pb);

  // ---- raise (WebSocket JSON)
  const details = sampleDetails({ policeRef: 'GMP-20261123-0412', borough: 'Manchester' });
  const raised = await op.call('raiseIncident', { details, idempotencyKey: 'flow-raise-1' });
  const inc = raised.incident;
  assert.ok(inc && /^[1-9][0-9]*$/.test(inc.id), `raiseIncident answered an incident with a uint64 id as a string: ${JSON.stringify(raised)}`);
  const id = inc.id;
  // Canonical proto3 JSON: 64-bit integers are strings, enums are names.
  assert.equal(typeof inc.id, 'string', 'uint64 id is a JSON string');
  assert.equal(typeof inc.raisedAtMs, 'string', 'int64 raisedAtMs is a JSON string');
  assert.equal(inc.details.priority, 'PRIORITY_URGENT', 'enums are names');
  assert.equal(inc.raisedBy, 'op.one');
  assert.equal(inc.provider, 'GMMH', 'Manchester is served by GMMH');
  assert.equal(inc.details.policeRef, 'GMP-20261123-0412');
  assert.ok(['INCIDENT_STATE_QUEUED', 'INCIDENT_STATE_OFFERED'].includes(inc.state), `state after raise: ${inc.state}`);

  // ---- A is offered it first (linear: A is first in the users file)
  const offerA = await pa.sub.waitFor(is.offer(id), 3000, `an offer of incident ${id} to p.a`);
  const tOfferA = Date.now();
  assert.equal(offerA.offer.incident.practitioner, 'p.a');
  assert.equal(offerA.offer.incident.state, 'INCIDENT_STATE_OFFERED');
  const deadlineA = Number(offerA.offer.deadlineMs);
  assert.ok(
    deadlineA >= tOfferA + OFFER_TIMEOUT_MS - 1000 && deadlineA <= tOfferA + OFFER_TIMEOUT_MS + 1000,
    `offer deadline ${deadlineA} should be about now (${tOfferA}) + ${OFFER_TIMEOUT_MS} ms`,
  );
  // The offer carries what the practitioner needs to decide.
  assert.equal(offerA.offer.incident.details.policeRef, 'GMP-20261123-0412');
  assert.equal(offerA.offer.incident.details.borough, 'Manchester');
  const seenOffer = await op.waitFor(is.update(id, { state: 'INCIDENT_STATE_OFFERED', practitioner: 'p.a' }), 3000, 'the console to see the offer to p.a');
  assert.equal(typeof seenOffer.seq, 'string', 'event seq is a JSON string');
  assert.equal(typeof seenOffer.atMs, 'string', 'event atMs is a JSON string');
  assert.equal(pb.sub.events.filter(is.offer(id)).length, 0, 'p.b must not be offered the incident while p.a holds the offer');

  // ---- A lets it time out; B gets the re-offer
  const timeout = await op.waitFor(
    is.update(id, { cause: 'CAUSE_OFFER_TIMEOUT' }),
    OFFER_TIMEOUT_MS + 3000,
    `the console to see OFFER_TIMEOUT for incident ${id}`,
  );
  const waited = Date.now() - tOfferA;
  assert.ok(waited >= OFFER_TIMEOUT_MS - 300, `the offer timed out after ${waited} ms, before offer_timeout_ms ${OFFER_TIMEOUT_MS}`);
  assert.equal(timeout.incident.transition.from, 'INCIDENT_STATE_OFFERED');
  assert.equal(timeout.incident.transition.to, 'INCIDENT_STATE_QUEUED');

  const offerB = await pb.sub.waitFor(is.offer(id), 3000, `the re-offer of incident ${id} to p.b`);
  assert.equal(offerB.offer.incident.practitioner, 'p.b');
  assert.ok(Number(offerB.offer.deadlineMs) > deadlineA, 'the re-offer has a new deadline');
  await op.waitFor(is.update(id, { state: 'INCIDENT_STATE_OFFERED', practitioner: 'p.b' }), 3000, 'the console to see the re-offer to p.b');

  // ---- B accepts
  const accepted = await pb.client.call('Accept', { incidentId: id });
  assert.equal(accepted.incident.id, id);
  assert.equal(accepted.incident.state, 'INCIDENT_STATE_ACCEPTED');
  assert.equal(accepted.incident.practitioner, 'p.b');
  assert.equal(accepted.incident.practitionerName, 'Ben Practitioner');
  await op.waitFor(is.update(id, { state: 'INCIDENT_STATE_ACCEPTED', practitioner: 'p.b' }), 3000, 'the console to see ACCEPTED by p.b');
  // A, whose offer lapsed, cannot take it any more.
  await assert.rejects(pa.client.call('Accept', { incidentId: id }), (e) => {
    // Refused; NOT_FOUND, PERMISSION_DENIED or FAILED_PRECONDITION all say so.
    assert.ok([5, 7, 9].includes(e.code), `p.a accepting a lapsed offer: expected NOT_FOUND, PERMISSION_DENIED or FAILED_PRECONDITION, got ${e.code} ${e.details}`);
    return true;
  });

  // ---- operator -> practitioner (WebSocket)
  const opText = 'Officers are with him now. He has a lighter and is calm. What do you advise?';
  const posted = await op.call('postMessage', { incidentId: id, text: opText, clientMsgId: 'op-msg-1' });
  assert.equal(posted.message.text, opText);
  assert.equal(posted.message.fromUser, 'op.one');
  assert.equal(posted.message.fromRole, 'ROLE_OPERATOR');
  const gotByB = await pb.sub.waitFor(is.message(id, { text: opText }), 3000, 'p.b to receive the operator message');
  assert.equal(gotByB.message.fromUser, 'op.one');
  assert.equal(gotByB.message.number, posted.message.number);

  // ---- practitioner -> operator (gRPC); the first advice
  const advice = 'Known to the Central Manchester CMHT, care coordinator on shift. Crisis plan: calm, low stimulus; he responds to his first name.';
  const reply = await pb.client.call('PostMessage', { incidentId: id, text: advice, clientMsgId: 'pb-msg-1' });
  assert.equal(reply.message.fromUser, 'p.b');
  assert.equal(reply.message.fromRole, 'ROLE_PRACTITIONER');
  assert.ok(reply.message.number > posted.message.number, 'messages are numbered in order within the incident');
  const gotByOp = await op.waitFor(is.message(id, { text: advice }), 3000, 'the console to receive the practitioner message');
  assert.equal(gotByOp.message.fromUser, 'p.b');
  assert.equal(gotByOp.message.fromName, 'Ben Practitioner');
  await op.waitFor(is.update(id, { cause: 'CAUSE_FIRST_ADVICE', state: 'INCIDENT_STATE_ADVISING' }), 3000, 'FIRST_ADVICE (ADVISING) on the console');

  // ---- B proposes the outcome
  const proposed = await pb.client.call('ProposeOutcome', {
    incidentId: id,
    outcome: {
      codes: ['OUTCOME_CODE_REFER_CMHT', 'OUTCOME_CODE_NO_POLICE_ATTENDANCE'],
      summary: 'Refer to CMHT for a visit tomorrow; no police attendance needed, crisis line number given.',
    },
  });
  assert.equal(proposed.incident.state, 'INCIDENT_STATE_OUTCOME_PROPOSED');
  assert.deepEqual(proposed.incident.outcome.codes, ['OUTCOME_CODE_REFER_CMHT', 'OUTCOME_CODE_NO_POLICE_ATTENDANCE']);
  assert.equal(proposed.incident.outcome.proposedBy, 'p.b');
  const seenProposal = await op.waitFor(is.update(id, { state: 'INCIDENT_STATE_OUTCOME_PROPOSED' }), 3000, 'the console to see the proposal');
  assert.deepEqual(eventIncident(seenProposal).outcome.codes, ['OUTCOME_CODE_REFER_CMHT', 'OUTCOME_CODE_NO_POLICE_ATTENDANCE']);

  // ---- the operator agrees
  const agreed = await op.call('agreeOutcome', { incidentId: id, agree: true, idempotencyKey: 'flow-agree-1' });
  assert.equal(agreed.incident.state, 'INCIDENT_STATE_CLOSED');
  assert.equal(agreed.incident.outcome.agreedBy, 'op.one');
  assert.ok(Number(agreed.incident.outcome.agreedAtMs) >= t0, 'agreedAtMs is set');

  // ---- both sides see CLOSED
  const closedOp = await op.waitFor(is.update(id, { state: 'INCIDENT_STATE_CLOSED' }), 3000, 'the console to see CLOSED');
  const closedB = await pb.sub.waitFor(is.update(id, { state: 'INCIDENT_STATE_CLOSED' }), 3000, 'p.b to see CLOSED');
  assert.equal(closedOp.incident.transition.cause, 'CAUSE_OUTCOME_AGREED');
  assert.equal(closedB.incident.transition.cause, 'CAUSE_OUTCOME_AGREED');

  // ---- the history: every transition, in order, timestamped
  const viaGrpc = (await pb.client.call('GetIncident', { incidentId: id })).incident;
  const viaWs = (await op.call('getIncident', { incidentId: id })).incident;
  const now = Date.now();
  for (const [who, got] of [['p.b over gRPC', viaGrpc], ['op.one over WebSocket', viaWs]]) {
    assert.equal(got.state, 'INCIDENT_STATE_CLOSED', `${who}: state`);
    const h = got.history || [];
    const causes = h.map((t) => t.cause);
    const expected = [
      ['CAUSE_RAISED', 'INCIDENT_STATE_NEW', undefined],
      ['CAUSE_QUEUED', 'INCIDENT_STATE_QUEUED', undefined],
      ['CAUSE_OFFERED', 'INCIDENT_STATE_OFFERED', 'p.a'],
      ['CAUSE_OFFER_TIMEOUT', 'INCIDENT_STATE_QUEUED', 'p.a'],
      ['CAUSE_OFFERED', 'INCIDENT_STATE_OFFERED', 'p.b'],
      ['CAUSE_ACCEPTED', 'INCIDENT_STATE_ACCEPTED', 'p.b'],
      ['CAUSE_FIRST_ADVICE', 'INCIDENT_STATE_ADVISING', undefined],
      ['CAUSE_OUTCOME_PROPOSED', 'INCIDENT_STATE_OUTCOME_PROPOSED', undefined],
      ['CAUSE_OUTCOME_AGREED', 'INCIDENT_STATE_CLOSED', undefined],
    ];
    // In this order (other transitions may sit between, none is missing).
    let j = 0;
    let last = null;
    for (const t of h) {
      if (j < expected.length && t.cause === expected[j][0]) {
        const [cause, to, practitioner] = expected[j];
        assert.equal(t.to, to, `${who}: ${cause} should go to ${to}; history ${JSON.stringify(causes)}`);
        if (practitioner) assert.equal(t.practitioner, practitioner, `${who}: practitioner on ${cause} #${j}`);
        const at = Number(t.atMs);
        assert.ok(at >= t0 - 1000 && at <= now + 1000, `${who}: ${cause} at_ms ${t.atMs} is not a time during this test`);
        if (last) {
          assert.ok(at >= Number(last.atMs), `${who}: ${cause} at ${at} is before the previous transition at ${last.atMs}`);
          assert.ok(BigInt(t.seq) > BigInt(last.seq), `${who}: ${cause} seq ${t.seq} is not after ${last.seq}`);
        }
        last = t;
        j++;
      }
    }
    assert.equal(j, expected.length, `${who}: history ${JSON.stringify(causes)} lacks ${expected.slice(j).map((x) => x[0]).join(', ')}`);
    const offerTimeout = h.find((t) => t.cause === 'CAUSE_OFFER_TIMEOUT');
    assert.equal(offerTimeout.actor, 'hub', `${who}: OFFER_TIMEOUT is the hub's doing`);
    assert.equal(h.find((t) => t.cause === 'CAUSE_ACCEPTED').actor, 'p.b', `${who}: ACCEPTED actor`);
    assert.equal(h.find((t) => t.cause === 'CAUSE_OUTCOME_AGREED').actor, 'op.one', `${who}: OUTCOME_AGREED actor`);
  }
  // Both messages are on the record (GetIncident carries messages).
  const texts = (viaWs.messages || []).map((m) => m.text);
  assert.deepEqual(texts, [opText, advice], 'the incident record holds both messages in order');

  // A was offered the incident exactly once and never held it.
  assert.equal(pa.sub.events.filter(is.offer(id)).length, 1, 'p.a got exactly one offer');
  assert.equal(pb.sub.events.filter(is.offer(id)).length, 1, 'p.b got exactly one offer');
});

test('the raise is idempotent: the same idempotency key gives the same incident', async () => {
  const op = await operatorConsole(hub, { subscribe: false });
  opened.push(op);
  const details = sampleDetails({ borough: 'Oldham' });
  const a = await op.call('raiseIncident', { details, idempotencyKey: 'flow-idem-1' });
  const b = await op.call('raiseIncident', { details, idempotencyKey: 'flow-idem-1' });
  assert.equal(b.incident.id, a.incident.id, 'a resend with the same key must not raise a second incident');
  const c = await op.call('raiseIncident', { details: sampleDetails({ borough: 'Oldham' }), idempotencyKey: 'flow-idem-2' });
  assert.notEqual(c.incident.id, a.incident.id);
});
