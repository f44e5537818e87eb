'use strict';
// The client: the official helper's API (`createAppServerClient` from
// `@letta-ai/letta-code/app-server-client`) over the native Rust client, plus async iteration,
// a turn helper, AbortSignal and reconnect.
//
// Every frame reaches JavaScript through one dispatcher that reads the native client's paced
// stream in batches, in order: message handlers first, then the pending requests, as the
// official helper does. The paced stream never skips; while it is full the Rust client stops
// reading the socket, so a busy event loop slows the server down instead of losing frames.

const {
  BEARER_SUBPROTOCOL_PREFIX,
  CAPABILITIES,
  METHODS,
  OPTIONAL_CAPABILITIES,
  REQUESTS,
} = require('./meta');
const native = require('./native');
const { BATCH_LIMIT, FrameIterator, FrameQueue, GivenApprovals, ResponseIterator, gapOf } = require('./stream');
const { Terminal } = require('./terminal');

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Frames an `events()` iterator holds before it skips (as the Rust client's streams). */
const DEFAULT_EVENT_CAPACITY = 4096;
/** Frames the dispatcher's stream holds before the client stops reading the socket. */
const DISPATCH_CAPACITY = 1024;
const CLIENT_CLOSED = 'App-server client closed';
const SOCKET_CLOSED = 'App-server socket closed';

/** This project's `error` frame answering a request: the server could not accept the command. */
class AppServerError extends Error {
  constructor(frame) {
    super(frame.message);
    this.name = 'AppServerError';
    /** The stable reason code (`unknown_runtime`, `invalid_frame`, …). */
    this.code = frame.code;
    this.requestId = frame.request_id ?? undefined;
    this.frame = frame;
  }
}

/** The longest timeout `setTimeout` keeps (about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Options of the wrong type throw a `TypeError` naming them. */
function checkOptions({ url, requestTimeoutMs, eventCapacity }) {
  if (typeof url !== 'string') throw new TypeError('url must be a string');
  if (!(typeof requestTimeoutMs === 'number' && requestTimeoutMs >= 0 && requestTimeoutMs <= MAX_TIMEOUT_MS)) {
    throw new TypeError(`requestTimeoutMs must be a number of milliseconds from 0 to ${MAX_TIMEOUT_MS}`);
  }
  if (!(Number.isInteger(eventCapacity) && eventCapacity > 0 && eventCapacity < 2 ** 32)) {
    throw new TypeError('eventCapacity must be a positive integer');
  }
}

/**
 * The `tls.ca` option (PEM text, as a string or a Buffer, or an array of them, as `tls.connect`
 * takes it) as one PEM text; `undefined` without one.
 */
function caPem(tls) {
  if (tls === undefined) return undefined;
  if (tls === null || typeof tls !== 'object') throw new TypeError('tls must be an object: { ca }');
  if (tls.ca === undefined) return undefined;
  const certificates = Array.isArray(tls.ca) ? tls.ca : [tls.ca];
  return certificates
    .map((certificate) => {
      if (typeof certificate === 'string') return certificate;
      if (certificate instanceof Uint8Array) return Buffer.from(certificate).toString('utf8');
      throw new TypeError('tls.ca must be PEM text: a string, a Buffer, or an array of them');
    })
    .join('\n');
}

/** The `reconnect` option as the native policy: `true` is 100 ms doubling to 5 s, forever. */
function reconnectPolicy(reconnect) {
  if (!reconnect) return undefined;
  const policy = reconnect === true ? {} : reconnect;
  return {
    initialDelayMs: policy.initialDelayMs ?? 100,
    maxDelayMs: policy.maxDelayMs ?? 5_000,
    maxAttempts: policy.maxAttempts,
    resume: policy.resume ?? true,
  };
}

/** Rethrows what a handler threw outside the dispatcher, which goes on. */
function rethrowLater(error) {
  queueMicrotask(() => {
    throw error;
  });
}

/** A promise whose rejection is reported to whoever awaits it, and never as unhandled. */
function quiet(promise) {
  promise.catch(() => {});
  return promise;
}

/** `promise`, or the abort reason of `signal` if it aborts first. */
function abortable(promise, signal) {
  if (!signal) return promise;
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * An item of a stream answer as the iterator yields it: an answer frame, or what ends the
 * stream thrown (this server's `error` frame as `AppServerError`; a timeout, a disconnect or
 * closing with the messages of the other requests).
 */
function answerOf(item) {
  if (!Array.isArray(item)) {
    if (item.type === 'error') throw new AppServerError(item);
    return item;
  }
  switch (item[0]) {
    case 'timeout':
      throw new Error(`Timed out waiting for ${item[1]}`);
    case 'disconnected':
      throw new Error(SOCKET_CLOSED);
    case 'closed':
      throw new Error(CLIENT_CLOSED);
    default:
      throw new Error(item[1]);
  }
}

/**
 * An item of a watched file's native stream: a `file_changed` frame, a gap, or the server's
 * refusal of the watch (`["failed", message]`), which ends it.
 */
function changeOf(item) {
  if (!Array.isArray(item)) return item;
  if (item[0] === 'failed') throw new Error(item[1]);
  return gapOf(item);
}

/** What a tool handler returned, as an `external_tool_call_response`. */
function toolResponse(requestId, result) {
  if (result === undefined || result === null) {
    return { type: 'external_tool_call_response', request_id: requestId, error: 'the tool handler returned no result' };
  }
  const content = typeof result === 'string' ? { content: [{ type: 'text', text: result }] } : result;
  return { type: 'external_tool_call_response', request_id: requestId, result: content };
}


class AppServerClient {
  #native;
  #ready;
  #requestTimeoutMs;
  #closed = false;
  /** Set from an `interrupted` gap until the connection is back or gone. */
  #interrupted = false;
  #closing;
  /** Set once the dispatcher has read its last frame. */
  #ended = false;
  /** The last send, which the next one waits for. */
  #sending = Promise.resolve();
  /** Pending requests by `request_id`: sets of `{ predicate, settle }`. */
  #pending = new Map();
  #messageHandlers = new Set();
  #sendHandlers = new Set();
  #disconnectHandlers = new Set();
  #reconnectHandlers = new Set();
  /** The `events()` iterators. */
  #queues = new Set();
  #eventCapacity;

  constructor(options = {}) {
    const {
      url,
      authToken,
      tls,
      requestTimeoutMs = DEFAULT_REQUEST_TIMEOUT_MS,
      eventCapacity = DEFAULT_EVENT_CAPACITY,
      reconnect,
    } = options;
    checkOptions({ url, requestTimeoutMs, eventCapacity });
    this.#requestTimeoutMs = requestTimeoutMs;
    this.#eventCapacity = eventCapacity;
    // Throws at once, as the official helper does, for a bad URL scheme or a blank token (and
    // for CA certificates that are not PEM).
    this.#native = new native.NativeClient({
      url,
      authToken,
      caPem: caPem(tls),
      requestTimeoutMs,
      eventCapacity,
      reconnect: reconnectPolicy(reconnect),
    });
    this.#ready = quiet(
      this.#native.connect(DISPATCH_CAPACITY).then(
        (stream) => {
          this.#dispatch(stream);
        },
        (error) => {
          // No dispatcher will run: end the iterators now (pending requests fail on `#ready`).
          this.#end();
          throw new Error(`App-server WebSocket failed to open: ${error.message}`);
        },
      ),
    );
  }

  /** Resolves with the client once connected. */
  async connect() {
    await this.#ready;
    return this;
  }

  /** Rejects every pending request with `App-server client closed` and closes the connection. */
  close() {
    if (!this.#closed) {
      this.#closed = true;
      this.#failPending(CLIENT_CLOSED);
      this.#closing = this.#native.close();
    }
    return this.#closing;
  }

  /** `"<prefix>-<n>"`, `n` counting from 1 per client. */
  nextRequestId(prefix = 'req') {
    return this.#native.nextRequestId(prefix);
  }

  // ----- commands with an answer ------------------------------------------------------------

  async info(opts) {
    const request = {
      type: 'app_server_info',
      request_id: this.nextRequestId(REQUESTS.app_server_info.requestIdPrefix),
    };
    return this.#request(request, { ...opts, predicate: isAppServerInfoResponseMessage });
  }

  abort(cmd, opts) {
    return this.#command(cmd, opts, 'abort_message');
  }

  stopMonitor(cmd, opts) {
    return this.#command(cmd, opts, 'monitor_stop');
  }

  submitInput(cmd, opts) {
    return this.#command(cmd, opts, 'input');
  }

  // The method of every other command the server answers (`agentList`, `conversationList`, …),
  // from the protocol table: `#command` for one answer, `#stream` for a stream of them.
  static {
    for (const [method, type] of Object.entries(METHODS)) {
      if (Object.hasOwn(this.prototype, method)) continue;
      const call =
        REQUESTS[type].answers === 'stream'
          ? function (cmd, opts) {
              return this.#stream({ ...cmd, type }, opts);
            }
          : function (cmd, opts) {
              return this.#command(cmd, opts, type);
            };
      Object.defineProperty(this.prototype, method, { value: call, writable: true, configurable: true });
    }
  }

  /**
   * `request(cmd, opts?)` or `request(type, body?, opts?)`: sends a command and resolves with
   * the first frame with its `request_id` that `opts.predicate` accepts: by default, for a
   * command of the protocol table its answer (this server's `error` frame rejects), for any
   * other the first frame.
   */
  request(cmdOrType, bodyOrOpts, maybeOpts) {
    if (typeof cmdOrType === 'string') {
      const body = bodyOrOpts ?? {};
      const command = { ...body, type: cmdOrType, request_id: body.request_id ?? this.nextRequestId(cmdOrType) };
      return this.#request(command, answered(command.type, maybeOpts));
    }
    const command = { ...cmdOrType, request_id: cmdOrType.request_id ?? this.nextRequestId(cmdOrType.type) };
    return this.#request(command, answered(command.type, bodyOrOpts));
  }

  /**
   * `requestStream(cmd, opts?)` or `requestStream(type, body?, opts?)`: sends a command the
   * server answers with a stream of frames and returns an async iterator of them, up to the
   * one that carries `done: true`. A command the protocol table does not list is answered by
   * every frame with its `request_id`.
   */
  requestStream(cmdOrType, bodyOrOpts, maybeOpts) {
    if (typeof cmdOrType === 'string') return this.#stream({ ...bodyOrOpts, type: cmdOrType }, maybeOpts);
    return this.#stream(cmdOrType, bodyOrOpts);
  }

  /**
   * Watches the file at `path` (`watch_file`) and returns an async iterator of its
   * `file_changed` frames (and gaps, after which changes may have been missed); `close()`, or
   * leaving a `for await` loop, sends `unwatch_file`. After a reconnect the Rust client watches
   * the file again. A server that refuses the watch makes the iteration throw.
   */
  watchFile(path, { signal } = {}) {
    return new ResponseIterator(quiet(this.#openWatch(path)), signal, changeOf);
  }

  requestRaw(cmd, opts) {
    return this.request(cmd, opts);
  }

  // ----- commands without an answer ---------------------------------------------------------

  /** Sends any frame. The promise settles once it is queued; nobody has to await it. */
  send(cmd) {
    return quiet(this.#write(cmd));
  }

  sendRaw(cmd) {
    return this.send(cmd);
  }

  /** Sends an `input` without waiting for `input_accepted`. */
  input(cmd) {
    return this.send({ ...cmd, type: 'input' });
  }

  // ----- handlers ---------------------------------------------------------------------------

  /**
   * `handler(message, channel)` for every frame received, and first (after `onMessage` returns)
   * for each approval pending; each approval once per connection. Returns an unsubscribe
   * function.
   */
  onMessage(handler) {
    const entry = { handler, approvals: new GivenApprovals() };
    this.#messageHandlers.add(entry);
    if (entry.approvals.owe(this.pendingApprovals())) {
      queueMicrotask(() => {
        if (!this.#messageHandlers.has(entry)) return;
        for (const frame of entry.approvals.pay()) this.#call(handler, frame, 'control');
      });
    }
    return () => this.#messageHandlers.delete(entry);
  }

  /** `handler(command)` before every command is written; returns an unsubscribe function. */
  onSend(handler) {
    return this.#subscribe(this.#sendHandlers, handler);
  }

  /** `handler({ channel, event })` when the connection drops (not after `close()`). */
  onDisconnect(handler) {
    return this.#subscribe(this.#disconnectHandlers, handler);
  }

  /** `handler()` when the client has reconnected (with the `reconnect` option). */
  onReconnect(handler) {
    return this.#subscribe(this.#reconnectHandlers, handler);
  }

  /**
   * Answers every `external_tool_call_request` with what `handler(request)` returns (a result,
   * or a string as one text part) or with the message of what it throws or rejects with.
   */
  onExternalToolCall(handler) {
    return this.onMessage((message) => {
      if (message.type === 'external_tool_call_request') this.#answerToolCall(handler, message);
    });
  }

  // ----- beyond the official helper ---------------------------------------------------------

  /**
   * The `control_request`s pending (of every runtime, or of `runtime`), oldest first, as the
   * Rust client records them: asked on this connection, or replayed to it, and not settled since
   * (an `update_device_status` of the runtime no longer lists it, or its turn finished); none
   * while disconnected.
   */
  pendingApprovals({ runtime } = {}) {
    return JSON.parse(this.#native.pendingApprovals(runtime === undefined ? undefined : JSON.stringify(runtime)));
  }

  /**
   * The approvals pending (`pendingApprovals`), then every frame from now on (or `runtime`'s),
   * as an async iterator with its own buffer: a consumer that falls behind by more than
   * `eventCapacity` frames gets a `lagged` gap.
   */
  events({ runtime, signal } = {}) {
    const queue = new FrameQueue({
      capacity: this.#eventCapacity,
      runtime,
      signal,
      onClose: (closed) => this.#queues.delete(closed),
    });
    if (this.#ended) queue.end();
    else {
      queue.begin(this.pendingApprovals());
      this.#queues.add(queue);
    }
    return queue;
  }

  /**
   * Sends `input` (a text, or an `input` payload) to `runtime` and returns the frames of the
   * turn it starts or joins, up to its `turn_finished`; `turn.accepted` is its `input_accepted`.
   */
  async turn(runtime, input, { timeoutMs, signal } = {}) {
    await this.#ready;
    const payload =
      typeof input === 'string' ? { kind: 'create_message', messages: [{ role: 'user', content: input }] } : input;
    const started = this.#native.turn(
      JSON.stringify(runtime),
      JSON.stringify(payload),
      timeoutMs,
    );
    const stream = await abortable(quiet(started), signal).catch((error) => {
      started.then((stream) => stream.close(), () => {});
      throw error;
    });
    const turn = new FrameIterator(stream, signal);
    turn.accepted = JSON.parse(stream.accepted);
    return turn;
  }

  /**
   * `terminal_spawn`: resolves with the terminal once `terminal_spawned` came; rejects when the
   * shell cannot start (`spawn <shell> ENOENT`). Its output is read with `for await`.
   */
  async terminal({ terminalId, cwd, cols, rows, capacity, patienceMs, timeoutMs } = {}) {
    if (this.#closed) throw new Error(CLIENT_CLOSED);
    await this.#ready;
    const options = { terminalId, cwd, cols, rows, capacity, patienceMs };
    return new Terminal(await this.#native.terminal(options, timeoutMs ?? this.#requestTimeoutMs));
  }

  // ----- internals --------------------------------------------------------------------------

  /** Sends the command `type`, numbering its id and waiting for its answer as the protocol table says. */
  #command(cmd, opts, type) {
    const { requestIdPrefix: prefix, answer } = REQUESTS[type];
    const command = { ...cmd, type, request_id: cmd?.request_id || this.nextRequestId(prefix) };
    return this.#request(command, { ...opts, predicate: (message) => message.type === answer });
  }

  /**
   * Sends a command answered by a stream; the Rust client correlates the answers and ends the
   * stream (at `done: true`, an error frame, a timeout per frame, a disconnect).
   */
  #stream(command, { timeoutMs = this.#requestTimeoutMs, signal } = {}) {
    const prefix = REQUESTS[command.type]?.requestIdPrefix ?? command.type;
    const full = { ...command, request_id: command.request_id || this.nextRequestId(prefix) };
    return new ResponseIterator(quiet(this.#openStream(full, timeoutMs)), signal, answerOf);
  }

  async #openStream(command, timeoutMs) {
    if (this.#closed) throw new Error(CLIENT_CLOSED);
    await this.#ready;
    this.#notify(this.#sendHandlers, command);
    // In order with the other sends.
    const text = JSON.stringify(command);
    const opened = this.#sending.then(() => this.#native.requestStream(text, timeoutMs));
    this.#sending = opened.then(
      () => {},
      () => {},
    );
    return opened;
  }

  async #openWatch(path) {
    if (this.#closed) throw new Error(CLIENT_CLOSED);
    await this.#ready;
    // In order with the other sends.
    const opened = this.#sending.then(() => this.#native.watchFile(path));
    this.#sending = opened.then(
      () => {},
      () => {},
    );
    return opened;
  }

  #request(command, { predicate = () => true, timeoutMs = this.#requestTimeoutMs, signal } = {}) {
    const id = command.request_id;
    return new Promise((resolve, reject) => {
      if (this.#closed) return reject(new Error(CLIENT_CLOSED));
      if (signal?.aborted) return reject(signal.reason);
      const entry = { predicate, settle };
      const timer = setTimeout(() => settle(new Error(`Timed out waiting for ${id}`)), timeoutMs);
      const onAbort = () => settle(signal.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      let waiting = this.#pending.get(id);
      if (!waiting) this.#pending.set(id, (waiting = new Set()));
      waiting.add(entry);
      function settle(error, frame) {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        waiting.delete(entry);
        if (error) reject(error);
        else resolve(frame);
      }
      this.#write(command).catch((error) => settle(error));
    }).finally(() => {
      if (this.#pending.get(id)?.size === 0) this.#pending.delete(id);
    });
  }

  async #write(command) {
    if (this.#closed) throw new Error(CLIENT_CLOSED);
    await this.#ready;
    this.#notify(this.#sendHandlers, command);
    // One send at a time, so that frames leave in the order they were sent.
    const text = JSON.stringify(command);
    const sent = this.#sending.then(() => this.#native.send(text));
    this.#sending = sent.catch(() => {});
    try {
      await sent;
    } catch {
      throw new Error(this.#closed ? CLIENT_CLOSED : SOCKET_CLOSED);
    }
  }

  async #answerToolCall(handler, request) {
    let response;
    try {
      response = toolResponse(request.request_id, await handler(request));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      response = { type: 'external_tool_call_response', request_id: request.request_id, error: message };
    }
    // If the connection is gone, the server has failed the call already.
    this.send(response);
  }

  /** Reads the dispatcher's stream until the client closes or the connection is gone for good. */
  async #dispatch(stream) {
    for (;;) {
      const batch = await stream.next(BATCH_LIMIT);
      if (batch === null) break;
      // Nobody to hand frames to and no gap (gaps are arrays of strings): nothing to parse.
      const listening = this.#messageHandlers.size + this.#pending.size + this.#queues.size;
      if (listening === 0 && !batch.includes('["')) continue;
      for (const item of JSON.parse(batch)) {
        if (Array.isArray(item)) this.#gap(gapOf(item));
        else this.#receive(item);
      }
    }
    this.#failPending(this.#closed ? CLIENT_CLOSED : SOCKET_CLOSED);
    this.#end();
  }

  /** No frame will come any more: the iterators end. */
  #end() {
    this.#ended = true;
    for (const queue of this.#queues) queue.end();
  }

  #receive(message) {
    for (const { handler, approvals } of this.#messageHandlers) {
      if (!approvals.skips(message)) this.#call(handler, message, 'control');
    }
    for (const queue of this.#queues) queue.offer(message);
    const waiting = typeof message.request_id === 'string' && this.#pending.get(message.request_id);
    if (!waiting) return;
    for (const entry of [...waiting]) {
      let accepted;
      try {
        accepted = entry.predicate(message);
      } catch (error) {
        entry.settle(error);
        continue;
      }
      if (accepted) entry.settle(null, message);
      // This server's `error` frame: the command was refused, no answer will come.
      else if (message.type === 'error') entry.settle(new AppServerError(message));
    }
  }

  #gap(gap) {
    // As the Rust client's record: forgotten at a drop, or at the reconnect of one that was
    // to resume and did not.
    if (gap.reason === 'disconnected' || (gap.reason === 'reconnected' && this.#interrupted)) {
      for (const { approvals } of [...this.#messageHandlers, ...this.#queues]) approvals.forget();
    }
    for (const queue of this.#queues) queue.push(gap);
    if (this.#closed) return;
    // A resumed drop (`interrupted`, then `resumed`) is a disconnect and a reconnect too;
    // the `disconnected` of a client that gave up after an `interrupted` is told once.
    if (gap.reason === 'interrupted' || (gap.reason === 'disconnected' && !this.#interrupted)) {
      this.#failPending(SOCKET_CLOSED);
      const event = { channel: 'control', event: { reason: gap.detail } };
      this.#notify(this.#disconnectHandlers, event);
    } else if (gap.reason === 'reconnected' || gap.reason === 'resumed') {
      this.#notify(this.#reconnectHandlers);
    }
    if (gap.reason !== 'lagged' && gap.reason !== 'other') this.#interrupted = gap.reason === 'interrupted';
  }

  #failPending(message) {
    for (const waiting of this.#pending.values()) {
      for (const entry of [...waiting]) entry.settle(new Error(message));
    }
  }

  /** Calls every handler with `args`; what one throws is rethrown later, and the rest go on. */
  #notify(handlers, ...args) {
    for (const { handler } of handlers) this.#call(handler, ...args);
  }

  #call(handler, ...args) {
    try {
      handler(...args);
    } catch (error) {
      rethrowLater(error);
    }
  }

  #subscribe(handlers, handler) {
    // An entry of its own, so that the same function registered twice is called twice.
    const entry = { handler };
    handlers.add(entry);
    return () => handlers.delete(entry);
  }
}

/** `opts` of a request of `type`, waiting for its answer unless `opts` says what to wait for. */
function answered(type, opts) {
  const answer = REQUESTS[type]?.answer;
  if (!answer || opts?.predicate) return opts;
  return { ...opts, predicate: (message) => message.type === answer };
}

/** A new client; the connection opens at once (`connect()` waits for it). */
function createAppServerClient(options) {
  return new AppServerClient(options);
}

/**
 * `http(s)` becomes `ws(s)`, an empty path or `/` becomes `/ws`, a `channel` parameter is
 * dropped; another scheme throws `Unsupported app-server URL protocol: <proto>`.
 */
function resolveAppServerUrl(url) {
  return native.resolveAppServerUrl(url);
}

/** The same URL as `resolveAppServerUrl`: one socket carries every channel. */
function resolveAppServerChannelUrl(url, _channel) {
  return resolveAppServerUrl(url);
}

/**
 * Every violation of `frame` (an object, or the text of a message) against the protocol's
 * schema and this version's rules, as `{ path, reason }`; empty when it is valid.
 * `options.direction` says who sent it (`'client'` or `'server'`; by default its type's sender).
 */
function validate(frame, options = {}) {
  const text = typeof frame === 'string' ? frame : JSON.stringify(frame);
  if (text === undefined) throw new TypeError('validate: the frame must be JSON (an object or its text)');
  return native.validateFrame(text, options.direction ?? null);
}

/** Whether `m` is a well-formed successful `app_server_info_response`. */
function isAppServerInfoResponseMessage(m) {
  const capabilities = m?.capabilities;
  return (
    m?.type === 'app_server_info_response' &&
    typeof m.request_id === 'string' &&
    m.request_id.length > 0 &&
    m.success === true &&
    (m.backend === 'local' || m.backend === 'api') &&
    typeof m.letta_code_version === 'string' &&
    Number.isInteger(m.protocol_version) &&
    typeof capabilities === 'object' &&
    capabilities !== null &&
    CAPABILITIES.every((name) => typeof capabilities[name] === 'boolean') &&
    OPTIONAL_CAPABILITIES.every((name) => capabilities[name] === undefined || typeof capabilities[name] === 'boolean')
  );
}

module.exports = {
  AppServerClient,
  BEARER_SUBPROTOCOL_PREFIX,
  AppServerError,
  createAppServerClient,
  isAppServerInfoResponseMessage,
  resolveAppServerChannelUrl,
  resolveAppServerUrl,
  validate,
};
