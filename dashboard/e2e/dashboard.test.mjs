// Browser tests of keygate's dashboard: real headless Chromium driven by
// playwright-core against a running `keygate demo` (its mock provider and
// mixed key pool). scripts/dashboard-test.sh starts keygate and sets
// KEYGATE_URL and KEYGATE_ADMIN_TOKEN. Tests run in order and share one
// signed-in browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const BASE = process.env.KEYGATE_URL;
const ADMIN = process.env.KEYGATE_ADMIN_TOKEN;
const GATEWAY = process.env.KEYGATE_GATEWAY_TOKEN || 'kg-demo-token';
const SHOTS = process.env.SCREENSHOT_DIR;
assert.ok(BASE && ADMIN, 'KEYGATE_URL and KEYGATE_ADMIN_TOKEN must be set (scripts/dashboard-test.sh sets them)');

let ctx, page, userDir;

// api calls the admin API from the test, with the admin token.
async function api(method, p, body, token = ADMIN) {
  const r = await fetch(BASE + p, {
    method, headers: { Authorization: 'Bearer ' + token, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function eventually(fn, what, ms = 15000) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try { return await fn(); } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`${what}: ${last && last.message}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function signIn(fields) {
  await page.goto(BASE + '/login');
  for (const [k, v] of Object.entries(fields)) await page.fill('#' + k, v);
  await page.click('#login-form button[type=submit]');
  await page.waitForLoadState('domcontentloaded');
}

before(async () => {
  userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keygate-chromium-'));
  ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    viewport: { width: 1280, height: 900 }, locale: 'en-US',
  });
  page = ctx.pages()[0] || (await ctx.newPage());
  page.on('pageerror', (e) => { throw new Error('script error in the page: ' + e.message); });
  // Traffic, so keys have state and usage has records.
  for (let i = 0; i < 8; i++) {
    await fetch(BASE + '/v1/chat/completions', {
      method: 'POST', headers: { Authorization: 'Bearer ' + GATEWAY, 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: i % 4 === 3 ? 'demo-dynamic' : 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello ' + i }] }),
    });
  }
});

after(async () => {
  await ctx?.close();
  fs.rmSync(userDir, { recursive: true, force: true });
});

test('a gateway token, a wrong token and a user who is not an admin cannot sign in', async () => {
  await signIn({ admin_token: GATEWAY });
  assert.match(page.url(), /\/login$/);
  assert.match(await page.textContent('#login-error'), /Only admins can sign in/);
  await signIn({ admin_token: 'kg-wrong' });
  assert.match(await page.textContent('#login-error'), /Wrong admin token/);
  const u = await api('POST', '/api/v1/users', { username: 'viewer', password: 'viewer-password', role: 'user' });
  assert.equal(u.status, 201);
  await signIn({ username: 'viewer', password: 'viewer-password' });
  assert.match(await page.textContent('#login-error'), /not an admin/);
  assert.equal((await ctx.cookies()).filter((c) => c.name === 'kg_session').length, 0, 'no session cookie after a refused sign-in');
  // The pages stay closed.
  await page.goto(BASE + '/keys');
  assert.match(page.url(), /\/login\?next=\/keys$/);
});

test('sign in with the admin token, sign out ends the session on the server, sign in as an admin user', async () => {
  await signIn({ admin_token: ADMIN });
  assert.equal(page.url(), BASE + '/');
  assert.equal(await page.textContent('h1'), 'Overview');
  const cookie = (await ctx.cookies()).find((c) => c.name === 'kg_session');
  assert.ok(cookie.httpOnly, 'HttpOnly');
  assert.equal(cookie.sameSite, 'Strict');
  const withCookie = () => fetch(BASE + '/api/v1/keys?limit=1', { headers: { Cookie: 'kg_session=' + cookie.value } });
  assert.equal((await withCookie()).status, 200);
  await page.click('form.logout button');
  await page.waitForURL(BASE + '/login');
  assert.equal((await withCookie()).status, 401, 'the old cookie is dead on the server');

  assert.equal((await api('POST', '/api/v1/users', { username: 'ops', password: 'ops-password', role: 'admin' })).status, 201);
  await signIn({ username: 'ops', password: 'ops-password' });
  assert.equal(page.url(), BASE + '/');
  assert.equal((await page.textContent('.who')).trim(), 'ops');
});

test('Overview shows the key counts GET /api/v1/keys has, by status, over all models', async () => {
  await page.goto(BASE + '/');
  await eventually(async () => {
    const keys = (await api('GET', '/api/v1/keys')).body.data;
    const want = { total: keys.length };
    for (const s of ['healthy', 'unused', 'warning', 'error', 'cooldown', 'disabled']) want[s] = keys.filter((k) => k.status === s).length;
    const got = await page.$$eval('[data-count]', (els) => Object.fromEntries(els.map((e) => [e.dataset.count, e.textContent.trim()])));
    assert.deepEqual(got, Object.fromEntries(Object.entries(want).map(([k, v]) => [k, String(v)])));
  }, 'overview counts');
  if (SHOTS) await screenshots('overview');
});

test('disable a key from the Keys page and the API reports it disabled', async () => {
  await page.goto(BASE + '/keys');
  const healthy = (await api('GET', '/api/v1/keys?status=healthy')).body.data[0];
  assert.ok(healthy, 'a healthy key to disable');
  if (SHOTS) await screenshots('keys');
  await page.check(`tr[data-id="${healthy.id}"] td.sel input`);
  assert.match(await page.textContent('#selected-count'), /1 selected/);
  await page.click('[data-bulk="disable"]');
  await eventually(async () => assert.equal((await api('GET', '/api/v1/keys/' + healthy.id)).body.status, 'disabled'), 'key disabled');
  await page.waitForSelector(`tr[data-id="${healthy.id}"][data-status="disabled"]`);
  // And back on, through the key's own dialog.
  await page.click(`tr[data-id="${healthy.id}"] td.actions button`);
  await page.waitForSelector('#key-dialog[open] .advice');
  assert.match(await page.textContent('#key-detail'), /Switched off by an operator/);
  await page.click('#key-detail button:has-text("Enable")');
  await eventually(async () => assert.equal((await api('GET', '/api/v1/keys/' + healthy.id)).body.operator_disabled, false), 'key enabled');
});

test('a key check shows live progress up to 100 %', async () => {
  await page.goto(BASE + '/keys');
  const total = (await api('GET', '/api/v1/keys')).body.total;
  await page.click('#check-all');
  await page.waitForSelector('#check-progress[data-percent="100"]', { timeout: 30000 });
  assert.equal(await page.$eval('#check-bar', (b) => b.value), 100);
  assert.match(await page.textContent('#check-text'), new RegExp(`^${total} / ${total} keys \\(100 %\\)$`));
  assert.match(await page.textContent('#check-results'), /passed, \d+ failed/);
});

test('import by pasting adds the new keys and reports the duplicate', async () => {
  const models = (await api('GET', '/api/v1/llm-models')).body.data;
  const chat = models.find((m) => m.model_id === 'gpt-4o-mini');
  const before = chat.api_keys.length;
  await page.goto(BASE + '/keys');
  await page.click('#open-import');
  await page.selectOption('#import-model', String(chat.id));
  const fresh = 'sk-imported-' + Date.now();
  await page.fill('#import-keys', `# a comment\n${fresh}-1\n\n${fresh}-2\nsk-demo-healthy-1-aaaaaaaa\n`);
  await page.click('#import-form button[type=submit]');
  await page.waitForSelector('#import-summary');
  assert.equal(await page.textContent('#import-summary'), '2 added, 1 duplicates');
  assert.equal(await page.$$eval('#import-duplicates li', (l) => l.length), 1);
  const after = (await api('GET', '/api/v1/llm-models/' + chat.id)).body.api_keys.length;
  assert.equal(after, before + 2);
  await page.keyboard.press('Escape');
});

test('a new token shows its secret once, and not after a reload', async () => {
  await page.goto(BASE + '/tokens');
  await page.fill('#t-name', 'browser-test');
  await page.fill('#t-budget', '5');
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#new-secret-box:not([hidden])');
  const secret = (await page.textContent('#new-secret')).trim();
  assert.match(secret, /^kg-[A-Za-z0-9]{40}$/);
  assert.ok(await page.isVisible('#copy-secret'));
  assert.equal((await api('GET', '/v1/models', undefined, secret)).status, 200, 'the secret works');
  await page.waitForSelector('tr[data-name="browser-test"]');
  await page.reload();
  await page.waitForSelector('tr[data-name="browser-test"]');
  assert.equal(await page.isHidden('#new-secret-box'), true);
  assert.ok(!(await page.content()).includes(secret), 'the secret is gone after a reload');
});

test('the usage chart opens on 24 h by model, and its bars match GET /api/v1/usage', async () => {
  await eventually(async () => {
    const r = await api('GET', '/api/v1/usage?group_by=model');
    assert.ok(r.body.data.reduce((s, g) => s + g.requests, 0) >= 8);
  }, 'usage recorded');
  await page.goto(BASE + '/usage');
  await page.waitForSelector('#group-chart rect.bar');
  const chart = await page.$eval('#group-chart', (c) => ({ ...c.dataset }));
  assert.equal(chart.groupBy, 'model');
  assert.equal(Date.parse(chart.to) - Date.parse(chart.from), 24 * 3600e3);
  const bars = await page.$$eval('#group-chart rect.bar', (rs) => Object.fromEntries(rs.map((r) => [r.dataset.group, Number(r.dataset.value)])));
  const api24 = (await api('GET', `/api/v1/usage?from=${chart.from}&to=${chart.to}&group_by=model`)).body.data;
  assert.deepEqual(bars, Object.fromEntries(api24.map((g) => [g.group, g.requests])));
  const total = api24.reduce((s, g) => s + g.requests, 0);
  assert.equal(await page.textContent('[data-total="requests"]'), String(total), 'the total as text beside the chart');
  const csv = await page.$eval('#csv-link', (a) => a.href);
  const r = await fetch(csv, { headers: { Authorization: 'Bearer ' + ADMIN } });
  assert.match(await r.text(), /^model,requests,prompt_tokens,completion_tokens,total_tokens,cost\n/);
});

test('a change with the session cookie but without the CSRF token is refused and changes nothing', async () => {
  await page.goto(BASE + '/keys');
  const key = (await api('GET', '/api/v1/keys?status=healthy')).body.data[0];
  const statuses = await page.evaluate(async (id) => {
    const patch = (headers) => fetch('/api/v1/keys/' + id, { method: 'PATCH', headers: Object.assign({ 'Content-Type': 'application/json' }, headers), body: '{"status":"disabled"}' });
    const none = await patch({});
    const wrong = await patch({ 'X-CSRF-Token': 'not-the-token' });
    const post = await fetch('/api/v1/tokens', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"csrf-probe"}' });
    return [none.status, wrong.status, post.status, (await none.json()).error.code];
  }, key.id);
  assert.deepEqual(statuses, [403, 403, 403, 'forbidden']);
  const tokens = (await api('GET', '/api/v1/tokens')).body.data;
  assert.ok(!tokens.some((t) => t.name === 'csrf-probe'), 'the refused POST created no token');
  const now = (await api('GET', '/api/v1/keys/' + key.id)).body;
  assert.equal(now.operator_disabled, false);
  assert.equal(now.status, key.status);
});

test('switch to 中文: the pages speak Chinese, and the choice is remembered', async () => {
  await page.goto(BASE + '/keys');
  await page.selectOption('#lang-select', 'zh');
  await page.waitForFunction(() => document.documentElement.lang === 'zh');
  assert.equal(await page.textContent('h1'), '密钥');
  const nav = await page.$$eval('.top nav a', (as) => as.map((a) => a.textContent));
  assert.deepEqual(nav, ['概览', '密钥', '模型', '令牌', '用量', '用户', '审计']);
  await page.goto(BASE + '/usage');
  assert.equal(await page.textContent('h1'), '用量');
  assert.equal(await page.$eval('#lang-select', (s) => s.value), 'zh');
  if (SHOTS) { await page.goto(BASE + '/'); await page.waitForSelector('[data-count="total"]:not(:text("–"))'); await page.screenshot({ path: path.join(SHOTS, 'overview-zh-1280.png') }); }
  await page.selectOption('#lang-select', 'en');
  await page.waitForFunction(() => document.documentElement.lang === 'en');
});

test('at 390 px wide no page scrolls sideways', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    for (const p of ['/', '/keys', '/models', '/tokens', '/usage', '/users', '/audit']) {
      await page.goto(BASE + p);
      await page.waitForLoadState('networkidle');
      const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      assert.ok(sw <= cw, `${p} is ${sw} px wide in a ${cw} px window`);
      assert.equal(await page.$eval('meta[name=viewport]', (m) => m.content), 'width=device-width');
    }
  } finally {
    await page.setViewportSize({ width: 1280, height: 900 });
  }
});

// screenshots saves a page at 1280 and 390 px for the README.
async function screenshots(name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 390 ? 844 : 900 });
    await page.reload();
    await page.waitForLoadState('networkidle');
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${width}.png`), fullPage: width === 1280 });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}
