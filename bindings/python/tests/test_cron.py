"""Scheduled prompts and skills through the Python SDK: a task added, run now with
`cron_trigger` (its prompt runs in the conversation as a `cron_prompt`), paused, read back with
its run log, deleted; a skill enabled and disabled."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Server, new_runtime, run

from letta_app_server import AsyncClient, RejectedError


def test_a_triggered_task_runs_its_prompt_and_logs_the_run(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Scheduler")
            added = await client.cron_add(
                agent_id=runtime["agent_id"],
                conversation_id=runtime["conversation_id"],
                name="Ping",
                description="",
                cron="*/5 * * * *",
                timezone="UTC",
                recurring=True,
                prompt="Say pong [[reply: pong]]",
            )
            task = added["task"]
            assert task is not None and task["status"] == "active"
            events = client.events(runtime)
            triggered = await client.cron_trigger(task_id=task["id"])
            assert triggered["task"] is not None and triggered["task"]["fire_count"] == 1
            kinds = []
            async for frame in events:
                if isinstance(frame, dict) and frame["type"] == "update_queue" and frame["queue"]:
                    kinds.append(frame["queue"][0]["kind"])
                if isinstance(frame, dict) and frame["type"] == "turn_finished":
                    break
            assert kinds == ["cron_prompt"]
            paused = await client.cron_pause(task_id=task["id"])
            assert paused["task"] is not None and paused["task"]["status"] == "paused"
            runs = await client.cron_runs(task_id=task["id"])
            page = runs["page"]
            assert page is not None and [entry["outcome"] for entry in page["entries"]] == ["queued"]
            deleted = await client.cron_delete_all(agent_id=runtime["agent_id"])
            assert deleted["deleted"] == 1

    run(scenario())


def test_a_skill_is_enabled_then_disabled(server: Server, tmp_path: Path) -> None:
    skill = tmp_path / "haiku"
    skill.mkdir()
    (skill / "SKILL.md").write_text("---\nname: haiku\ndescription: Write a haiku.\n---\nFive, seven, five.")

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            enabled = await client.skill_enable(skill_path=str(skill))
            assert (enabled["skill_name"], enabled.get("link_path", "").endswith("/skills/haiku")) == ("haiku", True)
            disabled = await client.skill_disable(name="haiku")
            assert disabled["success"] is True
            with pytest.raises(RejectedError, match="Skill not found: haiku"):
                await client.skill_disable(name="haiku")

    run(scenario())
