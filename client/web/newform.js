// newform.js -- raising an incident query: the form follows IncidentDetails
// (hub.proto). It is checked before sending, with each message next to its
// field (aria-describedby); the hub's own refusals ("details.police_ref is
// required") land next to the same field.

import { h, nhsValid, randomId } from './format.js';
import { S, upsertIncident } from './store.js';
import { conn, go, render, toast } from './app.js';

const $ = (id) => document.getElementById(id);

// Proto field path (snake_case, from the hub) -> the input that holds it.
const FIELD_INPUT = {
  'details.police_ref': 'f-police-ref',
  'details.priority': 'f-priority',
  'details.borough': 'f-borough',
  'details.place': 'f-place',
  'details.question': 'f-question',
  'details.concerns': 'f-concerns',
  'details.flags': 'f-flags',
  'details.callsigns': 'f-callsigns',
  'details.rcrp': 'f-rcrp',
  'details.rcrp_reason': 'f-rcrp-reason',
  'details.person.family_name': 'f-family',
  'details.person.given_names': 'f-given',
  'details.person.date_of_birth': 'f-dob',
  'details.person.age_years': 'f-age',
  'details.person.address': 'f-address',
  'details.person.postcode': 'f-postcode',
  'details.person.nhs_number': 'f-nhs',
};
const ALL_INPUTS = [...new Set(Object.values(FIELD_INPUT))];

let idemKey = randomId('raise-');
let sending = false;

export function fillBoroughs(list) {
  const sel = $('f-borough');
  const keep = sel.value;
  sel.replaceChildren(h('option', { value: '' }, 'Choose…'), ...list.map((b) => h('option', { value: b }, b)));
  sel.value = keep;
}

export function openNewForm() {
  if (!S.user) return;
  const dlg = $('dlg-new');
  if (!dlg.open) dlg.showModal();
  // Keep a half-typed draft (an Esc at 4 a.m. must not lose it); start at the first empty required field.
  const first = ['f-police-ref', 'f-priority', 'f-borough'].map($).find((el) => !el.value) || $('f-police-ref');
  first.focus();
}

function setErr(inputId, text) {
  const err = $(`${inputId}-err`);
  if (err) err.textContent = text ? `⚠ ${text}` : '';
  const el = $(inputId);
  if (!el) return;
  if (inputId === 'f-rcrp') {
    for (const r of el.querySelectorAll('input')) r.setAttribute('aria-invalid', text ? 'true' : 'false');
  } else el.setAttribute('aria-invalid', text ? 'true' : 'false');
  el.closest('.field, fieldset')?.classList.toggle('has-err', !!text);
}

function clearAll() {
  for (const id of ALL_INPUTS) setErr(id, '');
  $('new-formerr').textContent = '';
}

function val(id) {
  return $(id).value.trim();
}

// The wire message from the form; undefined fields are left out.
function readDetails() {
  const person = {
    familyName: val('f-family'),
    givenNames: val('f-given'),
    dateOfBirth: val('f-dob'),
    ageYears: val('f-age') === '' ? 0 : Number(val('f-age')),
    address: val('f-address'),
    postcode: val('f-postcode').toUpperCase(),
    nhsNumber: val('f-nhs').replace(/[\s-]/g, ''),
  };
  for (const k of Object.keys(person)) if (person[k] === '' || person[k] === 0) delete person[k];
  const rcrp = document.querySelector('input[name="rcrp"]:checked');
  const d = {
    policeRef: val('f-police-ref'),
    priority: $('f-priority').value,
    borough: $('f-borough').value,
    place: val('f-place'),
    person,
    concerns: val('f-concerns'),
    flags: [...document.querySelectorAll('input[name="flag"]:checked')].map((c) => c.value),
    question: val('f-question'),
    callsigns: val('f-callsigns')
      .split(/[\s,;]+/)
      .map((s) => s.trim().toUpperCase())
      .filter(Boolean),
    rcrp: rcrp ? rcrp.value : '',
    rcrpReason: val('f-rcrp-reason'),
  };
  for (const k of Object.keys(d)) if (d[k] === '' || (Array.isArray(d[k]) && !d[k].length)) delete d[k];
  if (!Object.keys(person).length) delete d.person;
  return d;
}

const POSTCODE = /^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$/i;

