"""The send shape value objects, and the rules every shape obeys.

A :class:`SendShape` is validated when it is built (also by ``attrs.evolve`` and
``SendShape.from_dict``), so a shape that exists is a shape the cadence, the drafter and the
scheduler can run.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from starlight_sequences.channels import Action, Channel
from starlight_sequences.errors import InvalidShape

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

    A step on its own is not checked; the shape that holds it is (see :class:`SendShape`).

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

    @property
    def channel(self) -> Channel:
        """The channel the step goes out on."""
        return self.action.channel

    @property
    def needs_draft(self) -> bool:
        """Whether the step sends drafted text (every message; a connection request only with a
        note)."""
        if self.action is Action.LINKEDIN_CONNECT:
            return self.with_note
        return True


def _steps_tuple(steps: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(steps)


@attrs.frozen(kw_only=True)
class SendShape:
    """A declarative template of a campaign: ordered steps with their waits and guidance.

    Building a shape validates it and raises :class:`~starlight_sequences.errors.InvalidShape`
    (naming the step at fault) when:

    * the key is empty, or there are no steps;
    * step numbers are not ``1, 2, …, n`` in order (duplicates, steps out of order, gaps);
    * a step has an unknown action, a negative or non-integer wait, or an unknown anchor;
    * ``with_note`` is set on a step that is not a ``linkedin_connect``;
    * there is more than one ``linkedin_connect``;
    * a ``linkedin_message`` has no ``linkedin_connect`` before it, unless
      ``for_connected_leads`` is set (then such a message reaches only leads that are already
      connected; a shape for connected leads sends no connection request at all);
    * a step counts from ``CONNECTION_ACCEPTED`` but is not a ``linkedin_message`` with a
      ``linkedin_connect`` before it.

    Attributes:
        key: short machine name (``"email-sequence"``).
        name: human name ("Email sequence").
        description: the one-line description a user picks the shape by.
        steps: the steps, in order.
        for_connected_leads: the shape writes LinkedIn messages to leads that are already
            1st-degree connections, without asking to connect first.
    """

    key: str
    name: str
    description: str
    steps: tuple[Step, ...] = attrs.field(converter=_steps_tuple)
    for_connected_leads: bool = False

    def __attrs_post_init__(self) -> None:
        _validate(self)

    @property
    def channels(self) -> frozenset[Channel]:
        """The channels the shape's steps use."""
        return frozenset(step.channel for step in self.steps)

    def step(self, number: int) -> Step:
        """The step with that number.

        Raises:
            KeyError: the shape has no step with that number.
        """
        for step in self.steps:
            if step.number == number:
                return step
        raise KeyError(f"send shape {self.key!r} has no step {number}")

    def to_dict(self) -> dict[str, Any]:
        """The shape as a plain, JSON-able dict that :meth:`from_dict` reads back.

        The dict carries ``schema_version`` (see ``docs/shapes.md`` for the format).
        """
        from starlight_sequences.shapes._codec import shape_to_dict

        return shape_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SendShape:
        """Read a shape from the plain dict :meth:`to_dict` wrote (e.g. after ``json.loads``).

        Raises:
            InvalidShape: a field is missing, unknown or of the wrong type, an action name is
                unknown (the error names the step), the ``schema_version`` is missing or newer
                than this library reads, or the shape breaks a rule of :class:`SendShape`.
        """
        from starlight_sequences.shapes._codec import shape_from_dict

        return shape_from_dict(data)


def _is_int(value: object) -> bool:
    # bool is an int subclass; True is not a wait of one day.
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(shape: SendShape) -> None:
    key = shape.key
    if not isinstance(key, str) or not key.strip():
        raise InvalidShape(str(key), "the key must be a non-empty string")
    if key != key.strip():
        raise InvalidShape(key, "the key must not start or end with whitespace")
    if not isinstance(shape.for_connected_leads, bool):
        raise InvalidShape(key, "for_connected_leads must be true or false")
    if not shape.steps:
        raise InvalidShape(key, "a send shape needs at least one step")
    _validate_numbering(key, shape.steps)
    connect_seen = False
    for step in shape.steps:
        _validate_step_fields(key, step)
        n = step.number
        if step.action is Action.LINKEDIN_CONNECT:
            if shape.for_connected_leads:
                raise InvalidShape(
                    key,
                    "a shape for connected leads sends no connection request "
                    "(for_connected_leads is set)",
                    step=n,
                )
            if connect_seen:
                raise InvalidShape(
                    key, "only one linkedin_connect per shape: a lead gets one request", step=n
                )
            connect_seen = True
        elif step.with_note:
            raise InvalidShape(
                key, f"with_note applies to linkedin_connect only, not to {step.action}", step=n
            )
        if (
            step.action is Action.LINKEDIN_MESSAGE
            and not connect_seen
            and not shape.for_connected_leads
        ):
            raise InvalidShape(
                key,
                "linkedin_message with no linkedin_connect before it "
                "(set for_connected_leads if the shape writes to existing connections)",
                step=n,
            )
        if step.counts_from is WaitAnchor.CONNECTION_ACCEPTED and not (
            step.action is Action.LINKEDIN_MESSAGE and connect_seen
        ):
            raise InvalidShape(
                key,
                "only a linkedin_message after a linkedin_connect can count from "
                "connection_accepted",
                step=n,
            )


def _validate_numbering(key: str, steps: tuple[Step, ...]) -> None:
    seen: set[int] = set()
    for position, step in enumerate(steps, start=1):
        if not isinstance(step, Step):
            raise InvalidShape(key, f"step #{position} is not a Step: {step!r}")
        n = step.number
        if not _is_int(n) or n < 1:
            raise InvalidShape(key, f"step number must be an integer >= 1, not {n!r}")
        if n in seen:
            raise InvalidShape(key, f"duplicate step number {n}", step=n)
        seen.add(n)
    for position, step in enumerate(steps, start=1):
        if step.number != position:
            raise InvalidShape(
                key,
                f"steps must be numbered 1..{len(steps)} in order; "
                f"step {step.number} is in position {position}",
                step=step.number,
            )


def _validate_step_fields(key: str, step: Step) -> None:
    n = step.number
    if not isinstance(step.action, Action):
        known = ", ".join(a.value for a in Action)
        raise InvalidShape(key, f"unknown action {step.action!r} (known: {known})", step=n)
    if not _is_int(step.wait_days):
        raise InvalidShape(
            key, f"wait_days must be a whole number of days, not {step.wait_days!r}", step=n
        )
    if step.wait_days < 0:
        raise InvalidShape(key, f"negative wait ({step.wait_days} business days)", step=n)
    if not isinstance(step.counts_from, WaitAnchor):
        known = ", ".join(a.value for a in WaitAnchor)
        raise InvalidShape(
            key, f"unknown counts_from {step.counts_from!r} (known: {known})", step=n
        )
    if not isinstance(step.guidance, str):
        raise InvalidShape(key, "guidance must be text", step=n)
    if not isinstance(step.with_note, bool):
        raise InvalidShape(key, "with_note must be true or false", step=n)
