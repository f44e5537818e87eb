// Conversations and slash commands through the Node SDK against the real server: a controller
// that reconnects and rebuilds its transcript, the official helper's conversationList(), /compact.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertReadmeShows,
  assistantText,
  connectedClient,
  runExample,
  startServer,
  until,
  userText,
} from './support.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

/** A connected client, closed when the test ends. */
const connected = (t, options) => connectedClient(t, server.url, options);

/** Runs a turn of `text`; returns its frames up to `turn_finished`. */
async function turn(client, runtime, text) {
  const finished = until(client, (frame) => frame.type === 'turn_finished');
  await client.submitInput({ runtime, payload: userText(text) });
  return finished;
}

/** Every message of a conversation, oldest first, read page by page as a controller would. */
async function transcript(client, conversationId) {
  const messages = [];
  let before = null;
  for (;;) {
    const page = await client.conversationMessagesList({ conversation_id: conversationId, query: { limit: 3, before } });
    assert.equal(page.success, true, page.error);
    messages.push(...page.messages);
    if (!page.has_more) return messages.reverse();
    before = page.next_before;
  }
}

test('a controller that reconnects rebuilds its transcript from conversation_messages_list', async (t) => {
  const first = await connected(t);
  const { runtime } = await first.runtimeStart({ create_agent: { body: { name: 'Transcript' } } });
  const streamed = [];
  for (const text of ['one [[reply: first answer]]', 'two [[reply: second answer]]']) {
    const frames = await turn(first, runtime, text);
    const delta = frames.find((f) => f.type === 'stream_delta' && f.delta.message_type === 'assistant_message');
    streamed.push({ id: delta.delta.id, text: assistantText(frames) });
  }
  await first.close();

  const second = await connected(t);
  const messages = await transcript(second, runtime.conversation_id);
  const replies = messages
    .filter((m) => m.message_type === 'assistant_message')
    .map((m) => ({ id: m.id, text: m.content.map((part) => part.text).join('') }));
  assert.deepEqual(replies, streamed, 'the same ids and texts as the stream');
  assert.deepEqual(
    messages.map((m) => m.message_type),
    ['user_message', 'assistant_message', 'user_message', 'assistant_message'],
  );
});

test("the official helper's conversationList() and the other conversation methods", async (t) => {
  const client = await connected(t);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Lister' } } });
  const created = await client.conversationCreate({ body: { agent_id: runtime.agent_id, summary: 'Second' } });
  assert.equal(created.success, true, created.error);
  const listed = await client.conversationList();
  assert.equal(listed.type, 'conversation_list_response');
  const ids = listed.conversations.map((c) => c.id);
  assert.ok(ids.includes(runtime.conversation_id) && ids.includes(created.conversation.id), JSON.stringify(ids));
  const mine = await client.conversationList({ query: { agent_id: runtime.agent_id, limit: 1 } });
  assert.deepEqual(mine.conversations.map((c) => c.id), [created.conversation.id], 'newest first');
  const renamed = await client.conversationUpdate({ conversation_id: created.conversation.id, body: { summary: 'Renamed' } });
  assert.equal(renamed.conversation.summary, 'Renamed');
  const missing = await client.conversationRetrieve({ conversation_id: 'conv-nope' });
  assert.deepEqual([missing.success, missing.conversation, missing.error], [false, null, 'Conversation conv-nope not found']);
});

test('/compact through executeCommand: slash deltas, then the response', async (t) => {
  const client = await connected(t);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Compactor' } } });
  for (const n of [1, 2, 3]) await turn(client, runtime, `turn ${n}`);
  const seen = [];
  client.onMessage((frame) => {
    if (frame.type === 'stream_delta') seen.push(frame.delta.message_type);
  });
  const done = await client.executeCommand({ runtime, command_id: 'compact', args: 'all' });
  assert.equal(done.success, true, done.output);
  assert.match(done.output, /^Compaction completed \(mode: all\)\. Message buffer length reduced from 6 to 1\./);
  assert.deepEqual(seen, ['slash_command_start', 'slash_command_end']);
  const unknown = await client.executeCommand({ runtime, command_id: 'nope' });
  assert.deepEqual([unknown.success, unknown.output], [false, 'Unknown command: nope']);
});

test('the README transcript and model picker example runs, and the README shows it as it is', async () => {
  const lines = await runExample('transcript.mjs', server.url);
  assert.deepEqual(lines.slice(0, 2), [
    "user_message: Remember the word 'teal'. [[reply: Noted: teal.]]",
    'assistant_message: Noted: teal.',
  ]);
  assert.ok(lines.includes('model: scripted/default (default)'), lines.join('\n'));
  assert.equal(lines.at(-1), 'now using scripted/default for the conversation');
  await assertReadmeShows('transcript.mjs');
});

test('a controller written for real Letta (official helper calls only) lists, picks a model, reloads and compacts', async (t) => {
  const client = await connected(t);
  // What desktop checks before it uses a server remotely.
  const info = await client.info();
  assert.deepEqual([info.capabilities.agent_management, info.capabilities.conversation_management], [true, true]);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Picker' } } });
  for (const n of [1, 2, 3]) await turn(client, runtime, `turn ${n}`);
  // The generic request(type, body) form the official helper has for every other command.
  const agents = await client.request('agent_list', { query: { limit: 50 } });
  assert.ok(agents.agents.some((agent) => agent.id === runtime.agent_id));
  const conversations = await client.conversationList({ query: { agent_id: runtime.agent_id } });
  assert.deepEqual(conversations.conversations.map((c) => c.id), [runtime.conversation_id]);
  const models = await client.request('list_models', {});
  const handle = models.entries.find((entry) => entry.isDefault).handle;
  const picked = await client.request('update_model', { runtime, payload: { model_handle: handle } });
  assert.deepEqual([picked.success, picked.applied_to], [true, 'conversation']);
  const history = await client.request('conversation_messages_list', { conversation_id: runtime.conversation_id });
  assert.equal(history.messages.length, 6);
  const compacted = await client.request('execute_command', { runtime, command_id: 'compact' });
  assert.equal(compacted.success, true, compacted.output);
  assert.match(compacted.output, /^Compaction completed\. Message buffer length reduced from 6 to 1\./);
});
