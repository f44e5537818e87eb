// The client against the real server: the official helper's API and resolution behaviour,
// turns, the queue, abort, sync, approvals, external tools, reconnect, errors.

import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { after, before, describe, test } from 'node:test';

import {
  AppServerError,
  createAppServerClient,
  isAppServerInfoResponseMessage,
  resolveAppServerChannelUrl,
  resolveAppServerUrl,
} from '../index.mjs';
import { assistantText, collect, connectedClient, startServer, toolReturns, until, userText } from './support.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** A connected client, closed when the test ends. */
const connected = (t, options) => connectedClient(t, server.url, options);

async function newRuntime(client, extra = {}) {
  const started = await client.runtimeStart({ create_agent: { body: { name: 'Node test' } }, ...extra });
  assert.equal(started.success, true);
  return started.runtime;
}

/** A scripted model call of Bash, which asks first in `strict` mode. */
const BASH = '[[tool: Bash {"command":"echo hi","description":"x"}]]';

/** The frames an iterator yields up to the first of type `type` (gaps fail the test). */
async function readUntil(events, type) {
  const frames = [];
  for (;;) {
    const { value, done } = await events.next();
    assert.ok(!done && value.type !== 'gap', JSON.stringify(value));
    frames.push(value);
    if (value.type === type) return frames;
  }
}

/** The `request_id`s of the `control_request`s among `frames`. */
function approvalsIn(frames) {
  return frames.filter((frame) => frame.type === 'control_request').map((frame) => frame.request_id);
}

/** After an approval of `runtime` was answered: a new handler or iterator does not get it, nor a replay. */
async function answeredIsNotGivenAgain(client, runtime) {
  assert.deepEqual(client.pendingApprovals(), []);
  const seen = [];
  client.onMessage((frame) => seen.push(frame.type));
  const events = client.events({ runtime });
  await client.sync({ runtime });
  assert.deepEqual(approvalsIn(await readUntil(events, 'sync_response')), []);
  assert.ok(seen.includes('sync_response') && !seen.includes('control_request'), seen.join(', '));
  await events.return();
}

