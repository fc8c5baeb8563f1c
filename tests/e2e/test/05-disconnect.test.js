'use strict';
// 05 -- a practitioner's connection goes away.
//
// While an offer is outstanding: the offer is withdrawn at once
// (CAUSE_OFFER_WITHDRAWN) and the incident re-offered to the next
// practitioner -- well before the offer time-out (10 s here). Checked for a
// cancelled stream with the client closed (RST_STREAM, then the connection
// closes) and for a client process killed outright (TCP closed by the
// kernel, no HTTP/2 goodbye).
//
// While holding an accepted incident: the holder keeps it for
// disconnect_grace_ms; coming back within it keeps the incident, staying
// away past it re-offers it (CAUSE_GRACE_EXPIRED).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');

const { startHub } = require('../lib/hub');
const { GrpcClient, EventLog, is, summarizeEvent } = require('../lib/clients');
const { sampleDetails, practitionerOnShift, operatorConsole, closeAll } = require('../lib/fixture');

const OFFER_TIMEOUT_MS = 10000;
const GRACE_MS = 2000;
// "At once": well under the offer time-out, with room for a slow machine.
const AT_ONCE_MS = 2500;

const hubs = [];
const opened = [];
const children = [];

after(async () => {
  closeAll(opened);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const h of hubs) await h.stopChecked();
});

async function newHub(name) {
  const hub = await startHub({
    name,
    config: { routing: { strategy: 'linear', offer_timeout_ms: OFFER_TIMEOUT_MS, disconnect_grace_ms: GRACE_MS } },
  });
  hubs.push(hub);
  return hub;
}

// Raises an incident from the console and waits until p.a holds the offer.
async function raiseOfferedToA(hub, op, waitOffer) {
  const inc = (await op.call('raiseIncident', { details: sampleDetails(), idempotencyKey: `dc-${Date.now()}` })).incident;
  await waitOffer(inc.id);
  await op.waitFor(is.update(inc.id, { state: 'INCIDENT_STATE_OFFERED', practitioner: 'p.a' }), 3000, `the console to see incident ${inc.id} offered to p.a`);
  return inc.id;
}

// After p.a went away at time t: the console sees the withdrawal and the
// re-offer to p.b, and p.b gets the offer, all well before the time-out.
async function expectReofferedToB(op, pb, id, t, how) {
  const withdrawn = await op.waitFor(
    is.update(id, { cause: 'CAUSE_OFFER_WITHDRAWN' }),
    AT_ONCE_MS,
    `OFFER_WITHDRAWN on the console after p.a ${how}`,
  );
  assert.equal(withdrawn.incident.transition.practitioner || 'p.a', 'p.a');
  await op.waitFor(is.update(id, { state: 'INCIDENT_STATE_OFFERED', practitioner: 'p.b' }), AT_ONCE_MS, `the re-offer to p.b on the console after p.a ${how}`);
  await pb.sub.waitFor(is.offer(id, 'p.b'), AT_ONCE_MS, `the offer to p.b after p.a ${how}`);
  const took = Date.now() - t;
  assert.ok(took < AT_ONCE_MS, `re-offered ${took} ms after p.a ${how}: not at once (offer time-out is ${OFFER_TIMEOUT_MS} ms)`);
  // And not by the time-out: the history says withdrawn, not timed out.
  const inc = (await op.call('getIncident', { incidentId: id })).incident;
  const causes = (inc.history || []).map((x) => x.cause);
  assert.ok(causes.includes('CAUSE_OFFER_WITHDRAWN'), `history ${JSON.stringify(causes)}`);
  assert.ok(!causes.includes('CAUSE_OFFER_TIMEOUT'), `history ${JSON.stringify(causes)} should not hold a time-out`);
}

test('closing the offered practitioner\'s client re-offers at once', async () => {
  const hub = await newHub('dc-close');
  const op = await operatorConsole(hub);
  opened.push(op);
  const pa = await practitionerOnShift(hub, 'p.a');
  opened.push(pa);
  const pb = await practitionerOnShift(hub, 'p.b');
  opened.push(pb);

  const id = await raiseOfferedToA(hub, op, (id) => pa.sub.waitFor(is.offer(id, 'p.a'), 3000, `the offer of ${id} to p.a`));
  const t = Date.now();
  pa.client.close(); // cancels the stream, closes the channel
  await expectReofferedToB(op, pb, id, t, 'closed its client');
});

