// letta-app-server: the Node SDK for the Letta Code App Server v2 websocket protocol.
//
// The client mirrors the official helper (`createAppServerClient` from
// `@letta-ai/letta-code/app-server-client`); the frame types (`./frames`) are generated from the
// protocol's JSON Schema.

import type { CommandMethods, Commands } from "./commands";
import type {
  AbortMessage,
  AbortMessageResponse,
  AppServerInfoResponse,
  ClientFrame,
  ControlRequest,
  ExternalToolCallRequest,
  ExternalToolResult,
  FileChanged,
  Input,
  InputAccepted,
  InputPayload,
  MonitorStop,
  MonitorStopResponse,
  RuntimeScope,
  ServerFrame,
} from "./frames";

export * from "./frames";
export type { CommandMethods, Commands } from "./commands";

/** The `type` of every command the server answers. */
export type CommandType = keyof Commands;
/** The `type` of every command the server answers with a stream of frames. */
export type StreamCommandType = {
  [K in CommandType]: Commands[K]["answers"] extends "stream" ? K : never;
}[CommandType];
/** The fields of the command `K` as `request(type, body)` takes them. */
export type CommandBody<K extends CommandType> = Omit<CommandInput<Commands[K]["command"]>, "type">;
/** The frame that answers the command `K`. */
export type ResponseOf<K extends CommandType> = Commands[K]["response"];

/** The official helper's name for a frame the server sends. */
export type WsProtocolMessage = ServerFrame;
/** The official helper's name for a frame a client sends. */
export type WsProtocolCommand = ClientFrame;

/** A frame outside the generated types: a command or answer of the protocol's Tier B, say. */
export interface OtherFrame {
  type: string;
  request_id?: string;
  [field: string]: unknown;
}

/** Automatic reconnect: wait `initialDelayMs` (100), doubling up to `maxDelayMs` (5000). */
export interface ReconnectOptions {
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Give up after this many failed attempts (default: never, until `close()`). */
  maxAttempts?: number;
  /**
   * Resume each runtime's event stream where it left off, on a server that offers it
   * (`event_resume`, this project's server): events and turns then see no gap at all across a
   * reconnect. `false` gets every runtime's state replay after a reconnect instead (default true).
   */
  resume?: boolean;
}

/** TLS settings of a client (an extension: real Letta's server has no TLS). */
export interface TlsOptions {
  /**
   * CA certificates to trust, as PEM text (a string or a Buffer, or an array of them, as
   * `tls.connect` takes them): the CA of a server started with `--tls-cert`, or its certificate
   * when self-signed. Unlike `tls.connect`'s `ca`, it adds to the Mozilla roots, which stay
   * trusted. Text that is not PEM certificates throws.
   */
  ca?: string | Uint8Array | Array<string | Uint8Array>;
}

export interface AppServerClientOptions {
  /** `ws://`, `wss://`, `http://` or `https://`; an empty path becomes `/ws`. */
  url: string;
  /** Sent as `Authorization: Bearer <token>`; a blank token throws. */
  authToken?: string;
  /** TLS for `wss://` (and `https://`) URLs. */
  tls?: TlsOptions;
  /** Default timeout of every request (30000). */
  requestTimeoutMs?: number;
  /** Accepted for compatibility with the official helper, and not used: Rust owns the socket. */
  WebSocket?: unknown;
  /**
   * Reconnect after the connection drops, then start, sync and register tools again for the
   * runtimes this client used (`true`: the default policy). Default: no reconnect.
   */
  reconnect?: boolean | ReconnectOptions;
  /** Frames each `events()` or `turn()` iterator buffers before it skips (4096). */
  eventCapacity?: number;
}

export interface RequestOptions {
  /** Rejects with `Timed out waiting for <request_id>` after this many milliseconds. */
  timeoutMs?: number;
  /** Rejects with the signal's reason when it aborts (the command may still take effect). */
  signal?: AbortSignal;
}

/** A command as the methods take it: `type` is filled in, `request_id` generated when absent. */
export type CommandInput<T extends { type: string }> = Omit<T, "type" | "request_id"> & {
  type?: T["type"];
  request_id?: string;
};

