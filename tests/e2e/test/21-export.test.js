'use strict';
// 21 -- the journal export tool (bin/mhtas-journal) against a RUNNING hub:
//
//   four incidents are driven through the hub over gRPC:
//     A  S136_DETENTION with a recorded consultation (health-based place of safety)
//     B  REFER_CMHT + NO_POLICE_ATTENDANCE (a diversion from police attendance)
//     C  cancelled by the operator
//     D  ADVICE_ONLY, priority IMMEDIATE, the same person as A (a repeat contact)
//   then, while the hub still runs and holds the journal's lock, the tool
//   reads hub.dir/data with hub.dir/mhtas.ini and exports incidents (CSV,
//   NDJSON), outcomes (CSV, NDJSON) and the indicators (JSON, text, HTML).
//   The indicators must be those the supervisor's GetIndicators returns.
// The tool must have been built (make bin/mhtas-journal): a missing binary
// fails this file, it is not skipped.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const { startHub, REPO_ROOT } = require('../lib/hub');
const { GrpcClient, is } = require('../lib/clients');
const { sampleDetails, practitionerOnShift, closeAll } = require('../lib/fixture');

const TOOL = process.env.MHTAS_JOURNAL
  ? path.resolve(process.env.MHTAS_JOURNAL)
  : path.join(REPO_ROOT, 'bin', 'mhtas-journal');

let hub;
let op;
let sup;
let pa;
let pb;
const opened = [];
const ids = {};
const PERSON_A = { familyName: 'Zebedee', givenNames: 'Quentin', dateOfBirth: '1980-02-03', postcode: 'M1 1AA' };
const CONCERNS = 'Distressed on the bridge parapet, says nobody listens';
const ADVICE = 'Known to the crisis team; calm approach, use his first name.';

before(async () => {
  assert.ok(
    fs.existsSync(TOOL) && (fs.statSync(TOOL).mode & 0o111) !== 0,
    `${TOOL} is missing or not executable: build it first (make bin/mhtas-journal)`,
  );
  hub = await startHub({ name: 'export', config: { routing: { strategy: 'linear', wrap_up_ms: 0 } } });
  op = new GrpcClient(hub.grpcAddress, hub.token('op.one'), { name: 'op.one' });
  sup = new GrpcClient(hub.grpcAddress, hub.token('sup.one'), { name: 'sup.one' });
  opened.push(op, sup);
  pa = await practitionerOnShift(hub, 'p.a');
  pb = await practitionerOnShift(hub, 'p.b');
  opened.push(pa, pb);
});

after(async () => {
  closeAll(opened);
  if (hub) await hub.stopChecked();
});

// The practitioner who is offered incident `id` (either of the two).
async function offeredTo(id) {
  const ev = await Promise.any([
    pa.sub.waitFor(is.offer(id), 5000, `an offer of ${id} to p.a`),
    pb.sub.waitFor(is.offer(id), 5000, `an offer of ${id} to p.b`),
  ]);
  return ev.offer.incident.practitioner === 'p.a' ? pa : pb;
}

// Raise -> accept -> first advice -> propose -> agree; returns the incident id.
async function throughToOutcome(details, outcome, key) {
  const r = await op.call('RaiseIncident', { details, idempotencyKey: `${key}-raise` });
  const id = r.incident.id;
  const p = await offeredTo(id);
  await p.client.call('Accept', { incidentId: id });
  await p.client.call('PostMessage', { incidentId: id, text: ADVICE, clientMsgId: `${key}-advice` });
  await p.client.call('ProposeOutcome', { incidentId: id, outcome });
  const agreed = await op.call('AgreeOutcome', { incidentId: id, agree: true, idempotencyKey: `${key}-agree` });
  assert.equal(agreed.incident.state, 'INCIDENT_STATE_CLOSED', `incident ${id} closed`);
  assert.equal(agreed.durable, true, 'the agreed outcome is durable (so it is in the journal)');
  return id;
}

