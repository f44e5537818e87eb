// The typed example controller compiles against the package's declarations and the frame types
// generated from the schema (`tsc --noEmit`, strict).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

import { PACKAGE } from './support.mjs';

test('tsc --noEmit accepts the typed example controller', async () => {
  const tsc = path.join(PACKAGE, 'node_modules', 'typescript', 'bin', 'tsc');
  const run = promisify(execFile)(process.execPath, [tsc, '-p', path.join(PACKAGE, 'tsconfig.json')], {
    cwd: PACKAGE,
  });
  const outcome = await run.then(
    () => '',
    (error) => `${error.stdout}${error.stderr}`,
  );
  assert.equal(outcome, '');
});
