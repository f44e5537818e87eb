"""The asyncio client."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
from collections.abc import Callable, Coroutine, Generator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from . import _native
from ._commands import AsyncCommands
from ._native import Gap
from .meta import REQUESTS
from .frames import (
    AbortMessageResponse,
    AppServerInfoResponse,
    ApprovalDecision,
    ControlRequest,
    CreateAgent,
    CreateConversation,
    DevicePermissionMode,
    ExternalToolGroup,
    ExternalToolResult,
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

BATCH = 32
"""Frames a stream hands from Rust to Python at a time (the most Python holds beyond the Rust
stream's own buffer). Small on purpose: a frame is about five dicts and lists, and CPython 3.11 to
3.13 collect garbage each time 700 more containers were made than freed, so batches of a few
hundred frames would set off collections that a reader dropping each frame never needs."""

DEFAULT_REQUEST_TIMEOUT = 30.0
"""Seconds a command waits for its answer, as in Letta Code's client helper."""

DEFAULT_EVENT_CAPACITY = 4096
"""Frames each event stream buffers before it skips frames and reports a lagged `Gap`."""

DEFAULT_TERMINAL_CAPACITY = 256
"""Output frames a terminal buffers before the client stops reading the socket."""

if TYPE_CHECKING:
    from ._terminal import Terminal

F = TypeVar("F", bound=Callable[..., Any])


def _ca_pem(ca_cert: str | os.PathLike[str] | bytes | None) -> bytes | None:
    """`ca_cert` as PEM: `bytes`, and a `str` that starts with `-----BEGIN` (as `ssl`'s `cadata`),
    are the PEM itself; another `str` or a path names a PEM file."""
    if ca_cert is None or isinstance(ca_cert, bytes):
        return ca_cert
    if isinstance(ca_cert, str) and ca_cert.lstrip().startswith("-----BEGIN"):
        return ca_cert.encode()
    return Path(ca_cert).read_bytes()


@dataclass(frozen=True)
class Reconnect:
    """Automatic reconnect: wait `initial_delay` seconds, doubling up to `max_delay` between
    attempts, for at most `max_attempts` attempts (`None`: until the client is closed).

    `resume`: on a server that offers it (`event_resume`), each runtime's event stream resumes
    where it left off, so streams and turns see no gap at all; `False` gets every runtime's state
    replay after a reconnect instead."""

    initial_delay: float = 0.1
    max_delay: float = 5.0
    max_attempts: int | None = None
    resume: bool = True


class EventStream:
    """Server frames (dicts) and `Gap`s, in order, as an async iterator.

    The frames come from a bounded Rust buffer (`event_capacity` frames) in batches of up to
    `BATCH`. While the buffer is full the client stops reading the socket for up to a quarter of a
    second, so a reader that keeps reading misses nothing; a stream left unread for longer skips
    the frames that do not fit and then yields `Gap(kind="lagged", missed=N)`.
    """

    def __init__(self, native: _native.FrameStream | None = None) -> None:
        self._native = native
        self._items: list[ServerFrame | Gap] = []
        self._index = 0

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ServerFrame | Gap:
        items, index = self._items, self._index
        if index < len(items):
            self._index = index + 1
            return items[index]
        items = await self._next_batch()
        if not items:
            raise StopAsyncIteration
        self._items, self._index = items, 1
        return items[0]

    async def _open(self) -> _native.FrameStream:
        assert self._native is not None
        return self._native

    async def _next_batch(self) -> list[ServerFrame | Gap]:
        """A new batch, waiting for one if none is ready; `[]` at the end."""
        native = await self._open()
        items = native.take(BATCH)
        while not items:
            if not await native.wait():
                return []
            items = native.take(BATCH)
        return items


class Turn(EventStream):
    """One turn's frames, up to and including its `turn_finished` (see `AsyncClient.turn`).

    The input is sent when iteration starts; `accepted` is then its `input_accepted`. A
    disconnect ends the turn with a `Gap(kind="disconnected")`: the server cancels a turn whose
    only watcher left. A client that reconnects and resumes (`Reconnect(resume=True)`, the
    default, on a server that offers it) sees `Gap(kind="interrupted")` then
    `Gap(kind="resumed")` instead, and the rest of the turn: nothing is missing.
    """

    def __init__(self, client: _native.Client, runtime: RuntimeScope, payload: InputPayload) -> None:
        super().__init__()
        self._client = client
        self._start: tuple[RuntimeScope, InputPayload] = (runtime, payload)
        self.accepted: InputAccepted | None = None
        """The server's `input_accepted`, once the input was sent."""

    async def _open(self) -> _native.FrameStream:
        if self._native is None:
            accepted, self._native = await self._client.turn(*self._start)
            self.accepted = accepted
        return self._native


class ResponseStream(EventStream):
    """The answers of a command the server answers with a stream of frames, up to the one that
    carries `done: true` (see `AsyncClient.request_stream`).

    The command is sent when iteration starts. What ends the stream otherwise is raised: an
    `error` frame (`ServerError`), a refusal (`success: false`: `RejectedError`), no frame within
    the request timeout, counted afresh after each frame (`RequestTimeoutError`), a dropped
    connection (`DisconnectedError`) or closing the client (`ClosedError`).
    """

    def __init__(self, client: _native.Client, frame: dict[str, Any]) -> None:
        super().__init__()
        self._client = client
        self._frame = frame

    async def _open(self) -> _native.FrameStream:
        if self._native is None:
            self._native = await self._client.command_stream(self._frame)
        return self._native


class FileWatch(EventStream):
    """The changes of a watched file (see `AsyncClient.watch_file`): its `file_changed` frames,
    and `Gap`s after which changes may have been missed (read the file again).

    `watch_file` is sent when it is entered (`async with`) or iterated; `close()` (or leaving the
    `async with`) sends `unwatch_file`. After a reconnect the file is watched again. A server
    that refuses the watch (this project's: a missing file, too many watches) raises
    `ServerError`; real Letta refuses silently.
    """

    def __init__(self, client: _native.Client, path: str) -> None:
        super().__init__()
        self._client = client
        self.path = path
        """The path watched, as given."""

    async def _open(self) -> _native.FrameStream:
        if self._native is None:
            self._native = await self._client.watch_file(self.path)
        return self._native

    async def __aenter__(self) -> FileWatch:
        await self._open()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops watching: sends `unwatch_file`; the iteration ends."""
        if self._native is not None:
            await self._native.close()


def user_message(text: str) -> InputPayload:
    """A `create_message` payload of one user message."""
    return {"kind": "create_message", "messages": [{"role": "user", "content": text}]}


def _payload(message: str | InputPayload) -> InputPayload:
    return user_message(message) if isinstance(message, str) else message


def _tool_result(value: object) -> ExternalToolResult:
    """A tool function's return value as a result: a `str` as it is, anything else as JSON."""
    text = value if isinstance(value, str) else json.dumps(value)
    return {"content": [{"type": "text", "text": text}]}


class _Connecting:
    """What `AsyncClient.connect` returns: await it, or use it with `async with`."""

    def __init__(self, opening: Coroutine[Any, Any, AsyncClient]) -> None:
        self._opening = opening
        self._client: AsyncClient | None = None

    def __await__(self) -> Generator[Any, None, AsyncClient]:
        return self._opening.__await__()

    async def __aenter__(self) -> AsyncClient:
        self._client = await self._opening
        return self._client

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.close()


class AsyncClient(AsyncCommands):
    """A connection to a Letta Code App Server, for asyncio.

    Commands fill in `type` and `request_id` and wait up to `request_timeout` for the answer;
    cancelling the awaiting task withdraws the request. A refused command raises `ServerError`
    (`RejectedError` for `success: false` or `accepted: false`). Every command the server answers
    has a method (`agent_list(query=...)`, `conversation_messages_list(...)`, …: keyword
    arguments typed by the command's fields); one answered by a stream of frames returns an async
    iterator of them (`ResponseStream`).
    """

    def __init__(self, native: _native.Client) -> None:
        """Use `AsyncClient.connect`."""
        self._native = native
        self._tools: dict[str, Callable[..., Any]] = {}
        self._calls: set[asyncio.Task[None]] = set()
        self._tool_server = asyncio.get_running_loop().create_task(self._serve_tools())

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
    ) -> _Connecting:
        """Connects to `url` (`ws://host:port`; `/ws` is assumed, `http(s)` becomes `ws(s)`).

        `token` is sent as `Authorization: Bearer <token>`. `ca_cert` adds CA certificates to
        trust for `wss://` besides the Mozilla roots (which stay trusted): a PEM file's path, or
        the PEM itself (`bytes`, or a `str` starting with `-----BEGIN`); the CA of a server started with `--tls-cert`, or its
        certificate when self-signed. `reconnect=True` (or a `Reconnect`)
        redials after the connection drops and restores the runtimes this client started or
        synced and the tools it registered. `split=True` uses the seed design's control + stream
        socket pair instead of one socket.
        """

        async def opening() -> AsyncClient:
            policy = Reconnect() if reconnect is True else reconnect or None
            native = await _native.Client.connect(
                url,
                token,
                _ca_pem(ca_cert),
                request_timeout,
                event_capacity,
                None
                if policy is None
                else (policy.initial_delay, policy.max_delay, policy.max_attempts, policy.resume),
                split,
            )
            return cls(native)

        return _Connecting(opening())

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    def next_request_id(self, prefix: str = "req") -> str:
        """A fresh request id, `"<prefix>-<n>"`."""
        return self._native.next_request_id(prefix)

    # ----- events ------------------------------------------------------------------------------

    def events(self, runtime: RuntimeScope | None = None) -> EventStream:
        """The approvals pending (`pending_approvals`), then every frame the server sends from now
        on (or only `runtime`'s), with `Gap`s. Each `control_request` comes once, however often
        the server replays it."""
        return EventStream(self._native.events(runtime))

    def pending_approvals(self, runtime: RuntimeScope | None = None) -> list[ControlRequest]:
        """The `control_request`s pending (of every runtime, or of `runtime`), oldest first: asked
        on this connection or replayed to it, and not settled since (the runtime's
        `update_device_status` no longer lists it, or its turn finished); none while disconnected.
        Each stream gets each approval once per connection."""
        return self._native.pending_approvals(runtime)

    def turn(self, runtime: RuntimeScope, message: str | InputPayload) -> Turn:
        """Sends a user message (or any input payload) and yields its turn's frames up to its
        `turn_finished`, even when the input was queued behind another turn."""
        return Turn(self._native, runtime, _payload(message))

    async def terminal(
        self,
        *,
        cwd: str | None = None,
        cols: int = 80,
        rows: int = 24,
        terminal_id: str | None = None,
        capacity: int = DEFAULT_TERMINAL_CAPACITY,
        patience: float | None = None,
    ) -> Terminal:
        """`terminal_spawn`: the server's shell on a pseudo-terminal of this connection (in `cwd`,
        relative to the server's boot working directory), once `terminal_spawned` came. A shell
        that cannot start raises `RejectedError` with the server's text (`spawn <shell> ENOENT`).
        See `Terminal` for its output, `capacity` and `patience` (seconds)."""
        # `_terminal` builds on this module's `EventStream`.
        from ._terminal import Terminal

        control, output = await self._native.terminal(terminal_id, cwd, cols, rows, capacity, patience)
        return Terminal(control, output)

    # ----- commands ----------------------------------------------------------------------------

    async def info(self) -> AppServerInfoResponse:
        """`app_server_info`: the server's version and capabilities."""
        info: AppServerInfoResponse = await self._native.info()
        return info

    async def runtime_start(
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
        """`runtime_start`: resolves or creates an agent and a conversation and subscribes to them.

        Without `external_tools`, the tools registered with `external_tool` are offered. Other
        fields of the frame (`cwd`, `workspace_sandbox`, …) go in `fields`.
        """
        command: dict[str, Any] = {
            key: value
            for key, value in (
                ("agent_id", agent_id),
                ("conversation_id", conversation_id),
                ("create_agent", create_agent),
                ("create_conversation", create_conversation),
                ("mode", mode),
                ("external_tools", external_tools),
            )
            if value is not None
        }
        command.update(fields)
        response: RuntimeStartResponse = await self._native.runtime_start(command)
        return response

    async def sync(self, runtime: RuntimeScope) -> SyncResponse:
        """`sync`: subscribes to `runtime` and replays its state."""
        response: SyncResponse = await self._native.sync(runtime)
        return response

    async def abort(self, runtime: RuntimeScope) -> AbortMessageResponse:
        """`abort_message`: cancels the runtime's turn and rejects its pending approvals."""
        response: AbortMessageResponse = await self._native.abort(runtime)
        return response

    async def remove_queue_item(self, runtime: RuntimeScope, item_id: str) -> RemoveQueueItemResponse:
        """`remove_queue_item`: withdraws a queued input."""
        response: RemoveQueueItemResponse = await self._native.remove_queue_item(runtime, item_id)
        return response

    async def runtime_external_tools_update(
        self, updates: list[ExternalToolsUpdate]
    ) -> RuntimeExternalToolsUpdateResponse:
        """`runtime_external_tools_update`: replaces this connection's external tools of many
        runtimes at once, without subscribing to them."""
        response: RuntimeExternalToolsUpdateResponse = await self._native.runtime_external_tools_update(updates)
        return response

    async def submit_input(self, runtime: RuntimeScope, message: str | InputPayload) -> InputAccepted:
        """`input`, waiting for its `input_accepted` (`RejectedError` when not accepted)."""
        accepted: InputAccepted = await self._native.submit_input(runtime, _payload(message))
        return accepted

    async def input(self, runtime: RuntimeScope, message: str | InputPayload) -> str:
        """`input` without waiting for the answer; returns its `request_id`."""
        request_id = self.next_request_id(REQUESTS["input"].request_id_prefix)
        await self.send({"type": "input", "request_id": request_id, "runtime": runtime, "payload": _payload(message)})
        return request_id

    async def answer_approval(
        self, runtime: RuntimeScope, request_id: str, decision: ApprovalDecision
    ) -> InputAccepted:
        """Answers the `control_request` `request_id`: `{"behavior": "allow"}` (optionally with
        `updated_input`) or `{"behavior": "deny", "message": ...}`. The first answer wins."""
        accepted: InputAccepted = await self._native.answer_approval(runtime, request_id, decision)
        return accepted

    async def send(self, frame: dict[str, Any]) -> None:
        """Sends any frame without waiting for an answer."""
        await self._native.send(frame)

    async def request(self, frame: dict[str, Any]) -> dict[str, Any]:
        """Sends a frame carrying a `request_id` and returns the first frame with that id."""
        answer: dict[str, Any] = await self._native.request(frame)
        return answer

    async def command(self, frame: dict[str, Any]) -> Any:
        """Sends any command the server answers with one frame (`request_id` is numbered when
        absent) and returns that frame; an `error` frame raises `ServerError`, `success: false`
        `RejectedError`."""
        return await self._native.command(frame)

    def watch_file(self, path: str) -> FileWatch:
        """Watches the file at `path` (absolute, or relative to the server's boot working
        directory): `async with client.watch_file(path) as changes: async for change in changes`
        yields its `file_changed` frames, debounced by the server; see `FileWatch`."""
        return FileWatch(self._native, path)

    def request_stream(self, frame: dict[str, Any]) -> ResponseStream:
        """Sends a command the server answers with a stream of frames (`request_id` is numbered
        when absent) and yields them up to the one that carries `done: true`; see
        `ResponseStream`. A command the protocol table does not list (a newer server's) is
        answered by every frame with its `request_id`."""
        return ResponseStream(self._native, frame)

    # ----- external tools ----------------------------------------------------------------------

    def external_tool(
        self,
        name: str | None = None,
        *,
        description: str | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Callable[[F], F]:
        """Registers the decorated function as an external tool (default name: the function's,
        default description: its docstring, default parameters: any object).

        `runtime_start`s from now on offer it. Each call runs the function with the model's
        arguments as keyword arguments: an `async def` on this event loop, a plain `def` in a
        worker thread. A `str` return value is the result, anything else is sent as JSON; an
        exception becomes an error result the model sees.
        """

        def register(function: F) -> F:
            tool = name or function.__name__
            self._native.register_tool(
                {
                    "name": tool,
                    "description": description if description is not None else inspect.getdoc(function) or "",
                    "parameters": parameters if parameters is not None else {"type": "object"},
                }
            )
            self._tools[tool] = function
            return function

        return register

    async def _serve_tools(self) -> None:
        while (call := await self._native.next_tool_call()) is not None:
            task = asyncio.create_task(self._call_tool(call))
            self._calls.add(task)
            task.add_done_callback(self._calls.discard)

    async def _call_tool(self, call: _native.ToolCall) -> None:
        function = self._tools[call.tool_name]
        try:
            if inspect.iscoroutinefunction(function):
                value = await function(**call.input)
            else:
                value = await asyncio.to_thread(function, **call.input)
            result = _tool_result(value)
        except Exception as error:
            call.fail(str(error) or type(error).__name__)
            return
        call.respond(result)

    # ----- closing -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Closes the connection: pending commands raise `ClosedError`, streams end, tool calls
        in progress are cancelled."""
        for task in list(self._calls):
            task.cancel()
        await self._native.close()
        # Closing ends the tool server's wait for calls. Waiting for it here means no native
        # awaitable is left to complete after the event loop (or the interpreter) has gone.
        await asyncio.wait([self._tool_server])
