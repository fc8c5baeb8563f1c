'use strict';
// 41 -- the radio relay driving a simulated TETRA terminal (bin/mhtas-pei-sim
// on a pseudo-terminal, answering PEI commands like a real one) against a
// real hub:
//
//   the terminal is initialised (ATE0, AT+CTSP, AT+CTSDS=12,0);
//   a text from an unknown ISSI is refused and logged, never guessed;
//   an officer's text raises an incident, the next one joins it;
//   the practitioner's advice reaches the terminal as AT+CMGS in numbered
//   parts (each within the limit, Latin-1 only, addressed and referenced,
//   rejoining to the advice), delivery reports reach the practitioner;
//   an ERROR reply and a "delivery failed" report are retried; "not
//   registered" fails for good and is shown to dispatcher and practitioner;
//   advice too long for radio is refused with "use voice", never cut;
//   the read-back is recorded on the incident;
//   serial faults: garbage lines, and the device going away with a text in
//   flight -- the relay reopens it and the text still goes out.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { startHub } = require('../lib/hub');
const { is } = require('../lib/clients');
const { practitionerOnShift, closeAll } = require('../lib/fixture');
const { startRelay, LineClient, startPeiSim } = require('../lib/relay');

const MAX = 120; // a gateway that cuts below 140: the configurable limit
let hub;
let relay;
let sim;
let d; // the dispatcher's line session
let pa; // the practitioner
let id; // the incident the officer's text raised
let ref; // its police reference
const opened = [];

before(async () => {
  hub = await startHub({ name: 'relay-radio', config: { routing: { strategy: 'linear', offer_timeout_ms: 10000 } } });
  sim = await startPeiSim();
  relay = await startRelay(hub, {
    name: 'radio',
    callsigns: { MX21: 2001001, MX22: 2001002 },
    radio: {
      device: sim.link,
      max_part_chars: MAX,
      rate_per_minute: 600,
      rate_burst: 10,
      retry_base_ms: 100,
      retry_max_ms: 400,
      max_attempts: 4,
    },
  });
  d = await LineClient.connect(relay.port, 'dispatcher');
  opened.push(d);
  await d.waitFor('HELLO ', 3000);
  pa = await practitionerOnShift(hub, 'p.a');
  opened.push(pa);
});

after(async () => {
  closeAll(opened);
  if (relay) await relay.stopChecked();
  if (sim) await sim.stop();
  if (hub) await hub.stopChecked();
});

// The dispatcher's line saying part k/n of advice #num is in `state`.
function delivery(num, k, n, state) {
  return d.waitFor((l) => l.startsWith(`EVENT DELIVERY ${id} ${k}/${n} ${state} :advice #${num} to `), 5000, `advice #${num} part ${k}/${n} ${state}`);
}

// The radio text rules for one advice's parts.
function checkParts(parts, callsign, reference, advice) {
  const n = parts.length;
  assert.ok(n >= 1 && n <= 3, `${n} parts`);
  const bodies = parts.map((p, i) => {
    const prefix = `${i + 1}/${n} ${callsign} ${reference}: `;
    assert.ok(p.text.startsWith(prefix), `part ${i + 1} starts with "${prefix}": ${p.text}`);
    assert.ok([...p.text].length <= MAX, `part ${i + 1} has ${[...p.text].length} characters (limit ${MAX}): ${p.text}`);
    assert.ok(/^[\x20-\x7e\u00a1-\u00ff]*$/.test(p.text), `part ${i + 1} is ISO-8859-1 printable only: ${p.text}`);
    assert.equal(Number(p.fields.bits), 8 * (4 + Buffer.from(p.text, 'latin1').length), 'bits = SDS-TL header + text');
    return p.text.slice(prefix.length);
  });
  assert.equal(bodies.join(' '), advice, 'the parts rejoin to the (normalised) advice');
  for (const b of bodies.slice(0, -1)) assert.match(b, /[.!?;:,]$/, `a part ends at an instruction or clause: "${b}"`);
}

