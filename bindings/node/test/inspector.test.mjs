// The inspector (`letta-app-server --inspect`) in real headless Chromium (Debian's package,
// which `.ci/run` installs): the page opens from the address the server prints (with the token
// in its fragment, as a terminal shows it; a pipe gets the address alone), connects, starts a runtime and runs turns from the form generated from the
// schema, answers an approval and an external tool call by hand, shows every frame checked
// against the schema, filters them, shows the history, and resumes its runtime's stream after a
// reconnect.
//
// `INSPECTOR_SCREENSHOT=<path>` also saves a screenshot of the page waiting for an approval
// (docs/inspector.png is made so, see the README).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { chromium } from 'playwright-core';

import { startServer } from './support.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'inspector-s3cret';

const WEATHER_TOOL = {
  name: 'lookup_weather',
  description: 'The weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } } },
};

/** The summaries of the frame rows of `type`. */
async function summaries(page, type) {
  return page.locator(`#frames .frame[data-type="${type}"] .summary`).allTextContents();
}

/** Waits until the frame list shows `count` rows of `type`. */
async function rows(page, type, count) {
  await page.waitForFunction(
    ([type, count]) => document.querySelectorAll(`#frames .frame[data-type="${type}"]`).length >= count,
    [type, count],
  );
}

