// conn.js -- the console's one WebSocket to the hub (subprotocol
// mhtas.v1.json, envelopes of proto/mhtas/v1/ws.proto).
//
//  * auth first; a refused token (code 16) stops reconnecting and signs out;
//  * request(field, body) -> Promise of the reply body (same requestId and
//    field), rejected with a HubError {code, message, field};
//  * events are handed on in seq order, each once: seq <= the last one seen
//    is dropped (a replay after a reconnect may repeat what we had);
//  * reconnects with back-off (0.5 s doubling to 15 s, with jitter) and
//    resumes with subscribe {afterSeq: last seen}.

export const GRPC = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
};

export class HubError extends Error {
  constructor(err) {
    super((err && err.message) || 'request failed');
    this.code = (err && err.code) || 2;
    this.field = (err && err.field) || '';
  }
}

export class Disconnected extends Error {
  constructor() {
    super('not connected to the hub');
    this.code = GRPC.UNAVAILABLE;
    this.disconnected = true;
  }
}

const REQUEST_TIMEOUT_MS = 15000;

export class Connection {
  /**
   * handlers: onState({state, attempt, retryInMs, detail}),
   *   onAuth(authReply, {resumed}) -> Promise (the app loads what it needs;
   *   the subscription starts after it resolves),
   *   onEvent(event, receivedAt), onAuthFailed(message), onSubscribed().
   */
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.token = null;
    this.nextId = 1;
    this.pending = new Map();
    this.lastSeq = 0n;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.ready = false; // authenticated and subscribed
    this.state = 'offline';
  }

  start(token) {
    this.token = token;
    this.stopped = false;
    this.attempt = 0;
    this.lastSeq = 0n;
    this._open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ready = false;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000, 'signed out');
      } catch {
        /* ignore */
      }
    }
    this._failPending();
    this._setState('offline', { detail: 'Signed out' });
  }

  // For tests and the "Reconnect now" button.
  reconnectNow() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.ws) {
      try {
        this.ws.close(4000, 'reconnect');
      } catch {
        /* ignore */
      }
    } else this._open();
  }

  // Tests: drop the socket as a network failure would, and stay offline for holdMs.
  simulateDrop(holdMs = 0) {
    this.holdUntil = Date.now() + holdMs;
    if (this.ws) this.ws.close(4000, 'simulated network loss');
  }

  get isReady() {
    return this.ready && this.ws && this.ws.readyState === WebSocket.OPEN;
  }

  _setState(state, extra = {}) {
    this.state = state;
    this.h.onState({ state, attempt: this.attempt, ...extra });
  }

  _open() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.ready = false;
    this._setState(this.attempt ? 'reconnecting' : 'connecting', { detail: 'Connecting…' });
    let ws;
    try {
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`, 'mhtas.v1.json');
    } catch (e) {
      this._scheduleRetry(String(e && e.message));
      return;
    }
    this.ws = ws;
    ws.onopen = () => this._onOpen(ws);
    ws.onmessage = (m) => this._onMessage(ws, m);
    ws.onclose = (c) => this._onClose(ws, c);
    ws.onerror = () => {
      /* onclose follows */
    };
  }

  async _onOpen(ws) {
    if (ws !== this.ws) return;
    if (ws.protocol !== 'mhtas.v1.json') {
      ws.close(4001, 'subprotocol');
      return;
    }
    let auth;
    try {
      auth = await this._send('auth', { token: this.token }, ws);
    } catch (e) {
      if (e.code === GRPC.UNAUTHENTICATED || e.code === GRPC.PERMISSION_DENIED) {
        this.stopped = true;
        this._setState('offline', { detail: 'Sign-in refused' });
        this.h.onAuthFailed(e.message || 'The token was not accepted');
      }
      return; // the close that follows schedules the retry
    }
    if (ws !== this.ws) return;
    const hubSeq = BigInt(auth.lastSeq || '0');
    // A hub whose sequence is behind ours restarted without its history:
    // start again from its picture rather than wait for events that will never come.
    let resumed = this.lastSeq > 0n && hubSeq >= this.lastSeq;
    this.lastConnect = { hubSeq: String(hubSeq), ourSeq: String(this.lastSeq), resumed };
    try {
      // Without a position (first connect, or a reload), the app loads the
      // current picture; events start right after the auth reply's lastSeq,
      // so nothing that happens while it loads is lost.
      if (!resumed) this.lastSeq = hubSeq;
      await this.h.onAuth(auth, { resumed });
      if (ws !== this.ws) return;
      try {
        await this._send('subscribe', { afterSeq: this.lastSeq.toString() }, ws);
      } catch (e) {
        if (!resumed || e.disconnected) throw e;
        // The hub would not resume from our position: load afresh.
        resumed = false;
        this.lastSeq = hubSeq;
        await this.h.onAuth(auth, { resumed: false });
        if (ws !== this.ws) return;
        await this._send('subscribe', { afterSeq: this.lastSeq.toString() }, ws);
      }
    } catch (e) {
      if (e.disconnected) return;
      this.h.onError && this.h.onError(e);
      try {
        ws.close(4002, 'setup failed');
      } catch {
        /* ignore */
      }
      return;
    }
    if (ws !== this.ws) return;
    this.attempt = 0;
    this.ready = true;
    this._setState('online', { detail: 'Connected' });
    this.h.onSubscribed && this.h.onSubscribed({ resumed });
  }

  _onMessage(ws, m) {
    if (ws !== this.ws) return;
    const receivedAt = performance.now();
    let f;
    try {
      f = JSON.parse(m.data);
    } catch {
      console.warn('mhtas: undecodable frame', m.data);
      return;
    }
    if (f.event) {
      const seq = BigInt(f.event.seq || '0');
      if (seq && seq <= this.lastSeq) return; // seen already (replay overlap)
      if (seq) this.lastSeq = seq;
      this.h.onEvent(f.event, receivedAt);
      return;
    }
    const p = f.requestId !== undefined ? this.pending.get(String(f.requestId)) : undefined;
    if (!p) {
      if (f.error) this.h.onError && this.h.onError(new HubError(f.error));
      return;
    }
    this.pending.delete(String(f.requestId));
    clearTimeout(p.timer);
    if (f.error && f.error.code) p.reject(new HubError(f.error));
    else p.resolve(f[p.field] || {});
  }

  _onClose(ws, c) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.ready = false;
    this._failPending();
    if (this.stopped) return;
    this._scheduleRetry(c && c.code ? `closed (${c.code}${c.reason ? ' ' + c.reason : ''})` : 'closed');
  }

  _scheduleRetry(why) {
    this.attempt += 1;
    const base = Math.min(15000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = Math.max(Math.round(base * (0.75 + Math.random() * 0.5)), (this.holdUntil || 0) - Date.now());
    const until = Date.now() + delay;
    this._setState('reconnecting', { retryAt: until, detail: why });
    this.timer = setTimeout(() => this._open(), delay);
  }

  _failPending() {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Disconnected());
    }
    this.pending.clear();
  }

  _send(field, body, ws = this.ws) {
    return new Promise((resolve, reject) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) {
        reject(new Disconnected());
        return;
      }
      const requestId = String(this.nextId++);
      const timer = setTimeout(() => {
        if (this.pending.delete(requestId)) reject(new HubError({ code: 4, message: `no answer to ${field} in time` }));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(requestId, { field, resolve, reject, timer });
      ws.send(JSON.stringify({ requestId, [field]: body }));
    });
  }

  // A request on the live, authenticated socket.
  request(field, body = {}) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return Promise.reject(new Disconnected());
    return this._send(field, body);
  }
}
