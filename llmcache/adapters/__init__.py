"""Host adapters: LangChain (``llmcache.adapters.langchain``), LangGraph (``.langgraph``).

Every adapter runs on langchain-core: without it, importing one says the install line.
"""

from llmcache.errors import require_extra

require_extra("langchain_core", "langchain", "llmcache.adapters")
