"""How fast `llmcache replay` reads a request log: lines per second, repeated vs unique prompts.

python benchmarks/replay_speed.py [--lines 100000]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from llmcache.replay import replay

HERE = Path(__file__).parent


def _unique(row: dict[str, Any], i: int) -> dict[str, Any]:
    """The same request with a prompt no other line has."""
    messages = [dict(m) for m in row["messages"]]
    messages[-1]["content"] = f"{messages[-1]['content']} (#{i})"
    return {**row, "messages": messages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location(
        "make_requests", HERE / "data" / "make_requests.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    rows = generator.make(args.lines)
    with tempfile.TemporaryDirectory() as tmp:
        repeated = Path(tmp) / "repeated.jsonl"
        repeated.write_text("".join(json.dumps(r) + "\n" for r in rows))
        unique = Path(tmp) / "unique.jsonl"
        unique.write_text("".join(json.dumps(_unique(r, i)) + "\n" for i, r in enumerate(rows)))
        for name, path in (("repeated prompts", repeated), ("unique prompts", unique)):
            start = time.perf_counter()
            report = replay(path)
            elapsed = time.perf_counter() - start
            lines = report["include"].requests
            print(f"{name:17} {lines:>8} lines  {elapsed:6.2f} s  {lines / elapsed:>9,.0f} lines/s")


if __name__ == "__main__":
    main()
