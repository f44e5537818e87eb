// Frames per second received during a 10,000-delta reply: this SDK (through `onMessage` and
// through `events()`) against a plain `ws` client that parses every frame with `JSON.parse`,
// on the same server. Usage: node bench/frames.mjs ws://127.0.0.1:PORT [replies]
//
// Each client has its own connection and runtime; the clients take turns, reply by reply, so
// that they share the machine's ups and downs. Prints one JSON object: per client, the frames
// of each reply and the seconds each took (from sending the input to reading turn_finished),
// the median of frames / seconds, and for the SDK's clients `ratio`, the median over the rounds
// of its rate divided by the plain client's in the same round (which cancels out a machine that
// gets busier or quieter during the run).

import WebSocket from 'ws';
import { createAppServerClient, resolveAppServerUrl } from '../index.mjs';

const DELTAS = 10_000;
const [url, repliesArg = '5'] = process.argv.slice(2);
const replies = Number(repliesArg);
const text = `[[deltas: ${DELTAS}]]`;

/** The baseline: `ws`, `JSON.parse` of every frame, a look at its type. */
async function plainWs() {
  const socket = new WebSocket(resolveAppServerUrl(url));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  let onFrame = () => {};
  socket.on('message', (data) => onFrame(JSON.parse(data)));
  const until = (done) =>
    new Promise((resolve) => {
      onFrame = (frame) => done(frame) && resolve(frame);
    });
  const started = until((frame) => frame.type === 'runtime_start_response');
  socket.send(JSON.stringify({ type: 'runtime_start', request_id: 'rs-1', create_agent: { body: { name: 'Bench' } } }));
  const { runtime } = await started;
  let id = 0;
  return {
    async reply(count) {
      const finished = until((frame) => {
        count();
        return frame.type === 'turn_finished';
      });
      const payload = { kind: 'create_message', messages: [{ role: 'user', content: text }] };
      socket.send(JSON.stringify({ type: 'input', request_id: `in-${++id}`, runtime, payload }));
      await finished;
    },
    close: () => socket.close(),
  };
}

/** This SDK: every frame through an `onMessage` handler, or through an `events()` iterator. */
async function sdk(via) {
  const client = createAppServerClient({ url });
  await client.connect();
  const { runtime } = await client.runtimeStart({ create_agent: { body: { name: 'Bench' } } });
  const payload = { kind: 'create_message', messages: [{ role: 'user', content: text }] };
  return {
    async reply(count) {
      let finished;
      if (via === 'onMessage') {
        finished = new Promise((resolve) => {
          const off = client.onMessage((frame) => {
            count();
            if (frame.type === 'turn_finished') resolve(off());
          });
        });
      } else {
        const events = client.events();
        finished = (async () => {
          for await (const frame of events) {
            count();
            if (frame.type === 'turn_finished') break;
          }
        })();
      }
      client.input({ request_id: client.nextRequestId('input'), runtime, payload });
      await finished;
    },
    close: () => client.close(),
  };
}

async function main() {
  const clients = { ws: await plainWs(), onMessage: await sdk('onMessage'), events: await sdk('events') };
  const results = Object.fromEntries(Object.keys(clients).map((name) => [name, []]));
  for (let run = 0; run < replies; run++) {
    for (const [name, client] of Object.entries(clients)) {
      let frames = 0;
      const sent = process.hrtime.bigint();
      await client.reply(() => frames++);
      results[name].push({ frames, seconds: Number(process.hrtime.bigint() - sent) / 1e9 });
    }
  }
  await Promise.all(Object.values(clients).map((client) => client.close()));
  const rate = ({ frames, seconds }) => frames / seconds;
  const median = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  };
  const summary = Object.fromEntries(
    Object.entries(results).map(([name, runs]) => {
      const ratios = runs.map((run, round) => rate(run) / rate(results.ws[round]));
      return [name, { median: median(runs.map(rate)), ratio: median(ratios), runs }];
    }),
  );
  console.log(JSON.stringify({ deltas: DELTAS, replies, ...summary }));
}

// A failure is one line on stderr, for the benchmark table.
main().catch((error) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
