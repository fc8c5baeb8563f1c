'use strict';
// 01 -- the process: start-up contract, --hash-token, /healthz, /metrics,
// configuration errors, graceful SIGTERM.
//
// Metric names asserted here (the lead aligns the hub with them):
//   mhtas_connections_open{frontend="ws"}     gauge: open WebSockets
//   mhtas_connections_open{frontend="grpc"}   gauge: open HTTP/2 connections
//   mhtas_incidents{state="queued"}           gauge: incidents by state (lower-case state name)
//   mhtas_queue_depth                         gauge: incidents waiting (queued)
//   mhtas_practitioners{state="available"}    gauge: practitioners by state (lower-case)
//   mhtas_raise_to_offer_seconds_bucket       histogram: raise -> first offer
//   mhtas_offer_to_accept_seconds_bucket      histogram: offer -> accept
//   mhtas_relay_seconds_bucket                histogram: event relay latency

const { test, before, after, describe } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');

const { startHub, HUB_BIN } = require('../lib/hub');
const { GrpcClient, WsClient, is, parseMetrics, metricValue, waitUntil } = require('../lib/clients');
const { sampleDetails, practitionerOnShift, operatorConsole, closeAll } = require('../lib/fixture');

test('--hash-token prints the BLAKE2b-256 of the token as blake2b:<64 hex>', () => {
  // Known answer: BLAKE2b with a 32-byte digest of "abc" (RFC 7693 parameters,
  // the same as python's hashlib.blake2b(b"abc", digest_size=32)).
  const out = execFileSync(HUB_BIN, ['--hash-token', 'abc'], { encoding: 'utf8', timeout: 5000 });
  assert.equal(out.trim(), 'blake2b:bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319');
  const out2 = execFileSync(HUB_BIN, ['--hash-token', 'demo-operator-token'], { encoding: 'utf8', timeout: 5000 });
  assert.equal(out2.trim(), 'blake2b:6ebe0e697d928d292cc4f59e2f7c52729829111a5af67c575c3d3e89c883f79b');
});

describe('configuration errors stop the hub with a message naming the key', () => {
  test('a value that is not a number', async () => {
    await assert.rejects(startHub({ name: 'badcfg', sets: ['routing.offer_timeout_ms=abc'] }), (e) => {
      assert.match(e.message, /before MHTAS_READY/, e.message);
      assert.match(e.message, /offer_timeout_ms/, `stderr should name the key:\n${e.message}`);
      return true;
    });
  });

  test('offer_timeout_ms below its minimum of 1000', async () => {
    await assert.rejects(startHub({ name: 'badcfg', sets: ['routing.offer_timeout_ms=500'] }), (e) => {
      assert.match(e.message, /before MHTAS_READY/, e.message);
      assert.match(e.message, /offer_timeout_ms/, `stderr should name the key:\n${e.message}`);
      return true;
    });
  });

  test('an unknown routing strategy', async () => {
    await assert.rejects(startHub({ name: 'badcfg', config: { routing: { strategy: 'roundabout' } } }), (e) => {
      assert.match(e.message, /before MHTAS_READY/, e.message);
      assert.match(e.message, /strategy/, `stderr should name the key:\n${e.message}`);
      return true;
    });
  });
});

