'use strict';
// 30 -- care records through the hub, against a real redis-server that this
// file starts (and kills, and restarts) itself:
//   * the role grid: police roles never get a care record or a search, with or
//     without break-glass; a practitioner asking about another practitioner's
//     incident is told it does not exist; ListAudit is for supervisors;
//   * search (one SEARCH_RESULT audit record per person returned), read with
//     and without a held incident (stale parts and restricted records
//     flagged), NHS number check digit, restricted records need break-glass;
//   * break-glass: reason code and text required, supervisors told at once
//     (NOTICE_KIND_BREAK_GLASS), audited like every read;
//   * share: a MESSAGE_KIND_SHARE message in the incident with the
//     practitioner's words and the parts' names, nothing from the record;
//   * the audit trail is complete: N reads give N READ records (ListAudit),
//     and no stream carries an audit record or a care summary to police;
//   * Redis killed and restarted mid-test: look-ups fail cleanly with
//     UNAVAILABLE, then recover by themselves, while an incident is routed
//     and closed throughout;
//   * the journal export (mhtas-journal audit) lists the same trail for a
//     person or a user, while the hub runs and after a restart whose snapshot
//     archived the segments that hold it;
//   * no health data in the hub's logs.
// redis-server missing is a failure, never a skip.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const { startHub, REPO_ROOT } = require('../lib/hub');
const { GrpcClient, is, grpcErrorText } = require('../lib/clients');
const { sampleDetails, practitionerOnShift, closeAll } = require('../lib/fixture');
const { RedisServer, nhsWithCheck, testNumbers } = require('../lib/redis');

const BINDIR = process.env.MHTAS_BINDIR || path.join(REPO_ROOT, 'bin');
const MARKER = 'Zebra-crossing-calms-him'; // a crisis-plan string that must reach nobody but practitioners

let hub;
const redis = new RedisServer();
const opened = [];

// ------------------------------------------------------------------ helpers

const [NHS_A, NHS_B, NHS_C] = testNumbers(3);
const WRONG_CHECK = NHS_A.slice(0, 9) + String((Number(NHS_A[9]) + 1) % 10);

function person(nhs, given, { restricted = false } = {}) {
  const fresh = new Date(Date.now() - 2 * 86400000).toISOString().replace(/\.\d+Z$/, 'Z');
  const old = new Date(Date.now() - 200 * 86400000).toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    nhsNumber: nhs,
    restricted,
    patient: {
      source: 'NHS Spine (PDS)',
      asAt: fresh,
      name: [{ use: 'official', family: 'Carefield', given: [given] }],
      birthDate: '1984-03-07',
      gender: 'female',
      address: { line: ['12 Oak Road'], city: 'Bolton', district: 'Bolton', postalCode: 'BL1 4AA' },
    },
    legalStatus: { source: 'RiO (GMMH)', asAt: old, status: 'informal' },
    flags: {
      source: 'RiO (GMMH)',
      asAt: fresh,
      items: [{ code: 'self-harm', level: 'medium', detail: 'Cut arms when distressed', recorded: '2026-01-01' }],
    },
    carePlan: {
      source: 'RiO (GMMH)',
      asAt: fresh,
      warningSigns: ['Stops sleeping'],
      whatHelps: [MARKER],
      whatToAvoid: ['Several officers at once'],
    },
  };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startRedis() {
  await redis.start();
}

async function killRedis() {
  await redis.kill();
}

// Loads 200 generated people plus our three (A and B share a name and date
// of birth; B is restricted; C is another Carefield born elsewhen).
function loadPeople() {
  const c = person(NHS_C, 'Cara');
  c.patient.birthDate = '1990-01-01';
  redis.load([person(NHS_A, 'Ann'), person(NHS_B, 'Beth', { restricted: true }), c], { generated: 200, seed: 30 });
}

function client(id) {
  const c = new GrpcClient(hub.grpcAddress, hub.token(id), { name: id });
  opened.push(c);
  return c;
}

async function expectCode(promise, code, what, re) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.code, code, `${what}: expected status ${code}, got ${grpcErrorText(e)}`);
    if (re) assert.match(e.details, re, what);
    return true;
  });
}

