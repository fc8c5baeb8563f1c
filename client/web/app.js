// app.js -- the MHTAS control-room console: sign-in, the live board, the
// incident view, the supervisor board, keyboard shortcuts.
//
// Everything on screen comes from the store (store.js), which is fed by the
// hub's replies and events (conn.js). Rendering is synchronous after each
// change, so window.__mhtasLastRenderMs measures, for incident events, the
// time from the WebSocket message's arrival to the DOM showing it.

import { Connection } from './conn.js';
import {
  ACTIVE_STATES,
  NOTICE,
  OPEN_STATES,
  PRAC_STATE,
  PRIORITY,
  ROLE,
  STATE_ICON,
  WAITING_STATES,
  clock,
  duration,
  durationWords,
  h,
  num,
  priorityLabel,
  priorityN,
  stateClass,
  stateLabel,
} from './format.js';
import { S, addMessage, addTransition, now, reset, upsertIncident } from './store.js';
import { initIncidentView, renderIncident, flushOutbox, openIncident } from './incident.js';
import { initNewForm, openNewForm, fillBoroughs } from './newform.js';

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = 'mhtas.token';

window.__mhtasRenderSamples = [];
window.__mhtasLastRenderMs = null;

// ------------------------------------------------------------ connection

export const conn = new Connection({
  onState: showConnState,
  onAuth,
  onEvent,
  onSubscribed: ({ resumed }) => {
    flushOutbox();
    render();
    if (!resumed) announce('Connected. Live updates on.');
  },
  onAuthFailed: (message) => {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(`Sign-in refused: ${message}. Check the token and try again.`);
  },
  onError: (e) => toast({ kind: 'error', text: `Hub error: ${e.message}` }),
});

let retryTicker = null;
function showConnState(st) {
  const el = $('conn');
  const txt = $('conn-text');
  el.className = `conn conn-${st.state}`;
  clearInterval(retryTicker);
  const banner = $('banner');
  if (st.state === 'online') {
    txt.textContent = 'Live';
    const stale = S.notices.filter((n) => n.offline);
    if (stale.length) {
      S.notices = S.notices.filter((n) => !n.offline);
      renderNotices();
    }
    banner.hidden = true;
    document.body.classList.remove('stale');
  } else if (st.state === 'connecting') {
    txt.textContent = 'Connecting…';
  } else if (st.state === 'reconnecting') {
    const upd = () => {
      const left = st.retryAt ? Math.max(0, Math.ceil((st.retryAt - Date.now()) / 1000)) : 0;
      txt.textContent = st.retryAt ? `Offline – retry in ${left} s` : 'Reconnecting…';
    };
    upd();
    if (st.retryAt) retryTicker = setInterval(upd, 500);
    if (S.user) {
      document.body.classList.add('stale');
      banner.replaceChildren(
        h('strong', null, '⚠ Connection to the hub lost. '),
        'What you see may be out of date; it will catch up when the connection is back. Messages you send now are kept and sent once. ',
        h('button', { type: 'button', class: 'btn btn-small', onclick: () => conn.reconnectNow() }, 'Reconnect now'),
      );
      banner.hidden = false;
    }
  } else {
    txt.textContent = st.detail || 'Not connected';
    banner.hidden = true;
    document.body.classList.remove('stale');
  }
  el.dataset.state = st.state;
}

async function onAuth(auth, { resumed }) {
  S.user = auth.user || {};
  S.boroughs = auth.boroughs || [];
  showSignedIn();
  if (!resumed) {
    await loadAll();
    const r = currentRoute();
    lastRouteKey = r.name + (r.id || '');
  } else if (isSupervisor()) await loadBoard().catch(() => {});
}

async function loadAll() {
  const r = await conn.request('listIncidents', { includeClosed: true });
  S.incidents.clear();
  S.messages.clear(); // the open incident's conversation is reloaded whole below
  S.loadedMessages.clear();
  for (const inc of r.incidents || []) upsertIncident(inc, { force: true });
  const route = currentRoute();
  if (route.name === 'incident') await openIncident(route.id).catch(() => {});
  if (isSupervisor()) await loadBoard().catch(() => {});
  render();
}

async function loadBoard() {
  const r = await conn.request('getBoard', {});
  S.board = r.board || {};
  S.boardAt = Date.now();
  render();
}

