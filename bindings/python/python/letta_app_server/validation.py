"""Frames checked against the protocol's JSON Schema bundled with the package.

`validate(frame)` lists what is wrong with a frame, each `Violation` naming the offending field
(`payload.decision`, `messages[0].content`; empty for the frame as a whole) and the reason; an
empty list means the frame is valid. The checks are the schema's and this version's own (non-empty
ids, exactly one of two fields, …), the same as `letta-app-server-tools validate`.
"""

from typing import Any, Literal, NamedTuple

from . import _native


class Violation(NamedTuple):
    """One way a frame breaks the protocol."""

    path: str
    """The offending value, dotted (`payload.decision`); empty for the whole frame."""
    reason: str
    """What is wrong."""


def validate(frame: Any, direction: Literal["client", "server"] | None = None) -> list[Violation]:
    """Every violation of `frame` (a dict, or the text of a message) sent by `direction` (by
    default, the sender of its `type`); empty when it is valid."""
    return [Violation(path, reason) for path, reason in _native.validate_frame(frame, direction)]
