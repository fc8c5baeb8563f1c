// restart.test.mjs -- the hub dies mid-conversation (SIGKILL) and comes back
// on the same port with its journal. The console must show the outage, keep
// a message typed meanwhile, reconnect by itself, send that message exactly
// once, and show every message of the conversation once.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { hubBinaryExists, HUB_BIN, launchBrowser, newPage, signIn, startConsoleHub } from './lib/env.mjs';
import { Practitioner } from './lib/practitioner.mjs';

// A missing hub fails the file: a browser test is never skipped silently.
if (!hubBinaryExists()) throw new Error(`no hub binary at ${HUB_BIN} (run make)`);
const skip = false;

describe('console across a hub restart', { skip }, () => {
  let hub;
  let browser;
  let page;
  let prac;
  let incidentId;

  before(async () => {
    hub = await startConsoleHub({ name: 'browser-restart', config: { routing: { offer_timeout_ms: 30000, disconnect_grace_ms: 60000 } } });
    browser = await launchBrowser();
    page = await newPage(browser.context);
  });

  after(async () => {
    if (prac) prac.close();
    if (browser) await browser.close();
    if (hub) await hub.stop();
  });

  const texts = () => page.$$eval('#conv [data-testid="message"] .msg-text', (els) => els.map((e) => e.textContent));

  test('set up: an accepted incident with a conversation open in the page', async () => {
    prac = new Practitioner(hub, 'p.a');
    await prac.startShift();
    await signIn(page, hub, 'op.one');
    const r = await page.evaluate(() =>
      window.__mhtas.conn.request('raiseIncident', {
        details: {
          policeRef: 'GMP-20261123-0777',
          priority: 'PRIORITY_URGENT',
          borough: 'Salford',
          place: 'Salford Quays',
          question: 'Any crisis plan?',
          rcrp: 'RCRP_DECISION_UNDER_REVIEW',
        },
        idempotencyKey: 'restart-1',
      }),
    );
    incidentId = String(r.incident.id);
    await prac.waitFor((e) => e.offer && String(e.offer.incident.id) === incidentId, 'the offer');
    await prac.call('Accept', { incidentId });
    await page.goto(`${hub.consoleUrl}#/incident/${incidentId}`);
    await page.waitForSelector('#conn[data-state="online"]');
    await page.fill('#compose-text', 'Before the restart (operator).');
    await page.keyboard.press('Control+Enter');
    await prac.call('PostMessage', { incidentId, text: 'Before the restart (practitioner).', clientMsgId: 'p-before' });
    await page.waitForFunction(() => document.querySelectorAll('#conv [data-testid="message"]').length === 2, null, { timeout: 5000 });
  });

  test('SIGKILL: the outage is shown and a message typed meanwhile is kept', async () => {
    prac.close();
    await hub.kill();
    await page.waitForFunction(() => document.getElementById('conn').dataset.state !== 'online', null, { timeout: 5000 });
    assert.equal(await page.isVisible('#banner'), true);
    await page.fill('#compose-text', 'Typed while the hub was down.');
    await page.keyboard.press('Control+Enter');
    await page.waitForSelector('#conv [data-testid="pending-message"][data-state="queued"]', { timeout: 3000 });
  });

  test('back on the same port: reconnects, sends the kept message once, shows every message once', async () => {
    await hub.restart();
    await page.waitForSelector('#conn[data-state="online"]', { timeout: 30000 });
    await page.waitForFunction(() => !document.querySelector('#conv [data-testid="pending-message"]'), null, { timeout: 10000 });
    console.log('reconnect after restart:', JSON.stringify(await page.evaluate(() => ({ c: window.__mhtas.conn.lastConnect, notices: window.__mhtas.state.notices.map((n) => n.text) }))));
    prac = new Practitioner(hub, 'p.a');
    prac.subscribe('0');
    await prac.call('PostMessage', { incidentId, text: 'After the restart (practitioner).', clientMsgId: 'p-after' });
    await page.waitForFunction(() => [...document.querySelectorAll('#conv .msg-text')].some((e) => e.textContent.includes('After the restart')), null, { timeout: 10000 });
    const got = await prac.call('GetIncident', { incidentId });
    const onHub = got.incident.messages.map((m) => m.text);
    assert.equal(onHub.filter((t) => t === 'Typed while the hub was down.').length, 1, `hub holds: ${onHub.join(' | ')}`);
    const shown = await texts();
    assert.deepEqual(shown, onHub, 'the page shows exactly what the hub holds, in order');
    const nums = await page.$$eval('#conv [data-testid="message"]', (els) => els.map((e) => e.dataset.number));
    assert.equal(new Set(nums).size, nums.length, `duplicate numbers ${nums}`);
    assert.deepEqual(page.problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(p)), []);
  });
});
