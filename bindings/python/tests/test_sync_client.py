"""The synchronous client, for scripts and notebooks."""

from __future__ import annotations

import threading

import pytest
from conftest import Server, assistant_text, frames_only, kinds, tool_returns

from letta_app_server import Client, ClosedError, ConnectError, Gap, InvalidUrlError


def test_the_sync_client_runs_turns_tools_and_approvals(server: Server) -> None:
    with Client.connect(server.url) as client:
        assert client.info()["protocol_version"] == 1

        @client.external_tool("lookup_weather", description="Weather for a city")
        def lookup_weather(city: str) -> str:
            return f"Sunny in {city}"

        @client.external_tool("async_lookup", description="Weather, asynchronously")
        async def async_lookup(city: str) -> str:
            return f"Cloudy in {city}"

        started = client.runtime_start(create_agent={"body": {"name": "Script"}})
        runtime = started["runtime"]
        assert runtime is not None
        text = 'go [[tool: lookup_weather {"city":"Paris"}]] [[tool: async_lookup {"city":"Oslo"}]]'
        frames = frames_only(list(client.turn(runtime, text)))
        assert tool_returns(frames) == ["Sunny in Paris", "Cloudy in Oslo"]
        assert frames[-1]["type"] == "turn_finished"

        # In `standard` mode shell commands that change things ask first.
        client.runtime_start(agent_id=runtime["agent_id"], conversation_id=runtime["conversation_id"], mode="standard")
        frames = []
        for frame in client.turn(runtime, 'ask [[tool: Bash {"command":"mkdir -p x && echo ok"}]]'):
            assert not isinstance(frame, Gap)
            frames.append(frame)
            if frame["type"] == "control_request":
                client.answer_approval(runtime, frame["request_id"], {"behavior": "deny", "message": "no"})
        assert tool_returns(frames) == ["no"]

        accepted = client.submit_input(runtime, "[[reply: direct]]")
        assert accepted["accepted"] is True
        events = client.events(runtime)
        client.input(runtime, "[[reply: fire and forget]]")
        seen = []
        for frame in events:
            assert not isinstance(frame, Gap)
            seen.append(frame)
            if frame["type"] == "turn_finished" and "fire and forget" in assistant_text(seen):
                break
        assert "input_accepted" in kinds(seen)
        assert client.sync(runtime)["success"] is True
        assert client.abort(runtime)["aborted"] is False
        assert client.next_request_id("x").startswith("x-")
    with pytest.raises(ClosedError):
        client.info()
    client.close()  # a second close does nothing
    assert not any(thread.name == "letta-app-server-client" for thread in threading.enumerate())


def test_a_stream_made_after_an_approval_arrived_still_sees_it_once(server: Server) -> None:
    with Client.connect(server.url) as client:
        runtime = client.runtime_start(create_agent={"body": {"name": "Late stream"}}, mode="strict")["runtime"]
        assert runtime is not None
        turn = client.turn(runtime, '[[tool: Bash {"command":"echo hi","description":"x"}]]')
        request_id = next(frame["request_id"] for frame in turn if frame["type"] == "control_request")

        late = client.events()
        client.sync(runtime)  # replays it
        replay = []
        for frame in late:
            assert not isinstance(frame, Gap)
            replay.append(frame)
            if frame["type"] == "sync_response":
                break
        assert replay[0]["type"] == "control_request" and replay[0]["request_id"] == request_id
        assert [frame["request_id"] for frame in replay if frame["type"] == "control_request"] == [request_id]
        assert [frame["request_id"] for frame in client.pending_approvals()] == [request_id]

        client.answer_approval(runtime, request_id, {"behavior": "allow"})
        assert tool_returns(frames_only(list(turn))) == ["hi\n"]
        assert client.pending_approvals(runtime) == []
        after = client.events(runtime)
        client.sync(runtime)
        for frame in after:
            assert not isinstance(frame, Gap) and frame["type"] != "control_request"
            if frame["type"] == "sync_response":
                break


def test_the_sync_client_reports_connection_problems(server: Server) -> None:
    with pytest.raises(InvalidUrlError, match="Unsupported app-server URL protocol: ftp:"):
        Client.connect("ftp://127.0.0.1:1")
    with pytest.raises(InvalidUrlError, match="token must not be empty"):
        Client.connect(server.url, token=" ")
    server.stop()
    with pytest.raises(ConnectError, match=f"could not connect to {server.url}/ws"):
        Client.connect(server.url)
    assert not any(thread.name == "letta-app-server-client" for thread in threading.enumerate())