function run(args, { expectStatus = 0 } = {}) {
  const r = spawnSync(TOOL, args, { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.error, undefined, `cannot run ${TOOL}: ${r.error}`);
  assert.equal(
    r.status,
    expectStatus,
    `mhtas-journal ${args.join(' ')} exited ${r.status} (want ${expectStatus})\nstderr: ${r.stderr}\nstdout: ${r.stdout.slice(0, 2000)}`,
  );
  return r;
}

function common() {
  return ['--data', path.join(hub.dir, 'data'), '--config', path.join(hub.dir, 'mhtas.ini')];
}

// RFC 4180 parser: quoted fields, doubled quotes, CRLF rows.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') q = false;
      else field += c;
    } else if (c === '"') q = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length) {
    row.push(field);
    rows.push(row);
  }
  const [head, ...body] = rows;
  return body.map((r) => Object.fromEntries(head.map((h, k) => [h, r[k]])));
}

// Indicators from pbjson (defaults omitted) or grpc-js (defaults filled) in one shape.
function norm(ind) {
  const n = (v) => Number(v || 0);
  const pc = (p) => ({ count: n(p && p.count), p50: n(p && p.p50Ms), p95: n(p && p.p95Ms) });
  return {
    raised: n(ind.raised),
    closed: n(ind.closed),
    cancelled: n(ind.cancelled),
    shareWithinSla: n(ind.shareWithinSla),
    s136: n(ind.s136Detentions),
    s136Consulted: n(ind.s136WithConsultation),
    shareS136: n(ind.shareS136WithConsultation),
    diverted: n(ind.divertedFromPolice),
    shareDiverted: n(ind.shareDiverted),
    // protoc's json_name is repeatContacts30d; grpc-js (protobufjs) says repeatContacts_30d.
    repeats: n(ind.repeatContacts30d !== undefined ? ind.repeatContacts30d : ind.repeatContacts_30d),
    persons: n(ind.personsIdentified),
    byPriority: (ind.byPriority || []).map((p) => ({
      priority: p.priority,
      raised: n(p.raised),
      toAccept: pc(p.toAccept),
      toFirstAdvice: pc(p.toFirstAdvice),
      toOutcome: pc(p.toOutcome),
      withinSla: n(p.withinSla),
      slaApplicable: n(p.slaApplicable),
    })),
    outcomes: (ind.outcomes || []).map((o) => `${o.code}=${n(o.count)}`).sort(),
  };
}

test('drive four incidents through the hub', async () => {
  ids.a = await throughToOutcome(
    sampleDetails({ policeRef: 'GMP-EXPORT-A', person: PERSON_A, concerns: CONCERNS }),
    {
      codes: ['OUTCOME_CODE_S136_DETENTION'],
      s136: { placeOfSafety: 'PLACE_OF_SAFETY_HEALTH_BASED', consultedWho: 'Dr X', consultedAtMs: String(Date.now()) },
      summary: 'Detained under s136, taken to the health-based place of safety.',
    },
    'exp-a',
  );
  ids.b = await throughToOutcome(
    sampleDetails({ policeRef: 'GMP-EXPORT-B, "quoted"', borough: 'Salford' }),
    { codes: ['OUTCOME_CODE_REFER_CMHT', 'OUTCOME_CODE_NO_POLICE_ATTENDANCE'], summary: 'CMHT visit tomorrow.' },
    'exp-b',
  );
  const c = await op.call('RaiseIncident', { details: sampleDetails({ policeRef: 'GMP-EXPORT-C' }), idempotencyKey: 'exp-c' });
  ids.c = c.incident.id;
  const cancelled = await op.call('CancelIncident', { incidentId: ids.c, reason: 'duplicate log', idempotencyKey: 'exp-c-cancel' });
  assert.equal(cancelled.incident.state, 'INCIDENT_STATE_CANCELLED');
  ids.d = await throughToOutcome(
    sampleDetails({ policeRef: 'GMP-EXPORT-D', priority: 'PRIORITY_IMMEDIATE', person: PERSON_A }),
    { codes: ['OUTCOME_CODE_ADVICE_ONLY'], summary: 'Advice given.' },
    'exp-d',
  );
  assert.ok(hub.alive, 'the hub still runs');
});

