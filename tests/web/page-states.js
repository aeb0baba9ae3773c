// The page's answers to what the real gateway does only now and then, against the mock API
// (mock-server.js): a test alarm the broker does not acknowledge, a session that ends while the page is
// open, a setup that another browser finished first, and a gateway that stops answering.
'use strict';

const assert = require('assert');
const test = require('node:test');
const { chromium } = require('playwright-core');
const { createMock } = require('./mock-server');

const TIMEOUT = 1000 * Number(process.env.HCGW_TEST_TIMEOUT || 30);
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const PASSWORD = 'another long password';

let browser;
test.before(async () => {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ARGS });
});
test.after(async () => { if (browser) await browser.close(); });

// A mock with its password set, and a page logged in to it.
async function loggedIn(mockOpts) {
  const mock = createMock(mockOpts);
  const base = 'http://127.0.0.1:' + (await mock.listen()) + '/';
  mock.state.password = PASSWORD;
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  await page.goto(base);
  await page.fill('#login-password', PASSWORD);
  await page.press('#login-password', 'Enter');
  await page.locator('#live-text', { hasText: /^Live$/ }).waitFor();
  return { mock, page, context, base };
}

test('a test alarm the broker does not acknowledge says so', async () => {
  const { mock, page, context } = await loggedIn({ ackDelayMs: -1 });
  try {
    await page.click('#test-alarm');
    await page.locator('#test-result', { hasText: 'has not acknowledged it within 10 s' }).waitFor();
    assert.ok(!(await page.isDisabled('#test-alarm')));
  } finally {
    await context.close();
    await mock.close();
  }
});

test('a session that ends while the page is open leads to the login', async () => {
  const { mock, page, context } = await loggedIn();
  try {
    mock.state.sessions.clear(); // as the idle timeout or a restart of the gateway would
    for (const c of mock.state.clients) c.end();
    await page.locator('#login').waitFor({ state: 'visible', timeout: 2 * TIMEOUT });
    await page.locator('#login-error', { hasText: 'session ended' }).waitFor();
    assert.ok(await page.isHidden('#status'));
  } finally {
    await context.close();
    await mock.close();
  }
});

test('a setup that was finished elsewhere first leads to the login', async () => {
  const mock = createMock();
  const base = 'http://127.0.0.1:' + (await mock.listen()) + '/';
  const context = await browser.newContext();
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  try {
    await page.goto(base);
    await page.locator('#setup').waitFor({ state: 'visible' });
    mock.state.password = PASSWORD;
    await page.fill('#setup-code', mock.state.setupCode);
    await page.fill('#setup-password', 'yet another password');
    await page.fill('#setup-password2', 'yet another password');
    await page.click('#setup-submit');
    await page.locator('#login-error', { hasText: 'already set' }).waitFor();
    assert.ok(await page.isVisible('#login'));
  } finally {
    await context.close();
    await mock.close();
  }
});

test('a gateway that stops answering: the page says the connection is lost', async () => {
  const { mock, page, context } = await loggedIn();
  try {
    await mock.close();
    await page.locator('#live-text', { hasText: /reconnecting|stopped/ }).waitFor();
  } finally {
    await context.close();
  }
});
