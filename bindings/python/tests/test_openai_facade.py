"""The OpenAI-compatible API (`--openai-api`) with the official `openai` package, as a user would
use it: chat completions streamed and not, a conversation continued by its chat key, responses
continued by `previous_response_id`; and the README's example runs."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from conftest import REPO, Server
from openai import OpenAI

from letta_app_server import Client

TOKEN = "openai-python-s3cret"
EXAMPLE = REPO / "docs" / "examples" / "openai_facade.py"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Server]:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    server = Server(tmp_path / "data", ("--openai-api", "--ws-auth", "capability-token", "--ws-token-sha256", digest))
    try:
        yield server
    finally:
        server.stop()


def base_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}/v1"


def create_agent(server: Server, name: str) -> str:
    """Creates an agent over the websocket; returns its id."""
    with Client.connect(server.url, token=TOKEN) as client:
        started = client.runtime_start(create_agent={"body": {"name": name}})
        assert started["success"] is True
        agent_id: str = started["runtime"]["agent_id"]
        return agent_id


def test_chat_completions_streamed_and_continued_by_a_chat_key(api: Server) -> None:
    agent_id = create_agent(api, "Pythonista")
    client = OpenAI(base_url=base_url(api), api_key=TOKEN, max_retries=0)
    assert [model.id for model in client.models.list()] == ["Pythonista"]

    answer = client.chat.completions.create(
        model="Pythonista", messages=[{"role": "user", "content": "hello [[reply: Hi from Letta]]"}]
    )
    assert answer.choices[0].message.content == "Hi from Letta"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.total_tokens > 0

    stream = client.chat.completions.create(
        model=agent_id,
        messages=[{"role": "user", "content": "[[reply: one two three]] [[chunks: 3]]"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert "".join(pieces) == "one two three" and len(pieces) > 1
    assert usage is not None and usage.completion_tokens > 0

    chat = {"X-Letta-Chat-Key": "python-chat"}
    fresh = client.chat.completions.create(
        model="Pythonista",
        messages=[{"role": "user", "content": "and now?"}],
        extra_headers={"X-Letta-Chat-Key": "new"},
    )
    client.chat.completions.create(
        model="Pythonista", messages=[{"role": "user", "content": "my name is Ada"}], extra_headers=chat
    )
    continued = client.chat.completions.create(
        model="Pythonista", messages=[{"role": "user", "content": "and now?"}], extra_headers=chat
    )
    assert continued.choices[0].message.content == "I received: and now?"
    assert continued.usage is not None and fresh.usage is not None
    assert continued.usage.prompt_tokens > fresh.usage.prompt_tokens, "the chat's first message was in the history"


def test_responses_continue_from_a_previous_response(api: Server) -> None:
    create_agent(api, "Responder")
    client = OpenAI(base_url=base_url(api), api_key=TOKEN, max_retries=0)
    first = client.responses.create(model="Responder", input="remember 42")
    assert first.id.startswith("resp_letta_")
    assert first.output_text == "I received: remember 42"
    second = client.responses.create(model="Responder", input="which number?", previous_response_id=first.id)
    assert second.output_text == "I received: which number?"
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens

    events = list(client.responses.create(model="Responder", input="[[reply: streamed]]", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == "streamed"
    with client.responses.stream(model="Responder", input="[[reply: accumulated]]") as stream:
        assert stream.get_final_response().output_text == "accumulated"


def test_errors_arrive_as_the_package_s_exceptions(api: Server) -> None:
    create_agent(api, "Known")
    with pytest.raises(openai.AuthenticationError, match="invalid websocket bearer token"):
        OpenAI(base_url=base_url(api), api_key="wrong", max_retries=0).models.list()
    client = OpenAI(base_url=base_url(api), api_key=TOKEN, max_retries=0)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="Unknown", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="Known", messages=[{"role": "system", "content": "no user message"}])


def test_the_readme_shows_the_example_and_it_runs(api: Server) -> None:
    example = EXAMPLE.read_text()
    assert f"```python\n{example}```" in (REPO / "README.md").read_text()
    create_agent(api, "Example")
    ran = subprocess.run(
        [sys.executable, str(EXAMPLE), base_url(api), "Example", TOKEN],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.splitlines() == [
        "models: ['Example']",
        "I received: Hello!",
        "I received: What is my name?",
        "I received: Which number was it?",
    ]


def test_a_failed_turn_is_not_retried_by_the_package(api: Server) -> None:
    """The package retries 5xx answers on its own (twice by default) without an idempotency key;
    an answer after the turn ran says `x-should-retry: false`, so the turn runs once."""
    create_agent(api, "Failing")
    sent: list[str] = []
    http = openai.DefaultHttpxClient(event_hooks={"request": [lambda request: sent.append(request.url.path)]})
    client = OpenAI(base_url=base_url(api), api_key=TOKEN, http_client=http)
    with pytest.raises(openai.APIStatusError) as failed:
        client.chat.completions.create(
            model="Failing",
            messages=[{"role": "user", "content": "[[fail: 400 the model refused]]"}],
            extra_headers={"X-Letta-Chat-Key": "failing-chat"},
        )
    assert failed.value.status_code >= 500
    assert failed.value.response.headers["x-should-retry"] == "false"
    assert sent == ["/v1/chat/completions"]
