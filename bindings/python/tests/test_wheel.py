"""The built wheel installs into a fresh virtual environment offline and runs the README's
orchestrator example against the server; the README's transcript example runs too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import Server, readme_examples, wheel


def test_the_wheel_installs_offline_and_runs_the_readme_example(server: Server, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-index", str(wheel())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert installed.returncode == 0, installed.stderr
    (tmp_path / "orchestrator.py").write_text(readme_examples()[0])
    ran = subprocess.run(
        [str(venv / "bin" / "python"), "orchestrator.py", server.url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert sorted(line for line in lines if line.startswith("[")) == ["[Paris scout] end_turn", "[Tokyo scout] end_turn"]
    assert lines[-2:] == [
        "Tool results: call_1 returned: Sunny and 21°C in Paris",
        "Tool results: call_1 returned: Sunny and 21°C in Tokyo",
    ]


def test_the_readme_transcript_and_model_picker_example_runs(server: Server, tmp_path: Path) -> None:
    (tmp_path / "transcript.py").write_text(readme_examples()[3])
    ran = subprocess.run(
        [sys.executable, "transcript.py", server.url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[:2] == [
        "user_message: Remember the word 'teal'. [[reply: Noted: teal.]]",
        "assistant_message: Noted: teal.",
    ]
    assert "model: scripted/default (default)" in lines
    assert lines[-1] == "now using scripted/default for the conversation"
