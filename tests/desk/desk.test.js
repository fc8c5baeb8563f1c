'use strict';
// desk.test.js -- bin/mhtas-desk (GTK 4) under xvfb-run, driven through a
// real incident against a real hub:
//
//   the desk signs in (MHTAS_TOKEN, --host/--port) and starts its shift
//   the operator (WebSocket console) raises an adult incident A
//   the desk shows the offer (logged with the offer-to-screen time) and
//     accepts it from the offer card; the operator sees ACCEPTED
//   the operator raises an under-18 incident B; the desk accepts it too: two
//     incident tabs at once
//   on B the outcome form refuses a police station (under 18); on A it asks
//     for the inspector, then accepts; it refuses s136 without a recorded
//     consultation and in the person's home
//   messages both ways on A; a template is inserted into the draft
//   screenshots: the offer notification (tests/desk/screenshots/desk-offer.png)
//   and the window with A's tab open:
//     tests/desk/screenshots/desk-incident.png
//   the desk proposes REFER_CMHT + NO_POLICE_ATTENDANCE, the operator agrees,
//     the desk sees CLOSED and exits 0.
//
// The test fails (it never skips) when xvfb-run or the binary is missing.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startHub, REPO_ROOT } = require('../e2e/lib/hub');
const { is } = require('../e2e/lib/clients');
const { sampleDetails, operatorConsole, closeAll } = require('../e2e/lib/fixture');
const { Desk, DESK_BIN, which, stopDesk } = require('./lib/desk');

const SHOT = path.join(REPO_ROOT, 'tests', 'desk', 'screenshots', 'desk-incident.png');
const SHOT_OFFER = path.join(REPO_ROOT, 'tests', 'desk', 'screenshots', 'desk-offer.png');
const OP_TEXT = 'Officers on scene: the person is calmer now and sitting with MX21';
const DESK_TEXT = 'Desk advice: known to the CMHT; keep talking calmly, crisis plan says avoid loud spaces';

let hub;
let desk;
const opened = [];

before(async () => {
  hub = await startHub({ name: 'desk', config: { routing: { strategy: 'linear', offer_timeout_ms: 20000 } } });
});

after(async () => {
  await stopDesk(desk);
  closeAll(opened);
  if (hub) await hub.stopChecked();
});

