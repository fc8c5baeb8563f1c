'use strict';
// relay-latency.js -- time from a practitioner's send (the PostMessage call
// of a grpc-js client) to the first AT+CMGS of that advice on the radio's
// serial line (a pseudo-terminal; bin/mhtas-pei-sim stamps the command the
// moment it has read it). Sequential: one advice at a time, each awaited on
// the serial line before the next (a latency probe, not a load test).
//
//   cd tests/e2e && node bench/relay-latency.js [N]        (default N=500)
//   MHTAS_HUB=../../build/san/bin/mhtas-hub node bench/relay-latency.js 200
//
// Runs a real hub (journal on), the relay with the radio, and the terminal
// simulator. The advices go round 50 incidents, each with its own callsign
// and ISSI, so that the relay's per-radio rate limit (at most 10 texts a
// second to one radio here) never holds a text back: what is measured is the
// path, not the limit. Also prints the relay's own share (hub event in ->
// AT+CMGS written), from its log.
const { performance } = require('node:perf_hooks');

const { startHub } = require('../lib/hub');
const { is } = require('../lib/clients');
const { practitionerOnShift } = require('../lib/fixture');
const { startRelay, LineClient, startPeiSim } = require('../lib/relay');

const INCIDENTS = 50;

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function nowUs() {
  return (performance.timeOrigin + performance.now()) * 1000;
}

(async () => {
  const n = Number(process.argv[2] || 500);
  const hub = await startHub({
    name: 'relay-latency',
    config: { hub: { log_level: 'warn' }, routing: { strategy: 'linear', offer_timeout_ms: 600000 } },
    users: [
      { id: 'p.a', name: 'Asha Practitioner', role: 'practitioner', provider: 'GMMH', skills: ['camhs'], capacity: INCIDENTS },
      { id: 'disp.one', name: 'Dee Dispatcher', role: 'dispatcher' },
    ],
  });
  const sim = await startPeiSim();
  const callsigns = {};
  for (let i = 0; i < INCIDENTS; i++) callsigns[`MX${100 + i}`] = 2001000 + i;
  const relay = await startRelay(hub, {
    name: 'latency',
    callsigns,
    radio: { device: sim.link, rate_per_minute: 600, rate_burst: 20 },
  });
  const d = await LineClient.connect(relay.port, 'bench dispatcher');
  await d.waitFor('HELLO ', 3000);
  await sim.waitFor((e) => e.type === 'cmd' && e.text === 'AT+CTSDS=12,0', 5000, 'the terminal initialised');
  const p = await practitionerOnShift(hub, 'p.a');

  const ids = [];
  for (let i = 0; i < INCIDENTS; i++) {
    const r = await d.command(`RAISE GMP-BENCH-${i} Manchester MX${100 + i} 2 :Bench incident ${i}, is he known?`);
    const id = /^OK RAISED (\d+)/.exec(r.final)[1];
    await p.sub.waitFor(is.offer(id), 5000, `offer of ${id}`);
    await p.client.call('Accept', { incidentId: id });
    ids.push(id);
  }

  const total = [];
  const inRelay = [];
  for (let i = 0; i < n; i++) {
    const from = sim.events.items.length;
    const marker = `Run ${i}.`;
    const t0 = nowUs();
    const sent = p.client.call('PostMessage', {
      incidentId: ids[i % INCIDENTS],
      text: `${marker} Keep talking to him calmly and wait for the crisis team.`,
      clientMsgId: `bench-${i}`,
    });
    const ev = await sim.waitFor((e) => e.type === 'cmgs' && e.text.includes(`: ${marker} `), 5000, `the AT+CMGS of run ${i}`, { from });
    total.push((ev.t - t0) / 1000);
    await sent;
  }
  // The relay's own share, from its log lines "first AT+CMGS X ms after the hub's event".
  for (const m of relay.stderr.matchAll(/first AT\+CMGS ([0-9.]+) ms after the hub's event/g)) inRelay.push(Number(m[1]));

  total.sort((a, b) => a - b);
  inRelay.sort((a, b) => a - b);
  const fmt = (xs) =>
    `p50 ${pct(xs, 50).toFixed(3)} ms  p90 ${pct(xs, 90).toFixed(3)} ms  p99 ${pct(xs, 99).toFixed(3)} ms  max ${xs[xs.length - 1].toFixed(3)} ms`;
  console.log(`practitioner's send -> first AT+CMGS on the serial line, ${n} advices, loopback, journal on (hub ${hub.grpcAddress}):`);
  console.log(`  ${fmt(total)}`);
  console.log(`  of which in the relay (hub event read -> AT+CMGS written), ${inRelay.length} advices: ${fmt(inRelay)}`);

  d.close();
  p.client.close();
  await relay.stop();
  await sim.stop();
  await hub.stop();
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
