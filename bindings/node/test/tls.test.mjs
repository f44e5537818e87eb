// `wss://`: a server started with `--tls-cert` and `--tls-key` (the checked-in test certificate
// for 127.0.0.1 and localhost), reached with `tls: { ca }` trusting the test CA.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { createAppServerClient } from '../index.mjs';
import { TLS_FIXTURES, assistantText, collect, startServer } from './support.mjs';

let server;
let ca;
before(async () => {
  server = await startServer(
    '--listen',
    'wss://127.0.0.1:0',
    '--tls-cert',
    path.join(TLS_FIXTURES, 'server.pem'),
    '--tls-key',
    path.join(TLS_FIXTURES, 'server.key'),
  );
  ca = await readFile(path.join(TLS_FIXTURES, 'ca.pem'));
});
after(() => server.stop());

test('tls.ca trusts the CA of a wss:// server: a turn runs over TLS', async (t) => {
  assert.match(server.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
  const client = createAppServerClient({ url: server.url, tls: { ca } });
  t.after(() => client.close());
  await client.connect();
  const started = await client.runtimeStart({ create_agent: { body: { name: 'Over TLS' } } });
  assert.equal(started.success, true);
  const turn = await client.turn(started.runtime, '[[reply: sent over TLS]] [[chunks: 3]]');
  assert.equal(assistantText(await collect(turn)), 'sent over TLS');
});

test('tls.ca takes PEM as a string, a Buffer or an array of them, as tls.connect does', async (t) => {
  const port = new URL(server.url).port;
  for (const [url, option] of [
    [server.url, ca.toString()],
    [`wss://localhost:${port}`, [ca]],
    [`https://localhost:${port}`, [ca.toString(), ca]],
  ]) {
    const client = createAppServerClient({ url, tls: { ca: option } });
    t.after(() => client.close());
    await client.connect();
    const info = await client.appServerInfo();
    assert.equal(info.type, 'app_server_info_response', url);
  }
});

test('without the CA, or over ws://, connecting fails with a clear error; bad tls options throw', async () => {
  for (const [url, options, expected] of [
    [server.url, {}, /TLS handshake failed: invalid peer certificate: UnknownIssuer/],
    [server.url.replace('wss://', 'ws://'), {}, /HTTP 400 Bad Request: this port speaks TLS: connect with wss:\/\/ or https:\/\//],
  ]) {
    const refused = createAppServerClient({ url, ...options });
    await assert.rejects(refused.connect(), expected);
    refused.close();
  }
  assert.throws(() => createAppServerClient({ url: server.url, tls: { ca: 'not a certificate' } }), {
    message: 'invalid TLS settings: no PEM certificate (`-----BEGIN CERTIFICATE-----`) among the CA certificates',
  });
  assert.throws(() => createAppServerClient({ url: server.url, tls: { ca: 42 } }), TypeError);
  assert.throws(() => createAppServerClient({ url: server.url, tls: 'ca.pem' }), TypeError);
});