/**
 * Where an `events()` or `turn()` iterator may be missing frames: it fell behind by more than
 * `eventCapacity` and skipped `missed` frames, the connection dropped, it came back, or (`other`)
 * a kind of gap this version does not know, described by `detail`. With `reconnect` (and
 * `resume`, the default) on a server that offers it, a drop is `interrupted` instead, and
 * `resumed` follows once every runtime's events resumed where they left off: nothing is missing
 * (`reconnected` follows instead when one could not resume).
 */
export type StreamGap =
  | { type: "gap"; reason: "lagged"; missed: number }
  | { type: "gap"; reason: "disconnected"; detail: string }
  | { type: "gap"; reason: "reconnected" }
  | { type: "gap"; reason: "interrupted"; detail: string }
  | { type: "gap"; reason: "resumed" }
  | { type: "gap"; reason: "other"; detail: string };

/** What an `events()` or `turn()` iterator yields. */
export type StreamItem = ServerFrame | StreamGap;

/** The frames of one turn, up to its `turn_finished`. */
export interface Turn extends AsyncIterableIterator<StreamItem> {
  /** The server's `input_accepted` for the input. */
  accepted: InputAccepted;
}

/**
 * The changes of a watched file (`watchFile()`): each `file_changed`, and gaps after which
 * changes may have been missed (read the file again).
 */
export interface FileWatch extends AsyncIterableIterator<FileChanged | StreamGap> {
  /** Stops watching: sends `unwatch_file`, and the iteration ends. */
  close(): void;
}

/** What an external tool handler may return: a result, or a text (one text part). */
export type ExternalToolHandlerResult = ExternalToolResult | string;

/** This project's `error` frame answering a request: the server refused the command. */
export declare class AppServerError extends Error {
  /** The stable reason code (`unknown_runtime`, `invalid_frame`, `unknown_type`, …). */
  readonly code: string;
  readonly requestId: string | undefined;
  readonly frame: Extract<ServerFrame, { type: "error" }>;
}

export declare class AppServerClient {
  constructor(options: AppServerClientOptions);
  /** Resolves with the client once connected; rejects `App-server WebSocket failed to open: …`. */
  connect(): Promise<this>;
  /** Rejects every pending request with `App-server client closed` and closes the connection. */
  close(): Promise<void>;
  /** `"<prefix>-<n>"`, `n` counting from 1 per client. */
  nextRequestId(prefix?: string): string;

