'use strict';
// care.test.js -- the desk's care-record panel (and bin/mhtas-cli's care
// commands) against a real hub and a real redis-server started here:
//
//   the desk (xvfb-run) accepts an incident, searches the cache (Carefield,
//     1984-03-07: an open record and a restricted one with the same name),
//     opens the open one: the confirm-identity dialog comes first, nothing
//     ticked; one identifier is not enough (nothing read: no READ in the
//     audit trail, no read in the desk's log), two are; the stale legal
//     status is flagged on screen
//   it shares two parts (risks, crisis plan) with its own words; the operator's
//     console receives the SHARE message with the parts' names and the words,
//     and nothing from the record (a marker in the crisis plan, the NHS number);
//     a screenshot of the summary with the share in the conversation
//     (tests/desk/screenshots/desk-care.png)
//   meanwhile bin/mhtas-cli, as the same practitioner: search, summary (STALE
//     flag; PERMISSION_DENIED for the restricted record, then break-glass),
//     share; as the supervisor: audit
//   the desk opens the restricted record: the confirm-identity dialog shows
//     where it differs from the police details (the given name, the NHS
//     number) and where it matches (desk-care-confirm.png); Cancel goes back
//     to the results; confirmed again (date of birth, postcode), then the
//     break-glass dialog: the restricted banner shows (desk-care-restricted.png);
//     the audit trail has the break-glass
//   Redis is killed: the desk's next search shows UNAVAILABLE in its error bar,
//     and the desk goes on advising and proposing the outcome to CLOSED
//   nothing the desk printed and nothing it wrote to disk holds a name, date
//     of birth, NHS number or record content.
//
// redis-server, xvfb-run or a binary missing is a failure, never a skip.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startHub, REPO_ROOT } = require('../e2e/lib/hub');
const { is } = require('../e2e/lib/clients');
const { sampleDetails, operatorConsole, closeAll } = require('../e2e/lib/fixture');
const { RedisServer, testNumbers, daysAgo } = require('../e2e/lib/redis');
const { Desk, DESK_BIN, which, deskEnv, stopDesk } = require('./lib/desk');

const CLI_BIN = process.env.MHTAS_CLI ? path.resolve(process.env.MHTAS_CLI) : path.join(REPO_ROOT, 'bin', 'mhtas-cli');
const SHOT = path.join(REPO_ROOT, 'tests', 'desk', 'screenshots', 'desk-care.png');
const SHOT_RESTRICTED = path.join(REPO_ROOT, 'tests', 'desk', 'screenshots', 'desk-care-restricted.png');
const SHOT_CONFIRM = path.join(REPO_ROOT, 'tests', 'desk', 'screenshots', 'desk-care-confirm.png');
const MARKER = 'Zebra-crossing-calms-him'; // crisis-plan content that must reach nobody but practitioners
const [NHS_A, NHS_B] = testNumbers(2, 8200);
const DOB = '1984-03-07';
const SHARE_TEXT = 'Known to the crisis team. Approach calmly, one officer speaking; they will call the crisis line.';
const CLI_SHARE = 'Legal status checked: no detention in force.';
const GLASS_TEXT = 'Restricted record needed: risk to life reported at scene';
const CLI_DONE = 'CLI checks done';
const AUDIT_CHECKED = 'Audit checked before the read';
const REDIS_DOWN = 'Cache went down';
const ADVICE = 'Advice while the care record is unavailable: keep one officer talking, crisis team informed';

