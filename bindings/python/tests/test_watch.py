"""Editing and following a file against the real server: `edit_file`, and `watch_file`'s stream of
`file_changed` frames in the async and the sync client."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from conftest import Server, run

from letta_app_server import AsyncClient, Client, ServerError


def test_edit_file_replaces_text_and_answers_with_the_count_and_the_line(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "main.py"
    path.write_text("a = 1\nb = a\n")

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            answer = await client.edit_file(file_path=str(path), old_string="b = a", new_string="b = a * 2")
            assert answer == {
                "type": "edit_file_response",
                "request_id": answer["request_id"],
                "success": True,
                "file_path": str(path),
                "message": f"Successfully replaced 1 occurrence in {path}",
                "replacements": 1,
                "start_line": 2,
            }

    run(scenario())
    assert path.read_text() == "a = 1\nb = a * 2\n"


def test_an_async_watch_yields_changes_until_closed(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text("")

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            async with client.watch_file(str(path)) as changes:
                for n in range(50):
                    path.write_text(f"write {n}\n")
                    try:
                        change = await asyncio.wait_for(anext(changes), 0.4)
                        break
                    except TimeoutError:
                        continue
                else:
                    pytest.fail("no change reported")
                assert change["type"] == "file_changed"
                assert change["path"] == str(path)
                assert change["lastModified"] > 1.7e12
            # Closed: the iteration ends.
            assert [item async for item in changes] == []

    run(scenario())


def test_an_async_watch_of_a_missing_file_raises_the_servers_error(server: Server, tmp_path: Path) -> None:
    missing = tmp_path / "missing.md"

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            async with client.watch_file(str(missing)) as changes:
                with pytest.raises(ServerError, match="ENOENT: no such file or directory, watch"):
                    await anext(changes)

    run(scenario())


def test_the_sync_client_follows_a_file(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "sync.md"
    path.write_text("")
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            path.write_text(f"write {n}\n")
            n += 1
            time.sleep(0.3)

    with Client.connect(server.url) as client, client.watch_file(str(path)) as changes:
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            change = next(iter(changes))
        finally:
            stop.set()
            thread.join()
        assert change["type"] == "file_changed"
        assert change["path"] == str(path)
