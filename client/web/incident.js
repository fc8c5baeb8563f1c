// incident.js -- one incident: the conversation (live, with the outbox of
// messages typed while offline), the proposed outcome with agree / query
// back, details, the full timeline, cancel with a reason, and the
// supervisor's reassign.

import { Disconnected } from './conn.js';
import {
  FLAG,
  OPEN_STATES,
  OUTCOME,
  PLACE_OF_SAFETY,
  PRAC_STATE,
  RCRP,
  ROLE,
  WAITING_STATES,
  causeLabel,
  clock,
  dateTime,
  h,
  nhsFormat,
  num,
  randomId,
  stateLabel,
} from './format.js';
import { S, addMessage, messagesOf, outboxOf, saveOutbox, upsertIncident } from './store.js';
import { conn, fillSlaHead, isPolice, isSupervisor, priorityBadge, refOf, render, stateBadge, toast } from './app.js';

const $ = (id) => document.getElementById(id);

// Loads the incident with its whole conversation.
export async function openIncident(id) {
  const r = await conn.request('getIncident', { incidentId: String(id) });
  if (r.incident) {
    upsertIncident(r.incident, { force: true });
    S.loadedMessages.add(String(id));
  }
  render();
}

// ------------------------------------------------------------------ render

let renderedId = null;

export function renderIncident(id) {
  const inc = S.incidents.get(String(id));
  if (renderedId !== id) {
    renderedId = id;
    clearErrors();
    $('compose-text').value = drafts.get(id) || '';
  }
  if (!inc) {
    $('inc-h').textContent = `Incident #${id}`;
    $('inc-state').replaceChildren(conn.isReady ? 'Not found, or not visible to you.' : 'Loading…');
    $('inc-details').replaceChildren();
    $('timeline').replaceChildren();
    $('conv').replaceChildren();
    $('outcome-card').hidden = true;
    $('cancel-card').hidden = true;
    $('reassign-card').hidden = true;
    return;
  }
  const d = inc.details || {};
  $('inc-h').textContent = `${d.policeRef || '#' + id}`;
  $('inc-state').replaceChildren(stateBadge(inc.state), ' ', priorityBadge(d.priority));
  $('inc-state').dataset.state = inc.state;
  $('inc-sla').dataset.tick = 'sla-head';
  $('inc-sla').dataset.id = String(id);
  fillSlaHead($('inc-sla'), inc);

  // Plain words about where it stands.
  const alert = $('inc-alert');
  let msg = '';
  if (S.nobodyOnShift.has(String(id)) && WAITING_STATES.has(inc.state)) {
    msg = `⚠ Nobody on shift can take this now. It stays queued${num(inc.queuePosition) ? ` at position ${inc.queuePosition}` : ''}; the supervisor has been alerted.`;
  } else if (inc.state === 'INCIDENT_STATE_QUEUED') {
    msg = `Queued${num(inc.queuePosition) ? `: position ${inc.queuePosition}` : ''}${num(inc.expectedWaitMs) ? `, expected wait about ${Math.max(1, Math.round(num(inc.expectedWaitMs) / 60000))} min` : ''}.`;
  } else if (inc.state === 'INCIDENT_STATE_OFFERED') {
    msg = `Offered to ${inc.practitionerName || inc.practitioner}, waiting for them to accept.`;
  } else if (inc.state === 'INCIDENT_STATE_OUTCOME_PROPOSED') {
    msg = '➤ The practitioner has proposed an outcome: agree it, or query it back with a question.';
  }
  alert.textContent = msg;
  alert.hidden = !msg;
  alert.className = `inc-alert ${msg.startsWith('⚠') ? 'inc-alert-bad' : ''}`;

  renderDetails(inc);
  renderTimeline(inc);
  renderConversation(id, inc);
  renderOutcome(inc);

  const open = OPEN_STATES.has(inc.state);
  $('cancel-card').hidden = !(open && isPolice() && S.user.role !== 'ROLE_DISPATCHER');
  $('compose').hidden = !open;
  renderReassign(inc);
}