// A fuller record than 30-care's: every part, so the summary view shows
// them all. The legal status is 200 days old (stale after 30 days).
function person(nhs, given, { restricted = false } = {}) {
  const fresh = daysAgo(2);
  const src = 'RiO (GMMH)';
  return {
    nhsNumber: nhs,
    restricted,
    patient: {
      source: 'NHS Spine (PDS)',
      asAt: fresh,
      name: [{ use: 'official', family: 'Carefield', given: [given, 'Marie'], prefix: 'Ms' }],
      birthDate: DOB,
      gender: 'female',
      address: { line: ['12 Oak Road'], city: 'Bolton', district: 'Bolton', postalCode: 'BL1 4AA' },
      generalPractitioner: { odsCode: 'P82001', display: 'Oak Road Medical Centre', phone: '0161 496 0123' },
      phone: '0161 496 0456',
    },
    legalStatus: { source: src, asAt: daysAgo(200), status: 'informal' },
    conditions: {
      source: src,
      asAt: fresh,
      items: [{ system: 'http://snomed.info/sct', code: '35489007', display: 'Depressive disorder', onset: '2019-05-01', clinicalStatus: 'active' }],
    },
    careTeam: {
      source: src,
      asAt: fresh,
      careCoordinator: { name: 'Sam Patel', role: 'Community psychiatric nurse', phone: '0161 496 0200', team: 'Bolton North CMHT' },
      cmht: { name: 'Bolton North CMHT', phone: '0161 496 0201', instructions: 'Mon-Fri 09:00-17:00' },
      outOfHours: { name: 'GMMH crisis line', phone: '0161 496 0202', instructions: '24/7' },
      provider: 'Greater Manchester Mental Health NHS FT',
      others: [],
    },
    flags: {
      source: src,
      asAt: fresh,
      items: [{ code: 'self-harm', level: 'medium', detail: 'Cut arms when distressed', recorded: '2026-01-01' }],
    },
    carePlan: {
      source: src,
      asAt: fresh,
      warningSigns: ['Stops sleeping'],
      whatHelps: [MARKER, 'Calm voice, one person speaking'],
      whatToAvoid: ['Several officers at once'],
      placeOfSafety: 'Health-based place of safety, Royal Bolton Hospital',
      contacts: [{ name: 'Jo Carefield', role: 'Sister', phone: '0161 496 0300' }],
      advanceStatement: 'I would rather go to hospital voluntarily.',
      review: '2027-01-01',
    },
    encounters: {
      source: src,
      asAt: fresh,
      items: [{ class: 'crisis-team', start: '2026-09-01', end: '', location: 'Home visit', summary: 'Settled after two visits' }],
    },
  };
}

let hub;
let desk;
let redis;
let tmp;
const opened = [];

// bin/mhtas-cli as `user`: { status, stdout, stderr }.
function cli(user, ...args) {
  const r = spawnSync(CLI_BIN, ['--port', String(hub.grpcPort), '--deadline-ms', '8000', ...args], {
    encoding: 'utf8',
    env: { ...process.env, MHTAS_TOKEN: hub.token(user), MHTAS_CLI_QUIET: '1' },
  });
  return { status: r.status, stdout: r.stdout || '', stderr: r.stderr || '' };
}

