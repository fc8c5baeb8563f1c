'use strict';
// 08 -- WebSocket keepalive: the hub pings quiet consoles every
// ping_interval_ms; a console that answers stays connected however long it
// is quiet (a wall display at 4 a.m.), one that stops answering is hung up
// after about two intervals, so a dead socket does not hold a subscription.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');

const { startHub, ALLOWED_ORIGIN } = require('../lib/hub');

let hub;
before(async () => {
  hub = await startHub({ name: 'keepalive', config: { limits: { ping_interval_ms: 1000, idle_timeout_ms: 60000 } } });
});
after(async () => {
  if (hub) await hub.stop();
});

function open(autoPong) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(hub.wsUrl, 'mhtas.v1.json', { origin: ALLOWED_ORIGIN, autoPong });
    ws.pings = 0;
    ws.on('ping', () => ws.pings++);
    ws.closed = new Promise((r) => ws.on('close', (code) => r(code)));
    ws.on('open', () => {
      ws.send(JSON.stringify({ requestId: '1', auth: { token: hub.token('op.one') } }));
      ws.send(JSON.stringify({ requestId: '2', subscribe: { afterSeq: '0' } }));
      resolve(ws);
    });
    ws.on('error', reject);
  });
}

test('a console that answers pings stays; one that does not is hung up', async () => {
  const good = await open(true);
  const dead = await open(false);
  const code = await Promise.race([
    dead.closed,
    new Promise((_, rej) => setTimeout(() => rej(new Error('the silent console was not hung up within 6 s')), 6000)),
  ]);
  assert.ok(dead.pings >= 1, `the silent console was pinged (${dead.pings})`);
  assert.ok(code === 1001 || code === 1006, `hang-up close code ${code}`);
  assert.equal(good.readyState, WebSocket.OPEN, 'the answering console is still connected');
  assert.ok(good.pings >= 2, `the answering console was pinged while quiet (${good.pings})`);
  good.close();
});