test('the inspector drives a server by hand and checks every frame against the schema', async (t) => {
  if (!existsSync(CHROMIUM)) {
    // CI installs Chromium (`.ci/run`): there, a missing browser is a failure, not a skip.
    assert.ok(!process.env.CI, `Chromium is not installed at ${CHROMIUM}`);
    t.skip(`Chromium is not installed at ${CHROMIUM} (apt install chromium, or set CHROMIUM)`);
    return;
  }
  const secrets = await mkdtemp(path.join(tmpdir(), 'letta-inspector-'));
  t.after(() => rm(secrets, { recursive: true, force: true }));
  const tokenFile = path.join(secrets, 'token');
  await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const server = await startServer('--ws-auth', 'capability-token', '--ws-token-file', tokenFile, '--inspect');
  t.after(() => server.stop());
  const address = `${server.url.replace('ws://', 'http://')}/inspect`;
  assert.equal(await server.waitForLine('Inspector: '), `Inspector: ${address}`);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // No sandbox (CI runs as root); no background connections on a machine without a network.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => message.type() === 'error' && problems.push(message.text()));

  await page.goto(`${address}#token=${TOKEN}`);
  await page.waitForFunction(() => document.getElementById('status').value === 'connected');
  assert.equal(page.url(), address, 'the token leaves the address bar once read');
  assert.equal(await page.inputValue('#url'), `${server.url}/ws`);
  await rows(page, 'agent_list_response', 1);
  assert.equal(await page.textContent('#agents'), 'no agents');

  // A runtime from the form the schema made for `runtime_start` (the command selected at first).
  assert.equal(await page.inputValue('#command'), 'runtime_start');
  await page.fill('[name="create_agent.body"]', JSON.stringify({ name: 'Inspected' }));
  await page.selectOption('[name="mode"]', { label: 'strict' });
  await page.fill('[name="external_tools"]', JSON.stringify([{ tools: [WEATHER_TOOL] }]));
  await page.fill('[name="resume_after"]', '0');
  const frame = JSON.parse(await page.inputValue('#command-json'));
  assert.match(frame.request_id, /^runtime-start-\d+$/);
  assert.deepEqual(
    { ...frame, request_id: undefined },
    {
      type: 'runtime_start',
      request_id: undefined,
      create_agent: { body: { name: 'Inspected' } },
      mode: 'strict',
      external_tools: [{ tools: [WEATHER_TOOL] }],
      resume_after: 0,
    },
  );
  assert.equal(await page.textContent('#command-check'), '✓ a valid ClientFrame');
  await page.click('#send');
  await page.waitForSelector('#runtimes li.selected');
  await page.waitForSelector('#agents li.selected');
  assert.match(await page.textContent('#agents li.selected'), /^Inspectedagent-/);

  // A turn from the `input` form, its scope filled in from the selected runtime.
  await page.selectOption('#command', 'input');
  assert.match(await page.inputValue('[name="runtime.agent_id"]'), /^agent-/);
  assert.match(await page.inputValue('[name="runtime.conversation_id"]'), /^conv-/);
  await page.selectOption('[name="payload.kind"]', 'create_message');
  const ask = 'run [[tool: Bash {"command":"echo approved by hand"}]]';
  await page.fill('[name="payload.messages"]', JSON.stringify([{ role: 'user', content: ask }]));
  await page.click('#send');

  // Strict mode asks: the page shows the question, and the question whole in the detail view.
  const approval = page.locator('.card.approval');
  await approval.waitFor();
  assert.match(await approval.textContent(), /^Bash wants to run/);
  assert.match(await approval.locator('pre').textContent(), /"command": "echo approved by hand"/);
  assert.match(await approval.locator('.suggestion').first().textContent(), /don't ask again for 'echo approved by hand'/);
  await page.click('#frames .frame[data-type="control_request"]');
  assert.equal(await page.textContent('#detail-check'), '✓ a valid ServerFrame (control_request)');
  assert.equal(JSON.parse(await page.textContent('#detail-json')).request.tool_name, 'Bash');
  if (process.env.INSPECTOR_SCREENSHOT) {
    await page.evaluate(() => document.getElementById('side').scrollTo(0, 0));
    await page.screenshot({ path: process.env.INSPECTOR_SCREENSHOT });
  }
  await approval.locator('button', { hasText: 'Allow' }).click();
  await rows(page, 'turn_finished', 1);
  assert.ok((await summaries(page, 'stream_delta')).some((line) => line.startsWith('tool_return_message · approved by hand')));
  assert.equal(await page.locator('.card').count(), 0);

  // The external tool: approved, then answered by hand.
  await page.fill('#say-text', 'weather? [[tool: lookup_weather {"city":"Paris"}]]');
  await page.click('#say-button');
  await approval.waitFor();
  await approval.locator('button', { hasText: 'Allow' }).click();
  const call = page.locator('.card.tool-call');
  await call.waitFor();
  assert.match(await call.textContent(), /^external tool lookup_weather/);
  await call.locator('textarea').fill('Sunny, 21°C');
  await call.locator('button', { hasText: 'Return result' }).click();
  await rows(page, 'turn_finished', 2);
  assert.deepEqual(await summaries(page, 'turn_finished'), ['end_turn', 'end_turn']);

  // Every frame both ways was shown, and each one is what the schema says.
  const types = new Set(await page.locator('#frames .frame .type').allTextContents());
  for (const type of [
    'runtime_start',
    'runtime_start_response',
    'input',
    'input_accepted',
    'control_request',
    'stream_delta',
    'external_tool_call_request',
    'external_tool_call_response',
    'turn_finished',
  ]) {
    assert.ok(types.has(type), `${type} among ${[...types].join(', ')}`);
  }
  assert.equal(await page.locator('#frames .frame.invalid').count(), 0);
  await page.click('#frames .frame[data-type="external_tool_call_response"]');
  assert.equal(await page.textContent('#detail-check'), '✓ a valid ClientFrame (external_tool_call_response)');
  assert.deepEqual(JSON.parse(await page.textContent('#detail-json')).result, { content: [{ type: 'text', text: 'Sunny, 21°C' }] });

  // Filters: by type, by direction; what is shown can be saved for `letta-app-server-tools validate`.
  await page.selectOption('#filter-type', 'turn_finished');
  assert.equal(await page.locator('#frames .frame').count(), 2);
  const download = page.waitForEvent('download');
  await page.click('#save');
  const saved = (await readFile(await (await download).path(), 'utf8')).trimEnd().split('\n').map((line) => JSON.parse(line));
  assert.deepEqual(saved.map(({ dir }) => dir), ['in', 'in']);
  assert.deepEqual(saved.map(({ raw }) => JSON.parse(raw).stop_reason), ['end_turn', 'end_turn']);
  assert.ok(saved.every(({ at }) => !Number.isNaN(Date.parse(at))));
  await page.selectOption('#filter-type', '');
  await page.selectOption('#filter-direction', 'out');
  assert.deepEqual(new Set(await page.locator('#frames .frame .dir').allTextContents()), new Set(['↑']));
  await page.selectOption('#filter-direction', '');

  // A frame that breaks the schema is called out before it goes, and after.
  await page.selectOption('#command', 'input');
  const broken = JSON.parse(await page.inputValue('#command-json'));
  broken.payload = { kind: 'create_message' };
  await page.fill('#command-json', JSON.stringify(broken));
  assert.match(await page.textContent('#command-check'), /^✗ not a valid ClientFrame: 1 problem\/payload\/messages: required$/);
  await page.click('#send');
  await rows(page, 'error', 1);
  assert.equal(await page.locator('#frames .frame.invalid').count(), 1);
  assert.equal(await page.locator('#frames .frame.invalid').getAttribute('data-type'), 'input');

  // The history of the runtime's conversation.
  await page.click('#runtimes li.selected button:has-text("history")');
  await page.waitForSelector('#messages li');
  const history = await page.locator('#messages li').allTextContents();
  assert.ok(history.some((line) => line.startsWith('user_message') && line.endsWith(ask)), history.join('\n'));
  assert.ok(history.some((line) => line.startsWith('tool_return_message') && line.endsWith('Sunny, 21°C')), history.join('\n'));

  // After a reconnect the runtime resumes after the last numbered event it saw.
  await page.click('#disconnect-button');
  assert.equal(await page.textContent('#status'), 'disconnected');
  const facts = '#runtimes li.selected small';
  const cursor = /^\d+ frames · seq (\d+) · /.exec(await page.textContent(facts))[1];
  await page.click('#connect-button');
  await page.waitForFunction(() => document.getElementById('status').value === 'connected');
  await page.waitForFunction((facts) => / · resumed after \d+$/.test(document.querySelector(facts).textContent), facts);
  assert.equal(/ · resumed after (\d+)$/.exec(await page.textContent(facts))[1], cursor);

  // A wrong token is refused.
  await page.fill('#token', 'not-the-token');
  await page.click('#connect-button');
  await page.waitForFunction(() => document.getElementById('status').value === 'refused');
  assert.deepEqual(problems.filter((text) => !text.includes('WebSocket connection')), []);
});
