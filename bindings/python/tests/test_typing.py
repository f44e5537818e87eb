"""The README's examples and the package pass a real type checker (mypy, strict), which also
rejects frames used wrongly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO, readme_examples


def mypy(*targets: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(REPO / "target" / "mypy-cache"), *targets],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_readme_examples_and_the_package_type_check(tmp_path: Path) -> None:
    examples = readme_examples()
    assert len(examples) == 4
    for index, example in enumerate(examples):
        (tmp_path / f"example_{index}.py").write_text(example)
    checked = mypy(*(f"example_{index}.py" for index in range(len(examples))), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checked = mypy("-p", "letta_app_server", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_misused_frames_are_type_errors(tmp_path: Path) -> None:
    (tmp_path / "wrong.py").write_text(
        """
from letta_app_server import AsyncClient, Gap
from letta_app_server.frames import RuntimeScope


async def wrong(client: AsyncClient, runtime: RuntimeScope) -> None:
    async for frame in client.turn(runtime, "hi"):
        if not isinstance(frame, Gap) and frame["type"] == "turn_finished":
            print(frame["delta"])
    await client.answer_approval(runtime, "perm-1", {"behavior": "maybe"})
"""
    )
    checked = mypy("wrong.py", cwd=tmp_path)
    assert checked.returncode == 1, checked.stdout
    assert 'TypedDict "TurnFinished" has no key "delta"' in checked.stdout, checked.stdout
    assert "wrong.py:10: error: Incompatible types (expression has type \"Literal['maybe']\"" in checked.stdout, checked.stdout


def test_a_terminal_is_typed(tmp_path: Path) -> None:
    (tmp_path / "terminal.py").write_text(
        """
from letta_app_server import AsyncClient, Client, Gap, TerminalExit


async def use(client: AsyncClient) -> TerminalExit | None:
    async with await client.terminal(cwd="project", cols=120, rows=40) as term:
        await term.write("ls\\\\n")
        await term.resize(100, 30)
        async for chunk in term:
            if not isinstance(chunk, Gap):
                print(chunk.upper())
        return term.exit


def use_sync(client: Client) -> int:
    with client.terminal() as term:
        term.write("exit 3\\\\n")
        return term.wait().exit_code + term.pid


async def wrong(client: AsyncClient) -> None:
    term = await client.terminal()
    async for chunk in term:
        print(chunk.upper())
"""
    )
    checked = mypy("terminal.py", cwd=tmp_path)
    assert checked.returncode == 1, checked.stdout
    assert checked.stdout.count("error:") == 1, checked.stdout
    assert 'Item "Gap" of "str | Gap" has no attribute "upper"' in checked.stdout, checked.stdout
