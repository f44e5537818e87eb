// Editing and following a file against the real server: `editFile`, and `watchFile`'s async
// iterator of `file_changed` frames, which unwatches when closed.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { assertReadmeShows, connectedClient, runExample, startServer } from './support.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** A connected client, closed when the test ends. */
const connected = (t, options) => connectedClient(t, server.url, options);

/** A directory of its own for a test, removed when it ends. */
async function directory(t) {
  const dir = await realpath(await mkdtemp(path.join(tmpdir(), 'letta-node-watch-')));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `file` until `changes` yields a change (the watch starts once the server read it). */
async function nextChange(changes, file) {
  const next = changes.next();
  for (let n = 0; n < 50; n++) {
    await writeFile(file, `write ${n}\n`);
    const result = await Promise.race([next, new Promise((resolve) => setTimeout(() => resolve(null), 400))]);
    if (result) return result.value;
  }
  throw new Error(`no change of ${file} reported`);
}

test('editFile replaces text and answers with the count and the line', async (t) => {
  const client = await connected(t);
  const file = path.join(await directory(t), 'main.js');
  await writeFile(file, 'let a = 1;\nlet b = a;\n');
  const answer = await client.editFile({ file_path: file, old_string: 'let b = a;', new_string: 'let b = a * 2;' });
  assert.deepEqual(answer, {
    type: 'edit_file_response',
    request_id: answer.request_id,
    success: true,
    file_path: file,
    message: `Successfully replaced 1 occurrence in ${file}`,
    replacements: 1,
    start_line: 2,
  });
  assert.equal(await readFile(file, 'utf8'), 'let a = 1;\nlet b = a * 2;\n');

  // A failed edit is an answer with `success: false`, as on real Letta.
  const missing = await client.editFile({ file_path: file, old_string: 'absent', new_string: 'x' });
  assert.equal(missing.success, false);
  assert.equal(missing.message, null);
  assert.match(missing.error, /^String to replace not found in file\./);
});

test('watchFile yields the changes of a file until it is closed', async (t) => {
  const client = await connected(t);
  const file = path.join(await directory(t), 'notes.md');
  await writeFile(file, '');
  const changes = client.watchFile(file);
  const change = await nextChange(changes, file);
  assert.equal(change.type, 'file_changed');
  assert.equal(change.path, file);
  assert.ok(change.lastModified > 1.7e12, `milliseconds since the epoch: ${change.lastModified}`);

  // Closed (as leaving a `for await` loop closes it): the iteration ends.
  changes.close();
  assert.deepEqual(await changes.next(), { value: undefined, done: true });
});

test('watchFile throws when the server refuses the watch', async (t) => {
  const client = await connected(t);
  const missing = path.join(await directory(t), 'missing.md');
  const changes = client.watchFile(missing);
  await assert.rejects(changes.next(), /ENOENT: no such file or directory, watch/);
  changes.close();
});

test("the README's file viewer follows the controller's, the agent's and another program's changes", async (t) => {
  const file = path.join(await directory(t), 'status.txt');
  await writeFile(file, 'status: draft\n');
  const lines = await runExample('file-viewer.mjs', server.url, [file]);
  assert.deepEqual(lines.slice(0, 3), [
    'opened: "status: draft\\n"',
    'edit_file: "status: final\\n"',
    'agent edit: "status: published\\n"',
  ]);
  assert.equal(lines.at(-1), 'changed on disk: "rewritten elsewhere\\n"');
  await assertReadmeShows('file-viewer.mjs');
});
