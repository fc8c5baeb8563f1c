// format.js -- words for the wire's enum names, times and durations, and a
// tiny DOM builder (textContent only: nothing from the wire is parsed as HTML).

export const PRIORITY = {
  PRIORITY_IMMEDIATE: { n: 1, label: 'Immediate' },
  PRIORITY_URGENT: { n: 2, label: 'Urgent' },
  PRIORITY_STANDARD: { n: 3, label: 'Standard' },
  PRIORITY_ROUTINE: { n: 4, label: 'Routine' },
};

export function priorityN(p) {
  return (PRIORITY[p] && PRIORITY[p].n) || 9;
}
export function priorityLabel(p) {
  const x = PRIORITY[p];
  return x ? `P${x.n} ${x.label}` : 'Unknown';
}

export const STATE = {
  INCIDENT_STATE_NEW: 'New',
  INCIDENT_STATE_QUEUED: 'Queued',
  INCIDENT_STATE_OFFERED: 'Offered',
  INCIDENT_STATE_ACCEPTED: 'Accepted',
  INCIDENT_STATE_ADVISING: 'Advising',
  INCIDENT_STATE_OUTCOME_PROPOSED: 'Outcome proposed',
  INCIDENT_STATE_CLOSED: 'Closed',
  INCIDENT_STATE_CANCELLED: 'Cancelled',
  INCIDENT_STATE_ESCALATED: 'Escalated',
  INCIDENT_STATE_TRANSFERRED: 'Transferred',
};
// One glyph per state so state never depends on colour alone.
export const STATE_ICON = {
  INCIDENT_STATE_NEW: '○',
  INCIDENT_STATE_QUEUED: '≡',
  INCIDENT_STATE_OFFERED: '➜',
  INCIDENT_STATE_ACCEPTED: '✓',
  INCIDENT_STATE_ADVISING: '✎',
  INCIDENT_STATE_OUTCOME_PROPOSED: '?',
  INCIDENT_STATE_CLOSED: '■',
  INCIDENT_STATE_CANCELLED: '✕',
  INCIDENT_STATE_ESCALATED: '▲',
  INCIDENT_STATE_TRANSFERRED: '⇄',
};
export function stateLabel(s) {
  return STATE[s] || (s ? String(s).replace(/^INCIDENT_STATE_/, '') : 'Unknown');
}
export function stateClass(s) {
  return 'st-' + String(s || 'unknown').replace(/^INCIDENT_STATE_/, '').toLowerCase().replace(/_/g, '-');
}

export const OPEN_STATES = new Set([
  'INCIDENT_STATE_NEW',
  'INCIDENT_STATE_QUEUED',
  'INCIDENT_STATE_OFFERED',
  'INCIDENT_STATE_ACCEPTED',
  'INCIDENT_STATE_ADVISING',
  'INCIDENT_STATE_OUTCOME_PROPOSED',
  'INCIDENT_STATE_ESCALATED',
  'INCIDENT_STATE_TRANSFERRED',
]);
export const WAITING_STATES = new Set(['INCIDENT_STATE_NEW', 'INCIDENT_STATE_QUEUED', 'INCIDENT_STATE_OFFERED']);
export const ACTIVE_STATES = new Set([
  'INCIDENT_STATE_ACCEPTED',
  'INCIDENT_STATE_ADVISING',
  'INCIDENT_STATE_OUTCOME_PROPOSED',
]);

export const CAUSE = {
  CAUSE_RAISED: 'raised',
  CAUSE_QUEUED: 'queued',
  CAUSE_OFFERED: 'offered',
  CAUSE_ACCEPTED: 'accepted',
  CAUSE_DECLINED: 'declined',
  CAUSE_OFFER_TIMEOUT: 'offer timed out',
  CAUSE_OFFER_WITHDRAWN: 'offer withdrawn',
  CAUSE_FIRST_ADVICE: 'first advice',
  CAUSE_OUTCOME_PROPOSED: 'outcome proposed',
  CAUSE_OUTCOME_QUERIED: 'outcome queried back',
  CAUSE_OUTCOME_AGREED: 'outcome agreed',
  CAUSE_CANCELLED: 'cancelled',
  CAUSE_GRACE_EXPIRED: 'holder disconnected too long',
  CAUSE_REASSIGNED: 'reassigned by supervisor',
  CAUSE_ESCALATED: 'escalated',
  CAUSE_WIDENED: 'eligibility widened',
};
export function causeLabel(c) {
  return CAUSE[c] || (c ? String(c).replace(/^CAUSE_/, '').toLowerCase().replace(/_/g, ' ') : '');
}

export const FLAG = {
  CONCERN_FLAG_WEAPON: 'Weapon',
  CONCERN_FLAG_SELF_HARM: 'Self-harm',
  CONCERN_FLAG_SUBSTANCE: 'Substance',
  CONCERN_FLAG_UNDER_18: 'Under 18',
  CONCERN_FLAG_LD_AUTISM: 'LD / autism',
  CONCERN_FLAG_DOMESTIC_ABUSE: 'Domestic abuse',
};

export const RCRP = {
  RCRP_DECISION_POLICE_ATTEND_CRIME: 'Police attend: crime',
  RCRP_DECISION_POLICE_ATTEND_RISK_TO_LIFE: 'Police attend: risk to life / serious harm',
  RCRP_DECISION_NO_POLICE_ATTENDANCE: 'No police attendance (health-led)',
  RCRP_DECISION_UNDER_REVIEW: 'Under review',
};

