"""The clock port: the only way the service learns the time."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

__all__ = ["Clock"]


class Clock(Protocol):
    """Tells the time. Implementations: ``SystemClock``, ``SettableClock`` (tests, demos)."""

    def now(self) -> dt.datetime:
        """The current instant, timezone-aware (UTC)."""
        ...
