"""Host adapters: LangChain (``llmcache.adapters.langchain``), LangGraph (``.langgraph``).

Every adapter runs on langchain-core: without it, importing one says the install line (both
extras', since this package cannot tell which adapter is being imported).
"""

from llmcache.errors import install_line

try:
    import langchain_core  # noqa: F401 - the check itself
except ImportError as _missing:
    raise ImportError(
        "llmcache.adapters needs 'langchain_core', which is not installed: "
        f"{install_line('langchain')} (LangGraph's cache: {install_line('langgraph')})"
    ) from _missing
