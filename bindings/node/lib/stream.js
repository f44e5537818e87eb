'use strict';
// Async iteration over frames: over a native stream (a turn's), whose frames arrive from Rust in
// batches (the text of one JSON array per batch), and over what the client's dispatcher hands on.

/** Items taken from Rust per boundary crossing. */
const BATCH_LIMIT = 1024;

/**
 * A batch item that is an array is a gap: `["lagged", n]`, `["disconnected", why]`,
 * `["reconnected"]`, `["interrupted", why]`, `["resumed"]`.
 */
function gapOf(item) {
  switch (item[0]) {
    case 'lagged':
      return { type: 'gap', reason: 'lagged', missed: item[1] };
    case 'disconnected':
      return { type: 'gap', reason: 'disconnected', detail: item[1] };
    case 'reconnected':
      return { type: 'gap', reason: 'reconnected' };
    case 'interrupted':
      return { type: 'gap', reason: 'interrupted', detail: item[1] };
    case 'resumed':
      return { type: 'gap', reason: 'resumed' };
    default:
      return { type: 'gap', reason: 'other', detail: item[1] };
  }
}

/** What an approval is known by: its runtime and its `request_id`. */
function approvalKey(frame) {
  return JSON.stringify([frame.runtime?.agent_id, frame.runtime?.conversation_id, frame.request_id]);
}

/**
 * The approvals a handler or an iterator is given when it subscribes: the client's pending ones
 * (the Rust client's record). That record runs ahead of the dispatcher, which may still hand
 * some of them on; each reaches the subscriber once.
 */
class GivenApprovals {
  /** Owed, not given yet: key → frame. */
  #owed = new Map();
  /** Given, and maybe still to come from the dispatcher. */
  #given = new Set();

  /** Owes `frames`; whether there are any. */
  owe(frames) {
    for (const frame of frames) this.#owed.set(approvalKey(frame), frame);
    return this.#owed.size > 0;
  }

