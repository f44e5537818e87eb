// Terminals through `client.terminal()` against the real server: output as an async iterator,
// write, resize, kill, `exited`, a shell that exits at once or cannot start, and megabytes of
// output received whole and in order.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';

import { connectedClient, serverWithShell } from './support.mjs';

let server;
before(async () => {
  server = await serverWithShell('/bin/sh');
});
after(() => server.stop());

/** Reads the terminal until its output contains `needle`; returns what was read. */
async function until(term, needle) {
  let output = '';
  while (!output.includes(needle)) {
    const { value, done } = await term.next();
    assert.ok(!done, `the terminal ended before ${JSON.stringify(needle)}: ${JSON.stringify(output)}`);
    output += value;
  }
  return output;
}

test('a terminal echoes input, resizes, and is killed', async (t) => {
  const client = await connectedClient(t, server.url);
  const term = await client.terminal({ cols: 100, rows: 30 });
  assert.match(term.id, /^terminal-\d+$/);
  assert.ok(term.pid > 1);

  await term.write('echo node-$((6*7)); stty size\n');
  await until(term, 'node-42\r\n30 100\r\n');
  await term.resize(120, 40);
  await term.write('stty size\n');
  await until(term, '40 120\r\n');

  await term.kill();
  for await (const chunk of term) assert.equal(typeof chunk, 'string');
  assert.deepEqual(await term.exited, { exitCode: 129 });

  // A killed terminal: the server's answer to input for a terminal it does not know.
  await assert.rejects(term.write('ls\n'), { message: `Terminal not found: ${term.id}` });
  await assert.rejects(term.resize(1, 1), { message: `Terminal not found: ${term.id}` });
});

test('breaking out of the output kills the shell', async (t) => {
  const client = await connectedClient(t, server.url);
  const term = await client.terminal({ terminalId: 'mine' });
  assert.equal(term.id, 'mine');
  await term.write('echo ready\n');
  for await (const chunk of term) {
    if (chunk.includes('ready\r\n')) break;
  }
  await assert.rejects(term.exited, { message: 'Terminal closed' });
  for (let i = 0; i < 250 && existsSync(`/proc/${term.pid}`); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(!existsSync(`/proc/${term.pid}`), 'the shell is reaped');
  await assert.rejects(term.write('ls\n'), { message: 'Terminal not found: mine' });
});

test('megabytes of output arrive whole and in order, at the reader’s pace', async (t) => {
  const client = await connectedClient(t, server.url);
  const term = await client.terminal({ capacity: 4 });
  await term.write('stty -echo; head -c 5000000 /dev/zero | base64 -w 76; exit 0\n');
  let output = '';
  let chunks = 0;
  for await (const chunk of term) {
    assert.equal(typeof chunk, 'string', 'no gap');
    output += chunk;
    if (++chunks % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.deepEqual(await term.exited, { exitCode: 0 });
  // The shell's prompt may come before the first line.
  const lines = output
    .split('\r\n')
    .map((line) => line.split(' ').at(-1))
    .filter((line) => /^A+=*$/.test(line));
  const expected = Math.ceil(5_000_000 / 3) * 4;
  assert.equal(lines.join('').length, expected);
  assert.ok(lines.slice(0, -1).every((line) => line.length === 76));
  assert.ok(chunks > 20, `${chunks} chunks`);
});

test('a shell that exits at once, and one that cannot start', async (t) => {
  const quick = await serverWithShell('/bin/true');
  t.after(() => quick.stop());
  const client = await connectedClient(t, quick.url);
  const term = await client.terminal();
  assert.deepEqual(await term.wait(), { exitCode: 0 });

  const broken = await serverWithShell('/no/such/shell');
  t.after(() => broken.stop());
  const other = await connectedClient(t, broken.url);
  await assert.rejects(other.terminal(), { message: 'spawn /no/such/shell ENOENT' });
});
