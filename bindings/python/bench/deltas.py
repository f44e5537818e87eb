"""Frames per second a Python client receives during a 10,000-delta reply: the SDK against a
client built on the `websockets` package with `json.loads`, on the same server.

Usage: `python deltas.py URL [REPLIES]` (URL like `ws://127.0.0.1:PORT/ws`). Each client opens its
own connection and runtime; after one warm-up reply each, they take turns asking for REPLIES
replies each (default 5), each timed from sending the input to reading its `turn_finished`. Prints
`{"sdk": [...], "websockets": [...]}`: frames per second, one entry per reply. Run by
`cargo xtask bench`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import websockets

from letta_app_server import AsyncClient

DIRECTIVE = "[[deltas: 10000]]"


async def sdk_reply(client: AsyncClient, runtime: Any) -> tuple[int, float]:
    """One reply through the SDK's turn helper: (frames, seconds from sending to turn_finished)."""
    frames = 0
    started = time.perf_counter()
    async for frame in client.turn(runtime, DIRECTIVE):
        frames += 1
        if not isinstance(frame, dict):
            raise RuntimeError(f"the SDK reported {frame}")
    return frames, time.perf_counter() - started


async def plain_reply(socket: Any, runtime: Any, number: int) -> tuple[int, float]:
    """One reply read with `websockets` and `json.loads`, counting every frame up to turn_finished."""
    frames = 0
    started = time.perf_counter()
    await socket.send(
        json.dumps(
            {
                "type": "input",
                "request_id": f"input-{number}",
                "runtime": runtime,
                "payload": {"kind": "create_message", "messages": [{"role": "user", "content": DIRECTIVE}]},
            }
        )
    )
    while True:
        frame = json.loads(await socket.recv())
        frames += 1
        if frame["type"] == "turn_finished":
            return frames, time.perf_counter() - started


async def start_plain(socket: Any) -> Any:
    """Starts a runtime on a plain connection; returns its scope once the replay is read."""
    await socket.send(
        json.dumps({"type": "runtime_start", "request_id": "rs-1", "create_agent": {"body": {"name": "ws bench"}}})
    )
    runtime = None
    while True:
        frame = json.loads(await socket.recv())
        if frame["type"] == "runtime_start_response":
            runtime = frame["runtime"]
        if frame["type"] == "update_subagent_state" and runtime is not None:
            return runtime


async def measure(url: str, replies: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {"sdk": [], "websockets": []}
    async with AsyncClient.connect(url) as client, websockets.connect(url, max_size=None) as socket:
        started = await client.runtime_start(create_agent={"body": {"name": "Python SDK bench"}})
        runtime = started["runtime"]
        plain_runtime = await start_plain(socket)
        await sdk_reply(client, runtime)  # warm-ups
        await plain_reply(socket, plain_runtime, 0)
        for number in range(1, replies + 1):
            frames, seconds = await sdk_reply(client, runtime)
            rates["sdk"].append(frames / seconds)
            frames, seconds = await plain_reply(socket, plain_runtime, number)
            rates["websockets"].append(frames / seconds)
    return rates


def main() -> None:
    url = sys.argv[1]
    replies = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    print(json.dumps(asyncio.run(measure(url, replies))))


main()
