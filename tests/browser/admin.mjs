// The admin page end to end in headless Chromium, driven by
// playwright-core. Started by crates/tenon-cli/tests/browser.rs with a
// running `tenon serve` (TENON_URL), an admin token made by `tenon token
// create` (TENON_TOKEN) and two packages of the notifier example
// (TENON_PACKAGE_V1 = 0.1.0, TENON_PACKAGE_V2 = 0.2.0). It waits on the
// page's state (locators), never on fixed sleeps, and ends itself within
// DEADLINE_MS whatever happens.

import http from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const DEADLINE_MS = 200_000;
const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through cargo test (crates/tenon-cli/tests/browser.rs)`);
  return value;
};
const URL_ = env('TENON_URL');
const TOKEN = env('TENON_TOKEN');
const VIEWER = env('TENON_VIEWER_TOKEN');
const V1 = env('TENON_PACKAGE_V1');
const V2 = env('TENON_PACKAGE_V2');
const SHOTS = env('TENON_SCREENSHOTS');
const SECRET = 'webhook-secret-' + Math.random().toString(36).slice(2);
const ID = 'tenon-examples/notifier';

mkdirSync(SHOTS, { recursive: true });

let browser = null;
let sink = null;
const deadline = setTimeout(async () => {
  console.error(`the browser run did not finish within ${DEADLINE_MS} ms`);
  // A wedged browser may never finish closing: exit regardless after 10 s
  // (the Rust side kills what is left).
  await Promise.race([cleanup(), new Promise((resolve) => setTimeout(resolve, 10_000))]);
  process.exit(3);
}, DEADLINE_MS);

async function cleanup() {
  clearTimeout(deadline);
  if (browser) await browser.close().catch(() => {});
  if (sink) sink.close();
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** A webhook receiver for the notifier: records what it is sent. */
function startSink() {
  const received = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => { body += chunk; });
    request.on('end', () => {
      received.push({ authorization: request.headers.authorization || '', body });
      response.writeHead(200, { 'Content-Type': 'application/json' });
      response.end('{}');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, received, port: server.address().port }));
  });
}

const step = (name) => console.log(`  browser: ${name}`);

async function run() {
  const hook = await startSink();
  sink = hook.server;
  // A fresh profile directory each run (the persistent context's
  // user-data-dir), removed by the test that made it.
  browser = await chromium.launchPersistentContext(env('TENON_PROFILE'), {
    executablePath: env('TENON_CHROMIUM'),
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
    timeout: 60_000,
    viewport: { width: 1360, height: 900 },
    deviceScaleFactor: 1,
  });
  browser.setDefaultTimeout(20_000);
  const page = browser.pages()[0] || (await browser.newPage());
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/the server responded with a status of (401|404|409|422)/.test(message.text())) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  const urls = [];
  page.on('request', (request) => urls.push(request.url()));
  // Toasts of earlier steps would cover the page in a fast run.
  const shot = async (name) => {
    await page.evaluate(() => document.getElementById('toasts').replaceChildren());
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };

  step('sign in');
  await page.goto(URL_ + '/');
  await page.getByLabel('API token').waitFor();
  await shot('01-sign-in');
  await page.getByLabel('API token').fill('tenon_not-a-real-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#signin-error').filter({ hasText: 'unknown or was revoked' }).waitFor();
  await page.getByLabel('API token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-role').filter({ hasText: 'admin' }).waitFor();
  await page.locator('#live[data-state="live"]').waitFor();
  await page.getByRole('heading', { name: 'Plugins', level: 1 }).waitFor();
  await page.getByText('No plugins are installed yet.').waitFor();

  step('install wizard: upload and preview');
  await page.getByRole('link', { name: 'Install plugin' }).click();
  await page.getByRole('heading', { name: 'Choose a package' }).waitFor();
  await shot('02-install-package');
  await page.locator('#package-file').setInputFiles(V1);
  await page.getByRole('heading', { name: /Webhook Notifier/ }).waitFor();
  await page.getByText('Send requests to *.example.com').waitFor();
  await page.getByText('Read the secret setting “token”').waitFor();
  await shot('03-install-review');
  // Nothing is stored before the install.
  const before = await page.evaluate(async (token) => {
    const r = await fetch('/api/v1/plugins', { headers: { Authorization: `Bearer ${token}` } });
    return (await r.json()).plugins.length;
  }, TOKEN);
  check(before === 0, `the preview stored a plugin (${before} listed)`);
  await page.getByRole('button', { name: 'Install', exact: true }).click();

  step('install wizard: configure with a secret');
  await page.getByRole('heading', { name: 'Configure Webhook Notifier' }).waitFor();
  // Required field left empty: an inline error, nothing sent.
  await page.getByRole('button', { name: 'Save and continue' }).click();
  await page.locator('#config-webhook_url-error').filter({ hasText: 'Required' }).waitFor();
  // A value of the wrong type: refused at the field before anything is sent.
  await page.getByLabel(/Excerpt length/).fill('1.5');
  await page.getByRole('button', { name: 'Save and continue' }).click();
  await page.locator('#config-max_excerpt-error').filter({ hasText: 'whole number' }).waitFor();
  await page.getByLabel(/Excerpt length/).fill('');
  await page.getByLabel(/Webhook URL/).fill(`http://127.0.0.1:${hook.port}/hook`);
  await page.getByLabel(/Webhook token/).fill(SECRET);
  await shot('04-install-configure');
  await page.getByRole('button', { name: 'Save and continue' }).click();

  step('install wizard: grant and enable');
  await page.getByRole('heading', { name: 'Grant permissions' }).waitFor();
  await shot('05-install-grant');
  await page.getByRole('button', { name: 'Grant selected' }).click();
  await page.getByRole('heading', { name: 'Webhook Notifier is installed' }).waitFor();
  await page.getByRole('button', { name: 'Enable now' }).click();
  await page.locator('.wizard [data-state="active"]').waitFor();
  await shot('06-install-done');

  step('the secret is never shown back');
  await page.getByRole('link', { name: 'Open plugin page' }).click();
  await page.getByRole('heading', { name: /Webhook Notifier/, level: 1 }).waitFor();
  await page.locator('#plugin-state [data-state="active"]').waitFor();
  await page.getByRole('link', { name: 'Configuration' }).click();
  const secretInput = page.locator('#config-token');
  await secretInput.waitFor();
  check((await secretInput.inputValue()) === '', 'the secret input is filled in');
  check((await secretInput.getAttribute('type')) === 'password', 'the secret input is not masked');
  await page.getByText('secret · set').waitFor();
  await shot('07-plugin-config');

  step('a dispatch appears in the timeline live');
  await page.getByRole('navigation', { name: 'Plugin sections' }).getByRole('link', { name: 'Activity' }).click();
  // The tab's first page must be in before the dispatch, so the receipt can
  // only arrive through the live stream.
  await page.locator('ol.timeline[data-loaded="true"][aria-label^="Events of Webhook Notifier"]').waitFor();
  await page.evaluate(() => { window.__notReloaded = true; });
  const hooksBefore = await page.locator('.timeline .event[data-kind="hook"]').count();
  const dispatched = await page.evaluate(async (token) => {
    const r = await fetch('/api/v1/hooks/response.post_deliver/dispatch', {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ data: { content: 'hello from the browser test', workItemId: 'wi-1', pluginType: 'test' } }),
    });
    return r.json();
  }, TOKEN);
  check(dispatched.receipts && dispatched.receipts.some((r) => r.plugin === ID && r.status === 'ok'), `the dispatch: ${JSON.stringify(dispatched)}`);
  await page.locator('.timeline .event[data-kind="hook"]').nth(hooksBefore).waitFor();
  await page.locator('.timeline .event.fresh[data-kind="hook"]').first().waitFor();
  check(await page.evaluate(() => window.__notReloaded === true), 'the page reloaded');
  check(hook.received.length === 1, `the webhook got ${hook.received.length} requests`);
  check(hook.received[0].authorization === `Bearer ${SECRET}`, 'the secret did not reach the webhook');
  await shot('08-plugin-activity');

  step('overview and permissions');
  await page.getByRole('link', { name: 'Overview' }).click();
  await page.getByRole('heading', { name: 'Health and statistics' }).waitFor();
  await page.locator('svg.chart').waitFor();
  await page.getByText('Nothing needs attention').or(page.locator('.problems')).first().waitFor();
  await shot('09-plugin-overview');
  await page.getByRole('link', { name: 'Permissions' }).click();
  await page.getByRole('heading', { name: 'What it may do' }).waitFor();
  await page.getByText('Everything it declares is granted.').waitFor();
  await shot('10-plugin-permissions');

  step('upgrade, side by side');
  await page.getByRole('link', { name: 'Versions' }).click();
  await page.locator('tr[data-version="0.1.0"]').waitFor();
  await page.getByLabel('Package file (.tenon)').setInputFiles(V2);
  await page.getByRole('button', { name: 'Review upgrade' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByRole('heading', { name: 'Upgrade Webhook Notifier to 0.2.0?' }).waitFor();
  await dialog.locator('table.compare').getByText('0.2.0').waitFor();
  await shot('11-upgrade-compare');
  await dialog.getByRole('button', { name: 'Upgrade' }).click();
  await page.locator('tr[data-version="0.2.0"]').getByText('current').waitFor();
  await page.locator('.detail-head .version').filter({ hasText: '0.2.0' }).waitFor();

  step('roll back');
  await page.getByRole('button', { name: 'Roll back to 0.1.0' }).click();
  await dialog.getByRole('heading', { name: 'Roll back to 0.1.0?' }).waitFor();
  await dialog.getByRole('button', { name: 'Roll back to 0.1.0' }).click();
  await page.locator('tr[data-version="0.1.0"]').getByText('current').waitFor();
  await page.locator('.detail-head .version').filter({ hasText: '0.1.0' }).waitFor();
  await shot('12-plugin-versions');

  step('disable');
  await page.getByRole('button', { name: 'Disable' }).click();
  await page.locator('#plugin-state [data-state="disabled"]').waitFor();
  await page.getByRole('button', { name: 'Enable' }).waitFor();

  step('the list, hooks, activity and doctor');
  await page.getByRole('link', { name: 'Plugins', exact: true }).first().click();
  await page.locator(`tr[data-plugin="${ID}"] [data-state="disabled"]`).waitFor();
  await page.getByLabel('State').selectOption('active');
  await page.getByText('No plugin matches these filters.').waitFor();
  await page.getByLabel('State').selectOption('');
  await page.locator(`tr[data-plugin="${ID}"]`).waitFor();
  await page.getByLabel(`Select Webhook Notifier`).check();
  await page.getByRole('region', { name: 'Bulk actions' }).getByText('1 selected').waitFor();
  await shot('13-plugins');
  await page.getByRole('region', { name: 'Bulk actions' }).getByRole('button', { name: 'Enable' }).click();
  await page.locator(`tr[data-plugin="${ID}"] [data-state="active"]`).waitFor();
  await page.getByRole('link', { name: 'Hooks' }).click();
  await page.getByRole('heading', { name: 'Test a hook' }).waitFor();
  await page.getByLabel('Hook', { exact: true }).selectOption('response.post_deliver');
  await page.getByRole('button', { name: 'Dispatch' }).click();
  await page.locator('.receipts').getByText(ID).waitFor();
  await shot('14-hooks');
  await page.getByRole('link', { name: 'Activity' }).click();
  await page.locator('.timeline .event').first().waitFor();
  await shot('15-activity');
  await page.getByRole('link', { name: 'Doctor' }).click();
  await page.getByRole('heading', { name: 'Registry' }).waitFor();
  await shot('16-doctor');

  step('the token never leaves the headers');
  const html = await page.content();
  check(!html.includes(SECRET), 'the webhook secret is in the page');
  check(!html.includes(TOKEN), 'the API token is in the page');
  check(!urls.some((u) => u.includes(TOKEN) || u.includes(SECRET)), 'a URL carried the token or the secret');
  const storage = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.getItem('tenon.token') }));
  check(storage.local === 0, 'something was written to localStorage');
  check(storage.session === TOKEN, 'the token is not kept in sessionStorage');

  step('sign out');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
  check(await page.evaluate(() => sessionStorage.getItem('tenon.token')) === null, 'the token outlived sign-out');

  step('a viewer sees no action its role may not take');
  await page.getByLabel('API token').fill(VIEWER);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who-role').filter({ hasText: 'viewer' }).waitFor();
  await page.getByRole('link', { name: 'Plugins', exact: true }).first().click();
  await page.locator(`tr[data-plugin="${ID}"]`).waitFor();
  check(!(await page.getByRole('link', { name: 'Install', exact: true }).isVisible()), 'a viewer is offered Install');
  check(await page.getByRole('link', { name: 'Install plugin' }).count() === 0, 'a viewer is offered Install plugin');
  check(await page.getByLabel('Select Webhook Notifier').count() === 0, 'a viewer can select for bulk actions');
  await page.getByRole('link', { name: 'Webhook Notifier' }).click();
  await page.locator('#plugin-state [data-state="active"]').waitFor();
  for (const name of ['Disable', 'Enable', 'Uninstall']) {
    check(await page.getByRole('button', { name, exact: true }).count() === 0, `a viewer is offered ${name}`);
  }
  await page.getByRole('link', { name: 'Configuration' }).click();
  await page.getByText('Changing settings needs the operator role.').waitFor();
  check(await page.locator('#config-webhook_url').isDisabled(), 'a viewer can edit settings');
  await page.getByRole('link', { name: 'Permissions' }).click();
  await page.getByText('Granting and revoking needs the admin role.').waitFor();
  check(await page.getByRole('button', { name: /^(Grant|Revoke)/ }).count() === 0, 'a viewer is offered grant or revoke');
  await shot('17-viewer-permissions');
  check(problems.length === 0, problems.join('\n'));
}

try {
  await run();
  await cleanup();
  console.log('  browser: every step passed');
  process.exit(0);
} catch (error) {
  console.error(`the browser run failed: ${error.stack || error}`);
  try {
    const pages = browser ? browser.pages() : [];
    if (pages[0]) await pages[0].screenshot({ path: join(SHOTS, 'failure.png'), fullPage: true });
  } catch {
    // the screenshot is a help, not the verdict
  }
  await cleanup();
  process.exit(1);
}
