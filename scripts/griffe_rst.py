"""A griffe extension for the API reference: the docstrings' reST inline markup as markdown.

llmcache's docstrings use Sphinx roles (:class:`~llmcache.LLMCache`) and ``Example::`` blocks;
mkdocstrings renders markdown, so roles become code spans and ``::`` a colon before the
(indented, hence code) block. The docstrings themselves are not changed.
"""

from __future__ import annotations

import re
from typing import Any

from griffe import Extension

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`~?([^`]+)`")
LITERAL_BLOCK = re.compile(r"(\S)::$", re.M)


def to_markdown(text: str) -> str:
    text = ROLE.sub(r"`\1`", text)
    return LITERAL_BLOCK.sub(r"\1:", text)


class RstRoles(Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = to_markdown(obj.docstring.value)
