"""The search commands against the real server through the typed methods: `search_files` (fuzzy,
`.gitignore` honoured) and `grep_in_files` (line matches with context and totals)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Server, run

from letta_app_server import AsyncClient, RejectedError


def project(root: Path) -> Path:
    """A project with sources, an ignored build directory and a `.gitignore`."""
    for name, text in {
        "src/main.rs": "fn main() {\n    hello();\n}\n",
        "src/hello.rs": "pub fn hello() {}\n",
        "target/main.rs": "fn main() { hello(); }\n",
        ".gitignore": "target/\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_search_files_finds_paths_fuzzily_and_skips_ignored_files(server: Server, tmp_path: Path) -> None:
    root = project(tmp_path)

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            found = await client.search_files(query="smain", cwd=str(root))
            assert found["files"] == [{"path": "src/main.rs", "type": "file"}]
            with pytest.raises(RejectedError) as refused:
                await client.search_files(query="x", cwd=str(root / "nope"))
            assert "ENOENT: no such file or directory" in str(refused.value)

    run(scenario())


def test_grep_in_files_answers_lines_with_columns_context_and_totals(server: Server, tmp_path: Path) -> None:
    root = project(tmp_path)

    async def scenario() -> None:
        async with AsyncClient.connect(server.url) as client:
            found = await client.grep_in_files(query="HELLO", cwd=str(root), context_lines=1, max_results=1)
            assert found["matches"] == [
                {
                    "path": "src/hello.rs",
                    "line": 1,
                    "column": 8,
                    "column_end": 13,
                    "text": "pub fn hello() {}",
                    "before": [],
                    "after": [],
                }
            ]
            assert (found["total_matches"], found["total_files"], found["truncated"]) == (2, 2, True)
            with pytest.raises(RejectedError) as refused:
                await client.grep_in_files(query="(", is_regex=True, cwd=str(root))
            assert "regex parse error" in str(refused.value)

    run(scenario())