test('killing the offered practitioner\'s process (TCP closed, no HTTP/2 goodbye) re-offers at once', async () => {
  const hub = await newHub('dc-kill');
  const op = await operatorConsole(hub);
  opened.push(op);

  // p.a lives in a child process; its stdout lines are its events.
  const child = spawn(process.execPath, [path.join(__dirname, '..', 'lib', 'subscriber-child.js'), hub.grpcAddress, hub.token('p.a')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const childLog = new EventLog('p.a (child process)', (x) => (x.type === 'event' ? summarizeEvent(x.event) : JSON.stringify(x)));
  let buf = '';
  let childErr = '';
  child.stderr.on('data', (d) => (childErr += d));
  child.stdout.on('data', (d) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      childLog.push(JSON.parse(line));
    }
  });
  child.on('exit', () => childLog.end(`child exited ${childErr}`));
  const shift = await childLog.waitFor((x) => x.type === 'shift' || x.type === 'error', 5000, 'the child to start its shift');
  assert.equal(shift.type, 'shift', `child: ${JSON.stringify(shift)}`);
  if (shift.status.state !== 'PRACTITIONER_STATE_AVAILABLE') {
    await childLog.waitFor((x) => x.type === 'event' && is.status('p.a', 'PRACTITIONER_STATE_AVAILABLE')(x.event), 2000, 'p.a AVAILABLE');
  }
  const pb = await practitionerOnShift(hub, 'p.b');
  opened.push(pb);

  const id = await raiseOfferedToA(hub, op, (id) =>
    childLog.waitFor((x) => x.type === 'event' && is.offer(id, 'p.a')(x.event), 3000, `the offer of ${id} to p.a`),
  );
  const t = Date.now();
  child.kill('SIGKILL');
  await expectReofferedToB(op, pb, id, t, 'was killed');
});

test('a holder who drops keeps the incident for disconnect_grace_ms; back in time keeps it, away too long re-offers', async () => {
  const hub = await newHub('dc-grace');
  const op = await operatorConsole(hub);
  opened.push(op);
  const pa = await practitionerOnShift(hub, 'p.a');
  const pb = await practitionerOnShift(hub, 'p.b');
  opened.push(pb);

  // Incident 1: p.a accepts, drops, comes back within the grace.
  const id1 = await raiseOfferedToA(hub, op, (id) => pa.sub.waitFor(is.offer(id, 'p.a'), 3000, `the offer of ${id} to p.a`));
  await pa.client.call('Accept', { incidentId: id1 });
  const lastSeq = pa.sub.events.length ? pa.sub.events[pa.sub.events.length - 1].seq : '0';
  pa.client.close();
  const tDrop = Date.now();
  // The operator posts while p.a is away; p.a must get it on resume.
  const missed = await op.call('postMessage', { incidentId: id1, text: 'Are you still there?', clientMsgId: 'while-away' });
  const back = new GrpcClient(hub.grpcAddress, hub.token('p.a'), { name: 'p.a again' });
  opened.push(back);
  const sub = back.subscribe(lastSeq);
  await sub.waitFor(is.message(id1, { text: 'Are you still there?' }), 3000, 'the message posted while p.a was away, replayed on resume');
  assert.ok(Date.now() - tDrop < GRACE_MS, 'the test came back within the grace');
  const seqs = sub.events.map((e) => BigInt(e.seq));
  assert.ok(seqs.every((s) => s > BigInt(lastSeq)), `resume after ${lastSeq} replayed older events: ${seqs.join(',')}`);
  assert.equal(missed.message.incidentId, id1);

  // p.a came back in time: the incident is still p.a's, and did not expire.
  const inc1 = (await op.call('getIncident', { incidentId: id1 })).incident;
  assert.equal(inc1.practitioner, 'p.a', 'the incident stays with p.a, who came back within the grace');
  assert.equal(inc1.state, 'INCIDENT_STATE_ACCEPTED', `state after p.a came back: ${inc1.state}`);
  const causes1 = (inc1.history || []).map((x) => x.cause);
  assert.ok(!causes1.includes('CAUSE_GRACE_EXPIRED'), `history ${JSON.stringify(causes1)}`);
  assert.equal(pb.sub.events.filter(is.offer(id1)).length, 0, 'p.b was never offered the incident p.a holds');

  // Now p.a stays away past the grace: the incident goes back to routing.
  back.close();
  const tAway = Date.now();
  const expired = await op.waitFor(is.update(id1, { cause: 'CAUSE_GRACE_EXPIRED' }), GRACE_MS + 3000, `GRACE_EXPIRED for incident ${id1}`);
  const waited = Date.now() - tAway;
  assert.ok(waited >= GRACE_MS - 300, `the holder lost the incident after ${waited} ms, before disconnect_grace_ms ${GRACE_MS}`);
  assert.equal(expired.incident.transition.from, 'INCIDENT_STATE_ACCEPTED');
  await pb.sub.waitFor(is.offer(id1, 'p.b'), 3000, `incident ${id1} re-offered to p.b after the grace`);
});
