"""mkdocs hooks: README.md is the site's home page.

README.md lives at the repository root and links to ``docs/x.md``; in the site it becomes
``index.md`` with those links made relative to ``docs/`` (``x.md``). Nothing is written to disk.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def readme_as_index() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.sub(r"\]\(docs/", "](", text)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    if files.get_file_from_path("index.md") is None:
        files.append(File.generated(config, "index.md", content=readme_as_index()))
    return files
