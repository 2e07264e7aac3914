"""Clocks: the real one, and one tests and demos set by hand."""

from __future__ import annotations

import datetime as dt
import threading

from starlight_sequences.errors import InvalidInput

__all__ = ["SettableClock", "SystemClock"]


class SystemClock:
    """The machine's clock, in UTC."""

    def now(self) -> dt.datetime:
        """The current instant (UTC-aware)."""
        return dt.datetime.now(dt.UTC)


class SettableClock:
    """A clock that only moves when told to: ``set`` and ``advance``."""

    def __init__(self, start: dt.datetime) -> None:
        self._lock = threading.Lock()
        self._now = self._checked(start)

    @staticmethod
    def _checked(moment: dt.datetime) -> dt.datetime:
        if moment.utcoffset() is None:
            raise InvalidInput(f"clock: {moment!r} is a naive datetime; give a timezone")
        return moment.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        """The instant the clock was set to (UTC-aware)."""
        with self._lock:
            return self._now

    def set(self, moment: dt.datetime) -> None:
        """Jump to ``moment`` (aware; may go backwards, for tests of clock skew)."""
        with self._lock:
            self._now = self._checked(moment)

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        """Move forward by ``delta``; returns the new instant."""
        with self._lock:
            self._now += delta
            return self._now
