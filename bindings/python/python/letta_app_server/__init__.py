"""Python client for the Letta Code App Server v2 websocket protocol.

`AsyncClient` for asyncio programs, `Client` for scripts and notebooks; frames are plain dicts
typed by the `TypedDict`s of `letta_app_server.frames`, generated from the protocol's JSON
Schema; `letta_app_server.meta` holds the protocol's tables (version, commands and their answers,
capability flags, event delivery), generated from the protocol's `meta.json`; `validate` checks a
frame against the bundled schema. The protocol work is done by the Rust client (`letta-app-server-client`) underneath.
"""

import atexit

from . import _native, frames, meta
from ._async import AsyncClient, EventStream, FileWatch, Reconnect, ResponseStream, Turn, user_message
from ._native import Gap
from ._sync import Client, SyncTerminal
from ._terminal import Terminal, TerminalExit
from .validation import Violation, validate
from .errors import (
    AppServerError,
    ClosedError,
    ConnectError,
    DisconnectedError,
    InvalidTlsError,
    InvalidUrlError,
    ProtocolError,
    RejectedError,
    RequestTimeoutError,
    ServerError,
)

# Results still on their way to Python must arrive before the interpreter is finalised.
atexit.register(_native.settle)

__all__ = [
    "AppServerError",
    "AsyncClient",
    "Client",
    "ClosedError",
    "ConnectError",
    "DisconnectedError",
    "EventStream",
    "FileWatch",
    "Gap",
    "InvalidTlsError",
    "InvalidUrlError",
    "ProtocolError",
    "Reconnect",
    "RejectedError",
    "RequestTimeoutError",
    "ResponseStream",
    "ServerError",
    "SyncTerminal",
    "Terminal",
    "TerminalExit",
    "Turn",
    "Violation",
    "frames",
    "meta",
    "user_message",
    "validate",
]
