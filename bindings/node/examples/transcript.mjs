// A controller that reconnects and rebuilds its transcript from the server's history, then lets
// the user pick a model. The history lists each message under the id its stream_delta carried.
import { createAppServerClient } from 'letta-app-server';

const url = process.env.LETTA_APP_SERVER_URL ?? 'ws://127.0.0.1:4500';

/** Every message of a conversation, oldest first, read page by page. */
async function transcript(client, conversationId) {
  const messages = [];
  let before = null;
  for (;;) {
    const page = await client.conversationMessagesList({ conversation_id: conversationId, query: { limit: 50, before } });
    messages.push(...page.messages);
    if (!page.has_more) return messages.reverse();
    before = page.next_before;
  }
}

const first = createAppServerClient({ url });
await first.connect();
const { runtime } = await first.runtimeStart({ create_agent: { body: { name: 'Transcript' } } });
for await (const frame of await first.turn(runtime, "Remember the word 'teal'. [[reply: Noted: teal.]]")) void frame;
first.close();

// A new connection, as after a restart of the controller: the history is in the server.
const client = createAppServerClient({ url });
await client.connect();
for (const message of await transcript(client, runtime.conversation_id)) {
  if (message.message_type === 'user_message' || message.message_type === 'assistant_message') {
    console.log(`${message.message_type}: ${message.content.map((part) => part.text).join('')}`);
  }
}
// A model picker: the models the server can run now, then the choice, for this conversation.
const models = await client.listModels();
for (const entry of models.entries) console.log('model:', entry.handle, entry.isDefault ? '(default)' : '');
const updated = await client.updateModel({ runtime, payload: { model_handle: models.entries[0].handle } });
console.log(`now using ${updated.model_handle} for the ${updated.applied_to}`);
client.close();
