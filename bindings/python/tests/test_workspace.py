"""The workspace commands against the real server: a terminal (its pushes arrive through
`events()`), and the branch picker's typed methods."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import Server, run

from letta_app_server import AsyncClient, RejectedError


def test_a_terminal_runs_the_shell_echoes_input_and_reports_its_exit(sh: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(sh.url) as client:
            events = client.events()
            await client.send({"type": "terminal_spawn", "terminal_id": "p1", "cols": 80, "rows": 24})
            output = ""
            async for frame in events:
                if not isinstance(frame, dict):
                    continue
                if frame["type"] == "terminal_spawned":
                    assert frame["terminal_id"] == "p1" and frame["pid"] > 1
                    await client.send(
                        {"type": "terminal_input", "terminal_id": "p1", "data": "echo py-$((6*7))\nexit 5\n"}
                    )
                elif frame["type"] == "terminal_output":
                    output += frame["data"]
                elif frame["type"] == "terminal_exited":
                    assert frame == {"type": "terminal_exited", "terminal_id": "p1", "exitCode": 5}
                    break
            assert "py-42\r\n" in output

            await client.send({"type": "terminal_kill", "terminal_id": "p1"})
            async for frame in events:
                if isinstance(frame, dict) and frame["type"] == "error":
                    assert frame == {
                        "type": "error",
                        "code": "invalid_frame",
                        "message": "Terminal not found: p1",
                        "frame_type": "terminal_kill",
                    }
                    break

    run(scenario())


def test_branches_are_searched_and_checked_out(server: Server, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for args in (["init", "--quiet", "--initial-branch=main"], ["commit", "--quiet", "--allow-empty", "-m", "first"]):
        subprocess.run(["git", "-C", str(repo), *args], check=True, env=env)

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            created = await client.checkout_branch(branch="feature/py", create=True, cwd=str(repo))
            assert created["branch"] == "feature/py"
            found = await client.search_branches(query="PY", cwd=str(repo))
            assert found["branches"] == [{"name": "feature/py", "is_current": True, "is_remote": False}]
            with pytest.raises(RejectedError) as refused:
                await client.checkout_branch(branch="nope", cwd=str(repo))
            assert "fatal: invalid reference: nope" in str(refused.value)

    run(scenario())
