'use strict';
// 40 -- the radio relay's dispatcher line protocol against a real hub
// (bin/mhtas-relay without a radio: advice is read by voice):
//
//   HELLO, PING, HELP, and coded errors for bad lines;
//   RAISE a query for a callsign -> OK RAISED, the practitioner is offered it;
//   SAY passes on what the officer says -> the practitioner's stream has it;
//   the practitioner's advice arrives as EVENT ADVICE / EVENT VOICE lines;
//   READBACK records a READ_BACK message on the incident;
//   several commands in one write are answered in order;
//   the human mode (prompt, readable errors); QUIT;
//   the hub restarts: EVENT HUB DOWN / UP, a SAY sent meanwhile is answered
//   after the restart, and advice still arrives (reconnect and resume).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');

const { startHub } = require('../lib/hub');
const { is, eventKind } = require('../lib/clients');
const { practitionerOnShift, operatorConsole, closeAll } = require('../lib/fixture');
const { startRelay, LineClient } = require('../lib/relay');

let hub;
let relay;
const opened = [];

// A port that is free now, so the hub comes back on the same one after a restart.
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

before(async () => {
  const port = await freePort();
  hub = await startHub({
    name: 'relay-lines',
    config: { routing: { strategy: 'linear', offer_timeout_ms: 10000 } },
    sets: [`hub.grpc_port=${port}`],
  });
  relay = await startRelay(hub, { name: 'lines', callsigns: { MX21: 2001001 } });
});

after(async () => {
  closeAll(opened);
  if (relay) await relay.stopChecked();
  if (hub) await hub.stopChecked();
});

async function dispatcher(name = 'dispatcher') {
  const d = await LineClient.connect(relay.port, name);
  opened.push(d);
  const hello = await d.waitFor('HELLO ', 3000, 'the HELLO line');
  assert.match(hello, /^HELLO mhtas-relay 1 hub=(up|down) radio=off :/);
  // A relay just started may still be connecting to the hub (slow machine,
  // valgrind): wait for its announcement rather than assume.
  if (hello.includes('hub=down')) await d.waitFor('EVENT HUB UP', 15000, 'the relay connected to the hub');
  return d;
}

test('HELLO, PING, HELP and coded errors', async () => {
  const d = await dispatcher();
  assert.equal((await d.command('PING')).final, 'OK PONG hub=up radio=off queued=0');
  const help = await d.command('HELP');
  assert.equal(help.final, 'OK HELP');
  assert.ok(help.lines.some((l) => l.startsWith('HELP RAISE <police_ref>')), help.lines.join('\n'));
  assert.ok(help.lines.every((l, i) => i === help.lines.length - 1 || l.startsWith('HELP ')));
  assert.equal((await d.command('FROB 12')).final, "ERR UNKNOWN_COMMAND 'FROB' is not a command; type HELP");
  assert.match((await d.command('RAISE GMP-1 Manchester MX21 :no priority')).final, /^ERR SYNTAX usage: RAISE/);
  assert.match((await d.command('RAISE GMP-1 Manchester MX21 7 :q')).final, /^ERR BAD_ARG priority must be 1/);
  assert.equal((await d.command('SAY 999 :hello')).final, 'ERR NOT_FOUND incident 999 is not one this relay follows (LIST shows them)');
  assert.equal((await d.command('PING extra')).final, 'ERR SYNTAX PING takes no arguments');
  // the hub's refusal comes back with its gRPC status
  const bad = await d.command('RAISE GMP-BAD Atlantis MX21 2 :is he known?');
  assert.match(bad.final, /^ERR HUB_INVALID_ARGUMENT details\.borough is unknown/);
  // an over-long line is refused, and the session goes on
  d.send('SAY 1 :' + 'x'.repeat(9000));
  await d.waitFor('ERR TOO_LONG', 3000);
  assert.equal((await d.command('PING')).final, 'OK PONG hub=up radio=off queued=0');
});

