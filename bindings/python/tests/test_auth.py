"""Both clients against a server with `--ws-auth capability-token`: the token opens the
connection; without it, or with another, connecting fails with the server's 401."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Server, run

from letta_app_server import AsyncClient, Client, ConnectError

TOKEN = "python-s3cret"


@pytest.fixture
def authenticated(tmp_path: Path) -> Iterator[Server]:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    server = Server(tmp_path / "data", ("--ws-auth", "capability-token", "--ws-token-sha256", digest))
    yield server
    server.stop()


def test_the_token_opens_the_connection_and_nothing_else_does(authenticated: Server) -> None:
    with Client.connect(authenticated.url, token=TOKEN) as client:
        started = client.runtime_start(create_agent={"body": {"name": "Authenticated"}})
        assert started["success"] is True

    async def scenario() -> None:
        async with AsyncClient.connect(authenticated.url, token=TOKEN) as client:
            info = await client.app_server_info()
            assert info["capabilities"]["agent_management"] is True

    run(scenario())
    for token in (None, "not-the-token"):
        with pytest.raises(ConnectError, match="401"):
            Client.connect(authenticated.url, token=token)
