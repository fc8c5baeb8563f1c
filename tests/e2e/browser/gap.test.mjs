// gap.test.mjs -- the console is offline longer than the hub keeps events
// (limits.event_history = 20): on reconnect the hub says NOTICE_KIND_RESUME_GAP
// and the console reloads the whole picture, so nothing is missing.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { hubBinaryExists, HUB_BIN, launchBrowser, newPage, signIn, startConsoleHub } from './lib/env.mjs';
import { Practitioner } from './lib/practitioner.mjs';

const require = createRequire(import.meta.url);
const WebSocket = require('ws');
// A missing hub fails the file: a browser test is never skipped silently.
if (!hubBinaryExists()) throw new Error(`no hub binary at ${HUB_BIN} (run make)`);
const skip = false;

function details(i) {
  return {
    policeRef: `GMP-20261123-${2000 + i}`,
    priority: 'PRIORITY_STANDARD',
    borough: 'Oldham',
    place: `Gap place ${i}`,
    question: 'Known?',
    rcrp: 'RCRP_DECISION_UNDER_REVIEW',
  };
}

describe('console after a resume gap', { skip }, () => {
  let hub;
  let browser;
  let page;
  let prac;

  before(async () => {
    hub = await startConsoleHub({ name: 'browser-gap', config: { limits: { event_history: 20 }, routing: { offer_timeout_ms: 30000 } } });
    browser = await launchBrowser();
    page = await newPage(browser.context);
  });

  after(async () => {
    if (prac) prac.close();
    if (browser) await browser.close();
    if (hub) await hub.stop();
  });

  test('offline past the event history: the gap is reported and the board and conversation reload', async () => {
    prac = new Practitioner(hub, 'p.a');
    await prac.startShift();
    await signIn(page, hub, 'op.one');
    const r = await page.evaluate(() =>
      window.__mhtas.conn.request('raiseIncident', {
        details: { policeRef: 'GMP-20261123-0900', priority: 'PRIORITY_URGENT', borough: 'Manchester', question: 'q?', rcrp: 'RCRP_DECISION_UNDER_REVIEW' },
        idempotencyKey: 'gap-0',
      }),
    );
    const id = String(r.incident.id);
    await prac.waitFor((e) => e.offer && String(e.offer.incident.id) === id, 'the offer');
    await prac.call('Accept', { incidentId: id });
    await page.goto(`${hub.consoleUrl}#/incident/${id}`);
    await page.waitForSelector('#conn[data-state="online"]');

    // Offline for 4 s while far more than 20 events happen.
    await page.evaluate(() => window.__mhtas.dropConnection(4000));
    await page.waitForFunction(() => document.getElementById('conn').dataset.state !== 'online');
    const ws = new WebSocket(hub.wsUrl, 'mhtas.v1.json', { origin: hub.origin });
    await new Promise((res, rej) => {
      ws.once('open', res);
      ws.once('error', rej);
    });
    const replies = new Set();
    ws.on('message', (d) => {
      const f = JSON.parse(d.toString());
      if (f.requestId) replies.add(f.requestId);
    });
    ws.send(JSON.stringify({ requestId: 'a', auth: { token: hub.token('op.one') } }));
    for (let i = 0; i < 15; i++) ws.send(JSON.stringify({ requestId: String(i), raiseIncident: { details: details(i), idempotencyKey: `gap-${i + 1}` } }));
    await prac.call('PostMessage', { incidentId: id, text: 'Written during the gap.', clientMsgId: 'gap-msg' });
    for (let k = 0; k < 100 && replies.size < 16; k++) await new Promise((res) => setTimeout(res, 20));
    ws.close();

    await page.waitForSelector('#conn[data-state="online"]', { timeout: 15000 });
    await page.waitForFunction(() => [...document.querySelectorAll('#conv .msg-text')].some((e) => e.textContent.includes('during the gap')), null, { timeout: 5000 });
    const notices = await page.evaluate(() => window.__mhtas.state.notices.map((n) => n.text));
    assert.ok(notices.some((t) => /missed/i.test(t)), `a resume-gap notice: ${JSON.stringify(notices)}`);
    await page.keyboard.press('Escape');
    await page.waitForSelector('#view-board:not([hidden])');
    await page.waitForFunction(() => document.querySelectorAll('#board-body tr').length === 16, null, { timeout: 5000 });
    const texts = await page.$$eval('#conv [data-testid="message"] .msg-text', (els) => els.map((e) => e.textContent));
    assert.equal(new Set(texts).size, texts.length);
    assert.deepEqual(page.problems, [], page.problems.join('\n'));
  });
});
