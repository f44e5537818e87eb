// A controller written against the generated frame types: `switch` on `type`, then on
// `delta.message_type`, narrows every frame to its own interface. `tsc --noEmit` checks it
// (test/types.test.mjs); the `@ts-expect-error` lines fail the check if narrowing stops working.

import {
  createAppServerClient,
  type AppServerClient,
  type InputPayload,
  type RuntimeScope,
  type ServerFrame,
  type StreamItem,
  validate,
} from 'letta-app-server';

function describe(frame: ServerFrame): string {
  switch (frame.type) {
    case 'stream_delta': {
      const { delta } = frame;
      switch (delta.message_type) {
        case 'assistant_message':
          return typeof delta.content === 'string' ? delta.content : delta.content.map((part) => part.type).join();
        case 'stop_reason':
          return `[${delta.stop_reason}]`;
        case 'usage_statistics':
          return `${delta.total_tokens ?? 0} tokens`;
        default:
          // @ts-expect-error only assistant messages carry `content` among the narrowed deltas
          return delta.content;
      }
    }
    case 'control_request':
      return `may I run ${frame.request.tool_name}? (${frame.request_id})`;
    case 'turn_finished':
      return `finished: ${frame.stop_reason}`;
    case 'error':
      return `refused (${frame.code}): ${frame.message}`;
    default:
      // @ts-expect-error `delta` exists on stream_delta frames only
      return frame.delta;
  }
}

async function answerApprovals(client: AppServerClient, runtime: RuntimeScope, items: AsyncIterable<StreamItem>) {
  for await (const item of items) {
    if (item.type === 'gap') {
      if (item.reason === 'lagged') console.log(`skipped ${item.missed} frames`);
      continue;
    }
    console.log(describe(item));
    if (item.type === 'control_request') {
      const payload: InputPayload = {
        kind: 'approval_response',
        request_id: item.request_id,
        decision: { behavior: 'allow' },
      };
      const accepted = await client.submitInput({ runtime, payload });
      if (!accepted.accepted) console.log(accepted.error);
    }
    if (item.type === 'turn_finished') return item.stop_reason;
  }
}

const client = createAppServerClient({ url: 'ws://127.0.0.1:4500', reconnect: true });
const started = await client.runtimeStart({ create_agent: { body: { name: 'Typed' } }, mode: 'standard' });
if (started.runtime) {
  const turn = await client.turn(started.runtime, 'hello', { timeoutMs: 5_000 });
  console.log(turn.accepted.disposition, await answerApprovals(client, started.runtime, turn));
}
// @ts-expect-error a permission mode the protocol does not have
await client.runtimeStart({ mode: 'yolo' });

// Every command of the protocol table, typed by its `type`.
const agents = await client.agentList({ query: { limit: 5 } });
if (agents.success) console.log(agents.agents.map((agent) => agent.name));
const retrieved = await client.request('agent_retrieve', { agent_id: 'agent-1' });
console.log(retrieved.agent?.name);
// @ts-expect-error `agent_retrieve` needs its `agent_id`
await client.agentRetrieve({});
// @ts-expect-error the answer of `agent_list` has no `conversations`
console.log((await client.request('agent_list')).conversations);
// A command the table does not list is answered by every frame with its request id.
for await (const frame of client.requestStream('list_widgets', { limit: 2 }, { timeoutMs: 1_000 })) {
  console.log(frame.type);
}
// A frame built by hand, checked against the bundled schema before it goes out.
const handMade = { type: 'input', request_id: 'in-1', payload: { kind: 'create_message' } };
for (const { path, reason } of validate(handMade, { direction: 'client' })) console.log(`${path}: ${reason}`);
// @ts-expect-error the direction is `client` or `server`
validate(handMade, { direction: 'up' });
await client.close();