describe('a running hub', () => {
  let hub;
  const opened = [];

  before(async () => {
    hub = await startHub({ name: 'health' });
  });

  after(async () => {
    closeAll(opened);
    if (hub) await hub.stopChecked();
  });

  test('MHTAS_READY names two distinct bound ports and the hub pid', () => {
    assert.ok(hub.grpcPort > 0 && hub.grpcPort < 65536, `grpc_port ${hub.grpcPort}`);
    assert.ok(hub.httpPort > 0 && hub.httpPort < 65536, `http_port ${hub.httpPort}`);
    assert.notEqual(hub.grpcPort, hub.httpPort);
    assert.equal(hub.readyPid, hub.pid, 'pid= on the READY line is the process we started');
    assert.equal(hub.stdout.trim().split('\n').length, 1, `stdout has exactly one line: ${JSON.stringify(hub.stdout)}`);
  });

  test('GET /healthz answers ok', async () => {
    const r = await hub.httpGet('/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.body.trim(), 'ok');
  });

  test('GET /metrics is Prometheus text and follows what happens', async () => {
    const first = await hub.httpGet('/metrics');
    assert.equal(first.status, 200);
    assert.match(first.headers.get('content-type') || '', /^text\/plain/, 'content-type');
    parseMetrics(first.body); // every line parses

    // One authenticated console socket, one incident with nobody on shift.
    const op = await operatorConsole(hub);
    opened.push(op);
    const raised = await op.call('raiseIncident', { details: sampleDetails(), idempotencyKey: 'metrics-1' });
    const id = raised.incident.id;

    let m = parseMetrics((await hub.httpGet('/metrics')).body);
    assert.equal(metricValue(m, 'mhtas_connections_open', { frontend: 'ws' }), 1, 'mhtas_connections_open{frontend="ws"} with one socket open');
    assert.equal(metricValue(m, 'mhtas_incidents', { state: 'queued' }), 1, 'mhtas_incidents{state="queued"} with one incident and nobody on shift');
    assert.equal(metricValue(m, 'mhtas_queue_depth'), 1, 'mhtas_queue_depth');

    // A practitioner comes on shift, is offered the incident and accepts it;
    // a second one comes on shift and stays available.
    const pa = await practitionerOnShift(hub, 'p.a');
    opened.push(pa);
    await pa.sub.waitFor(is.offer(id, 'p.a'), 3000, `the offer of incident ${id} to p.a`);
    await pa.client.call('Accept', { incidentId: id });
    const pb = await practitionerOnShift(hub, 'p.b');
    opened.push(pb);
    await pa.client.call('PostMessage', { incidentId: id, text: 'Known to the CMHT; crisis plan on file.', clientMsgId: 'm1' });
    await op.waitFor(is.message(id, { from: 'p.a' }), 3000, 'the practitioner message on the console');

    m = parseMetrics((await hub.httpGet('/metrics')).body);
    assert.equal(metricValue(m, 'mhtas_incidents', { state: 'queued' }), 0, 'mhtas_incidents{state="queued"} after the accept');
    assert.equal(metricValue(m, 'mhtas_queue_depth'), 0, 'mhtas_queue_depth after the accept');
    assert.equal(metricValue(m, 'mhtas_practitioners', { state: 'available' }), 2, 'mhtas_practitioners{state="available"} (p.a under capacity, p.b idle)');
    assert.ok(metricValue(m, 'mhtas_connections_open', { frontend: 'grpc' }) >= 2, 'mhtas_connections_open{frontend="grpc"} with two practitioner clients');
    for (const h of ['mhtas_raise_to_offer_seconds', 'mhtas_offer_to_accept_seconds']) {
      const inf = metricValue(m, `${h}_bucket`, { le: '+Inf' });
      assert.ok(inf >= 1, `${h}_bucket{le="+Inf"} should count the one offer/accept, got ${inf}`);
    }
    assert.ok(
      m.some((s) => s.name === 'mhtas_relay_seconds_bucket'),
      'mhtas_relay_seconds_bucket is exported',
    );

    // Closing the socket brings the gauge back down.
    op.close();
    await waitUntil(
      async () => metricValue(parseMetrics((await hub.httpGet('/metrics')).body), 'mhtas_connections_open', { frontend: 'ws' }) === 0,
      3000,
      'mhtas_connections_open{frontend="ws"} is back to 0 after the socket closed',
    );
  });

  test('SIGTERM: sockets are told "going away", streams end, the hub exits 0', async () => {
    const ws = await WsClient.connect(hub.wsUrl, { name: 'op console' });
    opened.push(ws);
    await ws.auth(hub.token('op.one'));
    const g = new GrpcClient(hub.grpcAddress, hub.token('sup.one'), { name: 'sup' });
    opened.push(g);
    const sub = g.subscribe('0');
    await g.call('WhoAmI', {});

    const stopped = hub.stop();
    const close = await ws.waitClose(5000);
    assert.equal(close.code, 1001, `WebSocket close code on shutdown (reason ${JSON.stringify(close.reason)})`);
    await sub.waitStatus(5000);
    const r = await stopped;
    assert.ok(r.graceful, `hub did not exit within 5 s of SIGTERM\n${hub.stderrTail()}`);
    assert.equal(r.signal, null, `hub died of signal ${r.signal}\n${hub.stderrTail()}`);
    assert.equal(r.code, 0, `exit code after SIGTERM\n${hub.stderrTail()}`);
  });
});