  /** The frames owed, given now. */
  pay() {
    const frames = [...this.#owed.values()];
    for (const key of this.#owed.keys()) this.#given.add(key);
    this.#owed.clear();
    return frames;
  }

  /**
   * Whether the dispatcher's `frame` is to be left out: an approval given already. One still
   * owed comes from the dispatcher instead, in its place.
   */
  skips(frame) {
    if (frame.type !== 'control_request' || (this.#owed.size === 0 && this.#given.size === 0)) return false;
    const key = approvalKey(frame);
    this.#owed.delete(key);
    return this.#given.delete(key);
  }

  /**
   * At a disconnect: what the dispatcher hands on from now on comes from a later connection,
   * whose replays bring each approval still pending once more.
   */
  forget() {
    this.#given.clear();
  }
}

/**
 * Frames (and gaps) of a native stream, as an async iterator; `signal` aborts the iteration
 * (the pending `next()` rejects with its reason).
 */
class FrameIterator {
  #stream;
  #signal;
  #onAbort = () => this.#close();
  #buffer = [];
  #index = 0;
  #done = false;

  constructor(stream, signal) {
    this.#stream = stream;
    this.#signal = signal;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  next() {
    // Buffered items are handed out without another trip to Rust.
    if (this.#index < this.#buffer.length) return Promise.resolve(this.#take());
    return this.#fill();
  }

  async #fill() {
    while (this.#index >= this.#buffer.length) {
      if (this.#done) return { value: undefined, done: true };
      this.#signal?.throwIfAborted();
      const batch = await this.#stream.next(BATCH_LIMIT);
      this.#signal?.throwIfAborted();
      if (batch === null) {
        this.#close();
        return { value: undefined, done: true };
      }
      this.#buffer = JSON.parse(batch);
      this.#index = 0;
    }
    return this.#take();
  }

  #take() {
    const item = this.#buffer[this.#index++];
    return { value: Array.isArray(item) ? gapOf(item) : item, done: false };
  }

  /** Ends the iteration (a `break` out of `for await` calls this): the stream unsubscribes. */
  async return() {
    this.#close();
    return { value: undefined, done: true };
  }

  #close() {
    this.#done = true;
    this.#buffer = [];
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#stream.close();
  }
}

/**
 * The answers of a command answered by a stream, from a native stream that `opened` resolves
 * with, as an async iterator: each batch item goes through `answerOf`, which returns the frame
 * or throws what ends the stream; after a throw the iterator is done. `signal` aborts it.
 */
class ResponseIterator {
  #opened;
  #signal;
  #answerOf;
  #onAbort = () => this.#close();
  #buffer = [];
  #index = 0;
  #done = false;

  constructor(opened, signal, answerOf) {
    this.#opened = opened;
    this.#signal = signal;
    this.#answerOf = answerOf;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  async next() {
    while (this.#index >= this.#buffer.length) {
      if (this.#done) return { value: undefined, done: true };
      this.#signal?.throwIfAborted();
      const stream = await this.#opened;
      const batch = await stream.next(BATCH_LIMIT);
      this.#signal?.throwIfAborted();
      if (batch === null) {
        this.#close();
        return { value: undefined, done: true };
      }
      this.#buffer = JSON.parse(batch);
      this.#index = 0;
    }
    try {
      return { value: this.#answerOf(this.#buffer[this.#index++]), done: false };
    } catch (error) {
      this.#close();
      throw error;
    }
  }

  /** Ends the iteration (a `break` out of `for await` calls this): the request is withdrawn. */
  async return() {
    this.#close();
    return { value: undefined, done: true };
  }

  /** Ends the iteration now, as `return()` does. */
  close() {
    this.#close();
  }

  #close() {
    this.#done = true;
    this.#buffer = [];
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#opened.then(
      (stream) => stream.close(),
      () => {},
    );
  }
}

/**
 * Frames (and gaps) the client's dispatcher hands over, as an async iterator with a bounded
 * buffer of its own: when `capacity` items wait unread, further frames are skipped and counted,
 * and a `lagged` gap with their number comes before the next frame. Only frames of `runtime`
 * are taken when it is given; gaps always are. It starts with the approvals pending (`begin`).
 */
class FrameQueue {
  #capacity;
  #runtime;
  #signal;
  #onClose;
  #items = [];
  #head = 0;
  #missed = 0;
  #waiting = null;
  #done = false;
  /** The approvals it began with (`begin`). */
  approvals = new GivenApprovals();
  #onAbort = () => {
    this.#settle(null, this.#signal.reason);
    this.#close();
  };

  constructor({ capacity, runtime, signal, onClose }) {
    this.#capacity = capacity;
    this.#runtime = runtime;
    this.#signal = signal;
    this.#onClose = onClose;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /** Starts with the client's pending approvals (`control_request` frames) that are for it. */
  begin(approvals) {
    this.approvals.owe(approvals.filter((frame) => this.#wants(frame)));
    for (const frame of this.approvals.pay()) this.push(frame);
  }

  /** Takes a frame from the dispatcher, if it is for this queue. */
  offer(frame) {
    if (this.#wants(frame) && !this.approvals.skips(frame)) this.push(frame);
  }

  #wants(frame) {
    const runtime = this.#runtime;
    return (
      !runtime ||
      (frame.runtime?.agent_id === runtime.agent_id && frame.runtime?.conversation_id === runtime.conversation_id)
    );
  }

  /** Takes a frame or a gap; a full queue skips it. */
  push(item) {
    if (this.#done) return;
    if (this.#waiting) return this.#settle({ value: item, done: false });
    if (this.#missed > 0) {
      if (this.#size() >= this.#capacity) {
        this.#missed++;
        return;
      }
      this.#items.push(this.#lagged());
    }
    if (this.#size() < this.#capacity) this.#items.push(item);
    else this.#missed++;
  }

  /** No more items will come (the client closed or its connection is gone for good). */
  end() {
    this.#done = true;
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#settle({ value: undefined, done: true });
  }

  next() {
    if (this.#size() > 0) {
      const value = this.#items[this.#head++];
      if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
        this.#items = this.#items.slice(this.#head);
        this.#head = 0;
      }
      return Promise.resolve({ value, done: false });
    }
    if (this.#missed > 0) return Promise.resolve({ value: this.#lagged(), done: false });
    if (this.#signal?.aborted) return Promise.reject(this.#signal.reason);
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  /** Ends the iteration (a `break` out of `for await` calls this). */
  return() {
    this.#close();
    return Promise.resolve({ value: undefined, done: true });
  }

  #size() {
    return this.#items.length - this.#head;
  }

  #lagged() {
    const gap = { type: 'gap', reason: 'lagged', missed: this.#missed };
    this.#missed = 0;
    return gap;
  }

  #settle(result, error) {
    const waiting = this.#waiting;
    this.#waiting = null;
    if (!waiting) return;
    if (error) waiting.reject(error);
    else waiting.resolve(result);
  }

  #close() {
    if (!this.#done) {
      this.#done = true;
      this.#onClose(this);
    }
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#items = [];
    this.#head = 0;
    this.#missed = 0;
    this.#settle({ value: undefined, done: true });
  }
}

module.exports = { BATCH_LIMIT, FrameIterator, FrameQueue, GivenApprovals, ResponseIterator, gapOf };
