"""`validate` checks frames against the schema bundled with the package: every invalid-frame case
of tests/invalid_frames is rejected, every golden frame accepted."""

from __future__ import annotations

import json

import pytest

import letta_app_server
from letta_app_server import Violation, validate

from conftest import REPO


def test_a_valid_frame_has_no_violations_as_a_dict_or_as_text() -> None:
    assert validate({"type": "app_server_info", "request_id": "i-1"}) == []
    assert validate('{"type":"app_server_info","request_id":"i-1"}') == []
    assert "validate" in letta_app_server.__all__


def test_each_violation_names_the_offending_field_and_the_reason() -> None:
    assert validate({"type": "runtime_start", "request_id": "rs-1", "agent_id": 42}) == [
        Violation("agent_id", '42 is not of types "null", "string"')
    ]
    [violation] = validate(
        {"type": "input", "request_id": "in-1", "runtime": {"agent_id": "a", "conversation_id": "c"},
         "payload": {"kind": "approval_response", "request_id": "perm-1", "decision": ["allow"]}}
    )
    assert violation.path == "payload.decision"
    assert validate("{not json")[0].reason.startswith("not JSON")
    assert validate([1, 2]) == [Violation("", "a frame is a JSON object, not an array")]


def test_the_direction_decides_which_frame_types_are_known() -> None:
    assert validate({"type": "pong"}) == []
    assert validate({"type": "pong"}, "server") == [
        Violation("type", "`pong` is not a server frame type of this schema")
    ]
    with pytest.raises(ValueError, match="not a direction"):
        validate({"type": "pong"}, "sideways")  # type: ignore[arg-type]


def test_every_invalid_frame_case_is_rejected() -> None:
    cases = sorted((REPO / "tests" / "invalid_frames").glob("*.json"))
    assert len(cases) > 100
    for case in cases:
        text = json.loads(case.read_text())["text"]
        assert validate(text, "client"), case.name


def test_every_golden_frame_is_accepted() -> None:
    checked = 0
    for file in sorted((REPO / "tests" / "frames").glob("*/*.json")):
        frame = json.loads(file.read_text())
        # `file_ops` goes both ways: the server's carry the runtime envelope.
        direction = ("server" if "event_seq" in frame else "client") if file.parent.name == "file_ops" else None
        assert validate(frame, direction) == [], f"{file.parent.name}/{file.name}"
        checked += 1
    assert checked > 300