test('incidents as CSV: one row each, no health data', () => {
  const r = run(['incidents', ...common()]);
  for (const secret of [PERSON_A.familyName, PERSON_A.givenNames, PERSON_A.dateOfBirth, 'Testperson', CONCERNS, ADVICE, 'voices']) {
    assert.ok(!r.stdout.includes(secret), `the CSV must not contain health data (${secret})`);
  }
  assert.ok(r.stdout.startsWith('id,police_ref,priority,borough,raised_at,state,raised_by,practitioner,accepted_at,'));
  const rows = parseCsv(r.stdout);
  assert.equal(rows.length, 4, `4 incidents, got ${rows.length}:\n${r.stdout}`);
  const by = Object.fromEntries(rows.map((x) => [x.id, x]));
  const a = by[ids.a];
  assert.equal(a.police_ref, 'GMP-EXPORT-A');
  assert.equal(a.state, 'CLOSED');
  assert.equal(a.outcome_codes, 'S136_DETENTION');
  assert.equal(a.s136_place_of_safety, 'HEALTH_BASED');
  assert.equal(a.s136_consultation_recorded, 'yes');
  assert.equal(a.raised_by, 'op.one');
  assert.match(a.raised_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.match(a.accepted_at, /Z$/);
  assert.match(a.first_advice_at, /Z$/);
  assert.match(a.outcome_agreed_at, /Z$/);
  assert.ok(a.accepted_at <= a.first_advice_at && a.first_advice_at <= a.outcome_agreed_at, 'times in order');
  const b = by[ids.b];
  assert.equal(b.police_ref, 'GMP-EXPORT-B, "quoted"', 'RFC 4180 quoting round-trips');
  assert.equal(b.borough, 'Salford');
  assert.equal(b.outcome_codes, 'REFER_CMHT;NO_POLICE_ATTENDANCE');
  assert.equal(b.s136_consultation_recorded, '');
  const c = by[ids.c];
  assert.equal(c.state, 'CANCELLED');
  assert.equal(c.cancel_reason, 'duplicate log');
  assert.equal(c.outcome_codes, '');
  assert.equal(by[ids.d].priority, 'IMMEDIATE');
});

test('incidents as NDJSON: redacted unless --include-person (with a warning)', () => {
  const r = run(['incidents', ...common(), '--format', 'ndjson']);
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 4);
  assert.ok(!r.stdout.includes(PERSON_A.familyName) && !r.stdout.includes(CONCERNS) && !r.stdout.includes(ADVICE));
  const a = lines.find((x) => x.id === ids.a);
  assert.equal(a.details.policeRef, 'GMP-EXPORT-A');
  assert.equal(a.details.person, undefined);
  assert.deepEqual(a.outcome.codes, ['OUTCOME_CODE_S136_DETENTION']);
  assert.equal(a.outcome.s136.consultedWho, 'Dr X');
  assert.ok(a.history.length >= 4, 'the history is exported');

  const full = run(['incidents', ...common(), '--format=ndjson', '--include-person']);
  assert.match(full.stderr, /WARNING: --include-person/);
  const fa = full.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((x) => x.id === ids.a);
  assert.equal(fa.details.person.familyName, PERSON_A.familyName);
  assert.equal(fa.details.concerns, CONCERNS);
  assert.ok(fa.messages.some((m) => m.text === ADVICE), 'messages are included');

  run(['incidents', ...common(), '--include-person'], { expectStatus: 2 });
});

test('outcomes: one row per code per incident', () => {
  const rows = parseCsv(run(['outcomes', ...common()]).stdout);
  assert.deepEqual(
    rows.map((x) => `${x.incident_id}:${x.code}`).sort(),
    [`${ids.a}:S136_DETENTION`, `${ids.b}:REFER_CMHT`, `${ids.b}:NO_POLICE_ATTENDANCE`, `${ids.d}:ADVICE_ONLY`].sort(),
  );
  const s = rows.find((x) => x.code === 'S136_DETENTION');
  assert.equal(s.s136_place_of_safety, 'HEALTH_BASED');
  assert.equal(s.s136_consultation_recorded, 'yes');
  const nd = run(['outcomes', ...common(), '--format', 'ndjson']).stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(nd.length, 4);
  const ns = nd.find((x) => x.code === 'OUTCOME_CODE_S136_DETENTION');
  assert.equal(ns.incidentId, ids.a);
  assert.equal(ns.consultationRecorded, true);
  assert.equal(ns.placeOfSafety, 'PLACE_OF_SAFETY_HEALTH_BASED');
});

