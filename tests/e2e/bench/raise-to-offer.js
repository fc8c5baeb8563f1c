'use strict';
// raise-to-offer.js -- end-to-end latency of one raise-to-offer on loopback:
// from the operator's console sending RaiseIncident (WebSocket, JSON) to the
// practitioner's gRPC Subscribe stream delivering the Offer. Sequential, one
// incident at a time (a latency probe, not a load test: see loadtest/).
//
//   cd tests/e2e && node bench/raise-to-offer.js [N]     (default N=500)
//
// Runs a real hub (journal on, as in production) with the fixture's config.
const { startHub } = require('../lib/hub');
const { is } = require('../lib/clients');
const { sampleDetails, practitionerOnShift, operatorConsole } = require('../lib/fixture');

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

(async () => {
  const n = Number(process.argv[2] || 500);
  const hub = await startHub({
    name: 'r2o',
    config: { hub: { log_level: 'warn' }, routing: { strategy: 'linear', offer_timeout_ms: 600000 } },
    users: [
      { id: 'p.a', name: 'Asha Practitioner', role: 'practitioner', provider: 'GMMH', skills: ['camhs'], capacity: 50 },
      { id: 'op.one', name: 'Olu Operator', role: 'operator' },
    ],
  });
  const p = await practitionerOnShift(hub, 'p.a');
  const op = await operatorConsole(hub, { subscribe: false });
  const samples = [];
  for (let i = 0; i < n; i++) {
    const seen = p.sub.events.length;
    const t0 = process.hrtime.bigint();
    const reply = op.call('raiseIncident', { details: sampleDetails(), idempotencyKey: `r2o-${i}` });
    const ev = await p.sub.waitFor((e) => !!e.offer, 5000, "offer", { from: seen });
    const t1 = process.hrtime.bigint();
    samples.push(Number(t1 - t0) / 1000);
    const r = await reply;
    // Keep the practitioner under capacity: cancel what was raised.
    await op.call('cancelIncident', { incidentId: r.incident.id, reason: 'bench' });
    void ev;
  }
  samples.sort((a, b) => a - b);
  const metrics = (await hub.httpGet('/metrics')).body.split('\n').filter((l) => l.startsWith('mhtas_raise_to_offer_seconds_'));
  console.log(`raise-to-offer, ${n} incidents, operator WS JSON -> practitioner gRPC stream, loopback, journal on:`);
  console.log(`  p50 ${pct(samples, 50).toFixed(0)} us  p90 ${pct(samples, 90).toFixed(0)} us  p99 ${pct(samples, 99).toFixed(0)} us  max ${samples[samples.length - 1].toFixed(0)} us`);
  console.log('  hub-internal histogram (request in -> offer fanned out):');
  for (const l of metrics) if (/_count|_sum|le="0.0001"|le="0.00025"|le="0.0005"|le="0.001"/.test(l)) console.log('    ' + l);
  op.close();
  p.client.close();
  await hub.stop();
  process.exit(0);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
