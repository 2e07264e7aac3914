"""The send shape value objects."""

from __future__ import annotations

import enum

import attrs

from starlight_sequences.channels import Action

__all__ = ["SendShape", "Step", "WaitAnchor"]


class WaitAnchor(enum.StrEnum):
    """The event a step's wait counts from."""

    PREVIOUS_STEP = "previous_step"
    """The actual send of the lead's previous step (enrolment, for the first step)."""
    CONNECTION_ACCEPTED = "connection_accepted"
    """The acceptance of the lead's LinkedIn connection request."""


@attrs.frozen(kw_only=True)
class Step:
    """One step of a send shape.

    Attributes:
        number: 1-based position in the shape; unique within it.
        action: what the step does.
        wait_days: business days of the recipient to wait before it, counted from ``counts_from``
            (0 = the next business moment after that event).
        counts_from: the event the wait counts from.
        guidance: what the drafter is told about this touch ("one angle, one ask").
        with_note: for ``linkedin_connect`` only: whether the request carries a drafted note.
    """

    number: int
    action: Action
    wait_days: int = 0
    counts_from: WaitAnchor = WaitAnchor.PREVIOUS_STEP
    guidance: str = ""
    with_note: bool = False


@attrs.frozen(kw_only=True)
class SendShape:
    """A declarative template of a campaign: ordered steps with their waits and guidance.

    Attributes:
        key: short machine name (``"email-sequence"``).
        name: human name ("Email sequence").
        description: the one-line description a user picks the shape by.
        steps: the steps, in order.
    """

    key: str
    name: str
    description: str
    steps: tuple[Step, ...]