const BASIS = { lawfulBasis: 'LAWFUL_BASIS_DIRECT_CARE', reason: 'advising officers at scene' };
const GLASS = {
  lawfulBasis: 'LAWFUL_BASIS_VITAL_INTERESTS',
  reason: 'risk to life',
  breakGlass: true,
  breakGlassReason: 'BREAK_GLASS_REASON_RISK_TO_LIFE',
  breakGlassText: 'The holder is unreachable and the person is on a bridge',
};

// An incident raised by the operator and accepted by `pract` (offered to
// them first: the linear strategy, and only they are on shift when raised).
async function heldIncident(op, pract, details = {}) {
  const id = (await op.call('RaiseIncident', { details: sampleDetails(details) })).incident.id;
  await pract.sub.waitFor(is.offer(id, pract.id), 5000, `the offer of ${id} to ${pract.id}`);
  await pract.client.call('Accept', { incidentId: id });
  return id;
}

async function auditCount(sup, filter) {
  return (await sup.call('ListAudit', filter)).entries.length;
}

// ------------------------------------------------------------------- setup

let op;
let disp;
let sup;
let supSub;
let opSub;
let pa;
let pb;
let incA; // held by p.a
let incB; // held by p.b

before(async () => {
  RedisServer.requireInstalled();
  await startRedis();
  loadPeople();
  hub = await startHub({
    name: 'care',
    config: { routing: { strategy: 'linear', offer_timeout_ms: 10000 } },
    // Small journal segments: the snapshot at the clean restart of the last
    // test then archives several of them (the audit trail must survive it).
    sets: [
      `cache.redis_port=${redis.port}`,
      'cache.stale_after_days=30',
      'cache.command_timeout_ms=500',
      'hub.journal_segment_bytes=4096',
    ],
  });
  op = client('op.one');
  disp = client('disp.one');
  sup = client('sup.one');
  supSub = sup.subscribe('0');
  opSub = op.subscribe('0');
  pa = await practitionerOnShift(hub, 'p.a');
  opened.push(pa.client);
  incA = await heldIncident(op, pa);
  pb = await practitionerOnShift(hub, 'p.b');
  opened.push(pb.client);
  // linear routing offers p.a first: pause p.a so that p.b gets this one
  await pa.client.call('SetAvailability', { paused: true, reason: 'comfort break' });
  incB = await heldIncident(op, pb);
  await pa.client.call('SetAvailability', { paused: false });
});

after(async () => {
  closeAll(opened);
  try {
    if (hub) {
      // Health data never goes to logs.
      const log = hub.stderr;
      for (const s of [NHS_A, NHS_B, NHS_C, 'Carefield', MARKER, '1984-03-07']) {
        assert.ok(!log.includes(s), `the hub's log holds health data (${s}):\n${hub.stderrTail()}`);
      }
      await hub.stopChecked();
    }
  } finally {
    await redis.stop();
  }
});

// -------------------------------------------------------------------- tests

test('setup: each practitioner holds an incident', async () => {
  const a = (await op.call('GetIncident', { incidentId: incA })).incident;
  const b = (await op.call('GetIncident', { incidentId: incB })).incident;
  assert.equal(a.practitioner, 'p.a');
  assert.equal(b.practitioner, 'p.b', `incident ${incB} is held by ${b.practitioner} (${b.state})`);
  assert.equal(b.state, 'INCIDENT_STATE_ACCEPTED');
});

