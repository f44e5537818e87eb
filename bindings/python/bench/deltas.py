"""Frames per second a Python client receives during a 10,000-delta reply: the SDK against a
client built on the `websockets` package with `json.loads`, on the same server.

Usage: `python deltas.py URL sdk|websockets [REPLIES]` (URL like `ws://127.0.0.1:PORT/ws`). After one
warm-up reply, reads REPLIES replies (default 5), each from sending the input to its
`turn_finished`, and prints `{"client": ..., "frames": [...], "frames_per_second": [...]}` with one
entry per reply. Run by `cargo xtask bench`, on a fresh server per client.
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


async def sdk(url: str, replies: int) -> list[tuple[int, float]]:
    async with AsyncClient.connect(url) as client:
        started = await client.runtime_start(create_agent={"body": {"name": "Python SDK bench"}})
        runtime = started["runtime"]
        await sdk_reply(client, runtime)  # warm-up
        return [await sdk_reply(client, runtime) for _ in range(replies)]


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


async def plain(url: str, replies: int) -> list[tuple[int, float]]:
    async with websockets.connect(url, max_size=None) as socket:
        await socket.send(
            json.dumps({"type": "runtime_start", "request_id": "rs-1", "create_agent": {"body": {"name": "ws bench"}}})
        )
        while True:
            frame = json.loads(await socket.recv())
            if frame["type"] == "runtime_start_response":
                runtime = frame["runtime"]
            if frame["type"] == "update_subagent_state":
                break
        await plain_reply(socket, runtime, 0)  # warm-up
        return [await plain_reply(socket, runtime, number) for number in range(1, replies + 1)]


def main() -> None:
    url, name = sys.argv[1], sys.argv[2]
    replies = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    client = {"sdk": sdk, "websockets": plain}[name]
    results = asyncio.run(client(url, replies))
    print(
        json.dumps(
            {
                "client": name,
                "frames": [frames for frames, _ in results],
                "frames_per_second": [frames / seconds for frames, seconds in results],
            }
        )
    )


main()
