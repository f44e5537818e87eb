// A file viewer that stays in step with a file: it shows it, takes the new content from the
// `file_ops` the server sends when it edits the file (the controller's editFile, the agent's Edit
// tool), and reads it again when anything else changes it (watchFile).
import { writeFile } from 'node:fs/promises';

import { createAppServerClient } from 'letta-app-server';

const url = process.env.LETTA_APP_SERVER_URL ?? 'ws://127.0.0.1:4500';
const file = process.argv[2];

const client = createAppServerClient({ url });
await client.connect();
const { content } = await client.readFile({ path: file });
console.log('opened:', JSON.stringify(content));

// A controller's edit_file gets its file_ops directly; an agent's edit comes as an event of its
// runtime (with the envelope, `event_seq`). Both carry the whole new content.
client.onMessage((frame) => {
  if (frame.type !== 'file_ops' || frame.path !== file) return;
  console.log(`${frame.event_seq ? 'agent edit' : 'edit_file'}:`, JSON.stringify(frame.document_content));
});
const changes = client.watchFile(file);

await client.editFile({ file_path: file, old_string: 'draft', new_string: 'final' });
const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Editor' } } });
const edit = JSON.stringify({ file_path: file, old_string: 'final', new_string: 'published' });
for await (const frame of await client.turn(runtime, `Publish it. [[tool: Edit ${edit}]]`)) void frame;

// Another program writes the file: the watch says so, and the viewer reads it again.
await writeFile(file, 'rewritten elsewhere\n');
for await (const change of changes) {
  const { content: now } = await client.readFile({ path: change.path });
  console.log('changed on disk:', JSON.stringify(now));
  if (now === 'rewritten elsewhere\n') break;
}
client.close();
