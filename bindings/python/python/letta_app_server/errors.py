"""The exceptions of the client: one base class, a few kinds a caller can tell apart."""

from __future__ import annotations


class AppServerError(Exception):
    """Any failure of a call to the App Server."""


class InvalidUrlError(AppServerError, ValueError):
    """The URL (or the token) cannot be used to reach an App Server."""


class InvalidTlsError(AppServerError, ValueError):
    """The CA certificates given as ``ca_cert`` are not PEM certificates."""


class ConnectError(AppServerError, ConnectionError):
    """The websocket could not be opened (refused, HTTP error on the upgrade, bad token, failed
    TLS handshake, …)."""


class DisconnectedError(AppServerError, ConnectionError):
    """The connection dropped before the answer came; the command may or may not have taken effect."""


class RequestTimeoutError(AppServerError, TimeoutError):
    """No answer within the request timeout; the command may still take effect."""

    def __init__(self, message: str, request_id: str, after: float) -> None:
        super().__init__(message)
        self.request_id = request_id
        """The request that timed out."""
        self.after = after
        """How long the client waited, in seconds."""


class ServerError(AppServerError):
    """The server refused a command with an ``error`` frame (this project's server sends them)."""

    def __init__(self, message: str, code: str, request_id: str | None) -> None:
        super().__init__(message)
        self.code = code
        """The stable reason code: ``invalid_frame``, ``unknown_runtime``, …"""
        self.request_id = request_id
        """The command's ``request_id``, when it had one."""


class RejectedError(ServerError):
    """The server answered but refused: ``success: false``, or ``accepted: false``."""

    def __init__(self, message: str, request_id: str, frame_type: str) -> None:
        super().__init__(message, "rejected", request_id)
        self.frame_type = frame_type
        """The type of the answer (``runtime_start_response``, ``input_accepted``, …)."""


class ClosedError(AppServerError):
    """The client was closed."""


class ProtocolError(AppServerError):
    """The server's answer does not match this version of the protocol."""


__all__ = [
    "AppServerError",
    "ClosedError",
    "ConnectError",
    "DisconnectedError",
    "InvalidUrlError",
    "ProtocolError",
    "RejectedError",
    "RequestTimeoutError",
    "ServerError",
]
