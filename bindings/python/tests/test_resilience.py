"""Reconnecting after the server restarts, readers that fall behind, timeouts, and exiting."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, assistant_text, frames_only, new_runtime, run, tool_returns

from letta_app_server import AsyncClient, DisconnectedError, Gap, Reconnect, RequestTimeoutError


def test_reconnect_restores_runtimes_and_tools_after_a_restart(server: Server) -> None:
    async def scenario() -> None:
        policy = Reconnect(initial_delay=0.02, max_delay=0.2, resume=False)
        async with AsyncClient.connect(server.url, reconnect=policy) as client:

            @client.external_tool("lookup_weather", description="Weather for a city")
            async def lookup_weather(city: str) -> str:
                return f"Sunny in {city}"

            runtime = await new_runtime(client, "Survivor")
            events = client.events()
            await asyncio.to_thread(server.restart)
            gaps: list[Gap] = []
            replayed: list[Any] = []
            async for item in events:
                if isinstance(item, Gap):
                    gaps.append(item)
                elif gaps and gaps[-1].kind == "reconnected":
                    replayed.append(item)
                    if item["type"] == "runtime_start_response":
                        break
            assert [gap.kind for gap in gaps] == ["disconnected", "reconnected"]
            assert gaps[0].reason  # a close frame or a reset, as the server went down
            assert replayed[-1]["runtime"] == runtime and replayed[-1]["success"] is True

            # The restored runtime keeps its conversation and the tool is offered again.
            text = 'again [[tool: lookup_weather {"city":"Oslo"}]]'
            frames = frames_only([frame async for frame in client.turn(runtime, text)])
            assert tool_returns(frames) == ["Sunny in Oslo"]

    run(scenario())


def test_a_turn_goes_on_whole_across_a_dropped_connection(tmp_path: Path) -> None:
    """With `Reconnect` (resuming, the default) a drop mid-reply is `interrupted`, then
    `resumed`, and the turn's frames are all there, each once."""
    limited = Server(tmp_path / "data", ("--max-frame-bytes", "4096"))

    async def scenario() -> None:
        policy = Reconnect(initial_delay=0.02, max_delay=0.2)
        async with AsyncClient.connect(limited.url, reconnect=policy) as client:
            runtime = await new_runtime(client, "Resumer")
            frames: list[dict[str, Any]] = []
            gaps: list[str] = []
            async for item in client.turn(runtime, "go [[deltas: 300]] [[delay: 2]]"):
                if isinstance(item, Gap):
                    gaps.append(item.kind)
                    continue
                frames.append(item)
                replies = [f for f in frames if f.get("delta", {}).get("message_type") == "assistant_message"]
                if len(replies) == 20 and item.get("delta", {}).get("message_type") == "assistant_message":
                    # A frame over the server's limit: it closes the socket (1009) mid-reply.
                    await client.send({"type": "pong", "padding": "x" * 8192})
            assert gaps == ["interrupted", "resumed"]
            assert assistant_text(frames) == "".join(f"t{i} " for i in range(300))
            assert frames[-1]["type"] == "turn_finished" and frames[-1]["stop_reason"] == "end_turn"
            seqs = [f["conversation_seq"] for f in frames if "conversation_seq" in f]
            assert len(seqs) > 300 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    try:
        run(scenario())
    finally:
        limited.stop()


def test_a_turn_cut_by_kill_9_ends_in_its_stream_with_no_frame_missing(server: Server) -> None:
    async def scenario() -> None:
        policy = Reconnect(initial_delay=0.02, max_delay=0.2)
        async with AsyncClient.connect(server.url, reconnect=policy) as client:
            runtime = await new_runtime(client, "Killed")
            frames: list[dict[str, Any]] = []
            gaps: list[str] = []
            killed = False
            async for item in client.turn(runtime, "go [[deltas: 2000]] [[delay: 2]]"):
                if isinstance(item, Gap):
                    gaps.append(item.kind)
                    continue
                frames.append(item)
                if not killed and len(assistant_text(frames)) >= 200:
                    killed = True
                    await asyncio.to_thread(server.kill_9_and_start)
            assert gaps == ["interrupted", "resumed"]
            assert frames[-1]["type"] == "turn_finished" and frames[-1]["stop_reason"] == "error"
            assert "".join(f"t{i} " for i in range(2000)).startswith(assistant_text(frames))
            seqs = [f["conversation_seq"] for f in frames if "conversation_seq" in f]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))

    run(scenario())


