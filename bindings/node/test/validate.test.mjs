// `validate` checks frames against the schema bundled with the package: every invalid-frame case
// of tests/invalid_frames is rejected, the golden frames are accepted.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { validate } from '../index.mjs';
import cjs from '../index.js';
import { REPO } from './support.mjs';

/** The JSON files of a corpus directory, parsed. */
function corpus(...parts) {
  const directory = path.join(REPO, 'tests', ...parts);
  return readdirSync(directory)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ name: file, json: JSON.parse(readFileSync(path.join(directory, file), 'utf8')) }));
}

test('a valid frame has no violations, as an object or as text', () => {
  assert.deepEqual(validate({ type: 'app_server_info', request_id: 'i-1' }), []);
  assert.deepEqual(validate('{"type":"app_server_info","request_id":"i-1"}'), []);
  assert.equal(cjs.validate, validate);
});

test('each violation names the offending field and the reason', () => {
  assert.deepEqual(validate({ type: 'runtime_start', request_id: 'rs-1', agent_id: 42 }), [
    { path: 'agent_id', reason: '42 is not of types "null", "string"' },
  ]);
  assert.deepEqual(validate({ type: 'input', request_id: 'in-1', runtime: { agent_id: 'a', conversation_id: 'c' }, payload: { kind: 'bogus' } }), [
    { path: 'payload.kind', reason: '"bogus" is not one of "create_message", "approval_response", "teleport_continue"' },
  ]);
  assert.match(validate('{not json')[0].reason, /^not JSON/);
  assert.deepEqual(validate([1, 2]), [{ path: '', reason: 'a frame is a JSON object, not an array' }]);
});

test('the direction decides which frame types are known', () => {
  assert.deepEqual(validate({ type: 'pong' }), []);
  assert.deepEqual(validate({ type: 'pong' }, { direction: 'server' }), [
    { path: 'type', reason: '`pong` is not a server frame type of this schema' },
  ]);
  assert.throws(() => validate({ type: 'pong' }, { direction: 'sideways' }), /not a direction/);
  assert.throws(() => validate(undefined), TypeError);
});

test('every invalid-frame case is rejected', () => {
  const cases = corpus('invalid_frames');
  assert.ok(cases.length > 100, `${cases.length} cases`);
  for (const { name, json } of cases) {
    assert.notDeepEqual(validate(json.text, { direction: 'client' }), [], name);
  }
});

test('every golden frame is accepted', () => {
  const types = readdirSync(path.join(REPO, 'tests', 'frames'));
  let checked = 0;
  for (const type of types) {
    for (const { name, json } of corpus('frames', type)) {
      // `file_ops` goes both ways: the server sends every form, clients the one without the
      // runtime envelope.
      const enveloped = json.event_seq !== undefined;
      const directions = type !== 'file_ops' ? [undefined] : enveloped ? ['server'] : ['client', 'server'];
      for (const direction of directions) assert.deepEqual(validate(json, { direction }), [], `${type}/${name}`);
      checked += 1;
    }
  }
  assert.ok(checked > 300, `${checked} golden frames`);
});
