"""An agent's memory through the Python SDK: the model's `memory` tool commits a fact, which is
in the agent's prompt and history after a restart; files written, listed as a stream of chunks,
read back."""

from __future__ import annotations

import json
from typing import Any

from conftest import Server, frames_only, new_runtime, run, tool_returns

from letta_app_server import AsyncClient, Client


async def collect(stream: Any) -> list[Any]:
    return [item async for item in stream]


def test_the_agent_remembers_a_fact_across_a_restart(server: Server) -> None:
    fact = json.dumps(
        {
            "command": "create",
            "reason": "Remember the user's name",
            "file_path": "system/human.md",
            "description": "The user",
            "file_text": "Name: Ada",
        }
    )

    async def remember() -> Any:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Rememberer")
            enabled = await client.enable_memfs(agent_id=runtime["agent_id"])
            assert enabled["memory_directory"]
            frames = frames_only(await collect(client.turn(runtime, f"I am Ada. [[tool: memory {fact}]]")))
            (result,) = tool_returns(frames)
            assert result.startswith("Memory create committed locally ("), result
            return runtime

    runtime = run(remember())
    server.restart()

    async def recall() -> None:
        async with AsyncClient.connect(server.url) as client:
            history = await client.memory_history(agent_id=runtime["agent_id"], file_path="system/human.md")
            assert [commit["message"] for commit in history["commits"]] == ["Remember the user's name"]
            sha = history["commits"][0]["sha"]
            diff = await client.memory_commit_diff(agent_id=runtime["agent_id"], sha=sha)
            assert "+Name: Ada" in diff["diff"]
            prompt = await client.conversation_recompile(
                conversation_id=runtime["conversation_id"], body={"agent_id": runtime["agent_id"]}
            )
            assert "<human>" in prompt["result"] and "Name: Ada" in prompt["result"], prompt

    run(recall())


def test_memory_files_are_written_then_listed_in_chunks(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Notebook")
            agent_id = runtime["agent_id"]
            await client.enable_memfs(agent_id=agent_id)
            for n in range(7):
                written = await client.write_memory_file(
                    agent_id=agent_id, path=f"notes/n{n}.md", content=f"---\ndescription: Note {n}\n---\nnote {n}\n"
                )
                assert written["committed"] is True
            chunks = await collect(client.list_memory(agent_id=agent_id))
            assert [(len(chunk["entries"]), chunk["done"]) for chunk in chunks] == [(5, False), (2, True)]
            read = await client.read_memory_file(agent_id=agent_id, path="notes/n6.md")
            assert read["content"] == "---\ndescription: Note 6\n---\nnote 6\n"

    run(scenario())
    # The synchronous client iterates the same stream.
    with Client.connect(server.url) as client:
        agents = client.agent_list(query={"name": "Notebook"})["agents"]
        chunks = list(client.list_memory(agent_id=agents[0]["id"]))
        assert sum(len(chunk["entries"]) for chunk in chunks) == 7 and chunks[-1]["done"] is True
