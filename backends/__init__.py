"""Server side of each backend (local Momento server, Redis launchers) for tests, demos, benchmarks.

Not part of the wheel: importable from a source checkout only.
"""
