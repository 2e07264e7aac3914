"""Business hours: local wall-clock opening and closing times, optionally per weekday."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

import attrs

from starlight_sequences.errors import InvalidBusinessHours

__all__ = ["BusinessHours"]

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _check_span(opens: dt.time, closes: dt.time, where: str) -> None:
    for name, value in (("open", opens), ("close", closes)):
        if not isinstance(value, dt.time):
            raise InvalidBusinessHours(f"business hours{where}: {name} must be a datetime.time")
        if value.tzinfo is not None:
            raise InvalidBusinessHours(
                f"business hours{where}: {name} {value} must be a local wall time without tzinfo"
            )
    if opens >= closes:
        raise InvalidBusinessHours(
            f"business hours{where}: open {opens} must be before close {closes}"
        )


def _freeze_overrides(
    value: Mapping[int, tuple[dt.time, dt.time]]
    | Iterable[tuple[int, tuple[dt.time, dt.time]]]
    | Iterable[tuple[int, dt.time, dt.time]],
) -> tuple[tuple[int, dt.time, dt.time], ...]:
    rows: list[tuple[int, dt.time, dt.time]] = []
    items: Iterable[object] = value.items() if isinstance(value, Mapping) else value
    for item in items:
        if not isinstance(item, tuple):
            raise InvalidBusinessHours(f"business hours: weekday override {item!r} is not a tuple")
        if len(item) == 2 and isinstance(item[1], tuple) and len(item[1]) == 2:
            weekday, (opens, closes) = item
        elif len(item) == 3:
            weekday, opens, closes = item
        else:
            raise InvalidBusinessHours(
                f"business hours: weekday override {item!r} is not (weekday, open, close)"
            )
        if not isinstance(weekday, int) or isinstance(weekday, bool) or not 0 <= weekday <= 6:
            raise InvalidBusinessHours(
                f"business hours: weekday {weekday!r} must be 0 (Monday) to 6 (Sunday)"
            )
        rows.append((weekday, opens, closes))
    if len({weekday for weekday, _, _ in rows}) != len(rows):
        raise InvalidBusinessHours("business hours: a weekday is overridden twice")
    return tuple(sorted(rows))


@attrs.frozen(kw_only=True)
class BusinessHours:
    """When a recipient's working day opens and closes, in their local wall-clock time.

    A moment is inside business hours when its local time ``t`` satisfies
    ``open <= t < close`` (the closing minute itself is outside).

    Attributes:
        open: opening time, default 09:00.
        close: closing time, default 17:00; must be after ``open`` (no overnight hours).
        weekdays: per-weekday exceptions as ``(weekday, open, close)`` with weekday 0 = Monday
            … 6 = Sunday, e.g. ``((4, time(9), time(13)),)`` for short Fridays. A mapping
            ``{4: (time(9), time(13))}`` is accepted too and stored as sorted tuples.

    Raises:
        InvalidBusinessHours: open not before close, a time with tzinfo, a bad weekday.
    """

    open: dt.time = dt.time(9)
    close: dt.time = dt.time(17)
    weekdays: tuple[tuple[int, dt.time, dt.time], ...] = attrs.field(
        default=(), converter=_freeze_overrides
    )

    def __attrs_post_init__(self) -> None:
        _check_span(self.open, self.close, "")
        for weekday, opens, closes in self.weekdays:
            _check_span(opens, closes, f" on {_WEEKDAY_NAMES[weekday]}")

    def on(self, weekday: int) -> tuple[dt.time, dt.time]:
        """The (open, close) wall times for ``weekday`` (0 = Monday … 6 = Sunday)."""
        for day, opens, closes in self.weekdays:
            if day == weekday:
                return opens, closes
        return self.open, self.close
