// The technician's page: setup, login, the live status, the test alarm, logout.
// Plain script, no framework; everything goes through the JSON API under /api/ (docs/web-page.md).
// Text from the gateway is only ever set with textContent, never parsed as HTML.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const CSRF_KEY = 'homecare-gw.csrf';
  const SCREENS = ['loading', 'setup', 'login', 'status'];

  let csrf = sessionStorage.getItem(CSRF_KEY) || '';
  let events = null;          // the EventSource while the status page is shown
  let reopenDelay = 1000;     // back-off for reopening it after a close that was not a logout
  let reopenTimer = null;
  const countdowns = {};      // per form: the timer of a lockout count-down

  // ---- the API ----

  // timeoutMs: give up on an answer that does not come (the gateway promises one within 10 s even for
  // the test alarm); status 0 then, as for a network error.
  async function api(method, path, body, timeoutMs = 20000) {
    const headers = { Accept: 'application/json' };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs) };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
    let res, text;
    try {
      res = await fetch(path, init);
      text = await res.text();
    } catch (e) {
      return { status: 0, data: null, retryAfter: null };
    }
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    return { status: res.status, data, retryAfter: res.headers.get('Retry-After') };
  }

  function errorText(r, fallback) {
    if (r.status === 0) return 'The gateway does not answer. Check the network and try again.';
    const d = r.data;
    const msg = d && typeof d === 'object' && (d.error || d.message);
    return typeof msg === 'string' && msg ? fallback + ' (' + msg + ')' : fallback;
  }

  function setCsrf(token) {
    csrf = typeof token === 'string' ? token : '';
    if (csrf) sessionStorage.setItem(CSRF_KEY, csrf);
    else sessionStorage.removeItem(CSRF_KEY);
  }

  // ---- screens ----

  function show(name) {
    for (const s of SCREENS) $(s).hidden = s !== name;
    $('logout').hidden = name !== 'status';
    const focus = { setup: 'setup-code', login: 'login-password' }[name];
    if (focus) $(focus).focus();
  }

  async function start() {
    const setup = await api('GET', '/api/setup');
    showFooter(setup.data);
    if (setup.status === 200 && setup.data && setup.data.needed === true) {
      show('setup');
      return;
    }
    await enterStatus('');
  }

  // Shows the status page if the session is valid, else the login with a note.
  async function enterStatus(note) {
    const r = await api('GET', '/api/status');
    if (r.status === 200 && r.data) {
      render(r.data);
      show('status');
      openEvents();
      return;
    }
    stopEvents();
    if (r.status === 401 || r.status === 403) {
      showLogin(note);
    } else {
      showLogin(errorText(r, 'The status could not be read.'));
    }
  }

  function showLogin(note) {
    setCsrf('');
    $('login-error').textContent = note || '';
    $('login-password').value = '';
    show('login');
  }

  // ---- setup and login ----

  // A 429: the form's button stays disabled until Retry-After has passed, with a count-down.
  function lockOut(form, button, errorEl, retryAfter) {
    let left = parseInt(retryAfter, 10);
    if (!(left > 0)) left = 1;
    clearInterval(countdowns[form]);
    const tick = () => {
      if (left <= 0) {
        clearInterval(countdowns[form]);
        button.disabled = false;
        errorEl.textContent = 'You can try again now.';
        return;
      }
      errorEl.textContent = 'Too many failed tries. Try again in ' + duration(left) + '.';
      left -= 1;
    };
    button.disabled = true;
    tick();
    countdowns[form] = setInterval(tick, 1000);
  }

  $('setup-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const code = $('setup-code').value.trim();
    const pw = $('setup-password').value;
    const err = $('setup-error');
    if (!code) return fieldError(err, $('setup-code'), 'Enter the setup code.');
    if (pw.length < 10) return fieldError(err, $('setup-password'), 'The password needs at least 10 characters.');
    if (pw !== $('setup-password2').value) return fieldError(err, $('setup-password2'), 'The two passwords differ.');
    const button = $('setup-submit');
    button.disabled = true;
    err.textContent = '';
    const r = await api('POST', '/api/setup', { setup_code: code, password: pw });
    button.disabled = false;
    if (r.status === 200) {
      setCsrf(r.data && r.data.csrf_token);
      $('setup-form').reset();
      await enterStatus('');
    } else if (r.status === 403) {
      fieldError(err, $('setup-code'), 'That setup code is not right.');
    } else if (r.status === 409) {
      showLogin('A password is already set: log in with it.');
    } else if (r.status === 429) {
      lockOut('setup', button, err, r.retryAfter);
    } else {
      err.textContent = errorText(r, 'The password could not be set.');
    }
  });

  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const input = $('login-password');
    const err = $('login-error');
    if (!input.value) return fieldError(err, input, 'Enter the password.');
    const button = $('login-submit');
    button.disabled = true;
    err.textContent = '';
    const r = await api('POST', '/api/login', { password: input.value });
    button.disabled = false;
    input.value = '';
    if (r.status === 200) {
      setCsrf(r.data && r.data.csrf_token);
      await enterStatus('');
    } else if (r.status === 401) {
      fieldError(err, input, 'Wrong password.');
    } else if (r.status === 429) {
      lockOut('login', button, err, r.retryAfter);
    } else {
      err.textContent = errorText(r, 'Logging in failed.');
    }
  });

  function fieldError(errEl, input, text) {
    errEl.textContent = text;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    input.addEventListener('input', () => input.removeAttribute('aria-invalid'), { once: true });
  }

  $('logout').addEventListener('click', async () => {
    stopEvents();
    await api('POST', '/api/logout');
    showLogin('Logged out.');
  });

  // ---- live updates: pushed by the gateway, no polling ----

  function openEvents() {
    if (events) return;
    clearTimeout(reopenTimer);
    setLive('wait', 'Connecting…');
    const es = new EventSource('/api/events');
    events = es;
    es.addEventListener('open', () => {
      reopenDelay = 1000;
      setLive('ok', 'Live');
    });
    es.addEventListener('status', (ev) => {
      let s = null;
      try { s = JSON.parse(ev.data); } catch (e) { s = null; }
      if (s && typeof s === 'object' && Object.keys(s).length) render(s);
      else refresh(); // a bare "something changed"
    });
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) {
        // Refused (a 401 after the session ended, or the page restarting): ask why, then maybe again.
        events = null;
        setLive('bad', 'Live updates stopped.');
        reopenTimer = setTimeout(async () => {
          reopenDelay = Math.min(reopenDelay * 2, 30000);
          await enterStatus('Your session ended. Log in again.');
        }, reopenDelay);
      } else {
        setLive('wait', 'Connection lost, reconnecting…');
      }
    });
  }

  function stopEvents() {
    clearTimeout(reopenTimer);
    if (events) events.close();
    events = null;
  }

  async function refresh() {
    const r = await api('GET', '/api/status');
    if (r.status === 200 && r.data) render(r.data);
    else if (r.status === 401) { stopEvents(); showLogin('Your session ended. Log in again.'); }
  }

  function setLive(kind, text) {
    $('live-dot').className = 'dot ' + kind;
    $('live-text').textContent = text;
  }

  // ---- the test alarm ----

  $('test-alarm').addEventListener('click', async () => {
    const button = $('test-alarm');
    const out = $('test-result');
    button.disabled = true;
    out.className = 'result';
    out.textContent = 'Sent; waiting for the broker to acknowledge (up to 10 s)…';
    const r = await api('POST', '/api/test-alarm', { message: "Test alarm from the technician's page" });
    button.disabled = false;
    const d = r.data || {};
    if (r.status === 200 && d.acked === true) {
      out.className = 'result ok';
      out.textContent = 'Acknowledged by the broker at ' + timeText(d.acked_at) + ' (alert ' + d.alert_id + ').';
    } else if (r.status === 200) {
      out.className = 'result bad';
      out.textContent = 'Alert ' + d.alert_id + ' was raised, but the broker has not acknowledged it within 10 s. ' +
        'Check the uplink; it will be sent when the broker is back.';
    } else if (r.status === 401 || r.status === 403) {
      stopEvents();
      showLogin('Your session ended. Log in again.');
    } else if (r.status === 429) {
      out.className = 'result bad';
      out.textContent = 'Too many test alarms. Try again' +
        (r.retryAfter ? ' in ' + duration(parseInt(r.retryAfter, 10) || 1) : ' later') + '.';
    } else {
      out.className = 'result bad';
      out.textContent = errorText(r, 'The test alarm could not be sent.');
    }
  });

  // ---- rendering ----

  // The first of these fields (dotted paths) that the status has: the page reads the gateway's status
  // object as docs/web-page.md lists it, and tolerates fields that are missing.
  function pick(obj, ...paths) {
    for (const p of paths) {
      let v = obj;
      for (const k of p.split('.')) v = v !== null && typeof v === 'object' ? v[k] : undefined;
      if (v !== undefined && v !== null) return v;
    }
    return undefined;
  }

  function text(id, value) {
    $(id).textContent = value === undefined || value === null || value === '' ? '–' : String(value);
  }

  function badge(id, kind, label) {
    const el = $(id);
    el.className = 'badge ' + kind;
    el.textContent = label;
  }

  function render(s) {
    text('gateway-id', s.gateway);
    showFooter(s);

    // Uplink
    const connected = pick(s, 'uplink.connected', 'connected');
    const online = connected !== undefined ? connected === true : s.state === 'online';
    badge('uplink-state', online ? 'ok' : 'bad', online ? 'Connected' : 'Not connected');
    text('uplink-puback', timeText(pick(s, 'uplink.last_puback', 'last_puback')) || 'none yet');
    const lanes = s.backlog_by_lane || {};
    const parts = Object.keys(lanes).sort().map((l) => l + ' ' + lanes[l]);
    text('uplink-backlog', s.backlog === undefined ? undefined
      : s.backlog + (parts.length ? ' (' + parts.join(', ') + ')' : ''));
    text('uplink-dropped', s.dropped);
    const reason = pick(s, 'uplink.error', 'uplink.reason', 'reason');
    $('uplink-reason').hidden = !reason || online;
    $('uplink-reason').textContent = reason ? 'Why: ' + reason : '';

    // Gateway
    $('gw-time').textContent = '';
    if (s.time) $('gw-time').append(timeElement(s.time));
    else text('gw-time', undefined);
    const synced = pick(s, 'clock.synchronized', 'clock.synced', 'clock_synchronized');
    if (synced === undefined) badge('gw-clock', 'unknown', 'Unknown');
    else badge('gw-clock', synced ? 'ok' : 'bad', synced ? 'Synchronised' : 'Not synchronised');
    text('gw-disk', diskText(s));
    const store = s.store;
    if (!store) badge('gw-store', 'unknown', 'Unknown');
    else if (store.ok) badge('gw-store', 'ok', 'OK');
    else badge('gw-store', 'bad', store.error || store.memory_only || 'Failing');
    text('gw-uptime', s.uptime_s === undefined ? undefined : duration(s.uptime_s));

    renderAlerts(pick(s, 'alerts', 'open_alerts'));
    renderSensors(s.sensors);
    renderInputs(s.inputs);
  }

  function showFooter(s) {
    if (!s || typeof s !== 'object') return;
    const v = s.version;
    if (v) text('version', v);
    const fp = pick(s, 'web.fingerprint', 'web.certificate_sha256', 'certificate.sha256', 'certificate_sha256',
      'fingerprint');
    if (fp) text('fingerprint', fp);
  }

  function diskText(s) {
    const used = pick(s, 'disk.used_bytes', 'disk.used', 'disk_used_bytes');
    const total = pick(s, 'disk.total_bytes', 'disk.size_bytes', 'disk.total', 'disk_total_bytes');
    const free = pick(s, 'disk.free_bytes', 'disk.available_bytes', 'disk.free', 'disk_free_bytes');
    const pct = pick(s, 'disk.used_percent', 'disk_used_percent');
    if (used === undefined && free === undefined && pct === undefined) return undefined;
    const out = [];
    if (used !== undefined) out.push(bytes(used) + ' used');
    if (free !== undefined) out.push(bytes(free) + ' free');
    if (total !== undefined) out.push('of ' + bytes(total));
    if (pct !== undefined) out.push('(' + pct + ' %)');
    else if (used !== undefined && total > 0) out.push('(' + Math.round((100 * used) / total) + ' %)');
    return out.join(' ');
  }

  // An object keyed by id (as status.c writes sensors and inputs) or an array of objects with an id.
  function entries(x) {
    if (Array.isArray(x)) return x.map((v, i) => [String(v && (v.id || v.alert_id) || i), v || {}]);
    if (x && typeof x === 'object') return Object.keys(x).sort().map((k) => [k, x[k] || {}]);
    return [];
  }

  function listSection(name, list) {
    const ul = $(name);
    $(name + '-none').hidden = list.length > 0;
    $(name + '-count').textContent = list.length ? '(' + list.length + ')' : '';
    ul.replaceChildren();
    return ul;
  }

  function tile(id, title, facts, badgeSpec) {
    const li = document.createElement('li');
    li.className = 'tile';
    li.dataset.id = id;
    const h = document.createElement('h3');
    h.textContent = title;
    if (badgeSpec) {
      const b = document.createElement('span');
      b.className = 'badge ' + badgeSpec[0];
      b.textContent = badgeSpec[1];
      h.append(' ', b);
    }
    li.append(h);
    const dl = document.createElement('dl');
    dl.className = 'facts';
    for (const [k, v] of facts) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.dataset.fact = k;
      if (v instanceof Node) dd.append(v);
      else dd.textContent = v === undefined || v === null || v === '' ? '–' : String(v);
      dl.append(dt, dd);
    }
    li.append(dl);
    return li;
  }

  function renderSensors(sensors) {
    const list = entries(sensors);
    const ul = listSection('sensors', list);
    for (const [id, x] of list) {
      const lv = x.last_value;
      let last;
      if (lv && typeof lv === 'object') {
        const what = lv.metric || lv.event || '';
        last = words(what) + (lv.value !== undefined && lv.value !== null ? ': ' + lv.value : '') +
          (lv.unit ? ' ' + lv.unit : '');
      } else if (lv !== undefined) {
        last = lv;
      }
      const facts = [
        ['Last seen', x.last_seen ? timeElement(x.last_seen) : 'never'],
        ['Signal', x.rssi !== undefined && x.rssi !== null ? x.rssi + ' dBm' : undefined],
        ['Battery', x.battery !== undefined && x.battery !== null ? x.battery + ' %' : undefined],
        ['Last value', last],
      ];
      if (x.type) facts.unshift(['Type', x.type]);
      const b = x.connected === true ? ['ok', 'Connected'] : x.error ? ['bad', 'Error'] : null;
      const li = tile(id, id, facts, b);
      if (x.error) li.append(note(x.error));
      ul.append(li);
    }
  }

  function renderInputs(inputs) {
    const list = entries(inputs);
    const ul = listSection('inputs', list);
    for (const [id, x] of list) {
      let b;
      if (x.error) b = ['bad', 'Error'];
      else if (x.state === 1 || x.state === true) b = ['on', 'Active'];
      else if (x.state === 0 || x.state === false) b = ['off', 'Inactive'];
      else b = ['unknown', x.state === undefined ? 'Unknown' : String(x.state)];
      const facts = [];
      if (x.role) facts.push(['Role', words(x.role)]);
      if (x.meaning) facts.push(['Means', x.meaning]);
      if (x.changed_at || x.last_change) facts.push(['Changed', timeElement(x.changed_at || x.last_change)]);
      const li = tile(id, id, facts, b);
      if (x.error) li.append(note(x.error));
      ul.append(li);
    }
  }

  function renderAlerts(alerts) {
    const list = entries(alerts);
    const ul = listSection('alerts', list);
    for (const [id, a] of list) {
      const sev = a.severity || '';
      const kind = sev === 'critical' || sev === 'high' ? 'bad' : sev === 'info' || sev === 'low' ? 'off' : 'warn';
      const facts = [];
      const since = a.raised_at || a.since || a.time || a.opened_at;
      if (since) facts.push(['Since', timeElement(since)]);
      if (a.sensor) facts.push(['Sensor', a.sensor]);
      if (a.message || a.text) facts.push(['Message', a.message || a.text]);
      facts.push(['Alert id', a.alert_id || a.id || id]);
      ul.append(tile(id, words(a.kind || a.type || 'alert'), facts, sev ? [kind, sev] : null));
    }
  }

  function note(t) {
    const p = document.createElement('p');
    p.className = 'note';
    p.textContent = t;
    return p;
  }

  // ---- formatting ----

  function words(name) {
    const s = String(name || '').replace(/_/g, ' ');
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  function timeText(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit',
      minute: '2-digit', second: '2-digit' });
  }

  function timeElement(iso) {
    const t = document.createElement('time');
    t.dateTime = String(iso);
    t.title = String(iso);
    t.textContent = timeText(iso);
    return t;
  }

  function duration(sec) {
    sec = Math.max(0, Math.floor(Number(sec) || 0));
    const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600), m = Math.floor((sec % 3600) / 60);
    if (d) return d + ' d ' + h + ' h';
    if (h) return h + ' h ' + m + ' min';
    if (m) return m + ' min ' + (sec % 60) + ' s';
    return sec + ' s';
  }

  function bytes(n) {
    n = Number(n);
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : String(n)) + ' ' + units[i];
  }

  start();
})();
