"""The bounce breaker: when a mailbox's hard-bounce rate over its recent sends passes a
threshold, the mailbox is held until the host resumes it.

Pure: the rule takes a sender's recent send outcomes and the settings and says whether to
trip. Soft bounces never reach it (they are not outcomes the rule counts). The service feeds it
after every hard bounce and keeps the hold (:class:`SenderHold`) in storage.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from fractions import Fraction

import attrs

from starlight_sequences.errors import InvalidBreakerSettings
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId

__all__ = [
    "BounceBreaker",
    "BreakerVerdict",
    "SenderHold",
    "evaluate_breaker",
    "window_outcomes",
]


def _check_int(field: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidBreakerSettings(field, f"must be an int, not {type(value).__name__}")
    if value < low:
        raise InvalidBreakerSettings(field, f"must be at least {low}, not {value}")


@attrs.frozen(kw_only=True)
class BounceBreaker:
    """When a mailbox is held for bouncing: a setting of ``EmailIdentity.bounce_breaker``.

    The breaker trips when, among the mailbox's last ``window`` sent emails (counted since it
    was last resumed), there are at least ``minimum_sends`` and the share of them that hard
    bounced is strictly above ``threshold``. With the defaults (100, 20, 5%): 1 hard bounce in
    20 sends (5%) does not trip, 2 in 20 (10%) do, and nothing trips before 20 sends.

    Attributes:
        enabled: False turns the breaker off for this mailbox.
        window: how many of the most recent sends are looked at (at least 1).
        minimum_sends: fewest sends in the window before it may trip (1 to ``window``).
        threshold: the hard-bounce share that must be exceeded, from 0 (any hard bounce) up
            to but not including 1.

    Raises:
        InvalidBreakerSettings: naming the field out of range.
    """

    enabled: bool = True
    window: int = 100
    minimum_sends: int = 20
    threshold: float = 0.05

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise InvalidBreakerSettings("enabled", "must be True or False")
        _check_int("window", self.window, 1)
        _check_int("minimum_sends", self.minimum_sends, 1)
        if self.minimum_sends > self.window:
            raise InvalidBreakerSettings(
                "minimum_sends",
                f"{self.minimum_sends} is more than the window of {self.window} sends",
            )
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise InvalidBreakerSettings(
                "threshold", f"must be a number, not {type(self.threshold).__name__}"
            )
        if not 0 <= self.threshold < 1:
            raise InvalidBreakerSettings(
                "threshold", f"must be from 0 up to (not including) 1, not {self.threshold!r}"
            )

    @property
    def threshold_fraction(self) -> Fraction:
        """The threshold as an exact fraction (so 1 in 20 is exactly 5%, never just above)."""
        return Fraction(str(self.threshold))


@attrs.frozen(kw_only=True)
class BreakerVerdict:
    """What the rule found in a window.

    Attributes:
        trip: hold the mailbox.
        sends: sends counted (at most the window).
        hard_bounces: of those, how many hard bounced.
    """

    trip: bool
    sends: int
    hard_bounces: int

    @property
    def rate(self) -> Fraction:
        """The hard-bounce share of the counted sends (0 when there are none)."""
        return Fraction(self.hard_bounces, self.sends) if self.sends else Fraction(0)


def evaluate_breaker(settings: BounceBreaker, outcomes: Sequence[bool]) -> BreakerVerdict:
    """Whether a mailbox's recent outcomes trip its breaker.

    Args:
        settings: the mailbox's breaker.
        outcomes: one per sent email, newest first: True for a hard bounce, False otherwise
            (delivered, soft-bounced, unknown). Only the first ``settings.window`` count.

    Returns:
        The verdict; ``trip`` is False when the breaker is off, when fewer than
        ``minimum_sends`` are counted, or when the rate is at or below the threshold.
    """
    counted = outcomes[: settings.window]
    sends = len(counted)
    hard = sum(1 for bounced in counted if bounced)
    trip = (
        settings.enabled
        and sends >= settings.minimum_sends
        and Fraction(hard, sends) > settings.threshold_fraction
    )
    return BreakerVerdict(trip=trip, sends=sends, hard_bounces=hard)


def window_outcomes(
    sends: Iterable[tuple[CampaignId, LeadId]], bounced: Iterable[tuple[CampaignId, LeadId]]
) -> tuple[bool, ...]:
    """The outcomes of a mailbox's recent sends, from which contacts bounced.

    A hard bounce stops its contact, so what the store keeps is which enrolments bounced, not
    which message did: each bounced enrolment counts once, on its newest send in the window
    (the one that bounced; earlier ones had been delivered).

    Args:
        sends: ``(campaign, lead)`` of each sent email, newest first.
        bounced: ``(campaign, lead)`` of the enrolments stopped by a hard bounce.
    """
    left = set(bounced)
    outcomes = []
    for key in sends:
        outcomes.append(key in left)
        left.discard(key)
    return tuple(outcomes)


@attrs.frozen(kw_only=True)
class SenderHold:
    """A mailbox the bounce breaker held, kept per (workspace, sender id).

    Attributes:
        workspace_id: whose mailbox.
        sender_id: the mailbox (``EmailIdentity.id``).
        held_at: when the breaker tripped (UTC).
        sends: sends in the window when it tripped.
        hard_bounces: hard bounces among them.
        threshold: the threshold that was passed.
        resumed_at: when the host resumed it (UTC), or None while it is held. A resumed
            mailbox's window starts afresh after this instant.
        revision: bumped by every stored change (as for campaigns, see ``ports.Changes``).
    """

    workspace_id: WorkspaceId
    sender_id: SenderId
    held_at: dt.datetime
    sends: int
    hard_bounces: int
    threshold: float
    resumed_at: dt.datetime | None = None
    revision: int = 0

    @property
    def held(self) -> bool:
        """True until the host resumes the mailbox."""
        return self.resumed_at is None

    @property
    def reason(self) -> str:
        """Why it was held, for people: the rate, the window, the threshold."""
        rate = Fraction(self.hard_bounces, self.sends) if self.sends else Fraction(0)
        return (
            f"{self.hard_bounces} hard bounces in its last {self.sends} sends "
            f"({float(rate):.1%}, above {self.threshold:.1%})"
        )