test('the role grid: police never, another practitioner\'s incident is NOT_FOUND, ListAudit for supervisors', async () => {
  const search = (inc, extra = {}) => ({ familyName: 'Carefield', dateOfBirth: '1984-03-07', incidentId: inc, ...BASIS, ...extra });
  const read = (inc, extra = {}) => ({ nhsNumber: NHS_A, incidentId: inc, ...BASIS, ...extra });
  const shareReq = (inc) => ({ incidentId: inc, nhsNumber: NHS_A, parts: ['CARE_PART_RISKS'], summary: 'Known to services', ...BASIS });
  for (const [c, who] of [[op, 'operator'], [disp, 'dispatcher'], [sup, 'supervisor']]) {
    for (const inc of [incA, incB, '0']) {
      await expectCode(c.call('SearchPersons', search(inc)), 7, `${who} SearchPersons`);
      await expectCode(c.call('SearchPersons', search(inc, GLASS)), 7, `${who} SearchPersons break-glass`);
      await expectCode(c.call('GetCareSummary', read(inc)), 7, `${who} GetCareSummary`);
      await expectCode(c.call('GetCareSummary', read(inc, GLASS)), 7, `${who} GetCareSummary break-glass`);
      await expectCode(c.call('ShareWithPolice', shareReq(inc)), 7, `${who} ShareWithPolice`);
    }
  }
  // p.a asking about p.b's incident, and the other way round: not found.
  for (const [p, inc] of [[pa, incB], [pb, incA]]) {
    await expectCode(p.client.call('SearchPersons', search(inc)), 5, `${p.id} searching for another's incident`, /not found/);
    await expectCode(p.client.call('GetCareSummary', read(inc)), 5, `${p.id} reading for another's incident`, /not found/);
    await expectCode(p.client.call('ShareWithPolice', shareReq(inc)), 5, `${p.id} sharing into another's incident`, /not found/);
  }
  // ListAudit: supervisors only.
  for (const c of [op, disp, pa.client]) await expectCode(c.call('ListAudit', {}), 7, 'ListAudit by a non-supervisor');
  // Nothing above was a look-up: no audit record.
  assert.equal(await auditCount(sup, {}), 0, 'refused calls leave no audit record');
});

test('search: ranked matches, one SEARCH_RESULT audit record per person returned', async () => {
  const before = await auditCount(sup, { action: 'AUDIT_ACTION_SEARCH_RESULT' });
  const r = await pa.client.call('SearchPersons', { familyName: 'Carefield', dateOfBirth: '1984-03-07', incidentId: incA, ...BASIS });
  const nhs = r.matches.map((m) => m.nhsNumber);
  assert.ok(nhs.includes(NHS_A) && nhs.includes(NHS_B), `matches ${JSON.stringify(nhs)}`);
  assert.ok(!nhs.includes(NHS_C), 'a different date of birth in another year is not a match');
  assert.equal(r.matches.find((m) => m.nhsNumber === NHS_B).restricted, true, 'the restricted record is flagged');
  const entries = (await sup.call('ListAudit', { action: 'AUDIT_ACTION_SEARCH_RESULT', userId: 'p.a' })).entries;
  assert.equal(entries.length - before, r.matches.length, 'one record per person returned');
  const recs = entries.slice(before).map((e) => e.record);
  assert.deepEqual(recs.map((x) => x.nhsNumber).sort(), [...nhs].sort());
  for (const x of recs) {
    assert.equal(x.incidentId, incA);
    assert.equal(x.lawfulBasis, 'LAWFUL_BASIS_DIRECT_CARE');
    assert.equal(x.reason, BASIS.reason);
    assert.equal(x.method, 'SearchPersons');
    assert.equal(x.breakGlass, false);
  }
  // Nobody found: nothing to audit.
  const none = await pa.client.call('SearchPersons', { familyName: 'Nosuchname', dateOfBirth: '1901-01-01', incidentId: incA, ...BASIS });
  assert.deepEqual(none.matches, []);
  // Validation from the cache is passed on.
  await expectCode(pa.client.call('SearchPersons', { familyName: 'Carefield', incidentId: incA, ...BASIS }), 3, 'a search without a date of birth');
  await expectCode(pa.client.call('SearchPersons', { familyName: 'Carefield', dateOfBirth: '1984-03-07', incidentId: incA, reason: 'x' }), 3, 'no lawful basis', /lawful_basis/);
  await expectCode(pa.client.call('SearchPersons', { familyName: 'Carefield', dateOfBirth: '1984-03-07', incidentId: incA, lawfulBasis: 'LAWFUL_BASIS_SAFEGUARDING' }), 3, 'no reason', /reason/);
});

