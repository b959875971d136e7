"""The llmcache command, run as a user runs it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmcache.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)


def test_demo_shows_hits_far_faster_and_a_second_run_hits(tmp_path: Path) -> None:
    url = f"disk://{tmp_path}/demo"
    args = ["demo", "--url", url, "--latency", "0.2", "--runs", "3"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "hits 2, misses 1, errors 0" in first.output
    speedups = [int(s.replace(",", "")) for s in re.findall(r"([\d,]+)x", first.output)]
    assert len(speedups) == 3 and min(speedups[1:]) >= 20
    second = runner.invoke(app, args)
    assert "hits 3, misses 0" in second.output  # another process/run finds the entries


def test_key_explains_and_temperature_mode_changes_it() -> None:
    base = ["key", "hello", "--model", "gpt-4o-mini", "--param", "temperature=0.7"]
    include = runner.invoke(app, base)
    ignore = runner.invoke(app, [*base, "--temperature-mode", "ignore"])
    assert include.exit_code == 0, include.output
    assert "temperature" in include.output
    key_of = re.compile(r'"key": "(v1:[0-9a-f]+)"')
    include_key, ignore_key = key_of.search(include.output), key_of.search(ignore.output)
    assert include_key is not None and ignore_key is not None
    assert include_key.group(1) != ignore_key.group(1)  # the mode changes the key
    again = key_of.search(runner.invoke(app, base).output)
    assert again is not None and again.group(1) == include_key.group(1)  # and is stable


def test_clear_stats_and_doctor_on_disk(tmp_path: Path) -> None:
    url = f"disk://{tmp_path}/c"
    runner.invoke(app, ["demo", "--url", url, "--latency", "0", "--runs", "1", "-n", "app"])
    stats = runner.invoke(app, ["stats", "--url", url, "-n", "app"])
    assert stats.exit_code == 0 and "entries_all_namespaces" in stats.output
    assert re.search(r"entries_all_namespaces\s*│\s*1", stats.output)
    cleared = runner.invoke(app, ["clear", "--url", url, "-n", "app", "--yes"])
    assert cleared.exit_code == 0 and "cleared namespace 'app'" in cleared.output
    after = runner.invoke(app, ["stats", "--url", url, "-n", "app"])
    assert re.search(r"entries_all_namespaces\s*│\s*0", after.output)
    doctor = runner.invoke(app, ["doctor", "--url", url])
    assert doctor.exit_code == 0 and "delete" in doctor.output


def test_bad_url_is_a_clear_error_not_a_traceback() -> None:
    result = runner.invoke(app, ["doctor", "--url", "memcached://x"])
    assert result.exit_code == 3  # configuration error
    assert "unknown cache URL scheme 'memcached'" in result.stderr
    result = runner.invoke(app, ["stats", "--url", "memory://?max_entries=no"])
    assert result.exit_code == 3 and "max_entries" in result.stderr
    assert result.stdout == ""


def test_demo_without_langchain_says_which_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "llmcache._demo", None)  # as if langchain-core were missing
    result = runner.invoke(app, ["demo", "--latency", "0"])
    assert result.exit_code == 3  # a missing extra is a configuration error
    assert "pip install 'llmcache-kit[langchain]'" in result.stderr


def test_demo_says_run_it_again_only_when_the_next_process_can_hit(tmp_path: Path) -> None:
    args = ["demo", "--latency", "0", "--runs", "1", "--no-openai"]
    on_disk = runner.invoke(app, [*args, "--url", f"disk://{tmp_path}/c"])
    in_memory = runner.invoke(app, [*args, "--url", "memory://"])
    assert on_disk.exit_code == 0 and in_memory.exit_code == 0, in_memory.output
    assert "Run it again" in " ".join(on_disk.output.split())  # rich wraps lines
    assert "Run it" not in in_memory.output  # memory:// dies with the process
