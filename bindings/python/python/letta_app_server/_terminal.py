"""Terminals: a shell on a pseudo-terminal of the server, its output as an async iterator."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from . import _native
from ._async import EventStream
from ._native import Gap
from .errors import DisconnectedError, ServerError

@dataclass(frozen=True)
class TerminalExit:
    """How a terminal's shell ended (`terminal_exited`)."""

    exit_code: int
    """The exit status, or 128 + the signal (129 after `kill`); -1 when the terminal failed."""
    error: str | None = None
    """Why the terminal failed, when it did."""


class Terminal:
    """A terminal on the server (see `AsyncClient.terminal`).

    Iterating it yields its output in order, as `str` (escape sequences included), up to the
    shell's exit; `exit` is then set. Nothing is skipped: while `capacity` frames wait unread the
    client stops reading the socket and the server stops reading the shell. With `patience` an
    unread terminal holds reading up for at most that long at a time, and then skips output and
    yields `Gap(kind="lagged")`. Leaving `async with`, or `close()`, kills the shell unless it
    exited.
    """

    def __init__(self, control: _native.TerminalControl, output: _native.FrameStream) -> None:
        self._control = control
        self._output = EventStream(output)
        self._ended = False
        self.exit: TerminalExit | None = None
        """How the shell ended, once the output was read to its end."""

    @property
    def id(self) -> str:
        """The terminal's id on this connection."""
        return self._control.id

    @property
    def pid(self) -> int:
        """The shell's process id."""
        return self._control.pid

    def __aiter__(self) -> Terminal:
        return self

    async def __anext__(self) -> str | Gap:
        while not self._ended:
            try:
                item = await self._output.__anext__()
            except StopAsyncIteration:
                break
            if isinstance(item, Gap):
                if item.kind == "lagged":
                    return item
                continue
            if item["type"] == "terminal_output":
                data: str = item["data"]
                return data
            if item["type"] == "terminal_exited":
                self.exit = TerminalExit(item["exitCode"], item.get("error"))
                break
        self._ended = True
        raise StopAsyncIteration

    async def wait(self) -> TerminalExit:
        """Reads (and drops) the rest of the output; how the shell ended. Raises
        `DisconnectedError` when the connection dropped first (the server kills the shell)."""
        async for _ in self:
            pass
        if self.exit is None:
            raise DisconnectedError("the connection dropped before the terminal exited")
        return self.exit

    async def write(self, data: str) -> None:
        """`terminal_input`: types `data` (`"\\n"` is Enter, `"\\x03"` Ctrl-C). After a kill or the
        exit it raises `ServerError` (`invalid_frame`, `Terminal not found: <id>`), the server's
        answer to input for a terminal it does not know."""
        await self._control.write(data)

    async def resize(self, cols: int, rows: int) -> None:
        """`terminal_resize`: the shell sees the new size."""
        await self._control.resize(cols, rows)

    async def kill(self) -> None:
        """`terminal_kill`: the rest of the output, then the exit (129), follow."""
        await self._control.kill()

    async def close(self) -> None:
        """Kills the shell unless it is gone already."""
        if self.exit is None and not self._ended:
            try:
                await self._control.kill()
            except ServerError:
                pass

    async def __aenter__(self) -> Terminal:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()
