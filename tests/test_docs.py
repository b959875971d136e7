"""Every python example in README.md and docs/ runs.

The blocks of one page run in order in one namespace, as a reader would run them; blocks that
start with `# requires: X` are skipped here (X's own tests cover them).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)

RUNNER = """
import sys
blocks = sys.stdin.read().split("\\n# ---- next block ----\\n")
namespace = {"__name__": "__main__"}
for i, code in enumerate(blocks):
    exec(compile(code, f"<{sys.argv[1]} block {i + 1}>", "exec"), namespace)
"""


def runnable_blocks(path: Path) -> list[str]:
    return [b for b in BLOCK.findall(path.read_text()) if not b.startswith("# requires:")]


@pytest.mark.parametrize("path", [p for p in DOCS if runnable_blocks(p)], ids=lambda p: p.name)
def test_examples_run(path: Path, tmp_path: Path) -> None:
    code = "\n# ---- next block ----\n".join(runnable_blocks(path))
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, path.name],
        input=code,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text())
    missing = [
        link for link in links if "://" not in link and not (path.parent / link).exists()
    ]
    assert missing == []
