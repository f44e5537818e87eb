// The search commands against the real server through the typed methods: `searchFiles` (fuzzy,
// `.gitignore` honoured) and `grepInFiles` (line matches with context and totals).

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { connectedClient, startServer } from './support.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** A project with sources, an ignored build directory and a `.gitignore`. */
async function project(t) {
  const root = await mkdtemp(path.join(tmpdir(), 'letta-node-search-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  for (const [file, text] of [
    ['src/main.rs', 'fn main() {\n    hello();\n}\n'],
    ['src/hello.rs', 'pub fn hello() {}\n'],
    ['target/main.rs', 'fn main() { hello(); }\n'],
    ['.gitignore', 'target/\n'],
  ]) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), text);
  }
  return root;
}

test('searchFiles finds paths fuzzily and skips ignored files', async (t) => {
  const client = await connectedClient(t, server.url);
  const root = await project(t);
  const found = await client.searchFiles({ query: 'smain', cwd: root });
  assert.deepEqual(found.files, [{ path: 'src/main.rs', type: 'file' }]);
  assert.equal(found.success, true);
  const missing = await client.searchFiles({ query: 'x', cwd: path.join(root, 'nope') });
  assert.equal(missing.success, false);
  assert.match(missing.error, /^ENOENT: no such file or directory/);
});

test('grepInFiles answers matching lines with columns, context and totals', async (t) => {
  const client = await connectedClient(t, server.url);
  const root = await project(t);
  const found = await client.grepInFiles({ query: 'HELLO', cwd: root, context_lines: 1, max_results: 1 });
  assert.deepEqual(found.matches, [
    { path: 'src/hello.rs', line: 1, column: 8, column_end: 13, text: 'pub fn hello() {}', before: [], after: [] },
  ]);
  assert.equal(found.total_matches, 2);
  assert.equal(found.total_files, 2);
  assert.equal(found.truncated, true);
  const invalid = await client.grepInFiles({ query: '(', is_regex: true, cwd: root });
  assert.equal(invalid.success, false);
  assert.match(invalid.error, /regex parse error/);
});
