// End-to-end test of the technician's page in Debian's headless chromium, driven by playwright-core
// (no browser download): first boot with the setup code, the live status, the test alarm, logout, a
// wrong password until locked out (429), keyboard use, the layout at 360 px and 1280 px (screenshots
// kept), axe-core without a serious or critical violation, and no CSP violation.
//
// Against the real gateway (tests/web/test_page.py starts mosquitto and build/homecare-gw, then runs
// this with HCGW_WEB_URL and HCGW_SETUP_CODE_FILE), or, with no HCGW_WEB_URL, against the mock API
// of mock-server.js (a fast loop while working on the page).
//   HCGW_WEB_URL            the page, e.g. https://127.0.0.1:8443/
//   HCGW_SETUP_CODE_FILE    the file in the state directory that holds the setup code
//   HCGW_WEB_ARTEFACTS      where screenshots and axe reports go (default: ./web-artefacts)
//   HCGW_WEB_PASSWORD       the password to set (default below); the wrapper checks no log shows it
//   HCGW_TEST_TIMEOUT       seconds for each wait (default 30)
// Prints "ALERT_ID <id>" for the test alarm, so the wrapper can check that the broker got it.
'use strict';

const assert = require('assert');
const fs = require('fs');
const path = require('path');
const test = require('node:test');
const { chromium } = require('playwright-core');
const { createMock } = require('./mock-server');

const ARTEFACTS = path.resolve(process.env.HCGW_WEB_ARTEFACTS || 'web-artefacts');
const PASSWORD = process.env.HCGW_WEB_PASSWORD || 'correct horse battery staple';
const TIMEOUT = 1000 * Number(process.env.HCGW_TEST_TIMEOUT || 30);
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
// As the probe of this machine found: without these chromium tries to reach the internet.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--disable-features=Translate,OptimizationHints,MediaRouter'];

let browser, context, page, mock, base, setupCode;
const seen = { csp: [], pageErrors: [], requests: [], csrf: null };

// Runs axe-core on the page as it is; keeps the report; fails on a serious or critical violation.
async function axeCheck(name) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const res = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
  }));
  fs.writeFileSync(path.join(ARTEFACTS, 'axe-' + name + '.json'), JSON.stringify(res.violations, null, 1));
  const bad = res.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const lines = bad.map((v) => v.impact + ' ' + v.id + ': ' + v.help + ' at ' +
    v.nodes.map((n) => n.target.join(' ')).join(', '));
  assert.deepStrictEqual(lines, [], 'axe-core on ' + name);
  return res.violations.length;
}

async function shot(name, width, height) {
  await page.setViewportSize({ width, height });
  const file = path.join(ARTEFACTS, name + '-' + width + '.png');
  await page.screenshot({ path: file, fullPage: true });
  // Nothing wider than the screen: a phone must not scroll sideways.
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(wide <= width, name + ' at ' + width + ' px is ' + wide + ' px wide');
  return file;
}

// What the home changes: sensors, inputs, alerts and the backlog (not the clock, which any event moves).
const homeText = () => page.evaluate(() => ['sensors', 'inputs', 'alerts', 'uplink-backlog', 'uplink-puback']
  .map((id) => document.getElementById(id).textContent).join('|'));

function readSetupCode() {
  if (mock) return mock.state.setupCode;
  const file = process.env.HCGW_SETUP_CODE_FILE;
  const st = fs.statSync(file);
  assert.strictEqual(st.mode & 0o777, 0o600, file + ' is mode ' + (st.mode & 0o777).toString(8) + ', not 0600');
  return fs.readFileSync(file, 'utf8').trim();
}

