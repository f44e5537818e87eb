// Subagents through the Node SDK: the model's Agent tool starts one whose work streams to the
// controller (deltas with subagent_id, update_subagent_state) and whose report comes back as a
// task notification; launchSubagent starts one from the controller.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { connectedClient, startServer, until, userText } from './support.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** A scripted-model tool directive whose brackets are JSON escapes, so that it can sit in a prompt. */
function directive(tool, args) {
  return `[[tool: ${tool} ${JSON.stringify(args).replaceAll('[', '\\u005b').replaceAll(']', '\\u005d')}]]`;
}

test("a subagent's work streams to the controller and its report starts a new turn", async (t) => {
  const client = await connectedClient(t, server.url);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Delegator' } } });
  const agent = directive('Agent', {
    description: 'say hi',
    subagent_type: 'general-purpose',
    prompt: 'Greet. [[reply: hi from the subagent]]',
  });
  let turns = 0;
  const finished = until(client, (frame) => frame.type === 'turn_finished' && ++turns === 2);
  await client.submitInput({ runtime, payload: userText(`Delegate. ${agent}`) });
  const frames = await finished;

  const fromSubagent = frames.filter((frame) => frame.type === 'stream_delta' && frame.subagent_id);
  assert.ok(fromSubagent.length > 0, 'the subagent streamed');
  for (const frame of fromSubagent) assert.deepEqual(frame.runtime, runtime);
  const said = fromSubagent
    .filter((frame) => frame.delta.message_type === 'assistant_message')
    .map(({ delta }) => delta.content.map((part) => part.text).join(''))
    .join('');
  assert.equal(said, 'hi from the subagent');

  const states = frames
    .filter((frame) => frame.type === 'update_subagent_state')
    .map((frame) => frame.subagents[0]?.status);
  assert.deepEqual([states[0], states.at(-1)], ['pending', 'completed']);
  const notification = frames.find((frame) => frame.type === 'update_queue' && frame.queue.length > 0).queue[0];
  assert.deepEqual([notification.kind, notification.source], ['task_notification', 'task_notification']);
  assert.match(notification.content, /<status>completed<\/status>[\s\S]*hi from the subagent/);
});

test('launchSubagent answers with the task and the subagent runs without a turn of the parent', async (t) => {
  const client = await connectedClient(t, server.url);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Caller' } } });
  const completed = until(
    client,
    (frame) => frame.type === 'update_subagent_state' && frame.subagents[0]?.status === 'completed',
  );
  const launched = await client.launchSubagent({
    runtime,
    notify: 'caller',
    args: { prompt: 'Check. [[reply: all clear]]', description: 'check', subagent_type: 'explore' },
  });
  assert.equal(launched.success, true, JSON.stringify(launched));
  assert.match(launched.task_id, /^task_\d+$/);
  assert.match(launched.conversation_id, /^conv-/);
  const frames = await completed;
  const entry = frames.at(-1).subagents[0];
  assert.deepEqual([entry.subagent_type, entry.conversation_id], ['explore', launched.conversation_id]);
  assert.match(entry.result, /\n\nall clear$/);
  assert.ok(!frames.some((frame) => frame.type === 'turn_finished'), 'no turn of the parent');

  const refused = await client.launchSubagent({ runtime, args: { prompt: 'p', description: 'd', subagent_type: 'nope' } });
  assert.deepEqual(
    [refused.success, refused.error],
    [false, 'Invalid subagent type "nope". Available types: general-purpose, explore'],
  );
});

test('a monitor is listed while it runs and stopMonitor stops it', async (t) => {
  const client = await connectedClient(t, server.url);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Watcher' } } });
  const monitor = directive('Monitor', { description: 'quiet', command: 'sleep 30', persistent: true });
  const listed = until(
    client,
    (frame) => frame.type === 'update_device_status' && frame.device_status.background_processes.length > 0,
  );
  await client.submitInput({ runtime, payload: userText(`Watch. ${monitor}`) });
  const process = (await listed).at(-1).device_status.background_processes[0];
  assert.deepEqual([process.kind, process.process_id, process.persistent], ['monitor', 'monitor_1', true]);
  const stopped = await client.stopMonitor({ runtime, process_id: process.process_id });
  assert.deepEqual([stopped.success, stopped.stopped], [true, true]);
  const missing = await client.monitorStop({ runtime, process_id: 'monitor_9' });
  assert.deepEqual([missing.success, missing.error], [false, 'Monitor not found']);
});
