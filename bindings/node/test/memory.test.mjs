// An agent's memory through the Node SDK: the model's `memory` tool commits a fact, which is in
// the agent's prompt and history after a restart; files written, listed as an async iterator of
// chunks, read back.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { collect, connectedClient, startServer, toolReturns, until, userText } from './support.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(() => server.stop());

test('an agent remembers a fact across a restart, and memoryHistory shows the edit', async (t) => {
  const client = await connectedClient(t, server.url);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Rememberer' } } });
  const enabled = await client.enableMemfs({ agent_id: runtime.agent_id });
  assert.ok(enabled.memory_directory, JSON.stringify(enabled));
  const fact = JSON.stringify({
    command: 'create',
    reason: "Remember the user's name",
    file_path: 'system/human.md',
    description: 'The user',
    file_text: 'Name: Ada',
  });
  const finished = until(client, (frame) => frame.type === 'turn_finished');
  await client.submitInput({ runtime, payload: userText(`I am Ada. [[tool: memory ${fact}]]`) });
  const frames = await finished;
  assert.match(toolReturns(frames)[0], /^Memory create committed locally \(/);
  const updated = frames.filter((frame) => frame.type === 'memory_updated').map((frame) => frame.affected_paths);
  assert.deepEqual(updated.at(-1), ['system/human.md']);
  client.close();

  await server.restart();
  const again = await connectedClient(t, server.url);
  const history = await again.memoryHistory({ agent_id: runtime.agent_id, file_path: 'system/human.md' });
  assert.deepEqual(
    history.commits.map((commit) => [commit.message, commit.author_name]),
    [["Remember the user's name", 'Rememberer']],
  );
  const diff = await again.memoryCommitDiff({ agent_id: runtime.agent_id, sha: history.commits[0].sha });
  assert.match(diff.diff, /\+Name: Ada/);
  const prompt = await again.conversationRecompile({
    conversation_id: runtime.conversation_id,
    body: { agent_id: runtime.agent_id },
  });
  assert.match(prompt.result, /<human>[\s\S]*Name: Ada[\s\S]*<\/human>/);
});

test('listMemory iterates the chunks of a listing', async (t) => {
  const client = await connectedClient(t, server.url);
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Notebook' } } });
  const agent_id = runtime.agent_id;
  await client.enableMemfs({ agent_id });
  for (const n of [0, 1, 2, 3, 4, 5]) {
    const content = `---\ndescription: Note ${n}\n---\nnote ${n}\n`;
    const written = await client.writeMemoryFile({ agent_id, path: `notes/n${n}.md`, content });
    assert.equal(written.committed, true);
  }
  const chunks = await collect(client.listMemory({ agent_id, include_references: true }));
  assert.deepEqual(
    chunks.map((chunk) => [chunk.entries.length, chunk.done, chunk.total]),
    [
      [5, false, 6],
      [1, true, 6],
    ],
  );
  assert.deepEqual(chunks[1].entries[0], {
    relative_path: 'notes/n5.md',
    is_system: false,
    description: 'Note 5',
    content: 'note 5',
    size: 6,
    references: [],
    kind: 'markdown',
    mime_type: 'text/markdown',
  });
  const read = await client.readMemoryFile({ agent_id, path: 'notes/n0.md', encoding: 'base64' });
  assert.equal(Buffer.from(read.content, 'base64').toString(), '---\ndescription: Note 0\n---\nnote 0\n');
  const deleted = await client.deleteMemoryFile({ agent_id, path: 'notes/n0.md' });
  assert.equal(deleted.committed, true);
});
