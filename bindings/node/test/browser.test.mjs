// A web page in real headless Chromium (Debian's package, which `.ci/run` installs) connects to
// the server with the bearer subprotocol, starts a runtime and runs a turn: the page is
// docs/examples/web-page.html, served from an origin the server allows (--allow-origin). Pages
// from other origins, and pages with a wrong token, are refused.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { once } from 'node:events';
import path from 'node:path';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

import { BEARER_SUBPROTOCOL_PREFIX } from '../index.js';
import { REPO, startServer } from './support.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const PAGE = path.join(REPO, 'docs', 'examples', 'web-page.html');
const TOKEN = 'browser-s3cret';

/** Serves the example page on 127.0.0.1:0; its origin is `http://127.0.0.1:<port>`. */
async function servePage() {
  const html = await readFile(PAGE);
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${server.address().port}`;
  return { origin, url: `${origin}/web-page.html`, close: () => new Promise((done) => server.close(done)) };
}

/** Fills in the page's connect form and waits until the status leaves `connecting`. */
async function connect(page, serverUrl, token) {
  await page.fill('#url', `${serverUrl}/ws`);
  await page.fill('#token', token);
  await page.click('#connect button');
  await page.waitForFunction(() => !['disconnected', 'connecting', 'connected'].includes(document.getElementById('status').value));
  return page.locator('#status').textContent();
}

test('a web page of an allowed origin runs a turn; other origins and wrong tokens are refused', async (t) => {
  if (!existsSync(CHROMIUM)) {
    // CI installs Chromium (`.ci/run`): there, a missing browser is a failure, not a skip.
    assert.ok(!process.env.CI, `Chromium is not installed at ${CHROMIUM}`);
    t.skip(`Chromium is not installed at ${CHROMIUM} (apt install chromium, or set CHROMIUM)`);
    return;
  }
  assert.equal(BEARER_SUBPROTOCOL_PREFIX, 'letta-app-server.bearer.');
  const allowed = await servePage();
  t.after(() => allowed.close());
  const other = await servePage();
  t.after(() => other.close());
  const digest = createHash('sha256').update(TOKEN).digest('hex');
  const server = await startServer('--ws-auth', 'capability-token', '--ws-token-sha256', digest, '--allow-origin', allowed.origin);
  t.after(() => server.stop());
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // No sandbox (CI runs as root); no background connections on a machine without a network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  t.after(() => browser.close());

  const page = await browser.newPage();
  await page.goto(allowed.url);
  assert.match(await connect(page, server.url, TOKEN), /^ready: agent-/);
  await page.fill('#message', 'Hello from Chromium');
  await page.click('#send-button');
  await page.waitForFunction(() => document.getElementById('status').value.startsWith('turn finished'));
  assert.equal(await page.locator('#status').textContent(), 'turn finished: end_turn');
  assert.equal(await page.locator('#reply').textContent(), 'I received: Hello from Chromium');
  const frames = (await page.locator('#log').textContent()).trim().split('\n');
  assert.deepEqual(frames.slice(0, 1), ['runtime_start_response']);
  assert.ok(frames.includes('turn_finished'), frames.join(', '));

  await page.reload();
  assert.equal(await connect(page, server.url, 'not-the-token'), 'refused', 'a wrong token');

  const elsewhere = await browser.newPage();
  await elsewhere.goto(other.url);
  assert.equal(await connect(elsewhere, server.url, TOKEN), 'refused', 'an origin not allowed');
});
