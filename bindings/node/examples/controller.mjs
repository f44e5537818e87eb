// A controller that runs with this package or with Letta Code's own helper: for the helper,
// import from '@letta-ai/letta-code/app-server-client' instead; nothing else changes.
import { createAppServerClient } from 'letta-app-server';

const client = createAppServerClient({ url: process.env.LETTA_APP_SERVER_URL ?? 'ws://127.0.0.1:4500' });
await client.connect();

// A tool this controller runs itself, offered to the agent by runtime_start.
client.onExternalToolCall(async (request) => ({
  content: [{ type: 'text', text: `Sunny and 21°C in ${request.input.city}` }],
}));
const lookupWeather = {
  name: 'lookup_weather',
  description: 'Look up the current weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};
const { runtime } = await client.runtimeStart({
  create_agent: { body: { name: 'Weather agent' } },
  external_tools: [{ tools: [lookupWeather] }],
});

const finished = new Promise((resolve) => {
  const unsubscribe = client.onMessage((message) => {
    if (message.type === 'stream_delta' && message.delta.message_type === 'assistant_message') {
      const { content } = message.delta;
      process.stdout.write(typeof content === 'string' ? content : content.map((part) => part.text ?? '').join(''));
    }
    if (message.type === 'turn_finished') {
      unsubscribe();
      resolve(message.stop_reason);
    }
  });
});
// The scripted model of this project's server calls the tool because the text asks it to.
const text = 'Weather in Paris? [[tool: lookup_weather {"city":"Paris"}]]';
await client.submitInput({ runtime, payload: { kind: 'create_message', messages: [{ role: 'user', content: text }] } });
console.log(`\n[${await finished}]`);
client.close();
