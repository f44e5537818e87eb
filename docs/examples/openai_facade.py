"""An agent through the OpenAI-compatible API, with the official `openai` package.

    letta-app-server --openai-api        # prints "OpenAI-compatible API: http://127.0.0.1:PORT/v1"
    python openai_facade.py http://127.0.0.1:PORT/v1 MODEL [TOKEN]

MODEL is an id `GET /v1/models` lists (an agent's name, or its id); TOKEN is the server's
`--ws-auth` token, if it has one.
"""

import sys

from openai import OpenAI

base_url, model = sys.argv[1], sys.argv[2]
client = OpenAI(base_url=base_url, api_key=sys.argv[3] if len(sys.argv) > 3 else "no-token")
print("models:", [listed.id for listed in client.models.list()])

# One question, one answer: a fresh conversation, deleted afterwards.
answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello!"}])
print(answer.choices[0].message.content)

# A chat the agent keeps: every request with the same X-Letta-Chat-Key continues one
# conversation, which receives only the newest user message.
chat = {"X-Letta-Chat-Key": "example-chat"}
client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "My name is Ada."}], extra_headers=chat
)
stream = client.chat.completions.create(
    model=model,
    messages=[{"role": "user", "content": "What is my name?"}],
    extra_headers=chat,
    stream=True,
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()

# The Responses API: previous_response_id continues from a stored response.
first = client.responses.create(model=model, input="Remember the number 42.")
second = client.responses.create(model=model, input="Which number was it?", previous_response_id=first.id)
print(second.output_text)