test('read: for an incident held, stale parts flagged; wrong check digit; restricted needs break-glass', async () => {
  const r = await pa.client.call('GetCareSummary', { nhsNumber: NHS_A.replace(/^(...)(...)/, '$1 $2 '), incidentId: incA, ...BASIS });
  assert.equal(r.summary.nhsNumber, NHS_A);
  assert.equal(r.summary.identity.names[0].family, 'Carefield');
  assert.ok(r.staleParts.includes('CARE_PART_LEGAL_STATUS'), `stale parts ${r.staleParts}`);
  assert.ok(!r.staleParts.includes('CARE_PART_RISKS'), `stale parts ${r.staleParts}`);
  assert.equal(r.restricted, false);
  assert.ok(Number(r.auditSeq) > 0, 'the read names its audit record');
  const rec = (await sup.call('ListAudit', { nhsNumber: NHS_A, action: 'AUDIT_ACTION_READ' })).entries.at(-1);
  assert.equal(rec.seq, r.auditSeq);
  assert.equal(rec.record.userId, 'p.a');
  assert.equal(rec.record.incidentId, incA);

  await expectCode(pa.client.call('GetCareSummary', { nhsNumber: WRONG_CHECK, incidentId: incA, ...BASIS }), 3, 'a wrong check digit', /check digit/);
  await expectCode(pa.client.call('GetCareSummary', { nhsNumber: '12345', incidentId: incA, ...BASIS }), 3, 'too short', /10 digits/);
  await expectCode(pa.client.call('GetCareSummary', { nhsNumber: nhsWithCheck('999888777') || '9998887776', incidentId: incA, ...BASIS }), 5, 'nobody with that number');
  // Without a held incident: refused.
  await expectCode(pa.client.call('GetCareSummary', { nhsNumber: NHS_A, ...BASIS }), 3, 'no incident', /incident_id is required/);
  // Restricted: break-glass needed even on your own incident.
  await expectCode(pa.client.call('GetCareSummary', { nhsNumber: NHS_B, incidentId: incA, ...BASIS }), 7, 'a restricted record', /restricted/);
  const rb = await pa.client.call('GetCareSummary', { nhsNumber: NHS_B, incidentId: incA, ...GLASS, breakGlassReason: 'BREAK_GLASS_REASON_RESTRICTED_RECORD' });
  assert.equal(rb.restricted, true);
});

test('break-glass: reason and text required, supervisors told at once, audited', async () => {
  // p.b reads outside any incident it holds.
  await expectCode(pb.client.call('GetCareSummary', { nhsNumber: NHS_A, incidentId: incA, ...GLASS, breakGlassText: '' }), 3, 'no text', /break_glass_text/);
  await expectCode(pb.client.call('GetCareSummary', { nhsNumber: NHS_A, incidentId: incA, ...GLASS, breakGlassReason: 'BREAK_GLASS_REASON_UNSPECIFIED' }), 3, 'no reason code', /break_glass_reason/);
  const from = supSub.events.length;
  const r = await pb.client.call('GetCareSummary', { nhsNumber: NHS_A, incidentId: incA, ...GLASS });
  assert.equal(r.summary.nhsNumber, NHS_A);
  const n = await supSub.waitFor(is.notice('NOTICE_KIND_BREAK_GLASS'), 3000, 'the break-glass notice', { from });
  assert.equal(n.notice.incidentId, incA);
  assert.match(n.notice.text, /p\.b/);
  assert.ok(!n.notice.text.includes(NHS_A), 'the notice does not say whose record');
  const recs = (await sup.call('ListAudit', { userId: 'p.b' })).entries.map((e) => e.record);
  assert.deepEqual(recs.map((x) => x.action), ['AUDIT_ACTION_BREAK_GLASS', 'AUDIT_ACTION_READ']);
  for (const x of recs) {
    assert.equal(x.nhsNumber, NHS_A);
    assert.equal(x.breakGlass, true);
    assert.equal(x.breakGlassReason, 'BREAK_GLASS_REASON_RISK_TO_LIFE');
    assert.equal(x.breakGlassText, GLASS.breakGlassText);
  }
  // A break-glass search without an incident: audited too.
  const s = await pb.client.call('SearchPersons', { familyName: 'Carefield', dateOfBirth: '1984-03-07', ...GLASS });
  assert.ok(s.matches.length >= 2);
  const after2 = (await sup.call('ListAudit', { userId: 'p.b' })).entries.slice(2).map((e) => e.record.action);
  assert.deepEqual(after2, ['AUDIT_ACTION_BREAK_GLASS', ...s.matches.map(() => 'AUDIT_ACTION_SEARCH_RESULT')]);
  // The operator's stream saw no break-glass notice.
  assert.ok(!opSub.events.some(is.notice('NOTICE_KIND_BREAK_GLASS')), 'operators are not told');
});

