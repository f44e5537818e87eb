// The real server binary on 127.0.0.1:0 for the tests, and helpers to read what a client sees.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { createAppServerClient } from '../index.mjs';

export const PACKAGE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = path.resolve(PACKAGE, '..', '..');

/** `LETTA_APP_SERVER_BIN`, or the debug build of `cargo build -p letta-app-server`. */
export const SERVER_BINARY =
  process.env.LETTA_APP_SERVER_BIN ??
  path.join(process.env.CARGO_TARGET_DIR ?? path.join(REPO, 'target'), 'debug', 'letta-app-server');

/** The test CA (`ca.pem`) and the certificate it signed for 127.0.0.1 and localhost (`server.pem`, `server.key`). */
export const TLS_FIXTURES = path.join(REPO, 'tests', 'tls');

/** A client of `url` made with `options`, connected, and closed when the test `t` ends. */
export async function connectedClient(t, url, options = {}) {
  const client = createAppServerClient({ url, ...options });
  t.after(() => client.close());
  return client.connect();
}

/**
 * A server (see `startServer`) whose terminals run `shell` (its `$SHELL`): tests that open one
 * use `/bin/sh`, which reads no start-up files of the machine's user.
 */
export async function serverWithShell(shell, ...args) {
  const saved = process.env.SHELL;
  process.env.SHELL = shell;
  try {
    return await startServer(...args);
  } finally {
    if (saved === undefined) delete process.env.SHELL;
    else process.env.SHELL = saved;
  }
}

/**
 * Starts `letta-app-server --listen ws://127.0.0.1:0 --data-dir <temp>` with `args` (which may
 * give a `--listen` of their own). `restart({ signal })` stops it (`SIGTERM`, or `SIGKILL` for
 * `kill -9`) and starts it again on the same data directory and port.
 */
export async function startServer(...args) {
  const data = await mkdtemp(path.join(tmpdir(), 'letta-node-test-'));
  let listen = args.includes('--listen') ? [] : ['--listen', 'ws://127.0.0.1:0'];
  let child;
  const stop = async (signal = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    }
  };
  const server = {
    url: null,
    /** Resolves with the first line this start printed that starts with `prefix`. */
    waitForLine: null,
    async restart({ signal } = {}) {
      await stop(signal);
      await launch();
    },
    async stop() {
      await stop();
      await rm(data, { recursive: true, force: true });
    },
  };
  const launch = async () => {
    child = spawn(SERVER_BINARY, [...listen, '--data-dir', data, ...args], {
      // Tools run in the server's working directory: the temporary one, not the checkout.
      cwd: data,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout });
    // Every line, from the first: readline may emit several at once.
    const printed = [];
    lines.on('line', (line) => printed.push(line));
    const first = await Promise.race([
      once(lines, 'line').then(([line]) => line),
      once(child, 'error').then(([error]) => Promise.reject(new Error(`starting ${SERVER_BINARY}: ${error.message}`))),
      once(child, 'exit').then(() => Promise.reject(new Error('the server exited before printing its address'))),
    ]);
    const match = /^Listening on (wss?:\/\/\S+)$/.exec(first);
    if (!match) throw new Error(`unexpected first line from the server: ${first}`);
    server.url = match[1];
    server.waitForLine = (prefix, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const found = printed.find((line) => line.startsWith(prefix));
        if (found) return resolve(found);
        const timer = setTimeout(() => {
          lines.off('line', listen);
          reject(new Error(`the server printed no line starting with ${prefix} (printed: ${printed.join(' | ')})`));
        }, timeoutMs);
        const listen = (line) => {
          if (!line.startsWith(prefix)) return;
          clearTimeout(timer);
          lines.off('line', listen);
          resolve(line);
        };
        lines.on('line', listen);
      });
    // A restart listens where this start did.
    if (listen.length > 0) listen = ['--listen', server.url];
  };
  await launch();
  return server;
}

/** Resolves with the first frame `client` receives that `matches` (and every frame until then). */
export function until(client, matches, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const frames = [];
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no matching frame within ${timeoutMs} ms (saw ${frames.map((f) => f.type).join(', ')})`));
    }, timeoutMs);
    const off = client.onMessage((frame) => {
      frames.push(frame);
      if (matches(frame)) {
        clearTimeout(timer);
        off();
        resolve(frames);
      }
    });
  });
}

/** Every item an iterator yields (frames and gaps). */
export async function collect(iterable) {
  const items = [];
  for await (const item of iterable) items.push(item);
  return items;
}

/** The text of the assistant deltas among `frames`. */
export function assistantText(frames) {
  return frames
    .filter((frame) => frame.type === 'stream_delta' && frame.delta.message_type === 'assistant_message')
    .map(({ delta }) => (typeof delta.content === 'string' ? delta.content : delta.content.map((p) => p.text).join('')))
    .join('');
}

/** The final result of each tool call among `frames`, in call order. */
export function toolReturns(frames) {
  const results = new Map();
  for (const frame of frames) {
    if (frame.type !== 'stream_delta' || frame.delta.message_type !== 'tool_return_message') continue;
    results.set(frame.delta.tool_returns[0].tool_call_id, frame.delta.tool_return);
  }
  return [...results.values()];
}

/** A `create_message` payload of one user text. */
export function userText(content) {
  return { kind: 'create_message', messages: [{ role: 'user', content }] };
}

/** Runs `examples/<name>` with `args` against the server at `url`; returns its output lines. */
export async function runExample(name, url, args = []) {
  const { stdout } = await promisify(execFile)(process.execPath, [path.join(PACKAGE, 'examples', name), ...args], {
    cwd: PACKAGE,
    timeout: 20_000,
    env: { ...process.env, LETTA_APP_SERVER_URL: url },
  });
  return stdout.trim().split('\n');
}

/** Fails unless README.md quotes `examples/<name>` verbatim, in a `js` block. */
export async function assertReadmeShows(name) {
  const readme = await readFile(path.join(REPO, 'README.md'), 'utf8');
  const example = await readFile(path.join(PACKAGE, 'examples', name), 'utf8');
  assert.ok(readme.includes(`\`\`\`js\n${example}\`\`\``), `README.md must show examples/${name} verbatim`);
}
