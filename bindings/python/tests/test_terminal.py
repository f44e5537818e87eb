"""Terminals through `client.terminal()` against the real server: output as an async iterator,
write, resize, kill, a shell that exits at once or cannot start, input to a killed terminal, and
megabytes of output received whole and in order; the synchronous client's terminal too."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import Server, run, server_with

from letta_app_server import AsyncClient, Client, Gap, RejectedError, ServerError, Terminal, TerminalExit


async def until(terminal: Terminal, needle: str) -> str:
    """The terminal's output until it contains `needle`."""
    output = ""
    while needle not in output:
        chunk = await terminal.__anext__()
        assert isinstance(chunk, str)
        output += chunk
    return output


def test_a_terminal_echoes_input_resizes_and_is_killed(sh: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(sh.url) as client:
            async with await client.terminal(cols=100, rows=30) as term:
                assert term.id.startswith("terminal-") and term.pid > 1
                await term.write("echo py-$((6*7)); stty size\n")
                await until(term, "py-42\r\n30 100\r\n")
                await term.resize(120, 40)
                await term.write("stty size\n")
                await until(term, "40 120\r\n")
                await term.kill()
                async for chunk in term:
                    assert isinstance(chunk, str)
                assert term.exit == TerminalExit(129)

                # A killed terminal: the server's answer to input for a terminal it does not know.
                with pytest.raises(ServerError) as refused:
                    await term.write("ls\n")
                assert refused.value.code == "invalid_frame"
                assert f"Terminal not found: {term.id}" in str(refused.value)

    run(scenario())


def test_leaving_async_with_kills_the_shell(sh: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(sh.url) as client:
            async with await client.terminal(terminal_id="mine") as term:
                await term.write("echo ready\n")
                await until(term, "ready\r\n")
            pid = term.pid
            for _ in range(200):
                if not Path(f"/proc/{pid}").exists():
                    break
                await asyncio.sleep(0.02)
            assert not Path(f"/proc/{pid}").exists()
            again = await client.terminal(terminal_id="again")
            await again.write("exit 4\n")
            assert await again.wait() == TerminalExit(4)

    run(scenario())


def test_megabytes_of_output_arrive_whole_and_in_order(sh: Server) -> None:
    async def scenario() -> None:
        async with AsyncClient.connect(sh.url) as client:
            term = await client.terminal(capacity=4)
            await term.write("stty -echo; head -c 5000000 /dev/zero | base64 -w 76; exit 0\n")
            chunks: list[str] = []
            async for chunk in term:
                assert not isinstance(chunk, Gap)
                chunks.append(chunk)
                if len(chunks) % 20 == 0:
                    await asyncio.sleep(0.002)
            assert term.exit == TerminalExit(0)
            # The shell's prompt may come before the first line.
            lines = [line.rsplit(" ", 1)[-1] for line in "".join(chunks).split("\r\n")]
            lines = [line for line in lines if line and set(line) <= {"A", "="}]
            assert sum(map(len, lines)) == -(-5_000_000 // 3) * 4
            assert all(len(line) == 76 for line in lines[:-1])
            assert len(chunks) > 20

    run(scenario(), timeout=60)


def test_a_shell_that_exits_at_once_and_one_that_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = server_with("/bin/true", tmp_path / "quick", monkeypatch)
    broken = server_with("/no/such/shell", tmp_path / "broken", monkeypatch)

    async def scenario() -> None:
        async with AsyncClient.connect(quick.url) as client:
            term = await client.terminal()
            assert await term.wait() == TerminalExit(0)
        async with AsyncClient.connect(broken.url) as client:
            with pytest.raises(RejectedError, match="spawn /no/such/shell ENOENT"):
                await client.terminal()

    try:
        run(scenario())
    finally:
        quick.stop()
        broken.stop()


def test_the_synchronous_client_has_terminals_too(sh: Server) -> None:
    with Client.connect(sh.url) as client, client.terminal() as term:
        term.write("echo sync-$((6*7)); exit 3\n")
        output = "".join(chunk for chunk in term if isinstance(chunk, str))
        assert "sync-42\r\n" in output
        assert term.exit == TerminalExit(3)
