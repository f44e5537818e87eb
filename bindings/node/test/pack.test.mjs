// The README's controller (examples/controller.mjs) runs from the packed tarball installed into
// an empty project, offline, against the real server; the README shows that very file.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { PACKAGE, assertReadmeShows, startServer } from './support.mjs';

const run = promisify(execFile);
const EXAMPLE = path.join(PACKAGE, 'examples', 'controller.mjs');

let server;
let project;
before(async () => {
  server = await startServer();
  project = await mkdtemp(path.join(tmpdir(), 'letta-node-pack-'));
});
after(async () => {
  await server.stop();
  await rm(project, { recursive: true, force: true });
});

test('the packed package installs into an empty project and runs the README controller', async () => {
  const npm = { cwd: project, timeout: 120_000 };
  const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', project, PACKAGE], npm);
  const [{ filename, files }] = JSON.parse(packed);
  const contents = files.map((file) => file.path);
  for (const needed of ['index.js', 'index.mjs', 'index.d.ts', 'frames.d.ts', 'lib/client.js']) {
    assert.ok(contents.includes(needed), `${needed} is missing from ${contents.join(', ')}`);
  }
  assert.ok(contents.some((file) => file.endsWith('.node')), 'the native addon is packed');
  assert.ok(!contents.some((file) => file.startsWith('test/') || file.startsWith('src/')), contents.join(', '));

  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'empty', private: true }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', path.join(project, filename)], npm);
  assert.deepEqual(await readdir(path.join(project, 'node_modules')), ['.package-lock.json', 'letta-app-server']);

  await copyFile(EXAMPLE, path.join(project, 'controller.mjs'));
  const { stdout } = await run(process.execPath, ['controller.mjs'], {
    cwd: project,
    timeout: 20_000,
    env: { ...process.env, LETTA_APP_SERVER_URL: server.url },
  });
  assert.match(stdout, /Sunny and 21°C in Paris/);
  assert.match(stdout, /\[end_turn\]\n$/);
});

test('the README shows the example controller as it is', async () => {
  await assertReadmeShows('controller.mjs');
});