test('RAISE, SAY, advice by voice, READBACK, STATUS and LIST against the hub', async () => {
  const d = await dispatcher();
  const op = await operatorConsole(hub);
  opened.push(op);
  const pa = await practitionerOnShift(hub, 'p.a');
  opened.push(pa);

  const r = await d.command('RAISE GMP-20261123-0777 Manchester MX21 2 :Woman on the roof of the car park, says she wants to die. Known?');
  const m = /^OK RAISED (\d+) (QUEUED|OFFERED|NEW)$/.exec(r.final);
  assert.ok(m, `RAISE answered ${r.final}`);
  const id = m[1];
  // the incident is the dispatcher's, for callsign MX21, and goes to the practitioner
  const offer = await pa.sub.waitFor(is.offer(id), 3000, `an offer of ${id} to p.a`);
  assert.equal(offer.offer.incident.raisedBy, 'disp.one');
  assert.deepEqual(offer.offer.incident.details.callsigns, ['MX21']);
  assert.equal(offer.offer.incident.details.question, 'Woman on the roof of the car park, says she wants to die. Known?');
  await op.waitFor(is.update(id), 3000, 'the console to see the incident');
  await pa.client.call('Accept', { incidentId: id });
  await d.waitFor(`EVENT STATE ${id} ACCEPTED p.a`, 3000);

  // SAY: what the officer says reaches the practitioner
  const said = await d.command(`SAY ${id} :She has climbed back over the barrier and is sitting down.`);
  assert.match(said.final, new RegExp(`^OK SAID ${id} \\d+$`));
  const msg = await pa.sub.waitFor(is.message(id, { from: 'disp.one' }), 3000, 'the SAY on the practitioner stream');
  assert.equal(msg.message.text, '[MX21] She has climbed back over the barrier and is sitting down.');

  // READBACK before any advice
  assert.match((await d.command(`READBACK ${id} all`)).final, /^ERR NO_ADVICE/);

  // the advice arrives as lines: the parts, and the whole for voice (no radio)
  const advice = 'She is known to the crisis team. Keep talking to her calmly; do not rush her. ' +
    'If she agrees, take her to the place of safety at Park House, not A\u0026E.';
  await pa.client.call('PostMessage', { incidentId: id, text: advice, clientMsgId: 'lines-advice-1' });
  const voice = await d.waitFor(`EVENT VOICE ${id} `, 3000, 'the advice for voice');
  assert.equal(voice, `EVENT VOICE ${id} 2 MX21 :${advice}`);
  const parts = d.lines.items.filter((l) => l.startsWith(`EVENT ADVICE ${id} `));
  assert.ok(parts.length >= 1 && parts.length <= 3, parts.join('\n'));
  assert.match(parts[0], new RegExp(`^EVENT ADVICE ${id} 1/${parts.length} :1/${parts.length} MX21 GMP-20261123-0777: She is known`));

  // the read-back is recorded on the incident as READ_BACK
  const rb = await d.command(`READBACK GMP-20261123-0777 all :read back word for word`);
  assert.match(rb.final, new RegExp(`^OK READBACK ${id} 2 \\d+$`));
  const rbMsg = await pa.sub.waitFor(
    (ev) => is.message(id)(ev) && ev.message.kind === 'MESSAGE_KIND_READ_BACK',
    3000,
    'the READ_BACK message',
  );
  assert.equal(rbMsg.message.text, 'Read-back confirmed: MX21 read back advice #2 (by voice) to the radio dispatcher. Note: read back word for word');
  assert.equal(rbMsg.message.fromRole, 'ROLE_DISPATCHER');
  const got = await op.call('getIncident', { incidentId: id });
  assert.ok(got.incident.messages.some((x) => x.kind === 'MESSAGE_KIND_READ_BACK'), 'the incident holds the read-back');

  // STATUS and LIST
  const st = await d.command(`STATUS ${id}`);
  assert.equal(st.lines[0], `INCIDENT ${id} GMP-20261123-0777 MX21 ADVISING p.a`);
  assert.ok(st.lines.slice(1, -1).every((l) => / VOICE attempts=0 :/.test(l)), st.lines.join('\n'));
  assert.equal(st.final, `OK STATUS ${id} advice #2 read back`);
  const list = await d.command('LIST');
  assert.ok(list.lines.includes(`INCIDENT ${id} GMP-20261123-0777 MX21 ADVISING p.a`), list.lines.join('\n'));
  assert.match(list.final, /^OK LIST \d+$/);

  // a second session sees the same events (they are broadcast)
  const d2 = await dispatcher('second dispatcher');
  await pa.client.call('PostMessage', { incidentId: id, text: 'Stay with her until the crisis team arrives.', clientMsgId: 'lines-advice-2' });
  await d2.waitFor(`EVENT VOICE ${id} `, 3000);
  await d.waitFor((l) => l.startsWith(`EVENT VOICE ${id} `) && l.includes('crisis team arrives'), 3000, 'the second advice');
});