test('share: the practitioner\'s words and the parts\' names go into the incident, audited first', async () => {
  const from = opSub.events.length;
  const summary = 'Known to the crisis team. Approach calmly, one officer speaking.';
  const r = await pa.client.call('ShareWithPolice', {
    incidentId: incA,
    nhsNumber: NHS_A,
    parts: ['CARE_PART_RISKS', 'CARE_PART_CRISIS_PLAN'],
    summary,
    lawfulBasis: 'LAWFUL_BASIS_VITAL_INTERESTS',
    reason: 'officers need to know how to approach',
  });
  assert.equal(r.incidentId, incA);
  assert.ok(Number(r.disclosureId) > 0);
  const ev = await opSub.waitFor(is.message(incA), 3000, 'the share in the operator\'s stream', { from });
  assert.equal(ev.message.kind, 'MESSAGE_KIND_SHARE');
  assert.equal(ev.message.fromUser, 'p.a');
  assert.ok(ev.message.text.startsWith(summary), ev.message.text);
  assert.match(ev.message.text, /risks, crisis plan/);
  assert.ok(Number(ev.seq) > Number(r.disclosureId), 'the audit record came before the message');
  for (const s of [NHS_A, MARKER, 'Cut arms']) assert.ok(!ev.message.text.includes(s), `the share carries ${s}`);
  const rec = (await sup.call('ListAudit', { action: 'AUDIT_ACTION_SHARE' })).entries.at(-1);
  assert.equal(rec.seq, r.disclosureId);
  assert.deepEqual(rec.record.parts, ['CARE_PART_RISKS', 'CARE_PART_CRISIS_PLAN']);
  assert.equal(rec.record.nhsNumber, NHS_A);
  const msgs = (await op.call('GetIncident', { incidentId: incA })).incident.messages;
  assert.equal(msgs.filter((m) => m.kind === 'MESSAGE_KIND_SHARE').length, 1);
  await expectCode(
    pa.client.call('ShareWithPolice', { incidentId: incA, nhsNumber: NHS_A, parts: [], summary, ...BASIS }),
    3,
    'a share of nothing',
    /parts/,
  );
  await expectCode(
    pa.client.call('PostMessage', { incidentId: incA, text: 'fake', kind: 'MESSAGE_KIND_SHARE' }),
    3,
    'posting a SHARE directly',
  );
});

test('the audit trail is complete: N reads give N READ records; no stream carries audits or summaries to police', async () => {
  const N = 7;
  const before = await auditCount(sup, { action: 'AUDIT_ACTION_READ', userId: 'p.a' });
  await Promise.all(
    Array.from({ length: N }, () => pa.client.call('GetCareSummary', { nhsNumber: NHS_A, incidentId: incA, ...BASIS })),
  );
  assert.equal(await auditCount(sup, { action: 'AUDIT_ACTION_READ', userId: 'p.a' }), before + N);
  assert.equal(await auditCount(sup, { incidentId: incA, action: 'AUDIT_ACTION_READ', userId: 'p.a' }), before + N);
  assert.equal((await sup.call('ListAudit', { maxResults: 2 })).more, true);
  for (const [sub, who] of [[opSub, 'operator'], [supSub, 'supervisor'], [pa.sub, 'p.a'], [pb.sub, 'p.b']]) {
    assert.ok(!sub.events.some((e) => e.kind === 'audit' || e.audit), `${who}'s stream carried an audit record`);
    assert.ok(!JSON.stringify(sub.events).includes(MARKER), `${who}'s stream carried care-summary content`);
  }
});

