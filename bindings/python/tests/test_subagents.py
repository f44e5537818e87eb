"""Subagents through the Python SDK: the model's `Agent` tool starts one whose work streams to
the controller (deltas with `subagent_id`, `update_subagent_state`) and whose report comes back as
a task notification; `launch_subagent` starts one from the controller."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Server, new_runtime, run

from letta_app_server import AsyncClient, RejectedError


def directive(tool: str, args: dict[str, Any]) -> str:
    """A scripted-model tool directive whose brackets are JSON escapes, so that it fits in a prompt."""
    text = json.dumps(args).replace("[", "\\u005b").replace("]", "\\u005d")
    return f"[[tool: {tool} {text}]]"


def test_a_subagents_work_streams_to_the_controller(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Delegator")
            agent = directive(
                "Agent",
                {
                    "description": "say hi",
                    "subagent_type": "general-purpose",
                    "prompt": "Greet. [[reply: hi from the subagent]]",
                },
            )
            events = client.events(runtime)
            await client.submit_input(runtime, f"Delegate. {agent}")
            frames: list[dict[str, Any]] = []
            finished = 0
            async for frame in events:
                if not isinstance(frame, dict):
                    continue
                frames.append(frame)
                if frame["type"] == "turn_finished":
                    finished += 1
                    if finished == 2:
                        break
            streamed = [f for f in frames if f["type"] == "stream_delta" and f.get("subagent_id")]
            assert streamed and all(f["runtime"] == runtime for f in streamed)
            said = "".join(
                part["text"]
                for f in streamed
                if f["delta"]["message_type"] == "assistant_message"
                for part in f["delta"]["content"]
            )
            assert said == "hi from the subagent"
            states = [f["subagents"][0]["status"] for f in frames if f["type"] == "update_subagent_state"]
            assert (states[0], states[-1]) == ("pending", "completed")
            queued = next(f["queue"][0] for f in frames if f["type"] == "update_queue" and f["queue"])
            assert (queued["kind"], queued["source"]) == ("task_notification", "task_notification")
            assert "<status>completed</status>" in queued["content"]

    run(scenario())


def test_launch_subagent_answers_with_the_task(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Caller")
            events = client.events(runtime)
            launched = await client.launch_subagent(
                runtime=runtime,
                notify="caller",
                args={"prompt": "Check. [[reply: all clear]]", "description": "check", "subagent_type": "explore"},
            )
            assert launched["success"] is True, launched
            assert str(launched["task_id"]).startswith("task_")
            async for frame in events:
                if isinstance(frame, dict) and frame["type"] == "update_subagent_state":
                    entry = frame["subagents"][0]
                    if entry["status"] == "completed":
                        assert entry["conversation_id"] == launched["conversation_id"]
                        assert str(entry["result"]).endswith("\n\nall clear")
                        break
            with pytest.raises(RejectedError, match='Invalid subagent type "nope". Available types: '):
                await client.launch_subagent(
                    runtime=runtime, args={"prompt": "p", "description": "d", "subagent_type": "nope"}
                )

    run(scenario())


def test_a_monitor_is_stopped_with_monitor_stop(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Watcher")
            monitor = directive("Monitor", {"description": "quiet", "command": "sleep 30", "persistent": True})
            events = client.events(runtime)
            await client.submit_input(runtime, f"Watch. {monitor}")
            async for frame in events:
                if isinstance(frame, dict) and frame["type"] == "update_device_status":
                    processes = frame["device_status"]["background_processes"]
                    if processes:
                        assert (processes[0]["kind"], processes[0]["process_id"]) == ("monitor", "monitor_1")
                        break
            stopped = await client.monitor_stop(runtime=runtime, process_id="monitor_1")
            assert (stopped["success"], stopped["stopped"]) == (True, True)
            with pytest.raises(RejectedError, match="Monitor not found"):
                await client.monitor_stop(runtime=runtime, process_id="monitor_9")

    run(scenario())