test('the GTK desk client takes a real incident from offer to CLOSED under xvfb-run', async () => {
  assert.ok(which('xvfb-run'), 'xvfb-run is missing: apt-get install -y xvfb');
  assert.ok(fs.existsSync(DESK_BIN), `${DESK_BIN} is missing: build bin/mhtas-desk first`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mhtas-desk-'));
  fs.rmSync(SHOT, { force: true });
  fs.rmSync(SHOT_OFFER, { force: true });
  const script = path.join(tmp, 'script.txt');
  fs.writeFileSync(
    script,
    [
      'start-shift',
      'wait-offer',
      `screenshot ${SHOT_OFFER}`,
      'accept-first-offer',
      'accept-first-offer',
      '# B is under 18: never a police station',
      'use-incident 2',
      'form S136_DETENTION place=3 consulted=Dr_Khan at=10:00 inspector=Insp_Jones expect=under 18',
      '# A is an adult: a police station needs the inspector',
      'use-incident 1',
      'form S136_DETENTION place=3 consulted=Dr_Khan at=10:00 expect=inspector',
      'form S136_DETENTION place=3 consulted=Dr_Khan at=10:00 inspector=Insp_Jones expect=Ready',
      'form S136_DETENTION place=1 expect=consulted',
      'form S136_DETENTION place=1 consulted=Dr_Khan at=10:00 home=1 expect=lives',
      'form S136_DETENTION,S136_CONSIDERED_NOT_USED place=1 consulted=Dr_Khan expect=both',
      `say ${DESK_TEXT}`,
      `wait-message ${OP_TEXT}`,
      'insert-template 1',
      `screenshot ${SHOT}`,
      'propose REFER_CMHT,NO_POLICE_ATTENDANCE Known to the CMHT; no police attendance needed, CMHT to visit today.',
      'wait-state CLOSED',
      'quit',
      '',
    ].join('\n'),
  );

  const env = {
    ...process.env,
    MHTAS_TOKEN: hub.token('p.a'),
    XDG_CONFIG_HOME: path.join(tmp, 'config'),
    XDG_RUNTIME_DIR: path.join(tmp, 'run'),
    GTK_A11Y: 'none',
    NO_AT_BRIDGE: '1',
  };
  desk = new Desk(['--host', '127.0.0.1', '--port', String(hub.grpcPort), '--script', script], env);

  const op = await operatorConsole(hub);
  opened.push(op);

  await desk.waitLine(/^MHTAS_DESK signed-in user=p\.a$/, 20000);
  await desk.waitLine(/^MHTAS_DESK step=1 ok cmd=start-shift/, 10000);

  // ---- incident A (adult)
  const a = (await op.call('raiseIncident', { details: sampleDetails({ policeRef: 'GMP-20261123-0901' }), idempotencyKey: 'desk-a' })).incident;
  const drawnA = await desk.waitLine(new RegExp(`^MHTAS_DESK offer-drawn id=${a.id} offer_to_screen_ms=(-?\\d+) hub_to_client_ms=(-?\\d+) client_to_screen_ms=(-?\\d+)`), 10000);
  await op.waitFor(is.update(a.id, { state: 'INCIDENT_STATE_ACCEPTED', practitioner: 'p.a' }), 10000, 'the console to see A ACCEPTED by p.a');
  await desk.waitLine(new RegExp(`^MHTAS_DESK tab-open id=${a.id} `), 5000);

  // ---- incident B (under 18), while A is open
  const detailsB = sampleDetails({
    policeRef: 'GMP-20261123-0902',
    person: { familyName: 'Young', givenNames: 'Sam', ageYears: 16, postcode: 'M1 2AB' },
    flags: ['CONCERN_FLAG_UNDER_18', 'CONCERN_FLAG_SELF_HARM'],
  });
  const b = (await op.call('raiseIncident', { details: detailsB, idempotencyKey: 'desk-b' })).incident;
  const drawnB = await desk.waitLine(new RegExp(`^MHTAS_DESK offer-drawn id=${b.id} offer_to_screen_ms=(-?\\d+)`), 10000);
  await op.waitFor(is.update(b.id, { state: 'INCIDENT_STATE_ACCEPTED', practitioner: 'p.a' }), 10000, 'the console to see B ACCEPTED by p.a');

  // ---- the form's s136 rules (the script fails the desk if a verdict differs)
  await desk.waitLine(/form verdict="A police station is never a place of safety for someone under 18\./, 10000);
  await desk.waitLine(/form verdict="A police station as place of safety needs an inspector/, 10000);
  await desk.waitLine(/form verdict=".*lives/, 10000);

  // ---- messages both ways on A
  await op.waitFor(is.message(a.id, { text: DESK_TEXT, from: 'p.a' }), 10000, "the console to see the desk's message");
  await op.call('postMessage', { incidentId: a.id, text: OP_TEXT, clientMsgId: 'desk-op-1' });
  await desk.waitLine(new RegExp(`^MHTAS_DESK message id=${a.id} number=\\d+ from=op\\.one`), 10000);

  // ---- screenshot, then the outcome
  await desk.waitLine(/^MHTAS_DESK screenshot path=/, 15000);
  await op.waitFor(is.update(a.id, { state: 'INCIDENT_STATE_OUTCOME_PROPOSED' }), 10000, 'the console to see the proposal');
  const full = (await op.call('getIncident', { incidentId: a.id })).incident;
  assert.deepEqual(full.outcome.codes, ['OUTCOME_CODE_REFER_CMHT', 'OUTCOME_CODE_NO_POLICE_ATTENDANCE']);
  await op.call('agreeOutcome', { incidentId: a.id, agree: true, idempotencyKey: 'desk-agree-a' });
  await desk.waitLine(/^MHTAS_DESK script-done$/, 15000);
  const exit = await desk.waitExit(10000);
  assert.notEqual(exit, 'timeout', `the desk did not exit after quit\n${desk.tail()}`);
  assert.equal(exit.code, 0, `desk exit ${JSON.stringify(exit)}\n${desk.tail()}`);

  // ---- the screenshot is a real PNG of a decent size
  const png = fs.readFileSync(SHOT);
  assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG', 'screenshot is a PNG');
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  assert.ok(width >= 1000 && height >= 600, `screenshot is ${width}x${height}`);
  assert.ok(png.length > 20000, `screenshot is only ${png.length} bytes`);

  assert.ok(fs.statSync(SHOT_OFFER).size > 20000, 'the offer screenshot was saved');

  // ---- the draft with the inserted template survived on disk (typed text is kept)
  // Drafts live in the runtime directory (tmpfs in real life), owner-only.
  const draftDir = path.join(tmp, 'run', 'mhtas-drafts');
  const drafts = fs.readdirSync(draftDir);
  assert.equal(fs.statSync(draftDir).mode & 0o777, 0o700, 'the drafts directory is owner-only');
  for (const f of drafts) assert.equal(fs.statSync(path.join(draftDir, f)).mode & 0o777, 0o600, `${f} is owner-only`);
  assert.ok(!fs.existsSync(path.join(tmp, 'config', 'mhtas', 'drafts')), 'no drafts under the config directory');
  assert.ok(drafts.some((f) => f === `p.a-${a.id}.txt`), `draft file for A kept: ${drafts}`);

  const ms = [drawnA, drawnB].map((m) => Number(m[1]));
  console.log(
    `# offer-to-screen: A ${drawnA[1]} ms (hub->client ${drawnA[2]} ms, client->painted ${drawnA[3]} ms), B ${ms[1]} ms; screenshot ${SHOT} (${width}x${height})`,
  );
  for (const v of ms) assert.ok(v >= 0 && v < 2000, `offer-to-screen ${v} ms should be well under 2 s`);
});