test('Redis killed and restarted: look-ups fail cleanly and recover; routing goes on throughout', async () => {
  const read = () => pa.client.call('GetCareSummary', { nhsNumber: NHS_A, incidentId: incA, ...BASIS });
  await read();
  const readsBefore = await auditCount(sup, { action: 'AUDIT_ACTION_READ' });
  await killRedis();
  // Fails cleanly (UNAVAILABLE, or a deadline for a look-up caught mid-kill).
  let sawUnavailable = false;
  for (let i = 0; i < 20 && !sawUnavailable; i++) {
    try {
      await read();
    } catch (e) {
      assert.ok([4, 14].includes(e.code), grpcErrorText(e));
      if (e.code === 14) {
        assert.match(e.details, /unavailable/i);
        sawUnavailable = true;
      }
    }
    await sleep(50);
  }
  assert.ok(sawUnavailable, 'look-ups answer UNAVAILABLE while Redis is down');
  await expectCode(pa.client.call('SearchPersons', { familyName: 'Carefield', dateOfBirth: '1984-03-07', incidentId: incA, ...BASIS }), 14, 'a search while Redis is down');

  // Routing and advice go on: a new incident raised, offered, accepted,
  // advised and closed while the cache is down.
  const id = (await op.call('RaiseIncident', { details: sampleDetails() })).incident.id;
  const offered = await Promise.race([
    pa.sub.waitFor(is.offer(id, 'p.a'), 5000, `offer ${id}`).then(() => pa),
    pb.sub.waitFor(is.offer(id, 'p.b'), 5000, `offer ${id}`).then(() => pb),
  ]);
  await offered.client.call('Accept', { incidentId: id });
  await offered.client.call('PostMessage', { incidentId: id, text: 'Advice while the cache is down' });

  // Redis comes back (empty: reload it); the hub reconnects by itself.
  await startRedis();
  loadPeople();
  await offered.client.call('ProposeOutcome', { incidentId: id, outcome: { codes: ['OUTCOME_CODE_ADVICE_ONLY'], summary: 'Advice given' } });
  const agreed = await op.call('AgreeOutcome', { incidentId: id, agree: true, idempotencyKey: `care-${id}` });
  assert.equal(agreed.incident.state, 'INCIDENT_STATE_CLOSED');

  let ok = null;
  const deadline = Date.now() + 15000;
  while (!ok && Date.now() < deadline) {
    try {
      ok = await read();
    } catch (e) {
      assert.ok([4, 14].includes(e.code), grpcErrorText(e));
      await sleep(100);
    }
  }
  assert.ok(ok, 'look-ups recovered by themselves after Redis came back');
  assert.equal(ok.summary.nhsNumber, NHS_A);
  // Only the successful reads were audited.
  assert.equal(await auditCount(sup, { action: 'AUDIT_ACTION_READ' }), readsBefore + 1);
});

function exportAudit(...args) {
  const r = spawnSync(
    path.join(BINDIR, 'mhtas-journal'),
    ['audit', '--data', path.join(hub.dir, 'data'), '--format', 'ndjson', ...args],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, `mhtas-journal audit ${args.join(' ')}: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /NOT complete/);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('the journal export lists the whole audit trail for a person or a user, also after a snapshot archived it', async () => {
  const forA = (await sup.call('ListAudit', { nhsNumber: NHS_A })).entries;
  const readsByA = await auditCount(sup, { action: 'AUDIT_ACTION_READ', userId: 'p.a' });
  assert.ok(forA.length > 10 && readsByA > 7, `${forA.length} records for A, ${readsByA} reads by p.a`);

  const check = (when) => {
    const rows = exportAudit('--person', NHS_A);
    assert.equal(rows.length, forA.length, `${when}: every record for A`);
    assert.deepEqual(rows.map((r) => r.seq), forA.map((e) => String(e.seq)), `${when}: the same records, in order`);
    assert.ok(rows.every((r) => r.nhsNumber === NHS_A && r.userId && r.method && r.lawfulBasis && r.reason));
    const byUser = exportAudit('--user', 'p.a');
    assert.ok(byUser.every((r) => r.userId === 'p.a'), `${when}: --user filters`);
    assert.equal(byUser.filter((r) => r.action === 'READ').length, readsByA, `${when}: N reads, N READ records`);
    const glass = exportAudit('--user', 'p.a').filter((r) => r.breakGlass);
    assert.ok(glass.length > 0 && glass.every((r) => r.breakGlassReason && r.breakGlassText), `${when}: break-glass`);
  };
  check('while the hub runs');

  // A clean restart snapshots and archives the covered segments: nothing of
  // the trail is deleted, and replay does not read it.
  await hub.restart();
  const files = fs.readdirSync(path.join(hub.dir, 'data'));
  assert.ok(files.some((f) => /^arch-\d+\.mj$/.test(f)), `archived segments after the snapshot: ${files}`);
  assert.ok(files.some((f) => /^snap-\d+\.mj$/.test(f)), `a snapshot: ${files}`);
  check('after the restart');
  assert.match(hub.stderr, /event=archived/);
});