// Returns [[inputId, message], ...] in form order.
function validate(d) {
  const errs = [];
  if (!d.policeRef) errs.push(['f-police-ref', 'Enter the police log reference.']);
  else if (d.policeRef.length > 64) errs.push(['f-police-ref', 'The police log reference is at most 64 characters.']);
  if (!d.priority) errs.push(['f-priority', 'Choose the priority (call grade).']);
  if (!d.borough) errs.push(['f-borough', 'Choose the borough.']);
  if (d.callsigns && d.callsigns.length > 16) errs.push(['f-callsigns', 'At most 16 callsigns.']);
  else if (d.callsigns && d.callsigns.some((c) => c.length > 32)) errs.push(['f-callsigns', 'A callsign is at most 32 characters.']);
  const p = d.person || {};
  if (p.nhsNumber && !/^\d{10}$/.test(p.nhsNumber)) errs.push(['f-nhs', 'An NHS number is 10 digits, e.g. 943 476 5919.']);
  else if (p.nhsNumber && !nhsValid(p.nhsNumber)) errs.push(['f-nhs', 'This NHS number fails its check digit: check it with the caller.']);
  if (p.dateOfBirth) {
    const t = Date.parse(p.dateOfBirth + 'T00:00:00Z');
    if (!/^\d{4}-\d{2}-\d{2}$/.test(p.dateOfBirth) || Number.isNaN(t)) errs.push(['f-dob', 'Enter the date of birth as a date.']);
    else if (t > Date.now()) errs.push(['f-dob', 'The date of birth is in the future.']);
    else if (t < Date.parse('1890-01-01')) errs.push(['f-dob', 'The date of birth is too far back.']);
  }
  const ageRaw = val('f-age');
  if (ageRaw !== '' && (!/^\d{1,3}$/.test(ageRaw) || Number(ageRaw) > 130)) errs.push(['f-age', 'Age is a whole number of years, 0 to 130.']);
  if (p.postcode && !POSTCODE.test(p.postcode)) errs.push(['f-postcode', 'That does not look like a UK postcode (e.g. M1 1AA). Leave it empty if unsure.']);
  if (!d.question) errs.push(['f-question', 'Write the question the officers want answered.']);
  if (!d.rcrp) errs.push(['f-rcrp', 'Record the Right Care, Right Person decision.']);
  else if (d.rcrp !== 'RCRP_DECISION_UNDER_REVIEW' && !d.rcrpReason) errs.push(['f-rcrp-reason', 'Give the reason for this decision.']);
  return errs;
}

function focusField(id) {
  const el = id === 'f-rcrp' ? $('f-rcrp').querySelector('input') : id === 'f-flags' ? document.querySelector('input[name="flag"]') : $(id);
  if (el) el.focus();
}

// "details.person.nhs_number must be ..." or field "details.person.nhs_number" / "details.person.nhsNumber".
export function fieldOfError(err) {
  const norm = (s) =>
    String(s || '')
      .replace(/\[\d+\]/g, '')
      .replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
  let f = norm(err.field);
  if (f && !f.startsWith('details.') && FIELD_INPUT['details.' + f]) f = 'details.' + f;
  if (FIELD_INPUT[f]) return FIELD_INPUT[f];
  const m = /^(details(?:\.[a-z_]+)+)/.exec(norm(err.message));
  if (m) {
    let path = m[1];
    while (path && !FIELD_INPUT[path]) path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    if (path) return FIELD_INPUT[path];
  }
  return null;
}

async function submit() {
  if (sending) return;
  clearAll();
  const d = readDetails();
  const errs = validate(d);
  if (errs.length) {
    for (const [id, msg] of errs) setErr(id, msg);
    $('new-formerr').textContent = `${errs.length} field${errs.length > 1 ? 's need' : ' needs'} attention.`;
    focusField(errs[0][0]);
    return;
  }
  sending = true;
  $('new-submit').disabled = true;
  try {
    const r = await conn.request('raiseIncident', { details: d, idempotencyKey: idemKey });
    idemKey = randomId('raise-'); // the next incident is a new one
    const inc = r.incident;
    if (inc) upsertIncident(inc);
    $('new-form').reset();
    $('dlg-new').close();
    toast({ kind: 'info', incidentId: inc ? String(inc.id) : null, text: `Query raised for ${d.policeRef}.` });
    if (inc) go(`#/incident/${inc.id}`);
    else render();
  } catch (e) {
    if (e.disconnected) {
      // Same idempotency key next time: if it did reach the hub, it is not raised twice.
      $('new-formerr').textContent = '⚠ Not sent: the connection to the hub is down. Your entries are kept; press Raise again when it is back.';
    } else {
      const field = fieldOfError(e);
      if (field) {
        setErr(field, e.message);
        $('new-formerr').textContent = 'The hub refused the query: see the marked field.';
        focusField(field);
      } else {
        $('new-formerr').textContent = `⚠ The hub refused the query: ${e.message}`;
      }
    }
  } finally {
    sending = false;
    $('new-submit').disabled = false;
  }
}

export function initNewForm() {
  const form = $('new-form');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      submit();
    }
  });
  // Clear a field's message as soon as it is corrected.
  form.addEventListener('input', (e) => {
    const t = e.target;
    const id = t.name === 'rcrp' ? 'f-rcrp' : t.name === 'flag' ? 'f-flags' : t.id;
    if (id && $(`${id}-err`) && $(`${id}-err`).textContent) setErr(id, '');
  });
  // Age or date of birth under 18 suggests the flag (camhs routing depends on it).
  const syncU18 = () => {
    const dob = val('f-dob');
    const age = val('f-age');
    let child = false;
    if (age !== '' && Number(age) < 18) child = true;
    if (dob) {
      const t = new Date(dob + 'T00:00:00Z');
      const limit = new Date();
      limit.setUTCFullYear(limit.getUTCFullYear() - 18);
      if (t > limit) child = true;
    }
    if (child) $('f-flag-u18').checked = true;
  };
  $('f-dob').addEventListener('change', syncU18);
  $('f-age').addEventListener('change', syncU18);
}
