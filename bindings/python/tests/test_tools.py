"""External tools written as `def` and `async def`, answered through the real server."""

from __future__ import annotations

import asyncio
import threading

from conftest import Server, frames_only, new_runtime, run, tool_returns

from letta_app_server import AsyncClient

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def test_def_and_async_def_tools_and_their_failures(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            loop_thread = threading.get_ident()
            threads: dict[str, int] = {}

            @client.external_tool("lookup_weather", description="Weather for a city", parameters=CITY)
            def lookup_weather(city: str) -> str:
                threads["def"] = threading.get_ident()
                return f"Sunny in {city}"

            @client.external_tool(parameters=CITY)
            async def forecast(city: str) -> dict[str, object]:
                """Tomorrow's weather."""
                threads["async def"] = threading.get_ident()
                await asyncio.sleep(0.01)
                return {"city": city, "tomorrow": ["rain", 12]}

            @client.external_tool("failing_tool", description="Always fails", parameters=CITY)
            def failing_tool(city: str) -> str:
                raise ConnectionError(f"the weather service for {city} is down")

            @client.external_tool("failing_async_tool", description="Fails too", parameters=CITY)
            async def failing_async_tool(city: str) -> str:
                raise KeyError(city)

            runtime = await new_runtime(client, "Tools")
            message = " ".join(
                f'[[tool: {name} {{"city":"{city}"}}]]'
                for name, city in [
                    ("lookup_weather", "Paris"),
                    ("forecast", "Oslo"),
                    ("failing_tool", "Rome"),
                    ("failing_async_tool", "Lima"),
                    ("lookup_weather", 'nowhere\\" extra'),
                ]
            )
            frames = frames_only([frame async for frame in client.turn(runtime, f"weather {message}")])
            assert tool_returns(frames) == [
                "Sunny in Paris",
                '{"city": "Oslo", "tomorrow": ["rain", 12]}',
                "External tool execution error: the weather service for Rome is down",
                "External tool execution error: 'Lima'",
                'Sunny in nowhere" extra',
            ]
            assert threads["async def"] == loop_thread
            assert threads["def"] != loop_thread, "a plain def runs in a worker thread"
            assert frames[-1]["stop_reason"] == "end_turn"

    run(scenario())


def test_unexpected_arguments_and_unserialisable_results_become_errors(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:

            @client.external_tool("strict_tool", description="Takes only a city", parameters=CITY)
            def strict_tool(city: str) -> str:
                return city

            @client.external_tool("odd_result", description="Returns a set", parameters=CITY)
            def odd_result(city: str) -> object:
                return {city}

            runtime = await new_runtime(client, "Odd")
            text = '[[tool: strict_tool {"town":"Paris"}]] [[tool: odd_result {"city":"Rome"}]]'
            frames = frames_only([frame async for frame in client.turn(runtime, text)])
            returns = tool_returns(frames)
            assert returns[0].startswith("External tool execution error: ") and "town" in returns[0], returns
            assert returns[1] == "External tool execution error: Object of type set is not JSON serializable"

    run(scenario())
