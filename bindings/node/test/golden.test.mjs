// Every golden frame of tests/frames passes through the binding unchanged: server frames from a
// websocket server to onMessage and to events(), client frames from send() to the server.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { WebSocketServer } from 'ws';

import { createAppServerClient } from '../index.mjs';
import { REPO } from './support.mjs';

const meta = JSON.parse(readFileSync(path.join(REPO, 'schema', 'meta.json'), 'utf8'));

/** The golden frames of these types, as `{ name, frame }`. */
function golden(types) {
  return [...new Set(types)].flatMap((type) => {
    const directory = path.join(REPO, 'tests', 'frames', type);
    return readdirSync(directory)
      .filter((file) => file.endsWith('.json'))
      .sort()
      .map((file) => ({
        name: `${type}/${file}`,
        frame: JSON.parse(readFileSync(path.join(directory, file), 'utf8')),
      }));
  });
}

/**
 * Whether the server sends this frame: its type's sides. Of a type both sides send
 * (`file_ops`), the server sends every form, clients only the one without the runtime envelope.
 */
function fromServer(frame) {
  return meta.server_frames.includes(frame.type);
}

/** Whether clients send this frame (see `fromServer`). */
function fromClient(frame) {
  return meta.client_frames.includes(frame.type) && !('event_seq' in frame);
}

const corpus = golden([...meta.server_frames, ...meta.client_frames]);
const serverFrames = corpus.filter(({ frame }) => fromServer(frame));
const clientFrames = corpus.filter(({ frame }) => fromClient(frame));

/** A websocket server on 127.0.0.1 that runs `serve(socket, url)` for each connection. */
async function fakeServer(serve) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  wss.on('connection', (socket, request) => serve(socket, new URL(request.url, 'ws://x')));
  return {
    url: `ws://127.0.0.1:${wss.address().port}`,
    close: () => new Promise((resolve) => wss.close(resolve)),
  };
}

test('the corpus covers every frame type', () => {
  assert.ok(serverFrames.length > 50 && clientFrames.length > 20);
  const types = new Set([...serverFrames, ...clientFrames].map(({ frame }) => frame.type));
  for (const type of [...meta.server_frames, ...meta.client_frames]) assert.ok(types.has(type), type);
});

test('every golden server frame reaches onMessage and events() unchanged', async () => {
  // Each frame on a connection of its own: the client delivers a replayed control_request
  // once per runtime and request_id, and two golden approvals share one.
  const server = await fakeServer((socket, url) => {
    socket.send(JSON.stringify(serverFrames[Number(url.searchParams.get('frame'))].frame));
  });
  try {
    await Promise.all(
      serverFrames.map(async ({ name, frame }, index) => {
        const client = createAppServerClient({ url: `${server.url}/ws?frame=${index}` });
        const viaHandler = new Promise((resolve) => client.onMessage(resolve));
        const events = client.events();
        await client.connect();
        assert.deepEqual(await viaHandler, frame, name);
        assert.deepEqual((await events.next()).value, frame, name);
        await client.close();
      }),
    );
  } finally {
    await server.close();
  }
});

test('a burst of every golden server frame arrives in order over one connection', async () => {
  // Without the approvals a client delivers once (the replayed control_request).
  const seen = new Set();
  const burst = serverFrames.filter(({ frame }) => {
    if (frame.type !== 'control_request') return true;
    const key = JSON.stringify([frame.runtime, frame.request_id]);
    return !seen.has(key) && seen.add(key);
  });
  const server = await fakeServer((socket) => {
    for (const { frame } of burst) socket.send(JSON.stringify(frame));
  });
  const client = createAppServerClient({ url: server.url });
  try {
    const received = [];
    const all = new Promise((resolve) =>
      client.onMessage((frame) => received.push(frame) === burst.length && resolve()),
    );
    await client.connect();
    await all;
    assert.deepEqual(received, burst.map(({ frame }) => frame));
  } finally {
    await client.close();
    await server.close();
  }
});

test('every golden client frame reaches the server unchanged through send()', async () => {
  const received = [];
  let done;
  const all = new Promise((resolve) => {
    done = resolve;
  });
  const server = await fakeServer((socket) => {
    socket.on('message', (data) => received.push(JSON.parse(data)) === clientFrames.length && done());
  });
  const client = createAppServerClient({ url: server.url });
  try {
    await client.connect();
    for (const { frame } of clientFrames) client.send(frame);
    await all;
    assert.deepEqual(received, clientFrames.map(({ frame }) => frame));
  } finally {
    await client.close();
    await server.close();
  }
});
