// The process exits normally once the client is closed: no handle is left behind, even with an
// iterator still waiting and a message handler that threw.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { PACKAGE, startServer } from './support.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

test('closing the client lets the process exit, and a throwing handler does not stop the others', async () => {
  const script = path.join(PACKAGE, 'test', 'fixtures', 'exits.mjs');
  // execFile fails if the child does not end by itself within the timeout.
  const { stdout } = await promisify(execFile)(process.execPath, [script, server.url], { timeout: 15_000 });
  const outcome = JSON.parse(stdout);
  assert.equal(outcome.stopReason, 'end_turn');
  assert.equal(outcome.turnAccepted, true);
  assert.ok(outcome.frames > 20, String(outcome.frames));
  // Every frame the throwing handler saw was rethrown outside the dispatcher.
  assert.ok(outcome.thrown > 20, String(outcome.thrown));
});