test('the terminal is initialised over the PEI', async () => {
  await sim.waitFor((e) => e.type === 'cmd' && e.text === 'AT+CTSDS=12,0', 5000, 'AT+CTSDS=12,0');
  const cmds = sim.events.items.filter((e) => e.type === 'cmd').map((e) => e.text);
  assert.deepEqual(cmds.slice(0, 3), ['ATE0', 'AT+CTSP=1,3,130', 'AT+CTSDS=12,0']);
  assert.equal((await d.command('PING')).final, 'OK PONG hub=up radio=up queued=0');
});

test('a text from an unknown ISSI is refused and logged, never guessed', async () => {
  sim.send('incoming 2009999 Need advice about a man on the bridge');
  const l = await d.waitFor('EVENT RADIO_REFUSED 2009999', 3000, 'the refusal');
  assert.match(l, /not in the relay's callsigns/);
  await relay.waitForLog(/text from unknown ISSI 2009999 refused \(not in \[callsigns\]\), \d+ bytes/);
  assert.ok(!relay.stderr.includes('man on the bridge'), 'the words of a text never go to the log');
  const list = await d.command('LIST');
  assert.equal(list.final, 'OK LIST 0', 'no incident was raised');
});

test("an officer's text raises an incident, the next one joins it", async () => {
  sim.send('incoming 2001001 Male on Ducie Bridge over the canal, says he will jump. Known to MH?');
  const raised = await d.waitFor('EVENT RAISED ', 5000, 'the incident raised from the text');
  const m = /^EVENT RAISED (\d+) (RADIO-MX21-\d{8}) :from MX21's radio text$/.exec(raised);
  assert.ok(m, raised);
  [, id, ref] = m;
  const offer = await pa.sub.waitFor(is.offer(id), 3000, `offer of ${id}`);
  assert.equal(offer.offer.incident.details.question, 'Male on Ducie Bridge over the canal, says he will jump. Known to MH?');
  assert.deepEqual(offer.offer.incident.details.callsigns, ['MX21']);
  assert.equal(offer.offer.incident.raisedBy, 'disp.one');
  await pa.client.call('Accept', { incidentId: id });
  await d.waitFor(`EVENT STATE ${id} ACCEPTED p.a`, 3000);

  sim.send('incoming 2001001 He has a rucksack and seems drunk');
  const msg = await pa.sub.waitFor(is.message(id, { from: 'disp.one' }), 3000, 'the second text on the incident');
  assert.equal(msg.message.text, '[MX21 by radio text] He has a rucksack and seems drunk');
  await d.waitFor(`EVENT RADIO_IN MX21 ${id} :He has a rucksack`, 3000);
  assert.equal((await d.command('LIST')).final, 'OK LIST 1', 'still one incident');
});

test('advice reaches the terminal in numbered parts; delivery reports reach the practitioner', async () => {
  const from = sim.events.items.length;
  const advice =
    'He is known to the crisis team and has a crisis plan. Speak slowly, use his first name, Dan. ' +
    '\u201cDon\u2019t\u201d mention his brother \u2013 it escalates \ud83d\ude42. ' +
    'If he comes back over the railing, offer a voluntary assessment at the place of safety at Park House.';
  const normalised =
    'He is known to the crisis team and has a crisis plan. Speak slowly, use his first name, Dan. ' +
    '"Don\'t" mention his brother - it escalates. ' +
    'If he comes back over the railing, offer a voluntary assessment at the place of safety at Park House.';
  const t0 = Date.now();
  const posted = await pa.client.call('PostMessage', { incidentId: id, text: advice, clientMsgId: 'radio-advice-1' });
  const n = (await d.waitFor(new RegExp(`^EVENT ADVICE ${id} 1/\\d`), 3000, 'the parts')).split(' ')[3].split('/')[1];
  await delivery(posted.message.number, n, n, 'READ');
  const parts = await sim.waitCmgs(from, Number(n));
  assert.ok(parts.every((p) => p.fields.issi === '2001001' && p.fields.answer === 'ok'));
  checkParts(parts, 'MX21', ref, normalised);
  assert.ok(parts[0].t / 1000 >= t0 - 5, 'sent after the practitioner posted');
  // received, then read, recorded on the incident for the practitioner
  for (const word of ['received', 'read']) {
    const st = await pa.sub.waitFor(
      (ev) => is.message(id)(ev) && ev.message.kind === 'MESSAGE_KIND_RADIO_STATUS' && ev.message.text.includes(` ${word} `),
      3000,
      `the "${word}" radio status`,
    );
    assert.match(st.message.text, new RegExp(`^Radio: advice #\\d+ ${word} (by|on) MX21's radio \\(${n} parts?\\)\\.$`));
  }
  const st = await d.command(`STATUS ${id}`);
  assert.ok(st.lines.filter((l) => l.startsWith('PART ')).every((l) => / READ attempts=0 :/.test(l)), st.lines.join('\n'));
});

test('an ERROR reply and a temporary delivery failure are retried; "not registered" fails for good', async () => {
  // the terminal answers the first AT+CMGS with an error, and reports the
  // retry "delivery failed" (0x4A, temporary): the third attempt gets through
  let from = sim.events.items.length;
  sim.send('fail 1 +CME ERROR: 35');
  sim.send('failreport 1 4A');
  const p2 = await pa.client.call('PostMessage', { incidentId: id, text: 'Keep him talking until the crisis team arrives.', clientMsgId: 'radio-advice-2' });
  await delivery(p2.message.number, 1, 1, 'READ');
  let sends = await sim.waitCmgs(from, 3);
  assert.deepEqual(sends.map((s) => s.fields.answer), ['+CME_ERROR:_35', 'ok', 'ok'], sends.map((s) => s.raw).join('\n'));
  assert.ok(sends.every((s) => s.text === sends[0].text), 'the same part each time');
  const retries = d.lines.items.filter((l) => l.startsWith(`EVENT DELIVERY ${id} 1/1 RETRY`));
  assert.equal(retries.length, 2, retries.join('\n'));
  assert.match(retries[0], /\+CME ERROR: 35; attempt 2 again in 100 ms$/);
  assert.match(retries[1], /delivery failed; attempt 3 again in 200 ms$/);
  assert.ok(sends[1].t - sends[0].t >= 90000, 'the first retry waited its back-off');

  // permanent: the officer's radio is not registered (0x4B)
  from = sim.events.items.length;
  sim.send('failreport 1 4B');
  const p3 = await pa.client.call('PostMessage', { incidentId: id, text: 'Ask him if he has taken anything.', clientMsgId: 'radio-advice-3' });
  const failed = await delivery(p3.message.number, 1, 1, 'FAILED');
  assert.match(failed, /destination not registered$/);
  const st = await pa.sub.waitFor(
    (ev) => is.message(id)(ev) && ev.message.kind === 'MESSAGE_KIND_RADIO_STATUS' && ev.message.text.includes('could NOT be delivered'),
    3000,
    'the failure told to the practitioner',
  );
  assert.match(st.message.text, /^Radio: advice #\d+ part 1\/1 could NOT be delivered to MX21 \(destination not registered\)\. The dispatcher will pass it by voice\.$/);
  // a permanent failure is not retried: the next thing on the air is the next advice
  const p3b = await pa.client.call('PostMessage', { incidentId: id, text: 'Tell him help is coming.', clientMsgId: 'radio-advice-3b' });
  await delivery(p3b.message.number, 1, 1, 'READ');
  sends = await sim.waitCmgs(from, 2);
  assert.ok(sends[0].text.endsWith('Ask him if he has taken anything.'), sends[0].raw);
  assert.ok(sends[1].text.endsWith('Tell him help is coming.'), 'a permanent failure is not retried');
});

test('advice too long for radio is refused with "use voice", never cut', async () => {
  const from = sim.events.items.length;
  const long = Array.from({ length: 12 }, (_, i) => `Instruction ${i + 1}: keep a safe distance and keep talking to him calmly.`).join(' ');
  const posted = await pa.client.call('PostMessage', { incidentId: id, text: long, clientMsgId: 'radio-advice-long' });
  const num = posted.message.number;
  const refused = await d.waitFor(`EVENT REFUSED ${id} ${num} `, 3000, 'the refusal');
  assert.equal(refused, `EVENT REFUSED ${id} ${num} :too long for radio, use voice`);
  const voice = await d.waitFor(`EVENT VOICE ${id} ${num} `, 3000, 'the advice for voice');
  assert.equal(voice, `EVENT VOICE ${id} ${num} MX21 :${long}`);
  const st = await pa.sub.waitFor(
    (ev) => is.message(id)(ev) && ev.message.kind === 'MESSAGE_KIND_RADIO_STATUS' && ev.message.text.includes('too long for radio, use voice'),
    3000,
    'the refusal told to the practitioner',
  );
  assert.match(st.message.text, new RegExp(`^Radio: advice #${num} is too long for radio, use voice`));
  // nothing of it went to the radio: the next thing on the air is the next advice
  const next = await pa.client.call('PostMessage', { incidentId: id, text: 'Keep your distance.', clientMsgId: 'radio-advice-after-long' });
  await delivery(next.message.number, 1, 1, 'READ');
  const sent = await sim.waitCmgs(from, 1);
  assert.ok(sent[0].text.endsWith(': Keep your distance.'), sent[0].raw);
});

test('the read-back is recorded on the incident', async () => {
  const from = sim.events.items.length;
  const p4 = await pa.client.call('PostMessage', { incidentId: id, text: 'Stay with him until the ambulance arrives.', clientMsgId: 'radio-advice-4' });
  await delivery(p4.message.number, 1, 1, 'READ');
  await sim.waitFor((e) => e.type === 'cmgs', 3000, 'the AT+CMGS', { from });
  const rb = await d.command(`READBACK ${ref} 1 :officer read it back`);
  assert.match(rb.final, new RegExp(`^OK READBACK ${id} \\d+ \\d+$`));
  const msg = await pa.sub.waitFor(
    (ev) => is.message(id)(ev) && ev.message.kind === 'MESSAGE_KIND_READ_BACK',
    3000,
    'the READ_BACK message',
  );
  assert.match(msg.message.text, /^Read-back confirmed: MX21 read back advice #\d+ \(part 1\/1\) to the radio dispatcher\. Note: officer read it back$/);
  const inc = await pa.client.call('GetIncident', { incidentId: id });
  assert.equal(inc.incident.messages.filter((m) => m.kind === 'MESSAGE_KIND_READ_BACK').length, 1);
});

test('serial faults: garbage is ignored; the device going away loses nothing', async () => {
  sim.send('garbage \x07#@!noise from the line');
  sim.send('garbage 8200FF');
  sim.send('garbage OK');
  // (a pseudo-terminal delivers its bytes a little later: wait until the relay
  // has read all three, or the stray OK would answer the next AT+CMGS, as it
  // would on a real line)
  await relay.waitForLog(/unexpected line from the terminal ignored \(\d+ bytes; 3 so far\)/);
  assert.equal((await d.command('PING')).final, 'OK PONG hub=up radio=up queued=0');

  // the terminal swallows the next text (no answer), then goes away
  const from = sim.events.items.length;
  sim.send('silent 1');
  const p5 = await pa.client.call('PostMessage', { incidentId: id, text: 'If he comes down, give him a blanket and some water.', clientMsgId: 'radio-advice-5' });
  const lost = await sim.waitFor((e) => e.type === 'cmgs' && e.fields.answer === 'silent', 3000, 'the swallowed text', { from });
  sim.send('hangup');
  await d.waitFor('EVENT RADIO DOWN', 3000, 'the relay to see the device go');
  await sim.waitFor((e) => e.type === 'ready', 3000, 'a new pseudo-terminal', { from });
  await d.waitFor((l) => l.startsWith('EVENT RADIO UP'), 5000, 'the relay to reopen and initialise it');
  const again = await sim.waitFor((e) => e.type === 'cmgs' && e.fields.answer === 'ok', 5000, 'the text sent again', { from });
  assert.equal(again.text, lost.text, 'the same part went out on the new line');
  await delivery(p5.message.number, 1, 1, 'READ');
  assert.ok(relay.alive);
  assert.ok(!relay.stderr.includes('noise from the line'), 'garbage is logged by length only');
  // nothing of the advice's words in the relay's log
  for (const words of ['crisis plan', 'blanket', 'rucksack', 'Ducie Bridge']) {
    assert.ok(!relay.stderr.includes(words), `"${words}" must not appear in the relay's log`);
  }
});
