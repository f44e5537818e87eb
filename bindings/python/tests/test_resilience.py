"""Reconnecting after the server restarts, and readers that fall behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import Server, assistant_text, frames_only, new_runtime, run, tool_returns

from letta_app_server import AsyncClient, DisconnectedError, Gap, Reconnect


def test_reconnect_restores_runtimes_and_tools_after_a_restart(server: Server) -> None:
    async def scenario() -> None:
        policy = Reconnect(initial_delay=0.02, max_delay=0.2)
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
            assert gaps[0].reason and "closed" in gaps[0].reason
            assert replayed[-1]["runtime"] == runtime and replayed[-1]["success"] is True

            # The restored runtime keeps its conversation and the tool is offered again.
            text = 'again [[tool: lookup_weather {"city":"Oslo"}]]'
            frames = frames_only([frame async for frame in client.turn(runtime, text)])
            assert tool_returns(frames) == ["Sunny in Oslo"]

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


def test_a_reader_that_falls_behind_gets_a_lagged_gap_and_the_rest(server: Server) -> None:
    async def scenario() -> None:
        async with (
            AsyncClient.connect(server.url, event_capacity=16) as slow,
            AsyncClient.connect(server.url) as driver,
        ):
            runtime = await new_runtime(slow, "Slow reader")
            behind = slow.events()
            await driver.sync(runtime)
            # Nobody reads `behind` during the turn; the driver's own streams are not held up.
            turn = frames_only([frame async for frame in driver.turn(runtime, "[[deltas: 100]]")])
            assert turn[-1]["type"] == "turn_finished" and len(assistant_text(turn)) > 0
            # It holds the first 16 frames, then says how many it skipped.
            items = [await anext(behind) for _ in range(17)]
            assert all(not isinstance(item, Gap) for item in items[:16])
            gap = items[16]
            assert isinstance(gap, Gap) and gap.kind == "lagged" and gap.missed and gap.missed > 90
            assert str(gap) == f"the event stream fell behind and skipped {gap.missed} frame(s)"
            assert repr(gap) == f"Gap(kind='lagged', missed={gap.missed})"
            # Then it goes on with what comes next.
            await slow.sync(runtime)
            async for item in behind:
                assert not isinstance(item, Gap)
                if item["type"] == "sync_response":
                    break

    run(scenario())
