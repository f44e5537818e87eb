'use strict';
// A terminal on the server (`client.terminal()`): its output as an async iterator of strings,
// `exited` once the shell ended, `write`, `resize`, `kill`. The native side paces the output: it
// is read from the socket only as fast as it is iterated, so nothing is skipped.

const { FrameIterator } = require('./stream');

class Terminal {
  #native;
  #output;
  #exit;
  #resolveExit;
  #rejectExit;
  /** The last command sent, which the next one waits for. */
  #sending = Promise.resolve();
  /** The terminal's id on this connection. */
  id;
  /** The shell's process id. */
  pid;
  /** Resolves with `{ exitCode, error? }` once the output has been read to the shell's exit. */
  exited;

  constructor(nativeTerminal) {
    this.#native = nativeTerminal;
    this.id = nativeTerminal.id;
    this.pid = nativeTerminal.pid;
    this.#output = new FrameIterator(nativeTerminal.output());
    this.exited = new Promise((resolve, reject) => {
      this.#resolveExit = resolve;
      this.#rejectExit = reject;
    });
    // Awaited or not, a lost connection must not be an unhandled rejection.
    this.exited.catch(() => {});
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /**
   * The next chunk of output (a string), or a gap (`{type: 'gap', reason: 'lagged', missed}`,
   * only with `patienceMs`); done after the shell's exit, which resolves `exited`. A lost
   * connection ends it too, and rejects `exited`.
   */
  async next() {
    for (;;) {
      if (this.#exit) return { value: undefined, done: true };
      const { value, done } = await this.#output.next();
      if (done) {
        this.#end(null, new Error('App-server socket closed'));
        return { value: undefined, done: true };
      }
      if (value.type === 'terminal_output') return { value: value.data, done: false };
      if (value.type === 'terminal_exited') {
        const exit = { exitCode: value.exitCode };
        if (value.error !== undefined) exit.error = value.error;
        this.#end(exit);
        return { value: undefined, done: true };
      }
      if (value.type === 'gap' && value.reason === 'disconnected') {
        this.#end(null, new Error(`App-server socket closed: ${value.detail}`));
        return { value: undefined, done: true };
      }
      if (value.type === 'gap' && value.reason === 'lagged') return { value, done: false };
    }
  }

  /** Reads (and drops) the rest of the output; resolves as `exited` does. */
  async wait() {
    while (!(await this.next()).done);
    return this.exited;
  }

  /**
   * `terminal_input`: types `data` (`'\n'` is Enter, `'\x03'` Ctrl-C). After a kill or the exit
   * it rejects with the server's answer to input for a terminal it does not know,
   * `Terminal not found: <id>`.
   */
  write(data) {
    return this.#inOrder(() => this.#native.write(data));
  }

  /** `terminal_resize`: the shell sees the new size. */
  resize(cols, rows) {
    return this.#inOrder(() => this.#native.resize(cols, rows));
  }

  /** `terminal_kill`: the rest of the output, then the exit (code 129), follow. */
  kill() {
    return this.#inOrder(() => this.#native.kill());
  }

  /** Sends one command after the ones before it. */
  #inOrder(send) {
    const sent = this.#sending.then(send);
    this.#sending = sent.catch(() => {});
    return sent;
  }

  /**
   * Stops reading the output (a `break` out of `for await` does this too): the shell is killed
   * unless it has exited already.
   */
  async return() {
    this.#output.return();
    this.#end(null, new Error('Terminal closed'));
    return { value: undefined, done: true };
  }

  close() {
    return this.return().then(() => {});
  }

  #end(exit, error) {
    if (this.#exit) return;
    this.#exit = exit ?? { error };
    if (exit) this.#resolveExit(exit);
    else this.#rejectExit(error);
  }
}

// `await using term = await client.terminal()` where the runtime has explicit resource management.
if (Symbol.asyncDispose) {
  Terminal.prototype[Symbol.asyncDispose] = Terminal.prototype.close;
}

module.exports = { Terminal };