function dd(term, value, cls) {
  if (value === undefined || value === null || value === '' || (Array.isArray(value) && !value.length)) return [];
  return [h('dt', null, term), h('dd', { class: cls }, value)];
}

function renderDetails(inc) {
  const d = inc.details || {};
  const p = d.person || {};
  const name = [p.givenNames, p.familyName].filter(Boolean).join(' ');
  const age = p.dateOfBirth ? `born ${p.dateOfBirth}` : num(p.ageYears) ? `about ${p.ageYears}` : '';
  const flags = (d.flags || []).map((f) => h('span', { class: 'tag tag-flag' }, '⚑ ', FLAG[f] || f));
  $('inc-details').replaceChildren(
    ...dd('Police ref', d.policeRef),
    ...dd('Priority', priorityBadge(d.priority)),
    ...dd('Borough', [d.borough, inc.provider ? ` (${inc.provider})` : ''].join('')),
    ...dd('Place', d.place),
    ...dd('Person', [name || 'name not known', age ? `, ${age}` : ''].join('')),
    ...dd('Address', [p.address, p.postcode].filter(Boolean).join(', ')),
    ...dd('NHS number', p.nhsNumber ? nhsFormat(p.nhsNumber) : ''),
    ...dd('Concerns', d.concerns),
    ...dd('Flags', flags.length ? h('span', null, flags) : ''),
    ...dd('Question', d.question, 'question'),
    ...dd('Callsigns', (d.callsigns || []).join(', ')),
    ...dd('RCRP decision', [RCRP[d.rcrp] || d.rcrp || '', d.rcrpReason ? ` – ${d.rcrpReason}` : ''].join('')),
    ...dd('Raised', `${dateTime(inc.raisedAtMs)} by ${inc.raisedBy || '?'}`),
    ...dd('Practitioner', inc.practitioner ? `${inc.practitionerName || inc.practitioner}` : ''),
    ...dd('Cancelled because', inc.cancelReason),
  );
}

function renderTimeline(inc) {
  const rows = [...(inc.history || [])].sort((a, b) => num(a.atMs) - num(b.atMs) || num(a.seq) - num(b.seq));
  $('timeline').replaceChildren(
    ...rows.map((t) =>
      h(
        'tr',
        null,
        h('td', { class: 'num' }, h('time', { datetime: new Date(num(t.atMs)).toISOString() }, clock(t.atMs))),
        h('td', null, t.from && t.from !== 'INCIDENT_STATE_UNSPECIFIED' ? stateLabel(t.from) : '–'),
        h('td', null, stateLabel(t.to)),
        h('td', null, causeLabel(t.cause), t.practitioner ? ` (${t.practitioner})` : '', t.reason ? ` – ${t.reason}` : ''),
        h('td', null, t.actor || ''),
      ),
    ),
  );
}

