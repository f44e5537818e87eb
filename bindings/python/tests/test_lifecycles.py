"""Runtimes, turns, the queue, abort, sync and approvals against the real server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import Server, assistant_text, frames_only, kinds, new_runtime, run, tool_returns

from letta_app_server import AsyncClient, Gap, RejectedError, ServerError


async def collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


def test_info_and_runtime_start(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            info = await client.info()
            assert info["type"] == "app_server_info_response"
            assert info["protocol_version"] == 1
            assert info["request_id"] == "app-server-info-1"
            started = await client.runtime_start(create_agent={"body": {"name": "Starter"}})
            assert started["created"] == {"agent": True, "conversation": True}
            runtime = started["runtime"]
            assert runtime is not None and runtime["agent_id"].startswith("agent-")
            joined = await client.runtime_start(agent_id=runtime["agent_id"], conversation_id=runtime["conversation_id"])
            assert joined["runtime"] == runtime
            assert joined["created"] == {"agent": False, "conversation": False}

    run(scenario())


def test_a_streamed_turn_ends_with_turn_finished(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Streamer")
            turn = client.turn(runtime, "hi [[reply: Hello there, Python!]] [[chunks: 3]]")
            assert turn.accepted is None
            frames = frames_only(await collect(turn))
            assert turn.accepted is not None and turn.accepted["disposition"] == "started"
            assert assistant_text(frames) == "Hello there, Python!"
            assert kinds(frames).count("assistant_message") == 3
            assert frames[-1]["type"] == "turn_finished" and frames[-1]["stop_reason"] == "end_turn"
            assert all(frame["runtime"] == runtime for frame in frames)
            seqs = [frame["event_seq"] for frame in frames]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

    run(scenario())


def test_a_stream_read_in_pieces_misses_nothing(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Pieces")
            events = client.events(runtime)
            # The whole turn arrives before `events` is read, so it comes in one batch and every
            # way of reading below starts in the middle of one.
            await collect(client.turn(runtime, "[[reply: a b c d e f g h]] [[chunks: 8]]"))
            seen: list[Any] = []
            while not seen or seen[-1]["type"] != "turn_finished":
                async for frame in events:  # left after a frame or two each time
                    seen.append(frame)
                    if frame["type"] != "turn_finished":
                        seen.append(await anext(events))  # a peek from inside the loop
                    break
                else:
                    raise AssertionError("the stream ended before turn_finished")
            seqs = [frame["event_seq"] for frame in frames_only(seen) if "event_seq" in frame]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
            assert assistant_text(seen) == "a b c d e f g h"

    run(scenario())


def test_queued_inputs_find_their_own_turn_and_can_be_removed(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Queue")
            first = client.turn(runtime, "first [[reply: one two three]] [[delay: 150]]")
            first_frames = asyncio.create_task(collect(first))
            while first.accepted is None:
                await asyncio.sleep(0.01)
            second = client.turn(runtime, "second [[reply: second reply]]")
            second_frames = await collect(second)
            assert second.accepted is not None and second.accepted["disposition"] == "queued"
            assert assistant_text(await first_frames) == "one two three"
            assert assistant_text(second_frames) == "second reply"
            assert kinds(second_frames)[0] == "user_message"

            busy = asyncio.create_task(collect(client.turn(runtime, "busy [[delay: 200]] [[chunks: 3]]")))
            events = client.events(runtime)
            await asyncio.sleep(0.05)
            accepted = await client.submit_input(runtime, "to be removed")
            assert accepted["disposition"] == "queued"
            async for frame in events:
                assert not isinstance(frame, Gap)
                if frame["type"] == "update_queue" and frame["queue"]:
                    item_id = frame["queue"][0]["id"]
                    break
            removed = await client.remove_queue_item(runtime, item_id)
            assert removed["success"] is True
            with pytest.raises(RejectedError) as again:
                await client.remove_queue_item(runtime, item_id)
            assert again.value.frame_type == "remove_queue_item_response"
            await busy

    run(scenario())


def test_abort_mid_stream_and_when_idle(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Abort")
            seen: list[Any] = []
            async for frame in client.turn(runtime, "long [[deltas: 200]] [[delay: 20]]"):
                seen.append(frame)
                if kinds(seen).count("assistant_message") == 1 and kinds([frame]) == ["assistant_message"]:
                    aborted = await client.abort(runtime)
                    assert aborted["aborted"] is True
            assert seen[-1]["type"] == "turn_finished" and seen[-1]["stop_reason"] == "cancelled"
            assert len(assistant_text(seen)) < 200 * 3
            idle = await client.abort(runtime)
            assert idle["aborted"] is False

    run(scenario())


def test_sync_subscribes_another_client_and_replays_state(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as owner, AsyncClient.connect(server.url) as watcher:
            runtime = await new_runtime(owner, "Synced")
            events = watcher.events(runtime)
            synced = await watcher.sync(runtime)
            assert synced["success"] is True
            replay = []
            async for frame in events:
                assert not isinstance(frame, Gap)
                replay.append(frame["type"])
                if frame["type"] == "sync_response":
                    break
            assert "update_loop_status" in replay and "update_device_status" in replay
            await collect(owner.turn(runtime, "[[reply: watched]]"))
            async for frame in events:
                assert not isinstance(frame, Gap)
                if frame["type"] == "turn_finished":
                    break

    run(scenario())


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        ({"behavior": "allow"}, "as asked\n"),
        ({"behavior": "allow", "updated_input": {"command": "echo edited", "description": "edited"}}, "edited\n"),
        ({"behavior": "deny", "message": "Not now"}, "Not now"),
    ],
)
def test_approvals_allow_edit_and_deny(server: Server, decision: Any, expected: str) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Approvals", mode="standard")
            frames = []
            request_id = None
            async for frame in client.turn(runtime, 'run it [[tool: Bash {"command":"mkdir -p made && echo as asked"}]]'):
                assert not isinstance(frame, Gap)
                frames.append(frame)
                if frame["type"] == "control_request":
                    request_id = frame["request_id"]
                    assert frame["request"]["tool_name"] == "Bash"
                    await client.answer_approval(runtime, request_id, decision)
            assert request_id is not None and request_id.startswith("perm-")
            assert tool_returns(frames) == [expected]
            assert frames[-1]["stop_reason"] == "end_turn"
            with pytest.raises(RejectedError, match="no longer pending"):
                await client.answer_approval(runtime, request_id, {"behavior": "allow"})

    run(scenario())


BASH = '[[tool: Bash {"command":"echo hi","description":"x"}]]'
"""A scripted model call of Bash, which asks first in `strict` mode."""


async def until(events: Any, frame_type: str) -> list[Any]:
    """The frames of `events` up to the first of `frame_type` (gaps fail the test)."""
    frames = []
    async for frame in events:
        assert not isinstance(frame, Gap), frame
        frames.append(frame)
        if frame["type"] == frame_type:
            return frames
    raise AssertionError(f"the stream ended before a {frame_type}")


def approvals(frames: list[Any]) -> list[str]:
    """The `request_id`s of the `control_request`s among `frames`."""
    return [frame["request_id"] for frame in frames if frame["type"] == "control_request"]


def test_a_second_client_joins_while_an_approval_is_pending_and_answers_it(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as first:
            runtime = await new_runtime(first, "Shared approval", mode="strict")
            turn = first.turn(runtime, BASH)
            request_id = approvals(await until(turn, "control_request"))[0]

            # The server sends the approval to the new socket on connect, before it subscribes,
            # and again after the runtime_start_response and on sync: a stream made after all
            # that starts with it, and gets it once.
            async with AsyncClient.connect(server.url) as second:
                await second.runtime_start(agent_id=runtime["agent_id"], conversation_id=runtime["conversation_id"])
                events = second.events(runtime)
                await second.sync(runtime)
                replay = await until(events, "sync_response")
                assert approvals(replay) == [request_id]
                assert replay[0]["type"] == "control_request"
                assert approvals(second.pending_approvals(runtime)) == [request_id]

                await second.answer_approval(runtime, request_id, {"behavior": "allow"})
                done = await until(events, "turn_finished")
                assert tool_returns(done) == ["hi\n"]
                assert approvals(done) == []
                rest = frames_only(await collect(turn))
                assert tool_returns(rest) == ["hi\n"] and rest[-1]["stop_reason"] == "end_turn"

                # Answered, it is no longer pending: a stream made now does not get it.
                assert second.pending_approvals() == []
                later = second.events(runtime)
                await second.sync(runtime)
                assert approvals(await until(later, "sync_response")) == []

    run(scenario())


def test_ten_runtimes_driven_concurrently_from_one_event_loop(server: Server) -> None:
    async def one(client: AsyncClient, index: int) -> str:
        runtime = await new_runtime(client, f"Agent {index}")
        text = ""
        for turn in range(3):
            frames = frames_only(await collect(client.turn(runtime, f"[[reply: agent {index} turn {turn}]] [[chunks: 4]]")))
            assert frames[-1]["type"] == "turn_finished"
            assert all(frame["runtime"] == runtime for frame in frames)
            text = assistant_text(frames)
        return text

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            replies = await asyncio.gather(*(one(client, index) for index in range(10)))
            assert replies == [f"agent {index} turn 2" for index in range(10)]

    run(scenario())


def test_bad_arguments_and_refusals_are_clear_errors(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            with pytest.raises(ValueError, match=r"invalid runtime_start: field `create_agent.body`"):
                await client.runtime_start(create_agent={"body": "not an object"})  # type: ignore[typeddict-item]
            with pytest.raises(ValueError, match=r"invalid runtime: field `agent_id`"):
                await client.sync({"agent_id": 7, "conversation_id": "c"})  # type: ignore[typeddict-item]
            with pytest.raises(TypeError, match=r"`payload.when`: a datetime cannot be sent as JSON"):
                import datetime

                await client.send({"type": "input", "payload": {"when": datetime.datetime.now()}})
            unknown = {"agent_id": "agent-none", "conversation_id": "conv-none"}
            with pytest.raises(ServerError) as refused:
                await client.submit_input(unknown, "hello?")  # type: ignore[arg-type]
            assert refused.value.code == "unknown_runtime"
            assert refused.value.request_id is not None and refused.value.request_id.startswith("input-")
            # The client is still usable.
            assert (await client.info())["success"] is True

    run(scenario())


def test_cancelling_a_task_ends_its_request_at_once(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url, request_timeout=60) as client:
            # `pong` has no answer: the request waits until it is cancelled.
            waiting = asyncio.create_task(client.request({"type": "pong", "request_id": "never-answered"}))
            await asyncio.sleep(0.1)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            # The id is free again: a frame with it answers a new request.
            runtime = await new_runtime(client, "After")
            again = await client.request({"type": "sync", "request_id": "never-answered", "runtime": runtime})
            assert again["type"] == "sync_response"

    run(scenario(), timeout=20)
