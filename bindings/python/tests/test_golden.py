"""Every golden frame of `tests/frames/` passes through the binding unchanged and matches the
generated `TypedDict`s."""

from __future__ import annotations

import gc
import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest
from conftest import REPO

from letta_app_server import _native, frames

GOLDEN = sorted((REPO / "tests" / "frames").glob("*/*.json"))
META = json.loads((REPO / "schema" / "meta.json").read_text())


def problems(value: Any, hint: Any, path: str = "") -> list[str]:
    """Where `value` does not match the type `hint` (empty when it does)."""
    origin = get_origin(hint)
    if hint is Any:
        return []
    if hint is None or hint is type(None):
        return [] if value is None else [f"{path}: expected None, got {value!r}"]
    if hint in (str, bool, dict):
        return [] if type(value) is hint else [f"{path}: expected {hint.__name__}, got {value!r}"]
    if hint is int:
        return [] if type(value) is int else [f"{path}: expected int, got {value!r}"]
    if hint is float:
        return [] if type(value) in (int, float) else [f"{path}: expected float, got {value!r}"]
    if origin is Literal:
        return [] if value in get_args(hint) else [f"{path}: {value!r} is not one of {get_args(hint)}"]
    if origin in (Union, types.UnionType):
        found = [problems(value, option, path) for option in get_args(hint)]
        return [] if any(not found_here for found_here in found) else min(found, key=len)
    if origin is list:
        if type(value) is not list:
            return [f"{path}: expected a list, got {value!r}"]
        return [p for index, item in enumerate(value) for p in problems(item, get_args(hint)[0], f"{path}[{index}]")]
    if origin is dict:
        if type(value) is not dict:
            return [f"{path}: expected a dict, got {value!r}"]
        return [p for key, item in value.items() for p in problems(item, get_args(hint)[1], f"{path}.{key}")]
    if is_typeddict(hint):
        if type(value) is not dict:
            return [f"{path}: expected a {hint.__name__} dict, got {value!r}"]
        fields = get_type_hints(hint)
        found = [f"{path}.{key}: missing ({hint.__name__})" for key in hint.__required_keys__ if key not in value]
        if hint.__name__ not in frames.OPEN_TYPES:
            found += [f"{path}.{key}: not a field of {hint.__name__}" for key in value if key not in fields]
        for key, item in value.items():
            if key in fields:
                found += problems(item, fields[key], f"{path}.{key}")
        return found
    raise AssertionError(f"{path}: the check does not know the type {hint!r}")


def from_server(frame: dict[str, Any]) -> bool:
    """Whether the server sends `frame`: its type's sides. Of a type both sides send (`file_ops`),
    the server sends every form, clients only the one without the runtime envelope."""
    return frame["type"] in META["server_frames"]


def from_client(frame: dict[str, Any]) -> bool:
    """Whether clients send `frame` (see `from_server`)."""
    return frame["type"] in META["client_frames"] and "event_seq" not in frame


def test_the_corpus_covers_every_frame_type() -> None:
    assert {path.parent.name for path in GOLDEN} == set(META["client_frames"]) | set(META["server_frames"])


@pytest.mark.parametrize("path", GOLDEN, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_golden_frame_passes_through_unchanged_and_typed(path: Path) -> None:
    text = path.read_text()
    expected = json.loads(text)
    if from_server(expected):
        # The receive path: what every event stream does with a frame's text.
        received = _native.parse_frame(json.dumps(expected, separators=(",", ":")))
        assert received == expected
        assert list(received) == list(expected), "fields keep their order"
        assert problems(received, frames.ServerFrame) == []
    if from_client(expected):
        # The send path: a frame given as a dict is sent as that JSON.
        assert json.loads(_native.encode_frame(expected)) == expected
        assert problems(expected, frames.ClientFrame) == []


def test_the_check_catches_what_does_not_match() -> None:
    delta = json.loads((REPO / "tests" / "frames" / "stream_delta").glob("*.json").__next__().read_text())
    delta["delta"]["message_type"] = "hologram_message"
    assert problems(delta, frames.ServerFrame)
    finished = json.loads(next((REPO / "tests" / "frames" / "turn_finished").glob("*.json")).read_text())
    del finished["turn_id"]
    assert problems(finished, frames.TurnFinished) == [".turn_id: missing (TurnFinished)"]
    finished["turn_id"] = 7
    assert problems(finished, frames.TurnFinished) == [".turn_id: expected str, got 7"]


def test_text_that_is_not_a_json_object_is_still_delivered() -> None:
    assert _native.parse_frame("[1, 2.5, true, null]") == [1, 2.5, True, None]
    assert _native.parse_frame("not json") == "not json"
    assert _native.parse_frame('{"big": 18446744073709551615, "neg": -5, "s": "\\u00e9\\n"}') == {
        "big": 2**64 - 1,
        "neg": -5,
        "s": "é\n",
    }


def test_strings_that_look_alike_stay_apart() -> None:
    # Frame strings are reused from a cache keyed by length and first and last bytes: strings
    # that share those, of every length the cache keeps and beyond, must still come back as sent.
    strings = []
    for length in range(0, 60):
        for middle in "xyé":
            if length == 0:
                strings.append("")
                continue
            chars = ["a"] * length
            chars[length // 2] = middle
            strings.append("".join(chars))
    text = json.dumps({"list": strings + strings, **{s: s for s in strings}}, ensure_ascii=False)
    assert _native.parse_frame(text) == json.loads(text)


def test_a_conversion_inside_a_conversion_makes_its_own_strings() -> None:
    # A finaliser run by the garbage collector in the middle of a conversion may convert a frame
    # itself; the string cache is then busy, and that conversion goes without it.
    inside: list[tuple[bool, Any]] = []
    converting = [False]

    class Cycle:
        def __del__(self) -> None:
            inside.append((converting[0], _native.parse_frame('{"inner": ["a", "b"]}')))

    frame = json.dumps({"items": [{"key": str(n)} for n in range(2000)]})
    threshold = gc.get_threshold()
    gc.set_threshold(1)
    try:
        for _ in range(3):
            cycle = Cycle()
            cycle.me = cycle  # type: ignore[attr-defined]
            del cycle
            converting[0] = True
            assert _native.parse_frame(frame) == json.loads(frame)
            converting[0] = False
    finally:
        gc.set_threshold(*threshold)
        gc.collect()
    assert any(during for during, _ in inside), inside
    assert all(parsed == {"inner": ["a", "b"]} for _, parsed in inside)