function onEvent(ev, receivedAt) {
  const at = num(ev.atMs) || Date.now();
  let kind = 'other';
  let incidentId = null;
  if (ev.incident) {
    kind = 'incident';
    const inc = ev.incident.incident;
    if (inc) {
      incidentId = String(inc.id);
      const isNew = !S.incidents.has(incidentId);
      upsertIncident(inc);
      if (ev.incident.transition) addTransition(incidentId, ev.incident.transition);
      if (isNew && inc.raisedBy !== (S.user && S.user.id)) announce(`New incident ${inc.details && inc.details.policeRef}`);
      const t = ev.incident.transition;
      const viewing = currentRoute().name === 'incident' && currentRoute().id === incidentId;
      if (t && t.cause === 'CAUSE_OUTCOME_PROPOSED' && !viewing) {
        toast({ kind: 'info', incidentId, text: `Outcome proposed for ${refOf(incidentId)}: agree or query it back` });
      }
    }
  } else if (ev.offer) {
    kind = 'incident';
    if (ev.offer.incident) {
      incidentId = String(ev.offer.incident.id);
      upsertIncident(ev.offer.incident);
    }
  } else if (ev.message) {
    kind = 'message';
    incidentId = String(ev.message.incidentId);
    const fresh = addMessage(ev.message);
    const route = currentRoute();
    if (fresh && ev.message.fromUser !== (S.user && S.user.id)) {
      if (!(route.name === 'incident' && route.id === incidentId && document.visibilityState === 'visible')) {
        S.unread.add(incidentId);
      }
    }
  } else if (ev.queue) {
    // One arrives for every queued incident whose position moved (hundreds on
    // a busy night when a grade 1 jumps the queue): update its cells only.
    const inc = S.incidents.get(String(ev.queue.incidentId));
    if (inc) {
      inc.queuePosition = ev.queue.position;
      inc.expectedWaitMs = ev.queue.expectedWaitMs;
      for (const td of document.querySelectorAll(`[data-tick="queue"][data-id="${CSS.escape(String(inc.id))}"]`)) fillQueue(td, inc);
      if (currentRoute().name === 'incident' && currentRoute().id === String(inc.id)) render();
    }
    return;
  } else if (ev.board) {
    kind = 'board';
    S.board = ev.board;
    S.boardAt = Date.now();
  } else if (ev.notice) {
    kind = 'notice';
    onNotice(ev.notice, at);
    if (ev.notice.kind === 'NOTICE_KIND_RESUME_GAP') return;
  } else if (ev.status) {
    kind = 'status';
    if (S.board && S.board.practitioners) {
      const i = S.board.practitioners.findIndex((p) => p.userId === ev.status.userId);
      if (i >= 0) S.board.practitioners[i] = ev.status;
      else S.board.practitioners.push(ev.status);
    }
  }
  render();
  if (kind === 'incident' || kind === 'message') {
    const ms = performance.now() - receivedAt;
    window.__mhtasLastRenderMs = ms;
    const sample = { seq: String(ev.seq), kind, incidentId, ms };
    window.__mhtasRenderSamples.push(sample);
    if (window.__mhtasRenderSamples.length > 500) window.__mhtasRenderSamples.shift();
    // And to the next frame painted, for the curious.
    requestAnimationFrame(() => {
      sample.paintMs = performance.now() - receivedAt;
    });
  }
}

function onNotice(n, atMs) {
  const id = n.incidentId && n.incidentId !== '0' ? String(n.incidentId) : null;
  switch (n.kind) {
    case 'NOTICE_KIND_RESUME_GAP':
      toast({ kind: 'warn', text: 'Some live updates were missed while disconnected: reloading everything.' });
      loadAll().catch((e) => toast({ kind: 'error', text: `Reload failed: ${e.message}` }));
      return;
    case 'NOTICE_KIND_SLA_WARNING':
      if (id) S.slaWarn.add(id);
      break;
    case 'NOTICE_KIND_SLA_BREACHED':
      if (id) {
        const inc = S.incidents.get(id);
        if (inc) inc.slaBreached = true;
      }
      break;
    case 'NOTICE_KIND_NOBODY_ON_SHIFT':
      if (id) S.nobodyOnShift.set(id, n.text || NOTICE[n.kind]);
      break;
    default:
  }
  const level = n.kind === 'NOTICE_KIND_SLA_BREACHED' || n.kind === 'NOTICE_KIND_NOBODY_ON_SHIFT' ? 'alert' : 'warn';
  // The hub's text is a whole sentence; name the incident by its police reference too.
  const label = NOTICE[n.kind] || n.kind;
  toast({ kind: level, incidentId: id, text: `${id ? `${refOf(id)}: ` : ''}${n.text || label}`, atMs, group: n.kind });
}

// --------------------------------------------------------------- toasts