describe('the official helper API', () => {
  test('info and runtimeStart resolve with their responses, ids numbered per client', async (t) => {
    const client = await connected(t);
    const info = await client.info();
    assert.equal(info.request_id, 'app-server-info-1');
    assert.ok(isAppServerInfoResponseMessage(info));
    assert.equal(info.protocol_version, 1);
    const started = await client.runtimeStart({ create_agent: { body: { name: 'Ids' } } });
    assert.equal(started.type, 'runtime_start_response');
    assert.equal(started.request_id, 'runtime-start-2');
    assert.equal(client.nextRequestId(), 'req-3');
    const mine = await client.runtimeStart({ request_id: 'mine', agent_id: started.runtime.agent_id });
    assert.equal(mine.request_id, 'mine');
  });

  test('a streamed turn: handlers see every frame, in order, before the answer resolves', async (t) => {
    const client = await connected(t);
    const runtime = await newRuntime(client);
    const seen = [];
    client.onMessage((message, channel) => {
      assert.equal(channel, 'control');
      seen.push(message);
    });
    const finished = until(client, (frame) => frame.type === 'turn_finished');
    const accepted = await client.submitInput({ runtime, payload: userText('hello [[reply: Hello there!]]') });
    assert.equal(accepted.type, 'input_accepted');
    assert.equal(accepted.disposition, 'started');
    assert.ok(seen.includes(accepted), 'the handlers saw the input_accepted before it resolved');
    const frames = await finished;
    assert.equal(assistantText(frames), 'Hello there!');
    assert.equal(frames.at(-1).stop_reason, 'end_turn');
    const sequence = seen.filter((frame) => 'event_seq' in frame).map((frame) => frame.event_seq);
    assert.deepEqual(sequence, [...sequence].sort((a, b) => a - b));
  });

  test('queue: an input sent while a turn runs is queued; the turn helper yields only its own turn', async (t) => {
    const client = await connected(t);
    const runtime = await newRuntime(client);
    const first = await client.turn(runtime, 'first [[reply: one two three]] [[delay: 40]]');
    const second = await client.turn(runtime, 'second [[reply: second reply]]');
    assert.equal(first.accepted.disposition, 'started');
    assert.equal(second.accepted.disposition, 'queued');
    const [firstFrames, secondFrames] = await Promise.all([collect(first), collect(second)]);
    assert.equal(assistantText(firstFrames), 'one two three');
    assert.equal(assistantText(secondFrames), 'second reply');
    assert.equal(secondFrames.at(-1).type, 'turn_finished');
    assert.notEqual(firstFrames.at(-1).run_id, secondFrames.at(-1).run_id);

    // The queue as update_queue frames show it.
    const queued = until(client, (frame) => frame.type === 'update_queue' && frame.queue.length > 0);
    const busy = await client.turn(runtime, 'busy [[delay: 60]] [[chunks: 3]]');
    client.input({ runtime, payload: userText('queued behind') });
    const [update] = (await queued).slice(-1);
    assert.equal(update.queue[0].kind, 'message');
    await collect(busy);
  });

  test('abort cancels the running turn; when idle there is nothing to abort', async (t) => {
    const client = await connected(t);
    const runtime = await newRuntime(client);
    const turn = await client.turn(runtime, 'long [[deltas: 200]] [[delay: 20]]');
    const frames = [];
    for await (const frame of turn) {
      frames.push(frame);
      if (frame.type === 'stream_delta' && frame.delta.message_type === 'assistant_message') break;
    }
    const rest = collect(client.events({ runtime }));
    const finished = until(client, (frame) => frame.type === 'turn_finished');
    const aborted = await client.abort({ runtime });
    assert.equal(aborted.type, 'abort_message_response');
    assert.equal(aborted.request_id.startsWith('abort-'), true);
    assert.equal(aborted.aborted, true);
    assert.equal((await finished).at(-1).stop_reason, 'cancelled');
    assert.equal((await client.abort({ runtime })).aborted, false);
    await client.close();
    assert.ok((await rest).some((frame) => frame.type === 'turn_finished'));
  });

  test('sync replays the state, and the handlers see the replay before sync resolves', async (t) => {
    const owner = await connected(t);
    const runtime = await newRuntime(owner);
    const watcher = await connected(t);
    const seen = [];
    watcher.onMessage((frame) => seen.push(frame.type));
    const synced = await watcher.sync({ runtime });
    assert.equal(synced.type, 'sync_response');
    assert.equal(synced.success, true);
    assert.match(synced.request_id, /^sync-\d+$/);
    assert.ok(seen.includes('update_device_status'), seen.join(', '));
    assert.ok(seen.indexOf('update_device_status') < seen.indexOf('sync_response'), seen.join(', '));
    assert.ok(seen.includes('update_loop_status'));
    // Subscribed: the watcher sees the owner's turn.
    const watched = until(watcher, (frame) => frame.type === 'turn_finished');
    await collect(await owner.turn(runtime, '[[reply: watched]]'));
    assert.equal(assistantText(await watched), 'watched');
  });

  test('approvals: a control_request answered by an approval_response input; allow and deny', async (t) => {
    const client = await connected(t);
    const runtime = await newRuntime(client, { mode: 'standard' });
    for (const [decision, expected] of [
      [{ behavior: 'allow' }, 'as asked\n'],
      [{ behavior: 'deny', message: 'Not now' }, 'Not now'],
    ]) {
      const asked = until(client, (frame) => frame.type === 'control_request');
      const finished = until(client, (frame) => frame.type === 'turn_finished');
      await client.submitInput({ runtime, payload: userText('run [[tool: Bash {"command":"mkdir -p made && echo as asked"}]]') });
      const request = (await asked).at(-1);
      assert.match(request.request_id, /^perm-/);
      assert.equal(request.request.tool_name, 'Bash');
      const answer = { kind: 'approval_response', request_id: request.request_id, decision };
      assert.equal((await client.submitInput({ runtime, payload: answer })).accepted, true);
      assert.deepEqual(toolReturns(await finished), [expected]);
      // Only the first answer counts; the official helper resolves with what the server says.
      const late = await client.submitInput({ runtime, payload: answer });
      assert.equal(late.accepted, false);
      assert.match(late.error, /no longer pending/);
    }
  });

  test('external tools: results, rejections and synchronous throws all become answers', async (t) => {
    const client = await connected(t);
    const parameters = { type: 'object', properties: { city: { type: 'string' } } };
    const tools = ['lookup_weather', 'failing_tool', 'throwing_tool', 'structured_tool'].map((name) => ({
      name,
      description: name,
      parameters,
    }));
    const runtime = await newRuntime(client, { external_tools: [{ tools }] });
    const calls = [];
    client.onExternalToolCall((request) => {
      calls.push(request.tool_name);
      switch (request.tool_name) {
        case 'lookup_weather':
          return Promise.resolve(`Sunny in ${request.input.city}`);
        case 'failing_tool':
          return Promise.reject(new Error('the weather service is down'));
        case 'throwing_tool':
          throw new Error('handler bug');
        default:
          return { content: [{ type: 'text', text: 'structured' }] };
      }
    });
    const turn = await client.turn(
      runtime,
      'weather [[tool: lookup_weather {"city":"Paris"}]] [[tool: failing_tool {"city":"Oslo"}]] ' +
        '[[tool: throwing_tool {"city":"Rome"}]] [[tool: structured_tool {}]]',
    );
    const frames = await collect(turn);
    assert.deepEqual(toolReturns(frames), [
      'Sunny in Paris',
      'External tool execution error: the weather service is down',
      'External tool execution error: handler bug',
      'structured',
    ]);
    assert.deepEqual(calls, ['lookup_weather', 'failing_tool', 'throwing_tool', 'structured_tool']);
    assert.equal(frames.at(-1).stop_reason, 'end_turn');
  });

  test('request and requestRaw: the first frame with the id that the predicate accepts', async (t) => {
    const client = await connected(t);
    const answer = await client.request('app_server_info');
    assert.equal(answer.type, 'app_server_info_response');
    assert.match(answer.request_id, /^app_server_info-\d+$/);
    // A predicate that refuses the answer makes the request wait for another one.
    const refused = client.requestRaw(
      { type: 'app_server_info', request_id: 'picky' },
      { predicate: (frame) => frame.type === 'never', timeoutMs: 200 },
    );
    await assert.rejects(refused, { message: 'Timed out waiting for picky' });
    const sent = [];
    client.onSend((command) => sent.push(command.request_id));
    await client.request({ type: 'app_server_info', request_id: 'mine' });
    assert.deepEqual(sent, ['mine']);
  });
});

