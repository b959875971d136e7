"""``python -m backends.momento --port 0``: run the local Momento server until interrupted."""

from backends.momento.server import main

if __name__ == "__main__":
    raise SystemExit(main())