let toastSeq = 0;
export function toast({ kind = 'info', text, incidentId = null, atMs = Date.now(), offline = false, group = null }) {
  const id = ++toastSeq;
  // One notice per group (e.g. per notice kind): a storm of them on a busy
  // night becomes one line with a count, not a wall of alerts.
  let more = 0;
  if (group) {
    const prev = S.notices.find((n) => n.group === group);
    if (prev) {
      more = prev.more + 1;
      S.notices = S.notices.filter((n) => n !== prev);
    }
  }
  if (more) text += ` (and ${more} more)`;
  S.notices.unshift({ id, kind, text, incidentId, atMs, offline, group, more });
  S.notices = S.notices.slice(0, 4);
  renderNotices();
  if (kind === 'info') setTimeout(() => dismiss(id), 5000);
  if (kind === 'warn') setTimeout(() => dismiss(id), 30000);
}
function dismiss(id) {
  S.notices = S.notices.filter((n) => n.id !== id);
  renderNotices();
}
function renderNotices() {
  const box = $('notices');
  box.replaceChildren(
    ...S.notices.map((n) =>
      h(
        'div',
        { class: `notice notice-${n.kind}`, role: n.kind === 'alert' ? 'alert' : null },
        h('span', { class: 'notice-icon', 'aria-hidden': 'true' }, n.kind === 'alert' ? '⚠' : n.kind === 'error' ? '✕' : n.kind === 'warn' ? '!' : 'i'),
        h('span', { class: 'notice-time' }, clock(n.atMs)),
        ' ',
        n.incidentId ? h('a', { href: `#/incident/${n.incidentId}` }, n.text) : h('span', null, n.text),
        h('button', { type: 'button', class: 'btn btn-small notice-x', 'aria-label': 'Dismiss notice', onclick: () => dismiss(n.id) }, '×'),
      ),
    ),
  );
}

// A polite screen-reader announcement, without a visible toast.
const sr = h('div', { class: 'sr-only', 'aria-live': 'polite', id: 'sr-announce' });
document.body.appendChild(sr);
export function announce(text) {
  sr.textContent = '';
  setTimeout(() => {
    sr.textContent = text;
  }, 50);
}

// ------------------------------------------------------------- sign in

function showSignIn(error = '') {
  reset();
  renderNotices();
  for (const v of ['view-board', 'view-incident', 'view-supervisor']) $(v).hidden = true;
  $('view-signin').hidden = false;
  $('nav').hidden = true;
  $('me').hidden = true;
  $('banner').hidden = true;
  const err = $('f-token-err');
  err.textContent = error ? '⚠ ' + error : '';
  $('f-token').setAttribute('aria-invalid', error ? 'true' : 'false');
  $('f-token').value = '';
  $('f-token').focus();
}

function showSignedIn() {
  $('view-signin').hidden = true;
  $('nav').hidden = false;
  $('me').hidden = false;
  $('me-name').textContent = S.user.displayName || S.user.id;
  $('me-role').textContent = ROLE[S.user.role] || S.user.role || '';
  $('nav-supervisor').hidden = !isSupervisor();
  fillBoroughs(S.boroughs);
  const sel = $('flt-borough');
  const keep = sel.value;
  sel.replaceChildren(h('option', { value: '' }, 'All'), ...S.boroughs.map((b) => h('option', { value: b }, b)));
  sel.value = sel.dataset.restore && S.boroughs.includes(sel.dataset.restore) ? sel.dataset.restore : keep;
  delete sel.dataset.restore;
  if (!location.hash || location.hash === '#' || location.hash === '#/signin') location.hash = '#/board';
  render();
}

function signOut() {
  conn.stop();
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem('mhtas.outbox');
  sessionStorage.removeItem('mhtas.filters');
  history.replaceState(null, '', location.pathname);
  lastRouteKey = '';
  rowCache.clear();
  showSignIn();
}

export function isSupervisor() {
  return S.user && S.user.role === 'ROLE_SUPERVISOR';
}
export function isPolice() {
  return S.user && ['ROLE_OPERATOR', 'ROLE_SUPERVISOR', 'ROLE_DISPATCHER'].includes(S.user.role);
}

// --------------------------------------------------------------- routing

export function currentRoute() {
  const m = /^#\/incident\/(\d+)/.exec(location.hash);
  if (m) return { name: 'incident', id: m[1] };
  if (location.hash.startsWith('#/supervisor')) return { name: 'supervisor' };
  return { name: 'board' };
}

