"""Both clients against a server started with `--tls-cert` and `--tls-key` (the checked-in test
certificate for 127.0.0.1 and localhost): `ca_cert=` trusts the test CA; without it, or over
`ws://`, connecting fails with a clear error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TLS_FIXTURES, Server, assistant_text, frames_only, run

from letta_app_server import AsyncClient, Client, ConnectError, InvalidTlsError

CA = TLS_FIXTURES / "ca.pem"


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Server]:
    certificate = ("--tls-cert", str(TLS_FIXTURES / "server.pem"), "--tls-key", str(TLS_FIXTURES / "server.key"))
    server = Server(tmp_path / "data", certificate, scheme="wss")
    yield server
    server.stop()


def test_ca_cert_trusts_the_ca_of_a_wss_server(tls_server: Server) -> None:
    assert tls_server.url.startswith("wss://127.0.0.1:")
    with Client.connect(tls_server.url, ca_cert=CA) as client:
        started = client.runtime_start(create_agent={"body": {"name": "Over TLS"}})
        frames = frames_only(list(client.turn(started["runtime"], "[[reply: sent over TLS]] [[chunks: 3]]")))
        assert assistant_text(frames) == "sent over TLS"

    async def scenario() -> None:
        # The PEM itself, and the certificate's other name.
        localhost = f"wss://localhost:{tls_server.port}"
        async with AsyncClient.connect(localhost, ca_cert=CA.read_bytes()) as client:
            info = await client.app_server_info()
            assert info["type"] == "app_server_info_response"

    run(scenario())
    with Client.connect(tls_server.url, ca_cert=str(CA)) as client:
        assert client.app_server_info()["type"] == "app_server_info_response"
    # PEM text as a `str`, as `ssl`'s `cadata` takes it.
    with Client.connect(tls_server.url, ca_cert=CA.read_text()) as client:
        assert client.app_server_info()["type"] == "app_server_info_response"


def test_without_the_ca_or_over_ws_connecting_fails_clearly(tls_server: Server) -> None:
    with pytest.raises(ConnectError, match="TLS handshake failed: invalid peer certificate: UnknownIssuer"):
        Client.connect(tls_server.url)
    plain = tls_server.url.replace("wss://", "ws://", 1)
    with pytest.raises(ConnectError, match="HTTP 400 Bad Request: this port speaks TLS: connect with wss:// or https://"):
        Client.connect(plain)
    with pytest.raises(InvalidTlsError, match="no PEM certificate"):
        Client.connect(tls_server.url, ca_cert=b"not a certificate")
    with pytest.raises(FileNotFoundError):
        Client.connect(tls_server.url, ca_cert="/nonexistent/ca.pem")
