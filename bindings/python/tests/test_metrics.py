"""`GET /metrics` scraped by the Prometheus project's own Python parser while an orchestrator
drives the server through the SDK."""

from __future__ import annotations

import urllib.request

from conftest import Server, frames_only, new_runtime, run
from prometheus_client.parser import text_string_to_metric_families

from letta_app_server import AsyncClient


def scrape(server: Server) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of a scrape, by name, then by its labels."""
    with urllib.request.urlopen(server.url.replace("ws://", "http://") + "/metrics", timeout=10) as answer:
        assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = answer.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("letta_"), family.name
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_a_scrape_counts_the_turns_and_deltas_an_orchestrator_caused(server: Server) -> None:
    async def scenario() -> None:
        before = scrape(server)
        assert before["letta_connections"] == {(): 0.0}
        assert before["letta_turns_started_total"] == {(): 0.0}
        async with AsyncClient.connect(server.url) as client:
            runtime = await new_runtime(client, "Scraped")
            turns = 3
            deltas = 0
            for n in range(turns):
                frames = frames_only([frame async for frame in client.turn(runtime, f"[[reply: turn {n}]] [[chunks: 4]]")])
                deltas += sum(1 for frame in frames if frame["type"] == "stream_delta")
            during = scrape(server)
            assert during["letta_connections"] == {(): 1.0}
            assert during["letta_subscribed_runtimes"] == {(): 1.0}
            assert during["letta_turns_started_total"] == {(): float(turns)}
            assert during["letta_turns_finished_total"] == {(("stop_reason", "end_turn"),): float(turns)}
            assert during["letta_deltas_sent_total"] == {(): float(deltas)}
            depth = during["letta_outbound_queue_depth_bucket"]
            assert depth[(("le", "+Inf"),)] == during["letta_outbound_queue_depth_count"][()] > 0

    run(scenario())
