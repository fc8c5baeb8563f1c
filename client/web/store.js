// store.js -- what the console knows: incidents by id (snapshots from the hub,
// never older than what we hold), messages by incident and number (so a
// replay or a reload can never show one twice), notices, the supervisor's
// board, and the outbox of messages not yet acknowledged by the hub.

import { num } from './format.js';

export const S = {
  user: null,
  boroughs: [],
  incidents: new Map(), // id (string) -> Incident (without messages)
  messages: new Map(), // id -> Map(number -> ChatMessage)
  loadedMessages: new Set(), // ids whose full conversation came from getIncident
  slaWarn: new Set(), // ids with an SLA warning notice
  nobodyOnShift: new Map(), // id -> notice text
  unread: new Set(), // ids with practitioner messages not yet seen here
  notices: [], // {id, kind, incidentId, text, atMs}
  board: null,
  boardAt: 0,
  outbox: loadOutbox(), // {clientMsgId, incidentId, text, state: queued|sending|failed, error}
  clockSkewMs: 0, // hub time - local time, from event atMs
};

export function reset() {
  S.user = null;
  S.boroughs = [];
  S.incidents.clear();
  S.messages.clear();
  S.loadedMessages.clear();
  S.slaWarn.clear();
  S.nobodyOnShift.clear();
  S.unread.clear();
  S.notices = [];
  S.board = null;
  S.outbox = [];
  saveOutbox();
}

export function now() {
  return Date.now() + S.clockSkewMs;
}

// Stores a snapshot unless we already hold a newer one. Returns true if kept.
export function upsertIncident(inc, { force = false } = {}) {
  if (!inc || inc.id === undefined) return false;
  const id = String(inc.id);
  const old = S.incidents.get(id);
  if (!force && old && num(inc.updatedAtMs) < num(old.updatedAtMs)) return false;
  const copy = { ...inc };
  if (copy.messages) {
    for (const m of copy.messages) addMessage(m);
    delete copy.messages;
  }
  // An update's snapshot may carry less history than we have (or none).
  if (old && old.history && (!copy.history || copy.history.length < old.history.length)) {
    const seen = new Set((copy.history || []).map((t) => String(t.seq)));
    copy.history = [...old.history.filter((t) => !seen.has(String(t.seq))), ...(copy.history || [])];
    copy.history.sort((a, b) => num(a.atMs) - num(b.atMs) || num(a.seq) - num(b.seq));
  }
  if (!['INCIDENT_STATE_NEW', 'INCIDENT_STATE_QUEUED'].includes(copy.state)) S.nobodyOnShift.delete(id);
  if (!['INCIDENT_STATE_NEW', 'INCIDENT_STATE_QUEUED', 'INCIDENT_STATE_OFFERED'].includes(copy.state)) S.slaWarn.delete(id);
  S.incidents.set(id, copy);
  return true;
}

export function addTransition(id, t) {
  const inc = S.incidents.get(String(id));
  if (!inc || !t) return;
  const h = inc.history || (inc.history = []);
  if (t.seq && h.some((x) => String(x.seq) === String(t.seq))) return;
  h.push(t);
}

// Returns true if the message is new to us.
export function addMessage(m) {
  const id = String(m.incidentId);
  let map = S.messages.get(id);
  if (!map) S.messages.set(id, (map = new Map()));
  const key = String(m.number);
  const had = map.has(key);
  map.set(key, m);
  if (m.clientMsgId) dropOutbox(m.clientMsgId);
  return !had;
}

export function messagesOf(id) {
  const map = S.messages.get(String(id));
  if (!map) return [];
  return [...map.values()].sort((a, b) => num(a.number) - num(b.number));
}

// ------------------------------------------------------------------ outbox

function loadOutbox() {
  try {
    const v = JSON.parse(sessionStorage.getItem('mhtas.outbox') || '[]');
    return Array.isArray(v) ? v.map((e) => ({ ...e, state: e.state === 'failed' ? 'failed' : 'queued' })) : [];
  } catch {
    return [];
  }
}

export function saveOutbox() {
  try {
    sessionStorage.setItem('mhtas.outbox', JSON.stringify(S.outbox));
  } catch {
    /* storage full or blocked: the outbox still lives in memory */
  }
}

export function dropOutbox(clientMsgId) {
  const n = S.outbox.length;
  S.outbox = S.outbox.filter((e) => e.clientMsgId !== clientMsgId);
  if (S.outbox.length !== n) saveOutbox();
}

export function outboxOf(id) {
  return S.outbox.filter((e) => e.incidentId === String(id));
}
