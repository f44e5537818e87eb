"""The synchronous client: the asyncio client on a private event loop in a background thread."""

from __future__ import annotations

import asyncio
import os
import threading
from contextlib import contextmanager
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from . import _native
from ._async import (
    BATCH,
    DEFAULT_EVENT_CAPACITY,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_TERMINAL_CAPACITY,
    AsyncClient,
    EventStream,
    Reconnect,
)
from ._commands import SyncCommands
from ._terminal import Terminal, TerminalExit
from ._native import Gap
from .errors import ClosedError
from .frames import (
    AbortMessageResponse,
    AppServerInfoResponse,
    ApprovalDecision,
    ControlRequest,
    CreateAgent,
    CreateConversation,
    DevicePermissionMode,
    ExternalToolGroup,
    ExternalToolsUpdate,
    InputAccepted,
    InputPayload,
    RemoveQueueItemResponse,
    RuntimeExternalToolsUpdateResponse,
    RuntimeScope,
    RuntimeStartResponse,
    ServerFrame,
    SyncResponse,
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


async def _wait(native: _native.FrameStream) -> bool:
    """Waits on the loop until `native` has an item: `False` once it has ended."""
    return await native.wait()


class _LoopThread:
    """An event loop running in a daemon thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="letta-app-server-client", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs `coroutine` on the loop and waits for it; an interrupt (Ctrl-C) cancels it."""
        if self.loop.is_closed():
            coroutine.close()
            raise ClosedError("the client was closed")
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("the synchronous client cannot be used from its own event loop (in an async tool)")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncTerminal:
    """A terminal of the synchronous client (see `Terminal`): iterating it yields its output up
    to the shell's exit; leaving `with`, or `close()`, kills the shell unless it exited."""

    def __init__(self, thread: _LoopThread, terminal: Terminal) -> None:
        self._thread = thread
        self._terminal = terminal

    @property
    def id(self) -> str:
        """The terminal's id on this connection."""
        return self._terminal.id

    @property
    def pid(self) -> int:
        """The shell's process id."""
        return self._terminal.pid

    @property
    def exit(self) -> TerminalExit | None:
        """How the shell ended, once the output was read to its end."""
        return self._terminal.exit

    def __iter__(self) -> Iterator[str | Gap]:
        while True:
            try:
                yield self._thread.run(self._terminal.__anext__())
            except StopAsyncIteration:
                return

    def wait(self) -> TerminalExit:
        """Reads (and drops) the rest of the output; how the shell ended."""
        return self._thread.run(self._terminal.wait())

    def write(self, data: str) -> None:
        """`terminal_input`; see `Terminal.write`."""
        self._thread.run(self._terminal.write(data))

    def resize(self, cols: int, rows: int) -> None:
        """`terminal_resize`."""
        self._thread.run(self._terminal.resize(cols, rows))

    def kill(self) -> None:
        """`terminal_kill`."""
        self._thread.run(self._terminal.kill())

    def close(self) -> None:
        """Kills the shell unless it is gone already."""
        self._thread.run(self._terminal.close())

    def __enter__(self) -> SyncTerminal:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class Client(SyncCommands):
    """A connection to a Letta Code App Server for scripts and notebooks: the operations of
    `AsyncClient`, blocking (a command answered by a stream of frames returns a plain iterator).
    Use it as a context manager, or call `close()`.

    It runs an asyncio client on an event loop in a background thread; `async def` tools run on
    that loop, plain `def` tools in worker threads.
    """

    def __init__(self, thread: _LoopThread, client: AsyncClient) -> None:
        """Use `Client.connect`."""
        self._thread = thread
        self._client = client

    @classmethod
    def connect(
        cls,
        url: str,
        token: str | None = None,
        *,
        ca_cert: str | os.PathLike[str] | bytes | None = None,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        reconnect: bool | Reconnect = False,
        event_capacity: int = DEFAULT_EVENT_CAPACITY,
        split: bool = False,
    ) -> Client:
        """Connects; the options are `AsyncClient.connect`'s."""
        thread = _LoopThread()

        async def opening() -> AsyncClient:
            return await AsyncClient.connect(
                url,
                token,
                ca_cert=ca_cert,
                request_timeout=request_timeout,
                reconnect=reconnect,
                event_capacity=event_capacity,
                split=split,
            )

        try:
            return cls(thread, thread.run(opening()))
        except BaseException:
            thread.stop()
            raise

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def next_request_id(self, prefix: str = "req") -> str:
        """A fresh request id, `"<prefix>-<n>"`."""
        return self._client.next_request_id(prefix)

    def _iterate(self, stream: EventStream) -> Iterator[ServerFrame | Gap]:
        # Batches are taken on the caller's thread; only waiting for one needs the loop.
        native = self._thread.run(stream._open())
        while True:
            if items := native.take(BATCH):
                yield from items
            elif not self._thread.run(_wait(native)):
                return

    def events(self, runtime: RuntimeScope | None = None) -> Iterator[ServerFrame | Gap]:
        """The approvals pending, then every frame from now on (or only `runtime`'s), with `Gap`s;
        see `AsyncClient.events`."""
        return self._iterate(self._client.events(runtime))

    def pending_approvals(self, runtime: RuntimeScope | None = None) -> list[ControlRequest]:
        """The `control_request`s pending; see `AsyncClient.pending_approvals`."""
        return self._client.pending_approvals(runtime)

    def turn(self, runtime: RuntimeScope, message: str | InputPayload) -> Iterator[ServerFrame | Gap]:
        """Yields the frames of the turn of a message up to its `turn_finished`; the message is
        sent when iteration starts (see `AsyncClient.turn`)."""
        return self._iterate(self._client.turn(runtime, message))

    def terminal(
        self,
        *,
        cwd: str | None = None,
        cols: int = 80,
        rows: int = 24,
        terminal_id: str | None = None,
        capacity: int = DEFAULT_TERMINAL_CAPACITY,
        patience: float | None = None,
    ) -> SyncTerminal:
        """`terminal_spawn`; see `AsyncClient.terminal`. Iterate the terminal for its output."""
        terminal = self._thread.run(
            self._client.terminal(
                cwd=cwd, cols=cols, rows=rows, terminal_id=terminal_id, capacity=capacity, patience=patience
            )
        )
        return SyncTerminal(self._thread, terminal)

    def info(self) -> AppServerInfoResponse:
        """`app_server_info`."""
        return self._thread.run(self._client.info())

    def runtime_start(
        self,
        *,
        agent_id: str | None = None,
        conversation_id: str | None = None,
        create_agent: CreateAgent | None = None,
        create_conversation: CreateConversation | None = None,
        mode: DevicePermissionMode | None = None,
        external_tools: list[ExternalToolGroup] | None = None,
        **fields: Any,
    ) -> RuntimeStartResponse:
        """`runtime_start`; see `AsyncClient.runtime_start`."""
        return self._thread.run(
            self._client.runtime_start(
                agent_id=agent_id,
                conversation_id=conversation_id,
                create_agent=create_agent,
                create_conversation=create_conversation,
                mode=mode,
                external_tools=external_tools,
                **fields,
            )
        )

    def sync(self, runtime: RuntimeScope) -> SyncResponse:
        """`sync`."""
        return self._thread.run(self._client.sync(runtime))

    def abort(self, runtime: RuntimeScope) -> AbortMessageResponse:
        """`abort_message`."""
        return self._thread.run(self._client.abort(runtime))

    def remove_queue_item(self, runtime: RuntimeScope, item_id: str) -> RemoveQueueItemResponse:
        """`remove_queue_item`."""
        return self._thread.run(self._client.remove_queue_item(runtime, item_id))

    def runtime_external_tools_update(self, updates: list[ExternalToolsUpdate]) -> RuntimeExternalToolsUpdateResponse:
        """`runtime_external_tools_update`."""
        return self._thread.run(self._client.runtime_external_tools_update(updates))

    def submit_input(self, runtime: RuntimeScope, message: str | InputPayload) -> InputAccepted:
        """`input`, waiting for its `input_accepted`."""
        return self._thread.run(self._client.submit_input(runtime, message))

    def input(self, runtime: RuntimeScope, message: str | InputPayload) -> str:
        """`input` without waiting for the answer; returns its `request_id`."""
        return self._thread.run(self._client.input(runtime, message))

    def answer_approval(self, runtime: RuntimeScope, request_id: str, decision: ApprovalDecision) -> InputAccepted:
        """Answers a `control_request`; see `AsyncClient.answer_approval`."""
        return self._thread.run(self._client.answer_approval(runtime, request_id, decision))

    def send(self, frame: dict[str, Any]) -> None:
        """Sends any frame without waiting for an answer."""
        self._thread.run(self._client.send(frame))

    def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Sends a frame carrying a `request_id` and returns the first frame with that id."""
        return self._thread.run(self._client.request(frame))

    def command(self, frame: dict[str, Any]) -> Any:
        """Sends any command the server answers with one frame; see `AsyncClient.command`."""
        return self._thread.run(self._client.command(frame))

    @contextmanager
    def watch_file(self, path: str) -> Iterator[Iterator[ServerFrame | Gap]]:
        """Watches the file at `path`: `with client.watch_file(path) as changes: for change in
        changes` yields its `file_changed` frames (and `Gap`s); leaving the `with` sends
        `unwatch_file`. See `AsyncClient.watch_file`."""
        watch = self._client.watch_file(path)
        self._thread.run(watch._open())
        try:
            yield self._iterate(watch)
        finally:
            self._thread.run(watch.close())

    def request_stream(self, frame: dict[str, Any]) -> Iterator[Any]:
        """Yields the answers of a command the server answers with a stream of frames, up to the
        one that carries `done: true`; see `AsyncClient.request_stream`."""
        return self._iterate(self._client.request_stream(frame))

    def external_tool(
        self,
        name: str | None = None,
        *,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Callable[[F], F]:
        """Registers the decorated function as an external tool; see `AsyncClient.external_tool`."""
        return self._client.external_tool(name, description=description, parameters=parameters)

    def close(self) -> None:
        """Closes the connection and stops the background thread (once; later calls do nothing)."""
        if self._thread.loop.is_closed():
            return
        try:
            self._thread.run(self._client.close())
        finally:
            self._thread.stop()