def test_without_reconnect_commands_fail_and_streams_end(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            events = client.events()
            await asyncio.to_thread(server.stop)
            items = [item async for item in events]
            assert [item.kind for item in items if isinstance(item, Gap)] == ["disconnected"]
            with pytest.raises(DisconnectedError, match="dropped"):
                await client.info()

    run(scenario())


def test_a_reader_that_stops_reading_falls_behind_with_a_lagged_gap(server: Server) -> None:
    async def scenario() -> None:
        async with (
            AsyncClient.connect(server.url, event_capacity=16) as slow,
            AsyncClient.connect(server.url) as driver,
        ):
            runtime = await new_runtime(slow, "Slow reader")
            behind = slow.events()
            await driver.sync(runtime)
            # Nobody reads `behind`: it holds up its connection for a moment, then falls behind.
            # The driver's connection is not held up at all.
            turn = frames_only([frame async for frame in driver.turn(runtime, "[[deltas: 6000]]")])
            assert turn[-1]["type"] == "turn_finished" and len(turn) > 6000
            await asyncio.sleep(0.5)  # longer than the patience of a full stream (0.25 s)
            # The stream kept what fits in its buffer, then says how many frames it skipped.
            kept = 0
            while not isinstance(item := await anext(behind), Gap):
                kept += 1
            assert item.kind == "lagged" and item.missed is not None
            assert kept >= 16 and kept + item.missed >= len(turn)
            assert str(item) == f"the event stream fell behind and skipped {item.missed} frame(s)"
            assert repr(item) == f"Gap(kind='lagged', missed={item.missed})"
            # Then it goes on with what comes next.
            await slow.sync(runtime)
            async for frame in behind:
                assert not isinstance(frame, Gap)
                if frame["type"] == "sync_response":
                    break

    run(scenario())


def test_a_reader_that_keeps_reading_gets_every_frame_of_a_long_reply(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url, event_capacity=64) as client:
            runtime = await new_runtime(client, "Steady reader")
            frames = []
            async for frame in client.turn(runtime, "[[deltas: 3000]]"):
                assert not isinstance(frame, Gap)
                frames.append(frame)
                if len(frames) % 500 == 0:
                    await asyncio.sleep(0.05)  # slower than the server, but never stopped for long
            assert assistant_text(frames).split() == [f"t{n}" for n in range(3000)]

    run(scenario())


def test_a_command_without_an_answer_times_out(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url, request_timeout=0.1) as client:
            # A tool result for a call nobody made: the server answers nothing.
            frame = {"type": "external_tool_call_response", "request_id": "nobody-1", "error": "none"}
            with pytest.raises(RequestTimeoutError) as timed_out:
                await client.request(frame)
            assert timed_out.value.request_id == "nobody-1"
            assert timed_out.value.after == pytest.approx(0.1)
            assert isinstance(timed_out.value, TimeoutError)
            assert (await client.info())["type"] == "app_server_info_response"

    run(scenario())


def test_a_command_the_server_does_not_implement_is_declined_at_once(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url, request_timeout=5) as client:
            frame = {"type": "channels_list", "request_id": "cl-1"}
            assert await client.request(frame) == {
                "type": "channels_list_response",
                "request_id": "cl-1",
                "channels": [],
                "success": False,
                "error": "this server does not support `channels_list` yet",
            }

    run(scenario())


PROGRAM = """
import asyncio, sys
from letta_app_server import AsyncClient

async def main() -> None:
    async with AsyncClient.connect(sys.argv[1]) as client:
        await client.info()

asyncio.run(main())
"""


def test_programs_using_the_client_exit_cleanly(server: Server) -> None:
    # Results are handed to Python on a runtime thread; one still doing so while the interpreter
    # is finalised made CPython abort about one exit in twenty-five.
    for _ in range(20):
        done = subprocess.run([sys.executable, "-c", PROGRAM, server.url], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