test('the technician\'s page', { timeout: 20 * TIMEOUT }, async (t) => {
  fs.mkdirSync(ARTEFACTS, { recursive: true });
  if (process.env.HCGW_WEB_URL) {
    base = process.env.HCGW_WEB_URL;
  } else {
    mock = createMock();
    base = 'http://127.0.0.1:' + (await mock.listen()) + '/';
  }
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: CHROMIUM_ARGS });
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 },
    locale: 'en-GB', timezoneId: 'UTC' });
  context.setDefaultTimeout(TIMEOUT);
  page = await context.newPage();
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) seen.csp.push(m.text());
  });
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  page.on('request', (r) => seen.requests.push({ method: r.method(), url: new URL(r.url()).pathname,
    csrf: r.headers()['x-csrf-token'] || null }));

  try {
    await t.test('first boot shows the setup screen; a wrong code is refused', async () => {
      const res = await page.goto(base);
      assert.strictEqual(res.status(), 200);
      assert.match(res.headers()['content-security-policy'] || '', /frame-ancestors 'none'/);
      await page.locator('#setup').waitFor({ state: 'visible' });
      await axeCheck('setup');
      await shot('setup', 360, 780);
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.fill('#setup-code', '0000-0000-0000-0001');
      await page.fill('#setup-password', PASSWORD);
      await page.fill('#setup-password2', PASSWORD);
      const [r] = await Promise.all([page.waitForResponse((x) => x.url().endsWith('/api/setup') &&
        x.request().method() === 'POST'), page.click('#setup-submit')]);
      assert.strictEqual(r.status(), 403);
      await page.locator('#setup-error', { hasText: 'not right' }).waitFor();
      assert.strictEqual(await page.getAttribute('#setup-code', 'aria-invalid'), 'true');
    });

    await t.test('a short password is refused on the page, before any request', async () => {
      const before = seen.requests.length;
      await page.fill('#setup-password', 'short');
      await page.fill('#setup-password2', 'short');
      await page.click('#setup-submit');
      await page.locator('#setup-error', { hasText: 'at least 10' }).waitFor();
      assert.strictEqual(seen.requests.slice(before).filter((r) => r.url.startsWith('/api/')).length, 0);
    });

    await t.test('the setup code from the state directory sets the password and opens the status', async () => {
      setupCode = readSetupCode();
      assert.match(setupCode, /\S{8,}/);
      await page.fill('#setup-code', setupCode);
      await page.fill('#setup-password', PASSWORD);
      await page.fill('#setup-password2', PASSWORD);
      const [r] = await Promise.all([page.waitForResponse((x) => x.url().endsWith('/api/setup') &&
        x.request().method() === 'POST'), page.press('#setup-password2', 'Enter')]);
      assert.strictEqual(r.status(), 200);
      seen.csrf = (await r.json()).csrf_token;
      assert.ok(seen.csrf, 'setup returned a csrf_token');
      await page.locator('#status').waitFor({ state: 'visible' });
      await page.locator('#live-text', { hasText: /^Live$/ }).waitFor();
      assert.notStrictEqual(await page.textContent('#version'), '–');
      assert.match(await page.textContent('#uplink-state'), /^Connected$/);
    });

    await t.test('the status changes as the home produces readings, pushed without polling', async () => {
      const gets = () => seen.requests.filter((r) => r.url === '/api/status').length;
      const statusGets = gets();
      const first = await homeText();
      await page.waitForFunction((f) => ['sensors', 'inputs', 'alerts', 'uplink-backlog', 'uplink-puback']
        .map((id) => document.getElementById(id).textContent).join('|') !== f, first, { timeout: 2 * TIMEOUT });
      const second = await homeText();
      await page.waitForFunction((f) => ['sensors', 'inputs', 'alerts', 'uplink-backlog', 'uplink-puback']
        .map((id) => document.getElementById(id).textContent).join('|') !== f, second, { timeout: 2 * TIMEOUT });
      assert.strictEqual(gets(), statusGets, 'the page fetched /api/status while events came (polling?)');
      assert.strictEqual(seen.requests.filter((r) => r.url === '/api/events').length, 1, 'one EventSource');
    });

    await t.test('the test alarm shows the broker\'s acknowledgement', async () => {
      const [r] = await Promise.all([
        page.waitForResponse((x) => x.url().endsWith('/api/test-alarm'), { timeout: 2 * TIMEOUT }),
        page.click('#test-alarm')]);
      assert.strictEqual(r.status(), 200);
      const body = await r.json();
      assert.strictEqual(body.acked, true, 'acked: ' + JSON.stringify(body));
      await page.locator('#test-result', { hasText: 'Acknowledged by the broker at' }).waitFor();
      assert.ok((await page.textContent('#test-result')).includes(body.alert_id));
      const sent = seen.requests.filter((x) => x.url === '/api/test-alarm');
      assert.strictEqual(sent[sent.length - 1].csrf, seen.csrf, 'X-CSRF-Token sent');
      console.log('ALERT_ID ' + body.alert_id);
    });

    await t.test('readable at 360 px and 1280 px; axe-core finds nothing serious', async () => {
      await shot('status', 1280, 800);
      await axeCheck('status-1280');
      await shot('status', 360, 780);
      await axeCheck('status-360');
    });

    await t.test('keyboard: every control is reached with Tab; logout with Enter', async () => {
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.evaluate(() => document.activeElement && document.activeElement.blur());
      const reached = new Set();
      for (let i = 0; i < 40 && !(reached.has('logout') && reached.has('test-alarm')); i++) {
        await page.keyboard.press('Tab');
        reached.add(await page.evaluate(() => document.activeElement && document.activeElement.id));
      }
      assert.ok(reached.has('logout') && reached.has('test-alarm'), 'reached: ' + [...reached].join(' '));
      await page.focus('#logout');
      const [r] = await Promise.all([page.waitForResponse((x) => x.url().endsWith('/api/logout')),
        page.keyboard.press('Enter')]);
      assert.strictEqual(r.status(), 204);
      const sent = seen.requests.filter((x) => x.url === '/api/logout');
      assert.strictEqual(sent[sent.length - 1].csrf, seen.csrf, 'X-CSRF-Token sent');
      await page.locator('#login').waitFor({ state: 'visible' });
      assert.strictEqual((await context.request.get(new URL('/api/status', base).href)).status(), 401);
    });

    await t.test('a wrong password again and again is locked out (429), then the right one works', async () => {
      let locked = null;
      for (let i = 0; i < 15 && !locked; i++) {
        await page.fill('#login-password', 'wrong password ' + i);
        const [r] = await Promise.all([page.waitForResponse((x) => x.url().endsWith('/api/login')),
          page.press('#login-password', 'Enter')]);
        if (r.status() === 429) locked = r;
        else assert.strictEqual(r.status(), 401);
        if (!locked) await page.locator('#login-error', { hasText: 'Wrong password.' }).waitFor();
      }
      assert.ok(locked, 'no 429 after 15 wrong passwords');
      const retry = Number(locked.headers()['retry-after']);
      assert.ok(retry >= 1, 'Retry-After: ' + locked.headers()['retry-after']);
      await page.locator('#login-error', { hasText: 'Too many failed tries' }).waitFor();
      assert.ok(await page.isDisabled('#login-submit'));
      await axeCheck('login-locked');
      await shot('login-locked', 360, 780);
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.locator('#login-submit:enabled').waitFor({ timeout: 1000 * retry + TIMEOUT });
      await page.fill('#login-password', PASSWORD);
      const [r] = await Promise.all([page.waitForResponse((x) => x.url().endsWith('/api/login')),
        page.click('#login-submit')]);
      assert.strictEqual(r.status(), 200);
      seen.csrf = (await r.json()).csrf_token;
      await page.locator('#status').waitFor({ state: 'visible' });
      await page.locator('#live-text', { hasText: /^Live$/ }).waitFor();
    });

    await t.test('no CSP violation and no script error on the way', () => {
      assert.deepStrictEqual(seen.csp, []);
      assert.deepStrictEqual(seen.pageErrors, []);
    });
  } finally {
    if (page) await page.screenshot({ path: path.join(ARTEFACTS, 'last.png'), fullPage: true }).catch(() => {});
    if (browser) await browser.close();
    if (mock) await mock.close();
  }
});