let lastRouteKey = '';
function onRoute() {
  if (!S.user) return;
  const r = currentRoute();
  const key = r.name + (r.id || '');
  if (key === lastRouteKey) return;
  const prev = lastRouteKey;
  lastRouteKey = key;
  if (r.name === 'incident') {
    S.unread.delete(r.id);
    if (conn.isReady || conn.ws) openIncident(r.id).catch(() => {});
  }
  if (r.name === 'supervisor' && isSupervisor() && conn.isReady) loadBoard().catch(() => {});
  render();
  // Focus the new view's heading so a screen reader says where we are.
  const head = r.name === 'incident' ? $('inc-h') : r.name === 'supervisor' ? $('sup-h') : $('board-h');
  if (prev && head) {
    head.setAttribute('tabindex', '-1');
    head.focus();
  }
}
window.addEventListener('hashchange', onRoute);

export function go(hash) {
  if (location.hash !== hash) location.hash = hash;
  else onRoute();
}

// --------------------------------------------------------------- render

export function render() {
  if (!S.user) return;
  const r = currentRoute();
  $('view-board').hidden = r.name !== 'board';
  $('view-incident').hidden = r.name !== 'incident';
  $('view-supervisor').hidden = r.name !== 'supervisor';
  for (const b of document.querySelectorAll('.navbtn')) {
    if (b.dataset.route === r.name) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  if (r.name === 'board') renderBoard();
  else if (r.name === 'incident') renderIncident(r.id);
  else if (r.name === 'supervisor') renderSupervisor();
  document.title = titleText(r);
}

function titleText(r) {
  const waiting = [...S.incidents.values()].filter((i) => WAITING_STATES.has(i.state)).length;
  const base = r.name === 'incident' ? refOf(r.id) : r.name === 'supervisor' ? 'Supervisor' : 'Board';
  return `${waiting ? `(${waiting} waiting) ` : ''}${base} – MHTAS`;
}

export function refOf(id) {
  const inc = S.incidents.get(String(id));
  return (inc && inc.details && inc.details.policeRef) || `#${id}`;
}

// Service level of a not-yet-accepted incident: {level: ok|warn|breach|na, text, words}.
export function slaInfo(inc, t = now()) {
  const deadline = num(inc.slaDeadlineMs);
  if (inc.slaBreached && WAITING_STATES.has(inc.state)) return { level: 'breach', text: '⚠ BREACHED', words: 'service level breached' };
  if (!WAITING_STATES.has(inc.state)) {
    if (inc.slaBreached) return { level: 'was-breach', text: 'Breached (answered late)', words: 'service level was breached' };
    return { level: 'na', text: '–', words: '' };
  }
  if (!deadline) return { level: 'na', text: '–', words: '' };
  const left = deadline - t;
  if (left <= 0) return { level: 'breach', text: `⚠ BREACHED +${duration(-left)}`, words: `service level breached ${durationWords(-left)} ago` };
  const total = deadline - num(inc.raisedAtMs);
  const warn = S.slaWarn.has(String(inc.id)) || (total > 0 && left <= total * 0.25) || left <= 30000;
  if (warn) return { level: 'warn', text: `! ${duration(left)} left`, words: `service level about to be breached, ${durationWords(left)} left` };
  return { level: 'ok', text: `${duration(left)} left`, words: `${durationWords(left)} left on the service level` };
}

function waitedMs(inc, t = now()) {
  const raised = num(inc.raisedAtMs);
  if (!raised) return NaN;
  if (WAITING_STATES.has(inc.state)) return t - raised;
  // Once accepted: how long it took to be accepted, else its age.
  const acc = (inc.history || []).find((x) => x.cause === 'CAUSE_ACCEPTED');
  if (acc) return num(acc.atMs) - raised;
  return (OPEN_STATES.has(inc.state) ? t : num(inc.updatedAtMs)) - raised;
}

export function stateBadge(state) {
  return h(
    'span',
    { class: `state ${stateClass(state)}` },
    h('span', { class: 'state-icon', 'aria-hidden': 'true' }, STATE_ICON[state] || '·'),
    ' ',
    stateLabel(state),
  );
}

export function priorityBadge(p) {
  return h('span', { class: `prio prio-${priorityN(p)}` }, priorityLabel(p));
}

function fillWait(td, inc) {
  const ms = waitedMs(inc);
  const waiting = WAITING_STATES.has(inc.state);
  td.textContent = Number.isFinite(ms) ? duration(ms) : '–';
  td.title = waiting ? 'waiting since raised' : 'time to accept';
  td.setAttribute('aria-label', Number.isFinite(ms) ? `${waiting ? 'waiting' : 'took'} ${durationWords(ms)}` : 'unknown');
}

function fillSla(td, inc) {
  const s = slaInfo(inc);
  td.className = `sla sla-${s.level}`;
  td.textContent = s.text;
  if (s.words) td.setAttribute('aria-label', s.words);
  else td.removeAttribute('aria-label');
}

export function fillSlaHead(el, inc) {
  const s = slaInfo(inc);
  el.className = `sla sla-${s.level}`;
  el.textContent = s.level === 'na' ? '' : `Service level: ${s.text}`;
  if (s.words) el.setAttribute('aria-label', s.words);
  else el.removeAttribute('aria-label');
}

function fillQueue(td, inc) {
  if (WAITING_STATES.has(inc.state) && num(inc.queuePosition)) {
    const ew = num(inc.expectedWaitMs);
    const nobody = S.nobodyOnShift.has(String(inc.id));
    const ewText = nobody
      ? ' · wait unknown: nobody on shift'
      : ew
        ? ew < 60000
          ? ' · < 1 min'
          : ` · ~${Math.round(ew / 60000)} min`
        : inc.state === 'INCIDENT_STATE_QUEUED'
          ? ' · wait unknown'
          : '';
    td.textContent = `#${inc.queuePosition}${ewText}`;
    td.setAttribute('aria-label', `queue position ${inc.queuePosition}${ew && !nobody ? `, expected wait ${durationWords(ew)}` : ', expected wait unknown'}`);
  } else td.textContent = '–';
}

function holderText(inc) {
  if (!inc.practitioner) return WAITING_STATES.has(inc.state) ? 'none yet' : '–';
  const name = inc.practitionerName || inc.practitioner;
  if (inc.state === 'INCIDENT_STATE_OFFERED') {
    const left = num(inc.offerDeadlineMs) - now();
    return `offered to ${name}${left > 0 ? ` (${Math.ceil(left / 1000)} s)` : ''}`;
  }
  return name;
}

// ----------------------------------------------------------------- board

function filters() {
  return {
    text: $('flt-text').value.trim().toLowerCase(),
    mine: $('flt-mine').checked,
    borough: $('flt-borough').value,
    priority: $('flt-priority').value,
    state: $('flt-state').value,
  };
}

function matches(inc, f) {
  const d = inc.details || {};
  if (f.mine) {
    const me = S.user.id;
    if (inc.raisedBy !== me && inc.practitioner !== me) return false;
  }
  if (f.borough && d.borough !== f.borough) return false;
  if (f.priority && d.priority !== f.priority) return false;
  if (f.state === 'open' && !OPEN_STATES.has(inc.state)) return false;
  if (f.state === 'recent' && !OPEN_STATES.has(inc.state) && now() - num(inc.updatedAtMs) > 3600000) return false;
  if (f.state === 'waiting' && !WAITING_STATES.has(inc.state)) return false;
  if (f.state === 'active' && !ACTIVE_STATES.has(inc.state)) return false;
  if (f.state === 'ended' && OPEN_STATES.has(inc.state)) return false;
  if (f.state.startsWith('INCIDENT_STATE_') && inc.state !== f.state) return false;
  if (f.text) {
    const p = d.person || {};
    const hay = [d.policeRef, d.place, d.borough, p.familyName, p.givenNames, p.postcode, ...(d.callsigns || []), inc.practitionerName, String(inc.id)]
      .filter(Boolean)
      .join(' ')
      .toLowerCase();
    if (!hay.includes(f.text)) return false;
  }
  return true;
}

export function sortIncidents(list) {
  const group = (i) => (WAITING_STATES.has(i.state) ? 0 : i.state === 'INCIDENT_STATE_OUTCOME_PROPOSED' ? 1 : OPEN_STATES.has(i.state) ? 2 : 3);
  return list.sort((a, b) => {
    const g = group(a) - group(b);
    if (g) return g;
    if (group(a) === 3) return num(b.updatedAtMs) - num(a.updatedAtMs);
    return priorityN(a.details && a.details.priority) - priorityN(b.details && b.details.priority) || num(a.raisedAtMs) - num(b.raisedAtMs);
  });
}

function renderBoard() {
  const f = filters();
  const all = [...S.incidents.values()];
  const list = sortIncidents(all.filter((i) => matches(i, f)));
  const body = $('board-body');
  const focusedId = document.activeElement && body.contains(document.activeElement) ? document.activeElement.dataset.id : null;
  // Rows are rebuilt only when their incident changed: with hundreds of
  // incidents on a wall display an event costs one row, not the board.
  const seen = new Set();
  const rows = list.map((inc) => {
    const id = String(inc.id);
    seen.add(id);
    const sig = rowSig(inc);
    const c = rowCache.get(id);
    if (c && c.sig === sig) return c.el;
    const el = boardRow(inc);
    rowCache.set(id, { sig, el });
    return el;
  });
  for (const id of rowCache.keys()) if (!seen.has(id)) rowCache.delete(id);
  const cur = body.children;
  let same = cur.length === rows.length;
  for (let i = 0; same && i < rows.length; i++) same = cur[i] === rows[i];
  if (!same) body.replaceChildren(...rows);
  if (focusedId) {
    const el = body.querySelector(`a[data-id="${CSS.escape(focusedId)}"]`);
    if (el) el.focus();
  }
  $('board-empty').hidden = list.length > 0;
  const waiting = all.filter((i) => WAITING_STATES.has(i.state)).length;
  const breached = all.filter((i) => slaInfo(i).level === 'breach').length;
  const proposed = all.filter((i) => i.state === 'INCIDENT_STATE_OUTCOME_PROPOSED').length;
  const parts = [`${list.length} shown of ${all.length}`, `${waiting} waiting`];
  if (proposed) parts.push(`${proposed} outcome${proposed > 1 ? 's' : ''} to agree`);
  if (breached) parts.push(`⚠ ${breached} breached`);
  $('board-counts').textContent = parts.join(' · ');
}

const rowCache = new Map(); // id -> {sig, el}

function rowSig(inc) {
  const id = String(inc.id);
  return [
    inc.updatedAtMs,
    inc.state,
    inc.practitioner,
    inc.practitionerName,
    inc.slaBreached,
    slaInfo(inc).level,
    S.unread.has(id),
    S.nobodyOnShift.has(id),
  ].join('|');
}

function boardRow(inc) {
  const d = inc.details || {};
  const id = String(inc.id);
  const sla = slaInfo(inc);
  const flags = [];
  if (S.unread.has(id)) flags.push(h('span', { class: 'tag tag-msg' }, '✉ new message'));
  if (inc.state === 'INCIDENT_STATE_OUTCOME_PROPOSED') flags.push(h('span', { class: 'tag tag-act' }, '➤ agree or query'));
  if (S.nobodyOnShift.has(id) && WAITING_STATES.has(inc.state)) flags.push(h('span', { class: 'tag tag-warn' }, '⚠ nobody on shift'));
  const tdWait = h('td', { class: 'num', dataset: { tick: 'wait', id } });
  fillWait(tdWait, inc);
  const tdQ = h('td', { dataset: { tick: 'queue', id } });
  fillQueue(tdQ, inc);
  const tdSla = h('td', { dataset: { tick: 'sla', id } });
  fillSla(tdSla, inc);
  const tdHolder = h('td', { dataset: { tick: 'holder', id } }, holderText(inc));
  const tr = h(
    'tr',
    {
      class: `inc-row ${stateClass(inc.state)} sla-row-${sla.level}`,
      dataset: { id, testid: `incident-row-${id}` },
      onclick: (e) => {
        if (e.target.closest('a')) return;
        go(`#/incident/${id}`);
      },
    },
    h('td', null, h('a', { href: `#/incident/${id}`, class: 'ref', dataset: { id } }, d.policeRef || `#${id}`), flags.length ? h('div', { class: 'tags' }, flags) : null),
    h('td', null, priorityBadge(d.priority)),
    h('td', null, h('div', null, d.borough || ''), h('div', { class: 'sub' }, d.place || '')),
    h('td', { dataset: { testid: 'state' } }, stateBadge(inc.state)),
    tdHolder,
    tdWait,
    tdQ,
    tdSla,
  );
  return tr;
}

// ---------------------------------------------------------- supervisor

function renderSupervisor() {
  const b = S.board;
  if (!isSupervisor()) {
    $('sup-kpis').replaceChildren(h('p', null, 'The supervisor board is for supervisors.'));
    return;
  }
  if (!b) {
    $('sup-kpis').replaceChildren(h('p', null, 'Loading…'));
    return;
  }
  const since = Date.now() - S.boardAt;
  const queued = (b.queue || []).reduce((a, q) => a + num(q.depth), 0);
  const longest = num(b.longestWaitMs) ? num(b.longestWaitMs) + (queued ? since : 0) : 0;
  const kpi = (label, value, cls = '', testid = '') =>
    h('div', { class: `kpi ${cls}`, dataset: testid ? { testid } : null }, h('div', { class: 'kpi-v' }, value), h('div', { class: 'kpi-l' }, label));
  $('sup-kpis').replaceChildren(
    kpi('Waiting in queue', String(queued), queued ? 'kpi-warn' : '', 'kpi-queued'),
    kpi('Longest wait', longest ? duration(longest) : '–', longest > 60000 ? 'kpi-warn' : '', 'kpi-longest'),
    kpi('On shift', String(num(b.onShift)), num(b.onShift) ? '' : 'kpi-alert', 'kpi-onshift'),
    kpi('Offers outstanding', String(num(b.offersOutstanding)), '', 'kpi-offers'),
    kpi('Breaches', num(b.breaches) ? `⚠ ${num(b.breaches)}` : '0', num(b.breaches) ? 'kpi-alert' : '', 'kpi-breaches'),
  );
  $('sup-updated').textContent = `Board as at ${clock(S.boardAt)}`;
  const byP = new Map((b.queue || []).map((q) => [q.priority, q]));
  $('sup-queue').replaceChildren(
    ...Object.keys(PRIORITY).map((p) => {
      const q = byP.get(p) || {};
      const lw = num(q.longestWaitMs);
      return h('tr', null, h('td', null, priorityBadge(p)), h('td', { class: 'num' }, String(num(q.depth))), h('td', { class: 'num' }, lw ? duration(lw + (num(q.depth) ? since : 0)) : '–'));
    }),
  );
  const pracs = (b.practitioners || []).filter((p) => p.state !== 'PRACTITIONER_STATE_OFF_SHIFT');
  $('sup-prac').replaceChildren(
    ...(pracs.length
      ? pracs.map((p) => {
          const st = PRAC_STATE[p.state] || { label: p.state, icon: '?' };
          let detail = st.label;
          if (p.state === 'PRACTITIONER_STATE_BUSY' || num(p.activeIncidents)) detail += ` with ${num(p.activeIncidents)}`;
          if (p.state === 'PRACTITIONER_STATE_PAUSED' && p.pauseReason) detail += ` – ${p.pauseReason}`;
          if (!p.connected && p.state !== 'PRACTITIONER_STATE_DISCONNECTED') detail += ' (not connected)';
          const holding = (p.holding || []).map((id) => h('a', { href: `#/incident/${id}`, class: 'holding' }, refOf(id)));
          return h(
            'tr',
            { class: `prac prac-${String(p.state || '').replace('PRACTITIONER_STATE_', '').toLowerCase()}` },
            h('td', null, p.displayName || p.userId),
            h('td', null, p.provider || ''),
            h('td', null, h('span', { class: 'prac-state' }, h('span', { 'aria-hidden': 'true' }, st.icon + ' '), detail)),
            h('td', null, `${num(p.activeIncidents)} / ${num(p.capacity)}`, holding.length ? h('div', { class: 'sub' }, holding) : null),
            h('td', { class: 'num' }, String(num(p.missedOffers))),
            h('td', null, clock(p.onShiftSinceMs)),
          );
        })
      : [h('tr', null, h('td', { colspan: '6', class: 'alert-cell' }, '⚠ Nobody is on shift.'))]),
  );
  const open = sortIncidents([...S.incidents.values()].filter((i) => OPEN_STATES.has(i.state)));
  $('sup-open').replaceChildren(
    ...open.map((inc) => {
      const id = String(inc.id);
      const tdWait = h('td', { class: 'num', dataset: { tick: 'wait', id } });
      fillWait(tdWait, inc);
      const tdSla = h('td', { dataset: { tick: 'sla', id } });
      fillSla(tdSla, inc);
      return h(
        'tr',
        { class: `inc-row ${stateClass(inc.state)}` },
        h('td', null, h('a', { href: `#/incident/${id}`, class: 'ref', dataset: { id } }, refOf(id))),
        h('td', null, priorityBadge(inc.details && inc.details.priority)),
        h('td', null, stateBadge(inc.state)),
        h('td', { dataset: { tick: 'holder', id } }, holderText(inc)),
        tdWait,
        tdSla,
      );
    }),
  );
}

// Once a second: waits, countdowns and service levels move on.
setInterval(() => {
  if (!S.user) return;
  for (const td of document.querySelectorAll('[data-tick]')) {
    const inc = S.incidents.get(td.dataset.id);
    if (!inc) continue;
    const k = td.dataset.tick;
    if (k === 'wait') fillWait(td, inc);
    else if (k === 'sla') {
      fillSla(td, inc);
      const tr = td.closest('tr.inc-row');
      if (tr) {
        const lvl = slaInfo(inc).level;
        for (const c of [...tr.classList]) if (c.startsWith('sla-row-') && c !== `sla-row-${lvl}`) tr.classList.remove(c);
        tr.classList.add(`sla-row-${lvl}`);
      }
    }
    else if (k === 'sla-head') fillSlaHead(td, inc);
    else if (k === 'queue') fillQueue(td, inc);
    else if (k === 'holder') td.textContent = holderText(inc);
  }
  const r = currentRoute();
  if (r.name === 'supervisor') renderSupervisor();
  document.title = titleText(r);
}, 1000);

// ------------------------------------------------------------ shortcuts

function typing(el) {
  return el && (el.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(el.tagName));
}

document.addEventListener('keydown', (e) => {
  if (!S.user) return;
  const dlgOpen = document.querySelector('dialog[open]');
  if (e.key === 'Escape') {
    if (dlgOpen) return; // the dialog closes itself
    if (e.target.type === 'search' && e.target.value) return; // let the filter clear itself
    if (currentRoute().name !== 'board') {
      e.preventDefault();
      go('#/board');
    } else if (typing(e.target)) e.target.blur();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  if (typing(e.target) || dlgOpen) return;
  switch (e.key) {
    case 'n':
      e.preventDefault();
      openNewForm();
      break;
    case '/':
      e.preventDefault();
      go('#/board');
      setTimeout(() => $('flt-text').focus(), 0);
      break;
    case '?':
      e.preventDefault();
      $('dlg-help').showModal();
      break;
    case 'b':
      go('#/board');
      break;
    case 's':
      if (isSupervisor()) go('#/supervisor');
      break;
    case 'm':
      if (currentRoute().name === 'incident') {
        e.preventDefault();
        $('compose-text').focus();
      }
      break;
    case 'j':
    case 'k': {
      const links = [...document.querySelectorAll('#board-body a.ref, #sup-open a.ref')].filter((a) => a.offsetParent);
      if (!links.length) break;
      const i = links.indexOf(document.activeElement);
      const next = e.key === 'j' ? Math.min(links.length - 1, i + 1) : Math.max(0, i < 0 ? 0 : i - 1);
      links[next].focus();
      break;
    }
    default:
  }
});

// ------------------------------------------------------------------ boot

function boot() {
  for (const d of document.querySelectorAll('dialog')) {
    d.addEventListener('click', (e) => {
      if (e.target.closest('[data-close]')) d.close();
    });
  }
  $('btn-help').addEventListener('click', () => $('dlg-help').showModal());
  $('btn-new').addEventListener('click', () => openNewForm());
  $('btn-signout').addEventListener('click', signOut);
  $('nav-board').addEventListener('click', () => go('#/board'));
  $('nav-supervisor').addEventListener('click', () => go('#/supervisor'));
  // Filters survive a reload (this tab only).
  const FILTERS = ['flt-text', 'flt-mine', 'flt-borough', 'flt-priority', 'flt-state'];
  let saved = {};
  try {
    saved = JSON.parse(sessionStorage.getItem('mhtas.filters') || '{}');
  } catch {
    saved = {};
  }
  const saveFilters = () => {
    const o = {};
    for (const id of FILTERS) o[id] = $(id).type === 'checkbox' ? $(id).checked : $(id).value;
    sessionStorage.setItem('mhtas.filters', JSON.stringify(o));
  };
  for (const id of FILTERS) {
    if (id in saved) {
      if ($(id).type === 'checkbox') $(id).checked = !!saved[id];
      else if (id !== 'flt-borough') $(id).value = saved[id];
      else $(id).dataset.restore = saved[id];
    }
    $(id).addEventListener('input', () => {
      saveFilters();
      renderBoard();
    });
    $(id).addEventListener('change', () => {
      saveFilters();
      renderBoard();
    });
  }
  $('filters').addEventListener('submit', (e) => e.preventDefault());
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('f-token').value.trim();
    if (!token) {
      $('f-token-err').textContent = '⚠ Enter your access token.';
      $('f-token').setAttribute('aria-invalid', 'true');
      $('f-token').focus();
      return;
    }
    $('f-token-err').textContent = '';
    $('f-token').setAttribute('aria-invalid', 'false');
    sessionStorage.setItem(TOKEN_KEY, token);
    $('f-token').value = '';
    conn.start(token);
  });
  initIncidentView();
  initNewForm();
  document.addEventListener('visibilitychange', () => {
    const r = currentRoute();
    if (document.visibilityState === 'visible' && r.name === 'incident') {
      S.unread.delete(r.id);
      render();
    }
  });
  window.addEventListener('online', () => conn.reconnectNow());

  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) {
    $('view-signin').hidden = true;
    conn.start(token);
  } else showSignIn();
}

boot();

// Test and debugging hooks (read-only views of the state, and a way to drop
// the connection as a network failure would).
window.__mhtas = {
  state: S,
  conn,
  dropConnection: (holdMs = 0) => conn.simulateDrop(holdMs),
};