  /** `app_server_info`, resolved only by a well-formed successful answer (`isAppServerInfoResponseMessage`). */
  info(opts?: RequestOptions): Promise<AppServerInfoResponse>;
  /** `abort_message` (also `abortMessage`). */
  abort(cmd: CommandInput<AbortMessage>, opts?: RequestOptions): Promise<AbortMessageResponse>;
  /** `monitor_stop` (also `monitorStop`), the helper's name. */
  stopMonitor(cmd: CommandInput<MonitorStop>, opts?: RequestOptions): Promise<MonitorStopResponse>;
  /** `input`, resolved by its `input_accepted`. */
  submitInput(cmd: CommandInput<Input>, opts?: RequestOptions): Promise<InputAccepted>;
  /** Sends an `input` without waiting for its `input_accepted`. */
  input(cmd: CommandInput<Input>): Promise<void>;
  /** Sends any frame; the promise settles once it is queued, and nobody has to await it. */
  send(cmd: ClientFrame | OtherFrame): Promise<void>;
  sendRaw(cmd: ClientFrame | OtherFrame): Promise<void>;
  /**
   * Sends a command of the protocol table and resolves with its answer (this server's `error`
   * frame rejects with `AppServerError`); the form `request(type, body)` numbers the
   * `request_id` `<type>-<n>` unless the body has one.
   */
  request<K extends CommandType>(type: K, body?: CommandBody<K>, opts?: RequestOptions): Promise<ResponseOf<K>>;
  request<K extends CommandType>(
    cmd: CommandInput<Commands[K]["command"]> & { type: K },
    opts?: RequestOptions,
  ): Promise<ResponseOf<K>>;
  /** Resolves with the first frame with the command's `request_id` that `predicate` accepts. */
  request<T extends ServerFrame>(
    cmd: ClientFrame | OtherFrame,
    opts: RequestOptions & { predicate: (message: ServerFrame) => message is T },
  ): Promise<T>;
  request(
    cmd: ClientFrame | OtherFrame,
    opts?: RequestOptions & { predicate?: (message: ServerFrame) => boolean },
  ): Promise<ServerFrame>;
  /** Sends `{type, ...body}` with `request_id` `<type>-<n>` unless the body has one. */
  request(
    type: string,
    body?: Record<string, unknown>,
    opts?: RequestOptions & { predicate?: (message: ServerFrame) => boolean },
  ): Promise<ServerFrame>;
  requestRaw(
    cmd: ClientFrame | OtherFrame,
    opts: RequestOptions & { predicate: (message: ServerFrame) => boolean },
  ): Promise<ServerFrame>;
  /**
   * Sends a command the server answers with a stream of frames and yields them up to the one
   * that carries `done: true`. The iteration rejects with `AppServerError` at this server's
   * `error` frame, with `Timed out waiting for <request_id>` when no frame comes within the
   * timeout (counted afresh after each frame), and with `App-server socket closed` or
   * `App-server client closed`. Breaking out of it withdraws the request.
   */
  requestStream<K extends StreamCommandType>(
    type: K,
    body?: CommandBody<K>,
    opts?: RequestOptions,
  ): AsyncIterableIterator<ResponseOf<K>>;
  requestStream<K extends StreamCommandType>(
    cmd: CommandInput<Commands[K]["command"]> & { type: K },
    opts?: RequestOptions,
  ): AsyncIterableIterator<ResponseOf<K>>;
  /** A command the protocol table does not list (a newer server's): every frame with its `request_id`. */
  requestStream(
    type: string,
    body?: Record<string, unknown>,
    opts?: RequestOptions,
  ): AsyncIterableIterator<ServerFrame | OtherFrame>;
  requestStream(cmd: OtherFrame, opts?: RequestOptions): AsyncIterableIterator<ServerFrame | OtherFrame>;

  /**
   * `handler(message, channel)` for every frame received, before any request it answers
   * resolves. Frames this version's types do not describe arrive too. It also gets each approval
   * pending when it subscribes (`pendingApprovals()`), after `onMessage` returns; each
   * `control_request` reaches it once per connection, however often the server replays it.
   * Returns an unsubscribe function.
   */
  onMessage(handler: (message: ServerFrame, channel: "control") => void): () => void;
  /** `handler(command)` before every command is written. */
  onSend(handler: (command: ClientFrame | OtherFrame) => void): () => void;
  /** `handler({channel, event})` each time the connection drops, unless `close()` was called. */
  onDisconnect(handler: (disconnect: { channel: "control"; event: { reason: string } }) => void): () => void;
  /** `handler()` each time the client has reconnected (with the `reconnect` option). */
  onReconnect(handler: () => void): () => void;
  /**
   * Answers each `external_tool_call_request` with the handler's result, or with the message
   * of what it throws (synchronously or not) as an error the model sees.
   */
  onExternalToolCall(
    handler: (request: ExternalToolCallRequest) => ExternalToolHandlerResult | Promise<ExternalToolHandlerResult>,
  ): () => void;

  /**
   * The approvals pending (`pendingApprovals()`), then every frame from now on (or one
   * runtime's), with a buffer of its own; each `control_request` once per connection.
   */
  events(options?: { runtime?: RuntimeScope; signal?: AbortSignal }): AsyncIterableIterator<StreamItem>;
  /**
   * The `control_request`s pending (of every runtime, or of `runtime`), oldest first: asked on
   * this connection or replayed to it, and not settled since (the runtime's
   * `update_device_status` no longer lists it, or its turn finished); none while disconnected.
   */
  pendingApprovals(options?: { runtime?: RuntimeScope }): ControlRequest[];
  /** Sends `input` to `runtime` and returns the frames of the turn it starts or joins. */
  turn(runtime: RuntimeScope, input: string | InputPayload, options?: RequestOptions): Promise<Turn>;
  /**
   * Watches the file at `path` (`watch_file`) and returns its changes, debounced by the server;
   * `close()` (or leaving a `for await` loop) sends `unwatch_file`. After a reconnect the file is
   * watched again. A server that refuses the watch (this project's: a missing file, too many
   * watches) makes the iteration throw; real Letta refuses silently.
   */
  watchFile(path: string, options?: { signal?: AbortSignal }): FileWatch;
  /**
   * `terminal_spawn`: the server's shell on a pseudo-terminal of this connection, once
   * `terminal_spawned` came; rejects when the shell cannot start (`spawn <shell> ENOENT`).
   */
  terminal(options?: TerminalOptions): Promise<Terminal>;
}