test('indicators as JSON equal the hub\'s GetIndicators', async () => {
  const r = run(['indicators', ...common(), '--format', 'json']);
  const mine = JSON.parse(r.stdout);
  const theirs = (await sup.call('GetIndicators', {})).indicators;
  const m = norm(mine);
  assert.equal(m.raised, 4);
  assert.equal(m.closed, 3);
  assert.equal(m.cancelled, 1);
  assert.equal(m.s136, 1);
  assert.equal(m.s136Consulted, 1);
  assert.equal(m.shareS136, 1);
  assert.equal(m.diverted, 1);
  assert.ok(Math.abs(m.shareDiverted - 1 / 3) < 1e-9, `share diverted ${m.shareDiverted}`);
  assert.equal(m.repeats, 1, 'D repeats A (same family name and date of birth) within 30 days');
  assert.equal(m.shareWithinSla, 1, 'everything accepted within the service level');
  assert.ok(m.outcomes.includes('OUTCOME_CODE_S136_DETENTION=1'));
  assert.ok(m.outcomes.includes('OUTCOME_CODE_REFER_CMHT=1'));
  const urgent = m.byPriority.find((p) => p.priority === 'PRIORITY_URGENT');
  assert.equal(urgent.raised, 3);
  assert.equal(urgent.toOutcome.count, 2);
  assert.deepEqual(m, norm(theirs), `tool ${JSON.stringify(mine)}\nhub  ${JSON.stringify(theirs)}`);
});

test('indicators as text and as a self-contained HTML report', () => {
  const t = run(['indicators', ...common()]).stdout;
  assert.match(t, /Incidents raised\s+4/);
  assert.match(t, /s136 detentions with a recorded consultation\s+100\.0 %\s+\(1 of 1\)/);
  assert.match(t, /Diverted from police attendance\s+33\.3 %\s+\(1 of 3 closed\)/);
  assert.match(t, /URGENT/);

  const out = path.join(hub.dir, 'report.html');
  run(['indicators', ...common(), '--format', 'html', '-o', out]);
  const h = fs.readFileSync(out, 'utf8');
  assert.match(h, /^<!doctype html>/);
  assert.ok((h.match(/<svg/g) || []).length >= 7, 'charts: 3 time charts, 3 gauges, outcomes');
  assert.ok(!/<script|<link|@import|src=|url\(/i.test(h), 'no external scripts, styles, fonts or images');
  assert.ok(!h.includes(PERSON_A.familyName), 'no health data in the report');
  assert.match(h, /Section 136 detentions with a recorded consultation/);
  assert.match(h, /@media print/);
});

test('date range, verify and usage errors', () => {
  const future = JSON.parse(run(['indicators', ...common(), '--format', 'json', '--from', '2999-01-01']).stdout);
  assert.equal(Number(future.raised || 0), 0);
  const today = new Date().toISOString().slice(0, 10);
  const tomorrow = new Date(Date.now() + 86400000).toISOString().slice(0, 10);
  const inRange = parseCsv(run(['incidents', ...common(), '--from', today, '--to', tomorrow]).stdout);
  assert.equal(inRange.length, 4);
  const before = parseCsv(run(['incidents', ...common(), '--to', today]).stdout);
  assert.equal(before.length, 0, '--to is exclusive');

  const v = run(['verify', '--data', path.join(hub.dir, 'data')]);
  assert.match(v.stdout, /: ok\n/);
  assert.match(v.stdout, /records:/);

  run(['indicators', ...common(), '--from', '2026-02-30'], { expectStatus: 2 });
  run(['indicators', '--data', path.join(hub.dir, 'data')], { expectStatus: 2 });
  run(['frobnicate'], { expectStatus: 2 });
  run(['incidents', ...common(), '--format', 'xml'], { expectStatus: 2 });
  const missing = run(['verify', '--data', path.join(hub.dir, 'no-such-dir')], { expectStatus: 1 });
  assert.match(missing.stderr, /no-such-dir/);
  assert.ok(hub.alive, 'the hub is untouched by the reader');
});
