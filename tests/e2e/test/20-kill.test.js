'use strict';
// 20 -- the kill test: "nothing acknowledged is ever lost".
//
// Several pipelines drive incidents to an agreed outcome as fast as the hub
// answers (raise -> the practitioner accepts -> proposes -> the operator
// agrees), while the hub is killed with SIGKILL at a random instant. After
// each restart (same journal directory) the test checks, over everything the
// hub holds:
//   * every outcome whose AgreeOutcome was acknowledged is there, CLOSED,
//     with that outcome, exactly once;
//   * every acknowledged raise is there exactly once;
//   * nothing phantom: every incident is one the test raised, no police
//     reference appears twice;
//   * the hub restarted at all (a corrupt journal refuses to start).
// Kills: MHTAS_KILLS (default 200; tests/run-all.sh runs fewer under ASan).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');

const { startHub } = require('../lib/hub');
const { GrpcClient } = require('../lib/clients');
const { sampleDetails } = require('../lib/fixture');

const KILLS = Number(process.env.MHTAS_KILLS || 200);
const PIPELINES = 4;
const SEED = Number(process.env.MHTAS_KILL_SEED || 20261123);

// A small seeded generator, so a failing run can be repeated (MHTAS_KILL_SEED).
let rng = SEED >>> 0;
function rand() {
  rng ^= rng << 13;
  rng >>>= 0;
  rng ^= rng >>> 17;
  rng ^= rng << 5;
  rng >>>= 0;
  return rng / 4294967296;
}

let hub;
after(async () => {
  if (hub) await hub.stop();
});

const raisedAcked = new Set();   // police refs whose RaiseIncident was answered OK
const agreedAcked = new Set();   // police refs whose AgreeOutcome was answered OK and durable
const sent = new Set();          // every police ref the test ever sent

function clients() {
  const op = new GrpcClient(hub.grpcAddress, hub.token('op.one'), { name: 'op' });
  const pr = new GrpcClient(hub.grpcAddress, hub.token('p.a'), { name: 'p.a' });
  return { op, pr };
}

// One incident through its whole life. Any error ends the pipeline (the hub
// is being killed: that is the point); acknowledged steps are recorded.
async function oneOutcome(c, ref) {
  sent.add(ref);
  const details = sampleDetails({ policeRef: ref });
  const r = await c.op.call('RaiseIncident', { details, idempotencyKey: `raise-${ref}` }, { deadlineMs: 3000 });
  raisedAcked.add(ref);
  const id = r.incident.id;
  await c.pr.call('Accept', { incidentId: id }, { deadlineMs: 3000 });
  await c.pr.call('ProposeOutcome', {
    incidentId: id,
    outcome: { codes: ['OUTCOME_CODE_REFER_CMHT', 'OUTCOME_CODE_NO_POLICE_ATTENDANCE'], summary: 'CMHT same-day visit' },
  }, { deadlineMs: 3000 });
  const a = await c.op.call('AgreeOutcome', { incidentId: id, agree: true, idempotencyKey: `agree-${ref}` }, { deadlineMs: 3000 });
  assert.equal(a.durable, true, `AgreeOutcome for ${ref} answered without durable=true`);
  agreedAcked.add(ref);
}

async function pipeline(c, cycle, lane, stop) {
  for (let i = 0; !stop.done; i++) {
    try {
      await oneOutcome(c, `K-${cycle}-${lane}-${i}`);
    } catch (e) {
      if (!stop.done && hub.alive) throw e; // a failure that is not the kill
      return;
    }
  }
}