export const OUTCOME = {
  OUTCOME_CODE_S136_DETENTION: 'Section 136 detention',
  OUTCOME_CODE_S136_CONSIDERED_NOT_USED: 'S136 considered, not used',
  OUTCOME_CODE_S135_WARRANT_ADVISED: 'S135 warrant advised',
  OUTCOME_CODE_VOLUNTARY_AE: 'Voluntary attendance at A&E',
  OUTCOME_CODE_VOLUNTARY_ASSESSMENT: 'Voluntary assessment',
  OUTCOME_CODE_AMBULANCE_REQUESTED: 'Ambulance requested',
  OUTCOME_CODE_REFER_CRISIS_TEAM: 'Refer: crisis team',
  OUTCOME_CODE_REFER_CMHT: 'Refer: CMHT',
  OUTCOME_CODE_REFER_STREET_TRIAGE: 'Refer: street triage',
  OUTCOME_CODE_REFER_GP: 'Refer: GP',
  OUTCOME_CODE_REFER_SAFE_SPACE: 'Refer: safe space',
  OUTCOME_CODE_ADVICE_ONLY: 'Advice only',
  OUTCOME_CODE_NO_POLICE_ATTENDANCE: 'No police attendance',
  OUTCOME_CODE_NO_FURTHER_POLICE_ACTION: 'No further police action',
  OUTCOME_CODE_ARREST_CRIMINAL_MATTER: 'Arrest: criminal matter',
  OUTCOME_CODE_AWOL_RETURN: 'AWOL return',
  OUTCOME_CODE_NOT_KNOWN_TO_SERVICES: 'Not known to services',
};

export const PLACE_OF_SAFETY = {
  PLACE_OF_SAFETY_HEALTH_BASED: 'Health-based place of safety (s136 suite)',
  PLACE_OF_SAFETY_EMERGENCY_DEPARTMENT: 'Emergency department',
  PLACE_OF_SAFETY_POLICE_STATION: 'Police station',
  PLACE_OF_SAFETY_OTHER: 'Other',
};

export const PRAC_STATE = {
  PRACTITIONER_STATE_OFF_SHIFT: { label: 'Off shift', icon: '–' },
  PRACTITIONER_STATE_AVAILABLE: { label: 'Available', icon: '●' },
  PRACTITIONER_STATE_BUSY: { label: 'Busy', icon: '◆' },
  PRACTITIONER_STATE_PAUSED: { label: 'Paused', icon: 'Ⅱ' },
  PRACTITIONER_STATE_WRAP_UP: { label: 'Wrap-up', icon: '↻' },
  PRACTITIONER_STATE_DISCONNECTED: { label: 'Disconnected', icon: '⚠' },
};

export const ROLE = {
  ROLE_OPERATOR: 'Operator',
  ROLE_DISPATCHER: 'Dispatcher',
  ROLE_PRACTITIONER: 'Practitioner',
  ROLE_SUPERVISOR: 'Supervisor',
};

export const NOTICE = {
  NOTICE_KIND_NOBODY_ON_SHIFT: 'Nobody on shift can take it now: it stays queued',
  NOTICE_KIND_OFFER_WITHDRAWN: 'Offer withdrawn',
  NOTICE_KIND_SLA_WARNING: 'Service level about to be breached',
  NOTICE_KIND_SLA_BREACHED: 'Service level breached',
  NOTICE_KIND_AUTO_PAUSED: 'Practitioner auto-paused',
  NOTICE_KIND_HOLDER_DISCONNECTED: 'Practitioner disconnected',
  NOTICE_KIND_RESUME_GAP: 'Some events were missed: reloaded',
};

export function num(v) {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

// "1:05", "12:30", "1:02:03" -- minutes and seconds, hours when needed.
export function duration(ms) {
  if (!Number.isFinite(ms)) return '–';
  const neg = ms < 0;
  let s = Math.floor(Math.abs(ms) / 1000);
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const pad = (x) => String(x).padStart(2, '0');
  const txt = h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
  return neg ? '-' + txt : txt;
}

// Spoken-friendly duration for screen readers: "2 min 5 s".
export function durationWords(ms) {
  if (!Number.isFinite(ms)) return 'unknown';
  let s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const parts = [];
  if (h) parts.push(`${h} h`);
  if (m || h) parts.push(`${m} min`);
  parts.push(`${s} s`);
  return parts.join(' ');
}

export function clock(ms) {
  const v = num(ms);
  if (!v) return '';
  const d = new Date(v);
  const pad = (x) => String(x).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function dateTime(ms) {
  const v = num(ms);
  if (!v) return '';
  const d = new Date(v);
  return d.toLocaleDateString('en-GB') + ' ' + clock(v);
}

export function nhsFormat(n) {
  const d = String(n || '').replace(/\s+/g, '');
  return /^\d{10}$/.test(d) ? `${d.slice(0, 3)} ${d.slice(3, 6)} ${d.slice(6)}` : d;
}

// 10 digits; check digit = 11 - (sum of digits 1..9 weighted 10..2 mod 11); 11 -> 0; 10 -> invalid.
export function nhsValid(n) {
  const d = String(n || '').replace(/\s+/g, '');
  if (!/^\d{10}$/.test(d)) return false;
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(d[i]) * (10 - i);
  let check = 11 - (sum % 11);
  if (check === 11) check = 0;
  if (check === 10) return false;
  return check === Number(d[9]);
}

// h('tr', {class: 'x', dataset: {id: 1}, onclick: fn}, child, 'text', [children])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  appendAll(el, children);
  return el;
}

function appendAll(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) appendAll(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// A random id usable outside secure contexts too (crypto.randomUUID needs one).
export function randomId(prefix = '') {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return prefix + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
