// The workspace commands against the real server: a terminal (its pushes arrive through
// `onMessage`), and the branch picker's typed methods.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { connectedClient, serverWithShell, until } from './support.mjs';

let server;
before(async () => {
  // Not the user's shell: an interactive bash would read the machine's start-up files.
  server = await serverWithShell('/bin/sh');
});
after(() => server.stop());

/** A connected client, closed when the test ends. */
const connected = (t, options) => connectedClient(t, server.url, options);

test('a terminal runs the shell, echoes typed input and reports its exit', async (t) => {
  const client = await connected(t);
  let output = '';
  t.after(
    client.onMessage((frame) => {
      if (frame.type === 'terminal_output' && frame.terminal_id === 'n1') output += frame.data;
    }),
  );
  const spawned = until(client, (frame) => frame.type === 'terminal_spawned');
  await client.send({ type: 'terminal_spawn', terminal_id: 'n1', cols: 80, rows: 24 });
  const frame = (await spawned).at(-1);
  assert.equal(frame.terminal_id, 'n1');
  assert.ok(frame.pid > 1);

  const exited = until(client, (f) => f.type === 'terminal_exited');
  await client.send({ type: 'terminal_input', terminal_id: 'n1', data: 'echo node-$((6*7))\nexit 7\n' });
  assert.deepEqual((await exited).at(-1), { type: 'terminal_exited', terminal_id: 'n1', exitCode: 7 });
  assert.match(output, /node-42\r\n/);

  // A terminal that is gone: this server's error frame.
  const refused = until(client, (f) => f.type === 'error');
  await client.send({ type: 'terminal_input', terminal_id: 'n1', data: 'ls\n' });
  assert.deepEqual((await refused).at(-1), {
    type: 'error',
    code: 'invalid_frame',
    message: 'Terminal not found: n1',
    frame_type: 'terminal_input',
  });
});

test('branches are searched and checked out with the typed methods', async (t) => {
  const client = await connected(t);
  const repo = await mkdtemp(path.join(tmpdir(), 'letta-node-git-'));
  t.after(() => rm(repo, { recursive: true, force: true }));
  const git = (...args) =>
    execFileSync('git', ['-C', repo, ...args], {
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 'T',
        GIT_AUTHOR_EMAIL: 't@example.com',
        GIT_COMMITTER_NAME: 'T',
        GIT_COMMITTER_EMAIL: 't@example.com',
      },
    });
  git('init', '--quiet', '--initial-branch=main');
  await writeFile(path.join(repo, 'README'), 'hello\n');
  git('add', 'README');
  git('commit', '--quiet', '-m', 'first');

  const created = await client.checkoutBranch({ branch: 'feature/node', create: true, cwd: repo });
  assert.equal(created.success, true);
  assert.equal(created.branch, 'feature/node');
  const found = await client.searchBranches({ query: 'NODE', cwd: repo });
  assert.deepEqual(found.branches, [{ name: 'feature/node', is_current: true, is_remote: false }]);
  const missing = await client.checkoutBranch({ branch: 'nope', cwd: repo });
  assert.equal(missing.success, false);
  assert.equal(missing.error, 'fatal: invalid reference: nope');
});