async function verify(cycle) {
  const op = new GrpcClient(hub.grpcAddress, hub.token('op.one'), { name: 'verify' });
  try {
    const list = await op.call('ListIncidents', { includeClosed: true }, { deadlineMs: 10000 });
    const byRef = new Map();
    for (const inc of list.incidents) {
      const ref = inc.details.policeRef;
      assert.ok(sent.has(ref), `cycle ${cycle}: phantom incident ${inc.id} with police ref ${ref}`);
      assert.ok(!byRef.has(ref), `cycle ${cycle}: police ref ${ref} recorded twice (${byRef.get(ref) && byRef.get(ref).id}, ${inc.id})`);
      byRef.set(ref, inc);
    }
    for (const ref of raisedAcked) {
      assert.ok(byRef.has(ref), `cycle ${cycle}: acknowledged raise ${ref} is missing after the restart`);
    }
    for (const ref of agreedAcked) {
      const inc = byRef.get(ref);
      assert.ok(inc, `cycle ${cycle}: acknowledged outcome ${ref} is missing`);
      assert.equal(inc.state, 'INCIDENT_STATE_CLOSED', `cycle ${cycle}: ${ref} acknowledged as agreed but ${inc.state}`);
      assert.deepEqual(inc.outcome.codes, ['OUTCOME_CODE_REFER_CMHT', 'OUTCOME_CODE_NO_POLICE_ATTENDANCE'],
        `cycle ${cycle}: ${ref} outcome codes`);
      assert.equal(inc.outcome.agreedBy, 'op.one', `cycle ${cycle}: ${ref} agreed by`);
      const agreed = inc.history.filter((t) => t.cause === 'CAUSE_OUTCOME_AGREED');
      assert.equal(agreed.length, 1, `cycle ${cycle}: ${ref} has ${agreed.length} OUTCOME_AGREED transitions`);
    }
    // Withdraw what the kill left half-done, so the next cycle starts with a
    // free practitioner (a cancel is a state change like any other).
    for (const inc of list.incidents) {
      if (inc.state !== 'INCIDENT_STATE_CLOSED' && inc.state !== 'INCIDENT_STATE_CANCELLED') {
        await op.call('CancelIncident', { incidentId: inc.id, reason: 'kill test: left half-done by the kill' });
      }
    }
    return list.incidents.length;
  } finally {
    op.close();
  }
}

test(`SIGKILL at random instants, ${KILLS} times: every acknowledged outcome survives exactly once`, { timeout: 30 * 60 * 1000 }, async () => {
  hub = await startHub({
    name: 'kill',
    config: { routing: { strategy: 'linear', offer_timeout_ms: 60000, wrap_up_ms: 0, disconnect_grace_ms: 600000 } },
    users: [
      { id: 'p.a', name: 'Asha Practitioner', role: 'practitioner', provider: 'GMMH', skills: ['camhs'], capacity: 50 },
      { id: 'op.one', name: 'Olu Operator', role: 'operator' },
      { id: 'sup.one', name: 'Sam Supervisor', role: 'supervisor' },
    ],
  });
  let total = 0;
  for (let cycle = 0; cycle < KILLS; cycle++) {
    const c = clients();
    const start = await c.pr.call('StartShift', {});
    assert.ok(start.status, 'StartShift answered');
    const sub = c.pr.subscribe('0'); // connected: offers can reach p.a
    const stop = { done: false };
    const lanes = [];
    for (let lane = 0; lane < PIPELINES; lane++) lanes.push(pipeline(c, cycle, lane, stop));
    // Kill at a random instant 5..150 ms into the work.
    await new Promise((r) => setTimeout(r, 5 + Math.floor(rand() * 145)));
    stop.done = true;
    await hub.kill();
    await Promise.all(lanes);
    sub.cancel();
    c.op.close();
    c.pr.close();
    await hub.restart(); // the process is already dead: this starts it again
    total = await verify(cycle);
  }
  assert.ok(agreedAcked.size > KILLS / 2, `only ${agreedAcked.size} outcomes acknowledged over ${KILLS} kills`);
  console.log(`kill test: ${KILLS} kills, ${agreedAcked.size} acknowledged outcomes, ${raisedAcked.size} acknowledged raises, ${total} incidents held at the end`);
});