function renderConversation(id, inc) {
  const list = $('conv');
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  const me = S.user && S.user.id;
  const items = [];
  for (const m of messagesOf(id)) {
    const mine = m.fromUser === me;
    const key = `m${m.number}`;
    items.push({
      key,
      sig: key,
      build: () =>
        h(
          'li',
          { class: `msg ${mine ? 'msg-mine' : 'msg-theirs'} ${m.fromRole === 'ROLE_PRACTITIONER' ? 'msg-prac' : ''}`, dataset: { key, number: String(m.number), testid: 'message' } },
          h(
            'div',
            { class: 'msg-head' },
            h('span', { class: 'msg-from' }, m.fromName || m.fromUser, m.fromRole ? ` (${ROLE[m.fromRole] || m.fromRole})` : ''),
            ' ',
            h('time', { class: 'msg-time', datetime: new Date(num(m.atMs)).toISOString() }, clock(m.atMs)),
          ),
          h('div', { class: 'msg-text' }, m.text),
        ),
    });
  }
  for (const e of outboxOf(id)) {
    const key = `o${e.clientMsgId}`;
    const sig = `${key}:${e.state}:${e.error || ''}`;
    items.push({
      key,
      sig,
      build: () =>
        h(
          'li',
          { class: `msg msg-mine msg-pending msg-${e.state}`, dataset: { key, testid: 'pending-message', state: e.state } },
          h(
            'div',
            { class: 'msg-head' },
            h('span', { class: 'msg-from' }, 'You'),
            ' ',
            h(
              'span',
              { class: 'msg-status' },
              e.state === 'failed' ? `✕ NOT SENT: ${e.error || 'refused'}` : e.state === 'sending' ? '… sending' : '! not sent yet – will send when the connection is back',
            ),
          ),
          h('div', { class: 'msg-text' }, e.text),
          e.state === 'failed'
            ? h(
                'div',
                { class: 'row' },
                h('button', { type: 'button', class: 'btn btn-small', onclick: () => retryOutbox(e.clientMsgId) }, 'Try again'),
                h('button', { type: 'button', class: 'btn btn-small', onclick: () => discardOutbox(e.clientMsgId) }, 'Discard'),
              )
            : null,
        ),
    });
  }
  if (!items.length) {
    const txt = WAITING_STATES.has(inc.state) ? 'No messages yet. You can write now; the practitioner sees it when they accept.' : 'No messages yet.';
    if (list.dataset.empty !== txt) {
      list.dataset.empty = txt;
      list.replaceChildren(h('li', { class: 'msg-empty' }, txt));
    }
    return;
  }
  delete list.dataset.empty;
  // Keyed reconcile: keep existing nodes so a screen reader hears only new ones.
  const existing = new Map();
  for (const li of list.children) if (li.dataset.key) existing.set(li.dataset.key, li);
  const nodes = items.map((it) => {
    const old = existing.get(it.key);
    if (old && old.dataset.sig === it.sig) return old;
    const el = it.build();
    el.dataset.sig = it.sig;
    return el;
  });
  let same = nodes.length === list.children.length;
  if (same) for (let i = 0; i < nodes.length; i++) if (list.children[i] !== nodes[i]) same = false;
  if (!same) {
    // Append only the new tail where possible.
    const prefixOk = nodes.length >= list.children.length && [...list.children].every((c, i) => c === nodes[i]);
    if (prefixOk) for (const n of nodes.slice(list.children.length)) list.appendChild(n);
    else list.replaceChildren(...nodes);
  }
  if (atBottom || !same) list.scrollTop = list.scrollHeight;
}

function renderOutcome(inc) {
  const o = inc.outcome;
  const card = $('outcome-card');
  if (!o || !(o.codes && o.codes.length)) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  const s = o.s136;
  const parts = [
    h('ul', { class: 'codes' }, (o.codes || []).map((c) => h('li', null, '• ', OUTCOME[c] || c))),
    o.summary ? h('p', { class: 'summary' }, o.summary) : null,
  ];
  if (s && (s.placeOfSafety || s.consultedWho || s.inspector)) {
    parts.push(
      h(
        'dl',
        { class: 'details' },
        ...dd('Place of safety', PLACE_OF_SAFETY[s.placeOfSafety] || s.placeOfSafety),
        ...dd('Consulted', s.consultationNotPracticable ? 'consultation not practicable' : [s.consultedWho, s.consultedAtMs ? ` at ${clock(s.consultedAtMs)}` : ''].join('')),
        ...dd('Inspector', s.inspector),
      ),
    );
  }
  parts.push(h('p', { class: 'sub' }, `Proposed by ${o.proposedBy || '?'} at ${clock(o.proposedAtMs)}`));
  if (o.agreedBy) parts.push(h('p', { class: 'agreed' }, `✓ Agreed by ${o.agreedBy} at ${clock(o.agreedAtMs)}${o.durable ? ' · recorded' : ''}`));
  $('outcome-body').replaceChildren(...parts);
  const canAgree = inc.state === 'INCIDENT_STATE_OUTCOME_PROPOSED' && isPolice();
  $('outcome-form').hidden = !canAgree;
  card.classList.toggle('card-action', canAgree);
}