/** How to start a terminal. */
export interface TerminalOptions {
  /** The terminal's id on this connection (`terminal-<n>` by default). */
  terminalId?: string;
  /** The shell's working directory, relative to the server's boot working directory. */
  cwd?: string;
  /** Columns (80). */
  cols?: number;
  /** Rows (24). */
  rows?: number;
  /** Output frames buffered before the client stops reading the socket (256). */
  capacity?: number;
  /**
   * How long an unread, full terminal may hold up reading the socket at a time; past it the
   * output is skipped and a `lagged` gap says how many frames. Absent: as long as it takes
   * (nothing is ever skipped).
   */
  patienceMs?: number;
  /** How long to wait for `terminal_spawned` (the request timeout). */
  timeoutMs?: number;
}

/** How a terminal's shell ended. */
export interface TerminalExit {
  /** The exit status, or 128 + the signal (129 after `kill()`); -1 when it failed. */
  exitCode: number;
  error?: string;
}

/**
 * A terminal on the server. Iterating it yields its output, in order (strings, escape sequences
 * included; a `lagged` gap only with `patienceMs`), up to the shell's exit. Breaking out of the
 * iteration, `close()` or `await using` kills the shell.
 */
export interface Terminal extends AsyncIterableIterator<string | Extract<StreamGap, { reason: "lagged" }>> {
  readonly id: string;
  readonly pid: number;
  /** Resolves once the output has been read to the exit; rejects if the connection dropped first. */
  readonly exited: Promise<TerminalExit>;
  /** Reads (and drops) the rest of the output; resolves as `exited`. */
  wait(): Promise<TerminalExit>;
  /** `terminal_input`; after a kill or the exit it rejects `Terminal not found: <id>`. */
  write(data: string): Promise<void>;
  /** `terminal_resize`. */
  resize(cols: number, rows: number): Promise<void>;
  /** `terminal_kill`: the rest of the output, then the exit (129), follow. */
  kill(): Promise<void>;
  /** Stops reading; kills the shell unless it exited. */
  close(): Promise<void>;
}

/**
 * The method of every command the server answers that has no hand-written method above
 * (`agentList`, `conversationList`, `runtimeStart`, …), generated from the protocol table.
 */
export interface AppServerClient extends CommandMethods {}

/** A new client; the connection opens at once (`connect()` waits for it). */
export declare function createAppServerClient(options: AppServerClientOptions): AppServerClient;
/** `http(s)` becomes `ws(s)`, an empty path `/ws`; `channel` is dropped. */
export declare function resolveAppServerUrl(url: string): string;
/** The same as `resolveAppServerUrl`: one socket carries every channel. */
export declare function resolveAppServerChannelUrl(url: string, channel: "control" | "stream"): string;
/** Whether `message` is a well-formed, successful `app_server_info_response`. */
export declare function isAppServerInfoResponseMessage(message: unknown): message is AppServerInfoResponse;
/**
 * A web page, which cannot set `Authorization`, sends its bearer token as the websocket
 * subprotocol `BEARER_SUBPROTOCOL_PREFIX + token` (servers started with `--allow-origin`).
 */
export declare const BEARER_SUBPROTOCOL_PREFIX: "letta-app-server.bearer.";
/** One way a frame breaks the protocol. */
export interface Violation {
  /** The offending value (`payload.decision`, `messages[0].content`); empty for the whole frame. */
  path: string;
  /** What is wrong. */
  reason: string;
}
/**
 * Every violation of `frame` (an object, or the text of a message) against the protocol's
 * schema bundled with this package and this version's rules; empty when it is valid.
 * `direction` says who sent it (by default, the sender of its `type`).
 */
export declare function validate(frame: unknown, options?: { direction?: "client" | "server" }): Violation[];