function cliOk(user, ...args) {
  const r = cli(user, ...args);
  assert.equal(r.status, 0, `mhtas-cli ${args.join(' ')} exit ${r.status}\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^status=OK/, r.stdout);
  return r.stdout;
}

function filesUnder(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

before(async () => {
  RedisServer.requireInstalled();
  redis = new RedisServer();
  await redis.start();
  redis.load([person(NHS_A, 'Ann'), person(NHS_B, 'Beth', { restricted: true })], { generated: 200, seed: 31 });
  hub = await startHub({
    name: 'desk-care',
    config: { routing: { strategy: 'linear', offer_timeout_ms: 20000 } },
    sets: [`cache.redis_port=${redis.port}`, 'cache.stale_after_days=30', 'cache.command_timeout_ms=500'],
  });
});

after(async () => {
  await stopDesk(desk);
  closeAll(opened);
  try {
    if (hub) await hub.stopChecked();
  } finally {
    if (redis) await redis.stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('the desk searches, reads (stale flagged), shares two parts, breaks the glass, and shows the cache down', async () => {
  assert.ok(which('xvfb-run'), 'xvfb-run is missing: apt-get install -y xvfb');
  for (const bin of [DESK_BIN, CLI_BIN]) assert.ok(fs.existsSync(bin), `${bin} is missing: make -j2`);

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mhtas-desk-care-'));
  fs.rmSync(SHOT, { force: true });
  fs.rmSync(SHOT_RESTRICTED, { force: true });
  fs.rmSync(SHOT_CONFIRM, { force: true });
  const script = path.join(tmp, 'script.txt');
  fs.writeFileSync(
    script,
    [
      'start-shift',
      'accept-first-offer',
      `care-search Carefield ${DOB}`,
      '# Open asks for two identifiers confirmed first: one is not enough',
      'care-open-first unrestricted',
      'care-confirm dob',
      'care-expect-not-read',
      `wait-message ${AUDIT_CHECKED}`,
      'care-confirm name,dob',
      'wait-care',
      'care-expect-stale LEGAL_STATUS',
      `care-share RISKS,CRISIS_PLAN ${SHARE_TEXT}`,
      `screenshot-care ${SHOT}`,
      `wait-message ${CLI_DONE}`,
      '# the restricted record: confirm identity (Cancel once), then the break-glass dialog',
      'care-open-first restricted',
      'care-confirm dob',
      `screenshot-care-confirm ${SHOT_CONFIRM}`,
      'care-confirm cancel',
      'care-open-first restricted',
      'care-confirm dob,address',
      `care-glass RESTRICTED_RECORD ${GLASS_TEXT}`,
      'wait-care',
      'care-expect-restricted',
      `screenshot-care ${SHOT_RESTRICTED}`,
      'care-close',
      `wait-message ${REDIS_DOWN}`,
      `care-search Carefield ${DOB}`,
      'care-expect-error UNAVAILABLE',
      `say ${ADVICE}`,
      'propose ADVICE_ONLY Advice given; the crisis team knows the person.',
      'wait-state CLOSED',
      'quit',
      '',
    ].join('\n'),
  );
  desk = new Desk(
    ['--host', '127.0.0.1', '--port', String(hub.grpcPort), '--script', script],
    deskEnv(hub.token('p.a'), path.join(tmp, 'config')),
  );
  const op = await operatorConsole(hub);
  opened.push(op);
  await desk.waitLine(/^MHTAS_DESK step=1 ok cmd=start-shift/, 20000);

  const details = sampleDetails({
    policeRef: 'GMP-20261123-0951',
    borough: 'Manchester',
    person: {
      familyName: 'Carefield',
      givenNames: 'Ann',
      dateOfBirth: DOB,
      address: '12 Oak Road, Bolton',
      postcode: 'BL1 4AA',
      nhsNumber: NHS_A,
    },
  });
  const inc = (await op.call('raiseIncident', { details, idempotencyKey: 'desk-care-1' })).incident;
  await desk.waitLine(new RegExp(`^MHTAS_DESK tab-open id=${inc.id} `), 10000);
  const id = String(inc.id);
  // The hub's READ rows for this incident (the supervisor, through the CLI).
  const reads = () =>
    cliOk('sup.one', 'audit', '--user', 'p.a', '--incident', id)
      .split('\n')
      .filter((l) => l.startsWith('seq=') && l.includes('action=READ'));
  const lineAt = (re) => desk.lines.findIndex((l) => re.test(l));

  // ---- search; Open: confirm two identifiers first, one is not enough
  const found = await desk.waitLine(new RegExp(`^MHTAS_DESK care-search id=${inc.id} status=OK results=(\\d+) restricted=(\\d+)`), 10000);
  assert.ok(Number(found[1]) >= 2, `results ${found[1]}`);
  assert.ok(Number(found[2]) >= 1, 'the restricted record is among the results, flagged');
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-confirm-dialog id=${inc.id} same=4 differs=0 unknown=0 restricted=0 glass=0$`), 10000);
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-confirm id=${inc.id} confirmed=1 refused=1$`), 5000);
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-not-read id=${inc.id} confirmed=1 dialog=1 open_enabled=0$`), 5000);
  assert.equal(lineAt(/ care-read /), -1, 'the desk read nothing with one identifier confirmed');
  assert.deepEqual(reads(), [], 'no READ in the audit trail with one identifier confirmed');
  await op.call('postMessage', { incidentId: inc.id, text: AUDIT_CHECKED, clientMsgId: 'desk-care-audit-checked' });

  // ---- two identifiers: read; the stale legal status is flagged on screen
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-confirm id=${inc.id} confirmed=2 differs=0 then=read$`), 10000);
  const read = await desk.waitLine(new RegExp(`^MHTAS_DESK care-read id=${inc.id} status=OK restricted=0 stale=(\\S+) stale_flagged=(\\S+) glass=0 audit_seq=(\\d+)`), 10000);
  assert.equal(read[1], 'LEGAL_STATUS', 'the hub reports the legal status stale');
  assert.equal(read[2], 'LEGAL_STATUS', 'the desk flags it on screen');
  await desk.waitLine(/^MHTAS_DESK care-stale-flagged id=\d+ parts=LEGAL_STATUS$/, 5000);
  const firstReads = reads();
  assert.equal(firstReads.length, 1, `one READ once two identifiers were confirmed:\n${firstReads.join('\n')}`);
  assert.ok(firstReads[0].includes(`nhs=${NHS_A}`), firstReads[0]);

  // ---- the share reaches the operator: the words and the parts' names, nothing from the record
  const share = await op.waitFor(
    (ev) => is.message(inc.id)(ev) && ev.message.text.startsWith(SHARE_TEXT),
    10000,
    'the SHARE message on the console',
  );
  assert.equal(share.message.kind, 'MESSAGE_KIND_SHARE', JSON.stringify(share.message));
  assert.equal(share.message.fromUser, 'p.a');
  assert.match(share.message.text, /\[Shared from the care record: risks, crisis plan\]$/);
  for (const s of [MARKER, NHS_A, 'Cut arms', 'Depressive', DOB]) assert.ok(!share.message.text.includes(s), `the share carries ${s}`);
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-share id=${inc.id} status=OK parts=RISKS,CRISIS_PLAN disclosure=\\d+`), 5000);
  await desk.waitLine(new RegExp(`^MHTAS_DESK share-message id=${inc.id} number=\\d+ from=p\\.a`), 5000);
  await desk.waitLine(/^MHTAS_DESK screenshot path=.*desk-care\.png$/, 10000);

  // ---- the CLI, as the same practitioner, on the same incident
  const search = cliOk('p.a', 'search', id, 'Carefield', DOB, '--postcode', 'BL1 4AA');
  assert.match(search, /^status=OK count=(\d+)/);
  assert.ok(search.includes(`NHS ${NHS_A.slice(0, 3)} ${NHS_A.slice(3, 6)} ${NHS_A.slice(6)}`), search);
  assert.match(search, /RESTRICTED\(break-glass\)/);
  const summary = cliOk('p.a', 'summary', id, NHS_A, '--reason', 'checking before advising');
  assert.match(summary, /^status=OK restricted=false stale=LEGAL_STATUS audit_seq=\d+/);
  assert.match(summary, /^== Legal status {2}\[STALE: as at /m);
  assert.match(summary, /^== Risks {2}\[RiO \(GMMH\), as at /m);
  assert.ok(summary.includes(MARKER), 'the practitioner reads the crisis plan');
  const denied = cli('p.a', 'summary', id, NHS_B);
  assert.equal(denied.status, 1, denied.stdout);
  assert.match(denied.stdout, /^status=PERMISSION_DENIED code=7 message=".*restricted/);
  const glass = cliOk('p.a', 'summary', id, NHS_B, '--basis', 'vital', '--break-glass', 'RESTRICTED_RECORD', '--glass-text', 'checking the restricted one');
  assert.match(glass, /^status=OK restricted=true/);
  assert.match(glass, /^!! RESTRICTED RECORD/m);
  assert.match(cliOk('p.a', 'share', id, NHS_A, 'legal_status', CLI_SHARE), /^status=OK id=\d+ disclosure=\d+/);
  await op.waitFor((ev) => is.message(inc.id)(ev) && ev.message.text === `${CLI_SHARE}\n[Shared from the care record: legal status]`, 10000, 'the CLI share');
  const usage = cli('p.a', 'share', id, NHS_A, 'NOT_A_PART', 'x');
  assert.equal(usage.status, 2, 'an unknown part is a usage error');
  await op.call('postMessage', { incidentId: inc.id, text: CLI_DONE, clientMsgId: 'desk-care-cli-done' });

  // ---- break-glass in the desk: confirm identity first (the given name and
  // the NHS number differ from the police details), Cancel, again, then the
  // break-glass dialog and the restricted record with its banner
  const dialog = new RegExp(`^MHTAS_DESK care-confirm-dialog id=${inc.id} same=2 differs=2 unknown=0 restricted=1 glass=1$`);
  await desk.waitLine(dialog, 10000);
  await desk.waitLine(/^MHTAS_DESK screenshot path=.*desk-care-confirm\.png$/, 10000);
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-confirm id=${inc.id} confirmed=1 cancelled=1$`), 5000);
  const confirmed = await desk.waitLine(new RegExp(`^MHTAS_DESK care-confirm id=${inc.id} confirmed=2 differs=0 then=break-glass$`), 10000);
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-glass-dialog id=${inc.id} for=read`), 10000);
  const confirmedAt = desk.lines.indexOf(confirmed[0]);
  assert.ok(lineAt(new RegExp(`^MHTAS_DESK care-confirm id=${inc.id} confirmed=1 cancelled=1$`)) < confirmedAt, 'cancelled, then confirmed');
  assert.ok(
    confirmedAt < lineAt(new RegExp(`^MHTAS_DESK care-glass-dialog id=${inc.id} for=read`)),
    'the break-glass dialog comes after the identity is confirmed',
  );
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-read id=${inc.id} status=OK restricted=1 .* glass=1`), 10000);
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-restricted-shown id=${inc.id}`), 5000);
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-closed id=${inc.id}`), 5000);

  // ---- the audit trail (the supervisor, through the CLI)
  const audit = cliOk('sup.one', 'audit', '--user', 'p.a', '--incident', id);
  const rows = audit.split('\n').filter((l) => l.startsWith('seq='));
  const actions = rows.map((l) => /action=(\S+)/.exec(l)[1]);
  for (const a of ['SEARCH_RESULT', 'READ', 'SHARE', 'BREAK_GLASS']) assert.ok(actions.includes(a), `audit has ${a}: ${actions}`);
  const deskRead = rows.find((l) => l.includes('action=READ') && l.includes(`nhs=${NHS_A}`) && l.includes('reason="advising officers on incident GMP-20261123-0951"'));
  assert.ok(deskRead && /basis=DIRECT_CARE/.test(deskRead), `the desk's read is audited with its basis and reason:\n${audit}`);
  const deskGlass = rows.find((l) => l.includes('action=BREAK_GLASS') && l.includes(`glass_text="${GLASS_TEXT}"`));
  assert.ok(deskGlass && /break_glass=RESTRICTED_RECORD/.test(deskGlass), `the desk's break-glass is audited:\n${audit}`);
  const shares = rows.filter((l) => l.includes('action=SHARE'));
  assert.ok(shares.some((l) => /parts=RISKS,CRISIS_PLAN/.test(l)), `the desk's share is audited:\n${audit}`);
  assert.equal(cli('p.a', 'audit').status, 1, 'audit is for supervisors');

  // ---- Redis down: look-ups fail with UNAVAILABLE; advice goes on
  await redis.kill();
  let lastCli = null;
  for (let i = 0; i < 50; i++) {
    lastCli = cli('p.a', 'search', id, 'Carefield', DOB);
    if (lastCli.status === 1 && /^status=UNAVAILABLE code=14/.test(lastCli.stdout)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(lastCli.stdout, /^status=UNAVAILABLE code=14 message=".*unavailable/i, 'the hub says the cache is down');
  await op.call('postMessage', { incidentId: inc.id, text: REDIS_DOWN, clientMsgId: 'desk-care-redis-down' });
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-search id=${inc.id} status=UNAVAILABLE`), 10000);
  await desk.waitLine(new RegExp(`^MHTAS_DESK care-error-shown id=${inc.id} status=UNAVAILABLE retry=1`), 5000);
  await op.waitFor(is.message(inc.id, { text: ADVICE, from: 'p.a' }), 10000, 'advice while the cache is down');
  await op.waitFor(is.update(inc.id, { state: 'INCIDENT_STATE_OUTCOME_PROPOSED' }), 10000, 'the proposal');
  await op.call('agreeOutcome', { incidentId: inc.id, agree: true, idempotencyKey: 'desk-care-agree' });
  await desk.waitLine(/^MHTAS_DESK script-done$/, 15000);
  const exit = await desk.waitExit(10000);
  assert.notEqual(exit, 'timeout', `the desk did not exit after quit\n${desk.tail()}`);
  assert.equal(exit.code, 0, `desk exit ${JSON.stringify(exit)}\n${desk.tail()}`);

  // ---- the screenshot of the summary view is a real PNG
  const png = fs.readFileSync(SHOT);
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG', 'screenshot is a PNG');
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  assert.ok(width >= 1000 && height >= 600, `screenshot is ${width}x${height}`);
  assert.ok(png.length > 30000, `screenshot is only ${png.length} bytes`);
  assert.ok(fs.statSync(SHOT_RESTRICTED).size > 30000, 'the restricted-record screenshot was saved');
  const confirmPng = fs.readFileSync(SHOT_CONFIRM);
  assert.equal(confirmPng.subarray(1, 4).toString('latin1'), 'PNG', 'the confirm-identity screenshot is a PNG');
  assert.ok(confirmPng.length > 30000, `the confirm-identity screenshot is only ${confirmPng.length} bytes`);

  // ---- nothing personal in the desk's output, nothing of the record on disk
  const printed = desk.lines.join('\n') + desk.stderr;
  for (const s of [NHS_A, NHS_B, MARKER, 'Carefield', DOB, 'Cut arms', GLASS_TEXT, SHARE_TEXT]) {
    assert.ok(!printed.includes(s), `the desk printed ${s}`);
  }
  for (const f of filesUnder(tmp)) {
    if (f === script) continue;
    const body = fs.readFileSync(f, 'latin1');
    for (const s of [NHS_A, NHS_B, MARKER, 'Cut arms']) assert.ok(!body.includes(s), `${f} holds ${s}`);
  }
  console.log(`# care screenshot ${SHOT} (${width}x${height}, ${png.length} bytes); audit rows for p.a: ${rows.length}`);
});