test('commands in one write are answered one at a time, in order', async () => {
  const d = await dispatcher();
  const replies = [];
  const all = [
    d.command('RAISE GMP-ORDER-1 Salford MX21 3 :Man shouting in the street, known?'),
    d.command('PING'),
    d.command('LIST'),
    d.command('FROB'),
    d.command('PING'),
  ];
  for (const p of all) replies.push((await p).final);
  assert.match(replies[0], /^OK RAISED \d+ /);
  assert.match(replies[1], /^OK PONG /);
  assert.match(replies[2], /^OK LIST \d+$/);
  assert.match(replies[3], /^ERR UNKNOWN_COMMAND/);
  assert.match(replies[4], /^OK PONG /);
  // in the stream of lines, too: no reply line of a later command before an earlier one's
  const finals = d.lines.items.filter((l) => /^(OK|ERR) /.test(l));
  assert.deepEqual(finals.slice(-5), replies);
});

test('human mode: prompt, readable replies and errors; QUIT closes the session', async () => {
  const d = await dispatcher('human');
  d.send('HUMAN');
  await d.waitFor((l) => l.startsWith('  ok HUMAN'), 3000, 'the human-mode answer');
  d.send('RAISE x');
  await d.waitFor((l) => l.includes('error: usage: RAISE') && l.endsWith('[SYNTAX]'), 3000, 'a readable error');
  d.send('PING');
  await d.waitFor((l) => /relay> +ok PONG hub=up/.test(l), 3000, 'a prompt, then the answer');
  d.send('MACHINE');
  await d.waitFor((l) => l.endsWith('OK MACHINE'), 3000);
  assert.equal((await d.command('QUIT')).final, 'OK BYE');
  await d.waitFor(() => false, 3000, 'the end of the session').catch((e) => {
    assert.match(e.message, /ended \(connection closed\)/);
  });
});

test('the hub restarts: the relay reconnects, answers a SAY sent meanwhile, and advice still arrives', async () => {
  const d = await dispatcher('restart');
  // Oldham is served by Pennine: only p.c can take it
  let pa = await practitionerOnShift(hub, 'p.c');
  const r = await d.command('RAISE GMP-RESTART-1 Oldham MX21 2 :Man in the river, known?');
  const id = /^OK RAISED (\d+)/.exec(r.final)[1];
  await pa.sub.waitFor(is.offer(id), 3000, `offer of ${id} to p.c`);
  await pa.client.call('Accept', { incidentId: id });
  await d.waitFor(`EVENT STATE ${id} ACCEPTED p.c`, 3000);
  pa.client.close();

  await hub.stop();
  await d.waitFor('EVENT HUB DOWN', 5000, 'the relay to notice the hub went away');
  // a command while the hub is away waits for it (within its deadline)
  const pending = d.command(`SAY ${id} :He is out of the water and talking.`, 15000);
  await hub.restart();
  await d.waitFor((l) => l === 'EVENT HUB UP', 10000, 'the relay to reconnect');
  const said = await pending;
  assert.match(said.final, new RegExp(`^OK SAID ${id} \\d+$`));

  pa = await practitionerOnShift(hub, 'p.c');
  opened.push(pa);
  const inc = await pa.client.call('GetIncident', { incidentId: id });
  assert.ok(inc.incident.messages.some((m) => m.text === '[MX21] He is out of the water and talking.'), 'the SAY is on the incident once');
  assert.equal(inc.incident.messages.filter((m) => m.text === '[MX21] He is out of the water and talking.').length, 1);
  await pa.client.call('PostMessage', { incidentId: id, text: 'Get him warm and call an ambulance.', clientMsgId: 'restart-advice' });
  const v = await d.waitFor((l) => l.startsWith(`EVENT VOICE ${id} `), 5000, 'advice after the restart');
  assert.ok(v.endsWith(':Get him warm and call an ambulance.'), v);
  assert.ok(relay.alive, 'the relay is still running');
  void eventKind;
});