function renderReassign(inc) {
  const card = $('reassign-card');
  const can = isSupervisor() && OPEN_STATES.has(inc.state);
  card.hidden = !can;
  if (!can) return;
  const sel = $('ra-to');
  const keep = sel.value;
  const pracs = ((S.board && S.board.practitioners) || []).filter((p) => p.state !== 'PRACTITIONER_STATE_OFF_SHIFT');
  const opts = [h('option', { value: '' }, 'Choose…'), h('option', { value: '__queue__' }, 'Back to the queue (next eligible)')];
  for (const p of pracs) {
    const st = PRAC_STATE[p.state] || { label: p.state };
    opts.push(h('option', { value: p.userId, disabled: p.userId === inc.practitioner ? true : null }, `${p.displayName || p.userId} – ${st.label}, ${num(p.activeIncidents)}/${num(p.capacity)}`));
  }
  const sig = opts.map((o) => o.value + o.textContent).join('|');
  if (sel.dataset.sig !== sig) {
    sel.replaceChildren(...opts);
    sel.dataset.sig = sig;
    sel.value = keep;
  }
}

// ----------------------------------------------------------------- errors

function setErr(inputId, text) {
  const el = $(inputId);
  const err = $(`${inputId}-err`);
  if (err) err.textContent = text ? `⚠ ${text}` : '';
  if (el) el.setAttribute('aria-invalid', text ? 'true' : 'false');
}
function clearErrors() {
  for (const id of ['compose-text', 'outcome-query', 'cx-reason', 'ra-to', 'ra-reason']) setErr(id, '');
  $('compose-err').textContent = '';
}

// ----------------------------------------------------------------- outbox

const drafts = new Map();

async function sendEntry(e) {
  e.state = 'sending';
  saveOutbox();
  render();
  try {
    const r = await conn.request('postMessage', { incidentId: e.incidentId, text: e.text, clientMsgId: e.clientMsgId });
    if (r.message) addMessage(r.message); // drops the outbox entry by clientMsgId
    S.outbox = S.outbox.filter((x) => x.clientMsgId !== e.clientMsgId);
    saveOutbox();
  } catch (err) {
    if (err instanceof Disconnected || err.disconnected) {
      e.state = 'queued'; // the same clientMsgId goes again on reconnect: the hub posts it once
    } else if (err.code === 4) {
      e.state = 'queued';
    } else {
      e.state = 'failed';
      e.error = err.message;
    }
    saveOutbox();
  }
  render();
}

let flushing = false;
export async function flushOutbox() {
  if (flushing) return;
  flushing = true;
  try {
    for (const e of [...S.outbox]) {
      if (e.state !== 'queued') continue;
      if (!conn.isReady) break;
      await sendEntry(e);
    }
  } finally {
    flushing = false;
  }
}

function retryOutbox(id) {
  const e = S.outbox.find((x) => x.clientMsgId === id);
  if (!e) return;
  e.state = 'queued';
  e.error = '';
  saveOutbox();
  if (conn.isReady) sendEntry(e);
  else render();
}

function discardOutbox(id) {
  S.outbox = S.outbox.filter((x) => x.clientMsgId !== id);
  saveOutbox();
  render();
}

// ------------------------------------------------------------------ wiring

function currentId() {
  return renderedId;
}

