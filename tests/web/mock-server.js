// A stand-in for the gateway's web server, for working on the page quickly: serves web/static/ and a
// fake of the JSON API of issue 13 (same paths, codes, headers and fields), with a pretend home whose
// readings change every few hundred milliseconds. Not a test of the server: the ctest web/page runs
// the page against the real gateway.
//   node tests/web/mock-server.js [port]     prints "mock listening on http://127.0.0.1:PORT" and the code
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const STATIC = path.join(__dirname, '..', '..', 'web', 'static');
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8' };
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function createMock(opts = {}) {
  const state = {
    setupCode: opts.setupCode || '1234-5678-9012-3456',
    password: null,
    sessions: new Map(), // token -> csrf
    failures: 0,
    lockedUntil: 0,
    clients: new Set(),
    alertSeq: 100,
    tick: 0,
    ackDelayMs: opts.ackDelayMs === undefined ? 300 : opts.ackDelayMs,
    statusRequests: 0,
  };
  const started = Date.now();

  function status() {
    const t = state.tick;
    return {
      state: 'online', gateway: 'home-0042', version: '0.1.0', time: new Date().toISOString(),
      backlog: 3 + (t % 5), backlog_by_lane: { alerts: 0, events: 1, telemetry: 2 + (t % 5) }, dropped: 0,
      skipped: 0, refused: 0, too_large: 0, last_seq: 4711 + t, epoch: 1579667937112004,
      store: { ok: true, failed_commits: 0, in_memory: 0, alerts_in_memory: 0 },
      uptime_s: Math.floor((Date.now() - started) / 1000),
      uplink: { connected: true, last_puback: new Date(Date.now() - 200).toISOString() },
      clock: { synchronized: true },
      disk: { used_bytes: 2621440 + 4096 * t, total_bytes: 15032385536, free_bytes: 9663676416 },
      web: { fingerprint: 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89' },
      sensors: {
        oximeter: { last_seen: new Date().toISOString(), rssi: -61 - (t % 7), connected: true, battery: 87,
          last_value: { metric: 'spo2', value: 95 + (t % 3) }, frames: 10 + t, rejected: 0 },
        'bp-cuff': { last_seen: null, connected: false, frames: 0, rejected: 0 },
        'motion-kitchen': { last_seen: new Date(Date.now() - 60000).toISOString(), rssi: -74, connected: false,
          battery: 64, last_value: { event: 'motion', value: 1 }, frames: 40, rejected: 1 },
      },
      inputs: { 'bed-mat': { state: t % 2 }, 'front-door': { state: 0 }, dispenser: { error: 'line busy' } },
      open_alerts: [{ alert_id: 'home-0042-a-17', kind: 'missed_dose', severity: 'warning',
        raised_at: new Date(Date.now() - 3600000).toISOString(), sensor: 'dispenser' }],
    };
  }

  function push() {
    const data = 'event: status\ndata: ' + JSON.stringify(status()) + '\n\n';
    for (const res of state.clients) res.write(data);
  }
  const timer = setInterval(() => { state.tick++; push(); }, opts.tickMs || 400);

  function send(res, code, body, headers = {}) {
    const h = { 'Cache-Control': 'no-store', ...headers };
    if (body !== undefined && body !== null) {
      h['Content-Type'] = 'application/json';
      res.writeHead(code, h);
      res.end(JSON.stringify(body));
    } else {
      res.writeHead(code, h);
      res.end();
    }
  }

  function cookieToken(req) {
    const m = /(?:^|;\s*)hcgw_session=([A-Za-z0-9_-]+)/.exec(req.headers.cookie || '');
    return m && state.sessions.has(m[1]) ? m[1] : null;
  }

  function newSession(res) {
    const token = crypto.randomBytes(32).toString('base64url');
    const csrf = crypto.randomBytes(32).toString('base64url');
    state.sessions.set(token, csrf);
    send(res, 200, { csrf_token: csrf },
      { 'Set-Cookie': 'hcgw_session=' + token + '; HttpOnly; SameSite=Strict; Path=/' });
  }

  function lockedOut(res) {
    const left = state.lockedUntil - Date.now();
    if (left <= 0) return false;
    send(res, 429, { error: 'too many failed tries' }, { 'Retry-After': String(Math.ceil(left / 1000)) });
    return true;
  }

  function failed() {
    state.failures++;
    if (state.failures >= 5) state.lockedUntil = Date.now() + 1000 * 2 ** Math.min(state.failures - 5, 8);
  }

  async function body(req) {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const text = Buffer.concat(chunks).toString();
    if ((req.headers['content-type'] || '').split(';')[0].trim() !== 'application/json') return { code: 415 };
    try { return { json: JSON.parse(text || '{}') }; } catch (e) { return { code: 400 }; }
  }

  async function handleApi(req, res, p) {
    const session = cookieToken(req);
    const changing = req.method === 'POST';
    if (p === '/api/setup' && req.method === 'GET') return send(res, 200, { needed: state.password === null });
    if (p === '/api/setup' && changing) {
      if (state.password !== null) return send(res, 409, { error: 'a password is set' });
      if (lockedOut(res)) return;
      const b = await body(req);
      if (b.code) return send(res, b.code, { error: 'bad body' });
      if (String(b.json.setup_code).replace(/\D/g, '') !== state.setupCode.replace(/\D/g, '')) {
        failed();
        return send(res, 403, { error: 'wrong setup code' });
      }
      if (typeof b.json.password !== 'string' || b.json.password.length < 10)
        return send(res, 400, { error: 'password: at least 10 characters' });
      state.password = b.json.password;
      state.failures = 0;
      return newSession(res);
    }
    if (p === '/api/login' && changing) {
      if (lockedOut(res)) return;
      const b = await body(req);
      if (b.code) return send(res, b.code, { error: 'bad body' });
      if (state.password === null || b.json.password !== state.password) {
        failed();
        if (state.lockedUntil > Date.now()) return lockedOut(res);
        return send(res, 401, { error: 'wrong password' });
      }
      state.failures = 0;
      state.lockedUntil = 0;
      return newSession(res);
    }
    if (!session) return send(res, 401, { error: 'no session' });
    if (changing && req.headers['x-csrf-token'] !== state.sessions.get(session))
      return send(res, 403, { error: 'missing or wrong CSRF token' });
    if (p === '/api/logout' && changing) {
      state.sessions.delete(session);
      for (const c of state.clients) c.end();
      return send(res, 204, null, { 'Set-Cookie': 'hcgw_session=; Max-Age=0; Path=/' });
    }
    if (p === '/api/status' && req.method === 'GET') {
      state.statusRequests++;
      return send(res, 200, status());
    }
    if (p === '/api/events' && req.method === 'GET') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
      res.write('event: status\ndata: ' + JSON.stringify(status()) + '\n\n');
      state.clients.add(res);
      req.on('close', () => state.clients.delete(res));
      return undefined;
    }
    if (p === '/api/test-alarm' && changing) {
      const b = await body(req);
      if (b.code) return send(res, b.code, { error: 'bad body' });
      const id = 'home-0042-a-' + ++state.alertSeq;
      if (state.ackDelayMs < 0) return setTimeout(() => send(res, 200, { alert_id: id, acked: false }), 1000);
      return setTimeout(() => send(res, 200, { alert_id: id, acked: true, acked_at: new Date().toISOString() }),
        state.ackDelayMs);
    }
    return send(res, 404, { error: 'no such path' });
  }

  const server = http.createServer((req, res) => {
    res.setHeader('Content-Security-Policy', CSP);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    const p = new URL(req.url, 'http://x').pathname;
    if (p.startsWith('/api/')) {
      handleApi(req, res, p).catch((e) => { console.error(e); send(res, 500, { error: 'mock failed' }); });
      return;
    }
    const name = p === '/' ? 'index.html' : p.slice(1);
    if (req.method !== 'GET' || !/^[A-Za-z0-9._-]+$/.test(name) || !TYPES[path.extname(name)]) {
      res.writeHead(404);
      res.end();
      return;
    }
    fs.readFile(path.join(STATIC, name), (err, data) => {
      if (err) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(name)] });
      res.end(data);
    });
  });

  return {
    state,
    listen(port = 0) {
      return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server.address().port)));
    },
    close() {
      clearInterval(timer);
      for (const c of state.clients) c.destroy();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

module.exports = { createMock };

if (require.main === module) {
  const mock = createMock();
  mock.listen(Number(process.argv[2]) || 0).then((port) => {
    console.log('mock listening on http://127.0.0.1:' + port + '  setup code ' + mock.state.setupCode);
  });
}
