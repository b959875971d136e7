"""A circuit breaker: stop calling a store that keeps failing, probe it again later.

Closed → (``failures`` faults in a row) → open for ``cooldown`` seconds → half-open: one caller
probes; success closes it, failure re-opens it.
"""

from __future__ import annotations

import threading
import time

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Tracks consecutive store faults; :meth:`allow` says whether to try the store now."""

    def __init__(self, failures: int = 5, cooldown: float = 10.0) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._consecutive = 0
        self._open_until = 0.0
        self._probing = False

    @property
    def state(self) -> str:
        if self._consecutive < self.failures:
            return "closed"
        return "half-open" if time.monotonic() >= self._open_until else "open"

    def allow(self) -> bool:
        """True when the store should be tried (closed, or this caller is the probe)."""
        if self._consecutive < self.failures:
            return True
        with self._lock:
            if time.monotonic() < self._open_until or self._probing:
                return False
            self._probing = True
            return True

    def success(self) -> None:
        if self._consecutive:
            with self._lock:
                self._consecutive = 0
                self._probing = False

    def failure(self) -> None:
        with self._lock:
            self._consecutive += 1
            self._probing = False
            if self._consecutive >= self.failures:
                self._open_until = time.monotonic() + self.cooldown