export function initIncidentView() {
  $('inc-back').addEventListener('click', () => {
    location.hash = '#/board';
  });
  const ta = $('compose-text');
  ta.addEventListener('input', () => {
    drafts.set(currentId(), ta.value);
    if (ta.value.trim()) setErr('compose-text', '');
  });
  ta.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $('compose').requestSubmit();
    }
  });
  $('compose').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = ta.value.trim();
    if (!text) {
      setErr('compose-text', 'Write a message first.');
      ta.focus();
      return;
    }
    const entry = { clientMsgId: randomId('web-'), incidentId: String(currentId()), text, state: 'queued', error: '' };
    S.outbox.push(entry);
    saveOutbox();
    ta.value = '';
    drafts.delete(currentId());
    setErr('compose-text', '');
    if (conn.isReady) sendEntry(entry);
    else {
      render();
      toast({ kind: 'warn', offline: true, text: 'Offline: the message is kept and will be sent once when the connection is back.' });
    }
  });

  $('outcome-agree').addEventListener('click', async () => {
    const id = currentId();
    const btn = $('outcome-agree');
    btn.disabled = true;
    try {
      const r = await conn.request('agreeOutcome', { incidentId: String(id), agree: true, idempotencyKey: randomId('agree-') });
      if (r.incident) upsertIncident(r.incident);
      toast({ kind: 'info', incidentId: String(id), text: `Outcome agreed for ${refOf(id)}${r.durable ? ' and recorded' : ''}.` });
    } catch (e) {
      setErr('outcome-query', e.disconnected ? 'Not sent: offline. Try again when the connection is back.' : e.message);
    } finally {
      btn.disabled = false;
      render();
    }
  });
  $('outcome-queryback').addEventListener('click', async () => {
    const id = currentId();
    const q = $('outcome-query').value.trim();
    if (!q) {
      setErr('outcome-query', 'Write the question for the practitioner.');
      $('outcome-query').focus();
      return;
    }
    try {
      const r = await conn.request('agreeOutcome', { incidentId: String(id), agree: false, query: q, idempotencyKey: randomId('query-') });
      if (r.incident) upsertIncident(r.incident);
      $('outcome-query').value = '';
      setErr('outcome-query', '');
      toast({ kind: 'info', incidentId: String(id), text: `Outcome queried back to the practitioner.` });
    } catch (e) {
      setErr('outcome-query', e.disconnected ? 'Not sent: offline. Try again when the connection is back.' : e.message);
    }
    render();
  });

  $('cancel-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = currentId();
    const reason = $('cx-reason').value.trim();
    if (!reason) {
      setErr('cx-reason', 'Give the reason for cancelling.');
      $('cx-reason').focus();
      return;
    }
    if (!window.confirm(`Cancel ${refOf(id)}? The practitioner is told.`)) return;
    try {
      const r = await conn.request('cancelIncident', { incidentId: String(id), reason, idempotencyKey: randomId('cancel-') });
      if (r.incident) upsertIncident(r.incident);
      $('cx-reason').value = '';
      setErr('cx-reason', '');
      toast({ kind: 'info', incidentId: String(id), text: `${refOf(id)} cancelled.` });
    } catch (e) {
      setErr('cx-reason', e.disconnected ? 'Not sent: offline. Try again when the connection is back.' : e.message);
    }
    render();
  });

  $('reassign-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = currentId();
    const to = $('ra-to').value;
    const reason = $('ra-reason').value.trim();
    setErr('ra-to', to ? '' : 'Choose a practitioner or the queue.');
    setErr('ra-reason', reason ? '' : 'Give the reason.');
    if (!to || !reason) {
      (to ? $('ra-reason') : $('ra-to')).focus();
      return;
    }
    try {
      const r = await conn.request('reassign', { incidentId: String(id), practitioner: to === '__queue__' ? '' : to, reason });
      if (r.incident) upsertIncident(r.incident);
      $('ra-reason').value = '';
      toast({ kind: 'info', incidentId: String(id), text: `${refOf(id)} reassigned.` });
    } catch (e) {
      const f = /practitioner/.test(e.field || e.message) ? 'ra-to' : 'ra-reason';
      setErr(f, e.disconnected ? 'Not sent: offline.' : e.message);
    }
    render();
  });
}
