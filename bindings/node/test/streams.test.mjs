// Commands answered by a stream of frames (`requestStream`, and the generated method of each
// such command) against a scripted peer: the protocol table has no stream command the server
// answers yet. The Rust client correlates the answers; these tests check what JavaScript sees.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { WebSocketServer } from 'ws';

import { AppServerError } from '../index.mjs';
import { collect, connectedClient } from './support.mjs';

/**
 * A peer that answers each command by its `type`: `list_widgets` with two chunks (a frame of
 * another request between them, a chunk after the last one), `refuse_widgets` with an `error`
 * frame, `deny_widgets` with a refusal that is also the last chunk, `stall_widgets` with one
 * chunk and then nothing, `drop_widgets` with one chunk and then closing the socket.
 */
function scriptedPeer() {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('connection', (socket) => {
    socket.on('message', (data) => {
      const command = JSON.parse(String(data));
      const id = command.request_id;
      const chunk = (entries, done) => ({ type: 'widgets_response', request_id: id, entries, done, success: true });
      const frames = {
        list_widgets: [
          chunk(['a'], false),
          { type: 'widgets_response', request_id: 'someone-else', entries: ['x'], done: true, success: true },
          chunk(['b', 'c'], true),
          chunk(['late'], true),
        ],
        refuse_widgets: [{ type: 'error', request_id: id, code: 'unsupported', message: 'no widgets here' }],
        deny_widgets: [
          { type: 'widgets_response', request_id: id, entries: [], done: true, success: false, error: 'widgets are off' },
        ],
        stall_widgets: [chunk(['a'], false)],
        drop_widgets: [chunk(['a'], false)],
      }[command.type];
      for (const frame of frames ?? []) socket.send(JSON.stringify(frame));
      if (command.type === 'drop_widgets') socket.terminate();
    });
  });
  return server;
}

let peer;
let url;
before(async () => {
  peer = scriptedPeer();
  await new Promise((resolve) => peer.once('listening', resolve));
  url = `ws://127.0.0.1:${peer.address().port}`;
});
after(() => new Promise((resolve) => peer.close(resolve)));

/** A connected client, closed when the test ends. */
const connected = (t, options) => connectedClient(t, url, options);

/** What an iteration yields, and what it ends with: `done`, or the rejection's message. */
async function outcome(iterator) {
  const frames = [];
  try {
    for await (const frame of iterator) frames.push(frame.entries);
    return { frames, end: 'done' };
  } catch (error) {
    return { frames, end: error.message, error };
  }
}

test('a stream answer ends after the frame with done: true', async (t) => {
  const client = await connected(t);
  const sent = [];
  client.onSend((command) => sent.push(command.request_id));
  assert.deepEqual(await outcome(client.requestStream('list_widgets')), {
    frames: [['a'], ['b', 'c']],
    end: 'done',
  });
  assert.deepEqual(sent, ['list_widgets-1']);
  const frames = await collect(client.requestStream({ type: 'list_widgets', request_id: 'mine' }));
  assert.deepEqual(
    frames.map((frame) => [frame.request_id, frame.done]),
    [
      ['mine', false],
      ['mine', true],
    ],
  );
});

test('a stream answer ends at an error frame; a refusal is the last frame', async (t) => {
  const client = await connected(t);
  const refused = await outcome(client.requestStream('refuse_widgets'));
  assert.equal(refused.end, 'no widgets here');
  assert.ok(refused.error instanceof AppServerError);
  assert.equal(refused.error.code, 'unsupported');
  // `success: false` is an answer, as for the other requests of the official helper's API.
  const denied = await collect(client.requestStream('deny_widgets'));
  assert.deepEqual(
    denied.map((frame) => [frame.success, frame.error, frame.done]),
    [[false, 'widgets are off', true]],
  );
});

test('a stream answer ends at a timeout or a disconnect', async (t) => {
  const client = await connected(t, { requestTimeoutMs: 30_000 });
  const stalled = await outcome(client.requestStream('stall_widgets', {}, { timeoutMs: 300 }));
  assert.deepEqual([stalled.frames, stalled.end], [[['a']], 'Timed out waiting for stall_widgets-1']);
  const dropped = await outcome(client.requestStream('drop_widgets'));
  assert.deepEqual([dropped.frames, dropped.end], [[['a']], 'App-server socket closed']);
});

test('closing the client ends a stream answer; breaking out withdraws it', async (t) => {
  const client = await connected(t);
  const stalled = client.requestStream('stall_widgets');
  assert.deepEqual((await stalled.next()).value.entries, ['a']);
  const ended = outcome(stalled);
  await client.close();
  assert.equal((await ended).end, 'App-server client closed');
  const other = await connected(t);
  for await (const frame of other.requestStream('list_widgets')) {
    assert.deepEqual(frame.entries, ['a']);
    break;
  }
  // The client goes on.
  assert.equal((await collect(other.requestStream('list_widgets'))).length, 2);
});
