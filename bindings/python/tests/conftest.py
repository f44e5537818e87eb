"""The real server binary on 127.0.0.1, started per test, and helpers for reading frames."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from letta_app_server import AsyncClient, Gap

REPO = Path(__file__).resolve().parents[3]
"""The repository root."""

TLS_FIXTURES = REPO / "tests" / "tls"
"""The test CA (`ca.pem`) and the certificate it signed for 127.0.0.1 and localhost
(`server.pem`, `server.key`)."""

WAIT = 30.0
"""Seconds a test may take before it fails instead of hanging."""

T = TypeVar("T")


def server_binary() -> Path:
    """`LETTA_APP_SERVER_BIN`, or the debug build `cargo build -p letta-app-server` makes."""
    binary = Path(os.environ.get("LETTA_APP_SERVER_BIN") or REPO / "target" / "debug" / "letta-app-server")
    if not binary.is_file():
        pytest.fail(f"no server binary at {binary}: run `cargo build -p letta-app-server` first")
    return binary


class Server:
    """`letta-app-server --listen ws://127.0.0.1:PORT --data-dir DIR`, restartable on its port
    (`wss://` with `scheme="wss"`, whose `args` then give `--tls-cert` and `--tls-key`).

    It runs in the test's temporary directory, where the agents' shell tools run too.
    """

    def __init__(self, data: Path, args: tuple[str, ...] = (), scheme: str = "ws") -> None:
        self.data = data
        self.args = args
        self.scheme = scheme
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.start()

    def start(self) -> None:
        process = subprocess.Popen(
            [str(server_binary()), "--listen", self.url, "--data-dir", str(self.data), *self.args],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=self.data.parent,
            text=True,
        )
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first.startswith(f"Listening on {self.scheme}://"):
            process.kill()
            raise RuntimeError(f"the server did not start: {first!r}")
        self.port = int(first.strip().rsplit(":", 1)[1])
        self.process = process

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill_9_and_start(self) -> None:
        """`kill -9`, then starts again on the same data directory and port."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None
        self.start()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data")
    try:
        yield running
    finally:
        running.stop()


def server_with(shell: str, data: Path, monkeypatch: pytest.MonkeyPatch) -> Server:
    """A server whose terminals run `shell` (its `$SHELL`)."""
    with monkeypatch.context() as patch:
        patch.setenv("SHELL", shell)
        return Server(data)


@pytest.fixture
def sh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server whose terminals run `/bin/sh`, which reads no start-up files of the machine's
    user (an interactive bash would)."""
    running = server_with("/bin/sh", tmp_path / "data", monkeypatch)
    try:
        yield running
    finally:
        running.stop()


def run(coroutine: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
    """Runs a test's coroutine on a fresh event loop, failing after `timeout` seconds."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def new_runtime(client: AsyncClient, name: str, **fields: Any) -> Any:
    """Starts a runtime for a new agent and returns its scope."""
    started = await client.runtime_start(create_agent={"body": {"name": name}}, **fields)
    assert started["success"] is True
    return started["runtime"]


def frames_only(items: list[Any]) -> list[dict[str, Any]]:
    gaps = [item for item in items if isinstance(item, Gap)]
    assert not gaps, gaps
    return items


def assistant_text(frames: list[dict[str, Any]]) -> str:
    """The assistant's reply, joined from its deltas."""
    text = []
    for frame in frames:
        delta = frame.get("delta") or {}
        if delta.get("message_type") == "assistant_message":
            content = delta["content"]
            text.append(content if isinstance(content, str) else "".join(p.get("text", "") for p in content))
    return "".join(text)


def tool_returns(frames: list[dict[str, Any]]) -> list[str]:
    """The final text of each tool call's `tool_return_message`, in call order."""
    returns: dict[str, str] = {}
    for frame in frames:
        delta = frame.get("delta") or {}
        if delta.get("message_type") == "tool_return_message":
            returns[delta["tool_returns"][0]["tool_call_id"]] = delta["tool_return"]
    return list(returns.values())


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    """Each frame's `type`, or its delta's `message_type`."""
    return [frame["delta"]["message_type"] if frame["type"] == "stream_delta" else frame["type"] for frame in frames]


def readme_examples() -> list[str]:
    """The Python examples of the README's Python SDK section, in order."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("\n## The Python SDK\n", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]


def wheel() -> Path:
    """The wheel `cargo xtask test` builds into `target/python-wheel`."""
    wheels = sorted((REPO / "target" / "python-wheel").glob("letta_app_server-*.whl"))
    if len(wheels) != 1:
        pytest.fail(
            f"expected one wheel in target/python-wheel, found {len(wheels)}: "
            "run `maturin build --release -m bindings/python/Cargo.toml -o target/python-wheel`"
        )
    return wheels[0]
