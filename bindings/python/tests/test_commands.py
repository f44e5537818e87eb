"""Every command of the protocol table has a method on both clients, and commands answered by a
stream of frames are iterated, against the real server and, for streams (the table has no stream
command the server answers yet), a scripted peer."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import Server, run
from websockets.asyncio.server import ServerConnection, serve

from letta_app_server import (
    AsyncClient,
    Client,
    ClosedError,
    DisconnectedError,
    RejectedError,
    RequestTimeoutError,
    ServerError,
    meta,
)


def test_every_command_of_the_table_has_a_method(server: Server) -> None:
    for name, request in meta.REQUESTS.items():
        method = "submit_input" if name == "input" else name
        assert callable(getattr(AsyncClient, method)), name
        assert callable(getattr(Client, method)), name
        assert request.answers in ("one", "stream")

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            info = await client.app_server_info()
            assert info["type"] == "app_server_info_response"
            # The server declines `agent_retrieve` of an unknown agent with its typed answer:
            # `success: false` raises, as for every command.
            with pytest.raises(RejectedError) as refused:
                await client.agent_retrieve(agent_id="agent-none")
            assert refused.value.frame_type == "agent_retrieve_response"
            assert refused.value.request_id is not None and refused.value.request_id.startswith("agent-retrieve-")
            assert "Agent agent-none not found" in str(refused.value)
            # An `error` frame raises `ServerError`.
            with pytest.raises(ServerError) as error:
                await client.command({"type": "sync", "runtime": {"agent_id": "a-none", "conversation_id": "c"}})
            assert error.value.code == "unknown_runtime"

    run(scenario())
    with Client.connect(server.url) as client:
        with pytest.raises(RejectedError) as refused:
            client.conversation_messages_list(conversation_id="conv-none")
        assert refused.value.frame_type == "conversation_messages_list_response"


async def answer(connection: ServerConnection) -> None:
    """Answers each command by its `type`: `list_widgets` with two chunks (a frame of another
    request between them, one after the last), `refuse_widgets` with an `error` frame,
    `deny_widgets` with a refusal that is also the last chunk, `stall_widgets` with one chunk and
    then nothing, `drop_widgets` with one chunk and then closing the socket."""
    async for message in connection:
        command = json.loads(message)
        request_id = command["request_id"]

        def chunk(entries: list[str], done: bool, of: str = request_id) -> dict[str, Any]:
            return {"type": "widgets_response", "request_id": of, "entries": entries, "done": done, "success": True}

        frames = {
            "list_widgets": [chunk(["a"], False), chunk(["x"], True, "someone-else"), chunk(["b", "c"], True)]
            + [chunk(["late"], True)],
            "refuse_widgets": [
                {"type": "error", "request_id": request_id, "code": "unsupported", "message": "no widgets here"}
            ],
            "deny_widgets": [
                {"type": "widgets_response", "request_id": request_id, "entries": [], "done": True}
                | {"success": False, "error": "widgets are off"}
            ],
            "stall_widgets": [chunk(["a"], False)],
            "drop_widgets": [chunk(["a"], False)],
        }.get(command["type"], [])
        for frame in frames:
            await connection.send(json.dumps(frame))
        if command["type"] == "drop_widgets":
            await connection.close()
            return


@pytest.fixture
def peer() -> Iterator[str]:
    """The scripted peer on a loop of its own, in a thread (the sync client blocks its caller)."""
    loop = asyncio.new_event_loop()
    started: asyncio.Future[str] = loop.create_future()
    stop = asyncio.Event()

    async def serving() -> None:
        async with serve(answer, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            started.set_result(f"ws://127.0.0.1:{port}")
            await stop.wait()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serving()), daemon=True)
    thread.start()
    url = asyncio.run_coroutine_threadsafe(asyncio.wait_for(asyncio.shield(started), 10), loop).result()
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_a_stream_answer_ends_after_done_at_an_error_or_a_refusal(peer: str) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(peer) as client:
            entries = [frame["entries"] async for frame in client.request_stream({"type": "list_widgets"})]
            assert entries == [["a"], ["b", "c"]]
            with pytest.raises(ServerError) as error:
                async for _ in client.request_stream({"type": "refuse_widgets"}):
                    pass
            assert (error.value.code, str(error.value).endswith("no widgets here")) == ("unsupported", True)
            with pytest.raises(RejectedError) as refused:
                async for _ in client.request_stream({"type": "deny_widgets"}):
                    pass
            assert refused.value.frame_type == "widgets_response"
            assert "widgets are off" in str(refused.value)

    run(scenario())
    with Client.connect(peer) as client:
        assert [frame["entries"] for frame in client.request_stream({"type": "list_widgets"})] == [["a"], ["b", "c"]]
        with pytest.raises(ServerError):
            list(client.request_stream({"type": "refuse_widgets"}))


def test_a_stream_answer_ends_at_a_timeout_a_disconnect_or_closing(peer: str) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(peer, request_timeout=0.3) as client:
            seen: list[Any] = []
            with pytest.raises(RequestTimeoutError) as timeout:
                async for frame in client.request_stream({"type": "stall_widgets"}):
                    seen.append(frame["entries"])
            assert seen == [["a"]]
            assert timeout.value.request_id == "stall_widgets-1"
            stalled = client.request_stream({"type": "stall_widgets"})
            assert (await anext(stalled))["entries"] == ["a"]
            await client.close()
            with pytest.raises(ClosedError):
                await anext(stalled)
        async with AsyncClient.connect(peer) as client:
            seen = []
            with pytest.raises(DisconnectedError):
                async for frame in client.request_stream({"type": "drop_widgets"}):
                    seen.append(frame["entries"])
            assert seen == [["a"]]

    run(scenario())
    with Client.connect(peer, request_timeout=0.3) as client:
        with pytest.raises(RequestTimeoutError):
            list(client.request_stream({"type": "stall_widgets"}))
