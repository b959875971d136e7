"""``python -m llmcache``: the ``llmcache`` command (see :mod:`llmcache.cli`)."""

from llmcache.cli import main

if __name__ == "__main__":
    main()