describe('errors and closing', () => {
  test('options are checked at once, with the official messages', () => {
    assert.throws(() => createAppServerClient({ url: 'ftp://127.0.0.1:1' }), {
      message: 'Unsupported app-server URL protocol: ftp:',
    });
    assert.throws(() => createAppServerClient({ url: server.url, authToken: '  ' }), {
      message: 'app-server auth token must not be empty',
    });
    assert.throws(() => createAppServerClient({ url: server.url, requestTimeoutMs: -1 }), TypeError);
    assert.throws(() => createAppServerClient({ url: server.url, eventCapacity: 0 }), TypeError);
    assert.throws(() => createAppServerClient({}), { name: 'TypeError', message: 'url must be a string' });
    assert.equal(resolveAppServerUrl('http://127.0.0.1:4500'), 'ws://127.0.0.1:4500/ws');
    assert.equal(resolveAppServerChannelUrl('ws://h:1/ws?channel=stream&a=1', 'stream'), 'ws://h:1/ws?a=1');
  });

  test('a server that cannot be reached: connect rejects, commands too, and iterators end', async () => {
    const client = createAppServerClient({ url: 'ws://127.0.0.1:1' });
    const before = client.events();
    await assert.rejects(client.connect(), /^Error: App-server WebSocket failed to open: /);
    await assert.rejects(client.info(), /App-server WebSocket failed to open/);
    assert.deepEqual(await before.next(), { value: undefined, done: true });
    assert.deepEqual(await client.events().next(), { value: undefined, done: true });
    await client.close();
  });

  test('timeouts, refused commands and this server’s error frames', async (t) => {
    const client = await connected(t, { requestTimeoutMs: 150 });
    // pong gets no answer.
    await assert.rejects(client.request({ type: 'pong', request_id: 'p-1' }), { message: 'Timed out waiting for p-1' });
    await assert.rejects(client.request({ type: 'pong', request_id: 'p-2' }, { timeoutMs: 50 }), {
      message: 'Timed out waiting for p-2',
    });
    // An error frame answers at once instead of a timeout.
    const scope = { agent_id: 'agent-none', conversation_id: 'conv-none' };
    const error = await client.sync({ runtime: scope }).catch((e) => e);
    assert.ok(error instanceof AppServerError, String(error));
    assert.equal(error.code, 'unknown_runtime');
    // A command this server does not implement is declined at once, with its own response.
    const channels = await client.channelsList();
    assert.equal(channels.type, 'channels_list_response');
    assert.equal(channels.success, false);
    assert.deepEqual(channels.channels, []);
    assert.match(channels.error, /does not support `channels_list`/);
    // resume_queue on a scope that does not exist answers success: false, without an error frame.
    const resumed = await client.resumeQueue({ runtime: scope });
    assert.deepEqual([resumed.type, resumed.success, resumed.resumed], ['resume_queue_response', false, 0]);
    // success: false resolves, as the official helper's does.
    const missing = await client.runtimeStart({ agent_id: 'agent-none' });
    assert.equal(missing.success, false);
  });

  test('close rejects pending requests with "App-server client closed"', async () => {
    const client = createAppServerClient({ url: server.url });
    await client.connect();
    const disconnects = [];
    client.onDisconnect((event) => disconnects.push(event));
    const pending = assert.rejects(client.request({ type: 'pong', request_id: 'never' }), {
      message: 'App-server client closed',
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.close();
    await pending;
    await assert.rejects(client.info(), { message: 'App-server client closed' });
    assert.deepEqual(disconnects, [], 'closing is not a disconnect');
  });

  test('a lost socket rejects pending requests with "App-server socket closed" and calls onDisconnect', async () => {
    const own = await startServer();
    const client = createAppServerClient({ url: own.url });
    await client.connect();
    const disconnected = new Promise((resolve) => client.onDisconnect(resolve));
    const pending = assert.rejects(client.request({ type: 'pong', request_id: 'never' }), {
      message: 'App-server socket closed',
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await own.stop();
    await pending;
    const { channel, event } = await disconnected;
    assert.equal(channel, 'control');
    assert.equal(typeof event.reason, 'string');
    await assert.rejects(client.info(), { message: 'App-server socket closed' });
    await client.close();
  });

  test('an AbortSignal rejects a request, a turn and an iteration with its reason', async (t) => {
    const client = await connected(t);
    const runtime = await newRuntime(client);
    const controller = new AbortController();
    const pending = assert.rejects(client.request({ type: 'pong', request_id: 'p-abort' }, { signal: controller.signal }), {
      message: 'stop waiting',
    });
    controller.abort(new Error('stop waiting'));
    await pending;
    await assert.rejects(client.info({ signal: AbortSignal.abort() }), { name: 'AbortError' });

    const turnAbort = new AbortController();
    const turn = await client.turn(runtime, '[[deltas: 500]] [[delay: 5]]', { signal: turnAbort.signal });
    const read = (async () => {
      for await (const frame of turn) if (frame.type === 'turn_finished') return 'finished';
    })();
    setTimeout(() => turnAbort.abort(), 50);
    await assert.rejects(read, { name: 'AbortError' });
    await client.abort({ runtime });

    const eventsAbort = new AbortController();
    const waiting = client.events({ signal: eventsAbort.signal }).next();
    eventsAbort.abort();
    await assert.rejects(waiting, { name: 'AbortError' });
  });

  test('a signal kept for many turns and iterators holds none of them once they are done', async (t) => {
    const client = await connected(t);
    const runtime = await newRuntime(client);
    const { signal } = new AbortController();
    for (let n = 0; n < 3; n++) {
      await collect(await client.turn(runtime, `[[reply: turn ${n}]]`, { signal }));
      const events = client.events({ signal });
      await events.return();
    }
    assert.equal(getEventListeners(signal, 'abort').length, 0);
  });
});

describe('beyond the official helper', () => {
  test('events(): every frame, or one runtime’s, as an async iterator', async (t) => {
    const client = await connected(t);
    const first = await newRuntime(client);
    const second = await newRuntime(client);
    const all = client.events();
    const onlySecond = client.events({ runtime: second });
    await collect(await client.turn(first, '[[reply: first]]'));
    await collect(await client.turn(second, '[[reply: second]]'));
    const read = async (events, turns) => {
      const frames = [];
      for await (const frame of events) {
        frames.push(frame);
        if (frame.type === 'turn_finished' && --turns === 0) break;
      }
      return frames;
    };
    assert.equal(assistantText(await read(all, 2)), 'firstsecond');
    const second_ = await read(onlySecond, 1);
    assert.equal(assistantText(second_), 'second');
    assert.ok(second_.every((frame) => frame.runtime?.conversation_id === second.conversation_id));
  });

  test('an iterator that falls behind skips frames and says so with a lagged gap', async (t) => {
    const client = await connected(t, { eventCapacity: 8 });
    const runtime = await newRuntime(client);
    const idle = client.events();
    // The dispatcher behind onMessage never skips: it carries on.
    const finished = until(client, (frame) => frame.type === 'turn_finished');
    await client.submitInput({ runtime, payload: userText('[[deltas: 100]]') });
    assert.equal(assistantText(await finished).match(/t\d+/g).length, 100);
    const seen = [];
    for await (const item of idle) {
      seen.push(item);
      if (item.type === 'gap') break;
    }
    assert.equal(seen.length, 9);
    const gap = seen.at(-1);
    assert.equal(gap.reason, 'lagged');
    assert.ok(gap.missed > 100, String(gap.missed));
  });

  test('a turn read slowly but steadily gets every frame, even with a small buffer', async (t) => {
    const client = await connected(t, { eventCapacity: 16 });
    const runtime = await newRuntime(client);
    const frames = [];
    for await (const item of await client.turn(runtime, '[[deltas: 300]]')) {
      frames.push(item);
      if (frames.length % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    assert.deepEqual(frames.filter((item) => item.type === 'gap'), []);
    assert.equal(assistantText(frames).match(/t\d+/g).length, 300);
    assert.equal(frames.at(-1).type, 'turn_finished');
  });

  test('a controller that joins while an approval is pending sees it once and can answer it', async (t) => {
    const first = await connected(t);
    const runtime = await newRuntime(first, { mode: 'strict' });
    const asked = until(first, (frame) => frame.type === 'control_request');
    const firstFinished = until(first, (frame) => frame.type === 'turn_finished');
    await first.submitInput({ runtime, payload: userText(BASH) });
    const requestId = (await asked).at(-1).request_id;

    // The server sends the approval to the new socket on connect, before it subscribes, and
    // again after the runtime_start_response and on sync: a handler and an iterator made after
    // all that get it, once.
    const second = await connected(t);
    await second.runtimeStart({ agent_id: runtime.agent_id, conversation_id: runtime.conversation_id });
    const seen = [];
    second.onMessage((frame) => frame.type === 'control_request' && seen.push(frame.request_id));
    const events = second.events({ runtime });
    await second.sync({ runtime });
    const replay = await readUntil(events, 'sync_response');
    assert.deepEqual(approvalsIn(replay), [requestId]);
    assert.equal(replay[0].type, 'control_request');
    assert.deepEqual(seen, [requestId]);
    assert.deepEqual(second.pendingApprovals({ runtime }).map((frame) => frame.request_id), [requestId]);

    const answer = { kind: 'approval_response', request_id: requestId, decision: { behavior: 'allow' } };
    assert.equal((await second.submitInput({ runtime, payload: answer })).accepted, true);
    const done = await readUntil(events, 'turn_finished');
    assert.deepEqual(toolReturns(done), ['hi\n']);
    assert.deepEqual(approvalsIn(done), []);
    assert.deepEqual(toolReturns(await firstFinished), ['hi\n']);
    assert.deepEqual(seen, [requestId]);
    await answeredIsNotGivenAgain(second, runtime);
  });

  test('on one client, a handler or an iterator made after an approval arrived gets it once', async (t) => {
    const client = await connected(t);
    const runtime = await newRuntime(client, { mode: 'strict' });
    const asked = until(
      client,
      (frame) => frame.type === 'update_device_status' && frame.device_status.pending_control_requests.length > 0,
    );
    await client.submitInput({ runtime, payload: userText(BASH) });
    const requestId = (await asked).find((frame) => frame.type === 'control_request').request_id;

    const seen = [];
    client.onMessage((frame) => seen.push(frame.type === 'control_request' ? frame.request_id : frame.type));
    // Handlers are called after onMessage returns, never during it.
    assert.deepEqual(seen, []);
    const events = client.events();
    await client.sync({ runtime });
    assert.equal(seen[0], requestId);
    assert.deepEqual(approvalsIn(await readUntil(events, 'sync_response')), [requestId]);

    const finished = until(client, (frame) => frame.type === 'turn_finished');
    const answer = { kind: 'approval_response', request_id: requestId, decision: { behavior: 'allow' } };
    assert.equal((await client.submitInput({ runtime, payload: answer })).accepted, true);
    assert.deepEqual(toolReturns(await finished), ['hi\n']);
    assert.deepEqual(seen.filter((item) => item === requestId), [requestId]);
    await answeredIsNotGivenAgain(client, runtime);
  });

  test('after a reconnect, an approval still pending comes once more to each handler and iterator', async () => {
    const own = await startServer('--max-frame-bytes', '4096');
    const reconnect = { initialDelayMs: 20, maxDelayMs: 200, resume: false };
    const client = createAppServerClient({ url: own.url, reconnect });
    const watcher = createAppServerClient({ url: own.url });
    try {
      await client.connect();
      await watcher.connect();
      const runtime = await newRuntime(client, { mode: 'strict' });
      // A second watcher keeps the turn, and its approval, alive while the client reconnects.
      await watcher.runtimeStart({ agent_id: runtime.agent_id, conversation_id: runtime.conversation_id });
      const asked = until(client, (frame) => frame.type === 'control_request');
      await client.submitInput({ runtime, payload: userText(BASH) });
      const requestId = (await asked).at(-1).request_id;
      const before = [];
      client.onMessage((frame) => frame.type === 'control_request' && before.push(frame.request_id));
      const events = client.events({ runtime });
      const disconnected = new Promise((resolve) => client.onDisconnect(resolve));
      const reconnected = new Promise((resolve) => client.onReconnect(resolve));
      const replayed = until(client, (frame) => frame.type === 'update_subagent_state');
      client.send({ type: 'pong', padding: 'x'.repeat(8192) });
      await disconnected;
      const during = [];
      client.onMessage((frame) => frame.type === 'control_request' && during.push(frame.request_id));
      await reconnected;
      await replayed;
      // On connect and after the restoring runtime_start: once.
      assert.deepEqual(before, [requestId, requestId]);
      assert.deepEqual(during, [requestId]);
      const items = [];
      for await (const item of events) {
        items.push(item.type === 'gap' ? item.reason : item.type === 'control_request' ? item.request_id : item.type);
        if (item.type === 'update_subagent_state') break;
      }
      const gap = items.indexOf('disconnected');
      assert.deepEqual(items.slice(0, gap), [requestId]);
      assert.deepEqual(items.slice(gap).filter((item) => item === requestId), [requestId]);

      const finished = until(client, (frame) => frame.type === 'turn_finished');
      const answer = { kind: 'approval_response', request_id: requestId, decision: { behavior: 'allow' } };
      assert.equal((await client.submitInput({ runtime, payload: answer })).accepted, true);
      assert.deepEqual(toolReturns(await finished), ['hi\n']);
      assert.deepEqual(before, [requestId, requestId]);
    } finally {
      await client.close();
      await watcher.close();
      await own.stop();
    }
  });

  test('reconnect: the runtime and its external tools are restored', async () => {
    const own = await startServer('--max-frame-bytes', '4096');
    const reconnect = { initialDelayMs: 20, maxDelayMs: 200, resume: false };
    const client = createAppServerClient({ url: own.url, reconnect });
    try {
      await client.connect();
      client.onExternalToolCall((request) => `echo ${request.input.word}`);
      const tools = [{ tools: [{ name: 'echo_tool', description: 'Echoes', parameters: { type: 'object' } }] }];
      const runtime = await newRuntime(client, { external_tools: tools });
      const disconnected = new Promise((resolve) => client.onDisconnect(resolve));
      const reconnected = new Promise((resolve) => client.onReconnect(resolve));
      const gaps = client.events();
      const replayed = until(client, (frame) => frame.type === 'update_subagent_state');
      // A frame over the server's limit: it closes the socket (1009); the client reconnects.
      client.send({ type: 'pong', padding: 'x'.repeat(8192) });
      assert.match((await disconnected).event.reason, /1009/);
      await reconnected;
      const replay = await replayed;
      assert.ok(replay.some((frame) => frame.type === 'runtime_start_response'));
      const items = [];
      for await (const item of gaps) {
        items.push(item.type === 'gap' ? item.reason : item.type);
        if (item.type === 'gap' && item.reason === 'reconnected') break;
      }
      assert.deepEqual(items.slice(-2), ['disconnected', 'reconnected']);
      const frames = await collect(await client.turn(runtime, '[[tool: echo_tool {"word":"again"}]]'));
      assert.deepEqual(toolReturns(frames), ['echo again']);
    } finally {
      await client.close();
      await own.stop();
    }
  });

  test('reconnect: a turn cut by kill -9 ends in its stream, with no frame missing', async () => {
    const own = await startServer();
    const client = createAppServerClient({ url: own.url, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    try {
      await client.connect();
      const runtime = await newRuntime(client);
      const turn = await client.turn(runtime, 'go [[deltas: 2000]] [[delay: 2]]');
      const frames = [];
      const gaps = [];
      let killed = false;
      for await (const item of turn) {
        if (item.type === 'gap') {
          gaps.push(item.reason);
          continue;
        }
        frames.push(item);
        if (!killed && assistantText(frames).length >= 200) {
          killed = true;
          await own.restart({ signal: 'SIGKILL' });
        }
      }
      assert.deepEqual(gaps, ['interrupted', 'resumed']);
      assert.equal(frames.at(-1).type, 'turn_finished');
      assert.equal(frames.at(-1).stop_reason, 'error');
      const expected = Array.from({ length: 2000 }, (_, i) => `t${i} `).join('');
      assert.ok(expected.startsWith(assistantText(frames)));
      const seqs = frames.map((frame) => frame.conversation_seq).filter((seq) => seq !== undefined);
      assert.ok(seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1), 'no gap, no repeat');
    } finally {
      await client.close();
      await own.stop();
    }
  });

  test('reconnect: a turn goes on whole across a dropped connection, its events resumed', async () => {
    const own = await startServer('--max-frame-bytes', '4096');
    const client = createAppServerClient({ url: own.url, reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
    try {
      await client.connect();
      const runtime = await newRuntime(client);
      const disconnected = new Promise((resolve) => client.onDisconnect(resolve));
      const reconnected = new Promise((resolve) => client.onReconnect(resolve));
      const turn = await client.turn(runtime, 'go [[deltas: 300]] [[delay: 2]]');
      const frames = [];
      const gaps = [];
      let dropped = false;
      for await (const item of turn) {
        if (item.type === 'gap') {
          gaps.push(item.reason);
          continue;
        }
        frames.push(item);
        if (!dropped && assistantText(frames).length >= 60) {
          dropped = true;
          // A frame over the server's limit: it closes the socket (1009) mid-reply.
          client.send({ type: 'pong', padding: 'x'.repeat(8192) });
        }
      }
      assert.match((await disconnected).event.reason, /1009/);
      await reconnected;
      assert.deepEqual(gaps, ['interrupted', 'resumed']);
      const expected = Array.from({ length: 300 }, (_, i) => `t${i} `).join('');
      assert.equal(assistantText(frames), expected);
      assert.equal(frames.at(-1).type, 'turn_finished');
      assert.equal(frames.at(-1).stop_reason, 'end_turn');
      const seqs = frames.map((frame) => frame.conversation_seq).filter((seq) => seq !== undefined);
      assert.ok(seqs.length > 300);
      assert.ok(seqs.every((seq, i) => i === 0 || seq === seqs[i - 1] + 1), 'no gap, no repeat');
    } finally {
      await client.close();
      await own.stop();
    }
  });
});

describe('every command of the protocol table', () => {
  test('has a method, and request(type) resolves with its typed answer', async (t) => {
    const client = await connected(t);
    // Generated from the table: every command the server answers, but `input` (`submitInput`).
    for (const method of ['agentList', 'agentRetrieve', 'conversationMessagesList', 'runtimeStart', 'appServerInfo']) {
      assert.equal(typeof client[method], 'function', method);
    }
    const agents = await client.agentList({ query: { limit: 5 } });
    assert.deepEqual([agents.type, agents.success], ['agent_list_response', true]);
    assert.ok(Array.isArray(agents.agents) && agents.agents.length <= 5, JSON.stringify(agents));
    assert.match(agents.request_id, /^agent-list-\d+$/);
    const agent = await client.request('agent_retrieve', { agent_id: 'agent-1' });
    assert.deepEqual(
      [agent.type, agent.success, agent.error],
      ['agent_retrieve_response', false, 'Agent agent-1 not found'],
    );
    // This server's `error` frame rejects, through `request(type)` as through the methods.
    const scope = { agent_id: 'agent-none', conversation_id: 'conv-none' };
    const error = await client.request('sync', { runtime: scope }).catch((e) => e);
    assert.ok(error instanceof AppServerError, JSON.stringify(error));
    assert.equal(error.code, 'unknown_runtime');
  });
});

test('authToken opens a server with --ws-auth; without it, or with another, connecting fails with the 401', async (t) => {
  const { createHash } = await import('node:crypto');
  const token = 'node-s3cret';
  const digest = createHash('sha256').update(token).digest('hex');
  const guarded = await startServer('--ws-auth', 'capability-token', '--ws-token-sha256', digest);
  t.after(() => guarded.stop());
  const client = createAppServerClient({ url: guarded.url, authToken: token });
  t.after(() => client.close());
  await client.connect();
  const started = await client.runtimeStart({ create_agent: { body: { name: 'Authenticated' } } });
  assert.equal(started.success, true);
  for (const options of [{}, { authToken: 'not-the-token' }]) {
    const refused = createAppServerClient({ url: guarded.url, ...options });
    await assert.rejects(refused.connect(), /401/);
    refused.close();
  }
});
