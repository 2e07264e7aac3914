"""Business-day calendar, business hours, DST handling and staggering (pure).

``BusinessCalendar`` answers when a recipient can be written to; ``allocate_slots`` spreads the
sends of one sender over those moments within its spacing and caps. See ``docs/calendar.md``.
"""

from __future__ import annotations

from starlight_sequences.calendar._calendar import BusinessCalendar
from starlight_sequences.calendar._hours import BusinessHours
from starlight_sequences.calendar._staggering import SenderLimits, SlotRequest, allocate_slots
from starlight_sequences.calendar._warm_up import WarmUp

__all__ = [
    "BusinessCalendar",
    "BusinessHours",
    "SenderLimits",
    "SlotRequest",
    "WarmUp",
    "allocate_slots",
]
