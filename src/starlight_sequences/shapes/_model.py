"""The send shape value objects, and the rules every shape obeys.

A :class:`SendShape` is validated when it is built (also by ``attrs.evolve`` and
``SendShape.from_dict``), so a shape that exists is a shape the cadence, the drafter and the
scheduler can run.

The dict (de)serialisation lives here too, beside the classes it builds: ``SendShape.to_dict``
and ``SendShape.from_dict`` call it, and it calls their constructors.

Version 1 of the format::

    {
      "schema_version": 1,
      "key": "email-linkedin",
      "name": "Email + LinkedIn",
      "description": "...",
      "for_connected_leads": false,
      "steps": [
        {"number": 1, "action": "email", "wait_days": 0,
         "counts_from": "previous_step", "guidance": "...", "with_note": false},
        {"number": 2, "action": "email", "wait_days": 3, ...,
         "variants": [{"key": "a", "guidance": "..."}, {"key": "b", "guidance": "..."}],
         "winner": {"after_sends": 40, "after_days": 2}},
        ...
      ]
    }

``variants`` and ``winner`` are written only for a step that has them (A/B variants, see
:class:`Variant` and :class:`WinnerRule`).

``to_dict`` writes every field. ``from_dict`` requires ``schema_version``, ``key``, ``name``,
``steps`` and, per step, ``number`` and ``action``; the other fields take the defaults of
``SendShape`` and ``Step``. Unknown fields are errors rather than silently dropped: a typo such as
``"wait": 3`` would otherwise lose the wait.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from starlight_sequences.channels import Action, Channel
from starlight_sequences.errors import InvalidShape

__all__ = [
    "MAX_WAIT_DAYS",
    "SCHEMA_VERSION",
    "SendShape",
    "Step",
    "Variant",
    "WaitAnchor",
    "WinnerRule",
    "shape_from_dict",
    "shape_to_dict",
]

MAX_WAIT_DAYS = 260
"""The longest wait a step may have, in business days: a year of five-day weeks.

A follow-up planned further out than a year is not outreach any more, and the bound keeps the
calendar's work per step to a year table or two (a lead's re-based wait can add the connection
request's wait to a message's: at most twice this)."""


class WaitAnchor(enum.StrEnum):
    """The event a step's wait counts from."""

    PREVIOUS_STEP = "previous_step"
    """The actual send of the lead's previous step (enrolment, for the first step)."""
    CONNECTION_ACCEPTED = "connection_accepted"
    """The acceptance of the lead's LinkedIn connection request."""
    CONNECTION_NOT_ACCEPTED = "connection_not_accepted"
    """The moment the lead's LinkedIn connection request is declined or times out: the step is
    the shape's fallback branch, sent only to leads that do not accept (see
    :attr:`Step.is_fallback`)."""


VARIANT_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
"""What a variant key looks like: a letter or digit, then up to 39 letters, digits, ``_.-``."""


@attrs.frozen(kw_only=True)
class Variant:
    """One A/B variant of a step: another angle the drafter is told to take.

    A lead on this variant is drafted from the step's ``guidance`` (shared by every variant,
    may be empty) followed by the variant's own ``guidance`` (see :meth:`Step.guidance_for`).

    Attributes:
        key: short name, unique within the step (``"a"``, ``"roi-angle"``): a letter or digit,
            then up to 39 letters, digits, ``_``, ``.`` or ``-``.
        guidance: what the drafter is told for this variant; not empty.
    """

    key: str
    guidance: str


@attrs.frozen(kw_only=True)
class WinnerRule:
    """When a step's A/B test ends and one variant goes to everyone not yet reached.

    Once the step has been sent ``after_sends`` times (over all its variants), and
    ``after_days`` full days (24 hours each) have passed since the send that reached that count
    (so the replies to it have time to come), the variant with the highest lower bound of the
    95% Wilson interval of its reply rate wins; ties go to the higher reply rate, then to the
    variant listed first. Leads the step has not reached yet are redrafted from the winner's
    guidance (``docs/monitoring.md``).

    Attributes:
        after_sends: sends of the step, over all variants, before the pick (at least 1).
        after_days: days to wait after that send before picking (0 to
            :data:`MAX_WAIT_DAYS`).
    """

    after_sends: int
    after_days: int = 0


def _variants_tuple(variants: Iterable[Variant]) -> tuple[Variant, ...]:
    return tuple(variants)


@attrs.frozen(kw_only=True)
class Step:
    """One step of a send shape.

    A step on its own is not checked; the shape that holds it is (see :class:`SendShape`).

    Attributes:
        number: 1-based position in the shape; unique within it.
        action: what the step does.
        wait_days: business days of the recipient to wait before it, counted from ``counts_from``
            (0 = the next business moment after that event; at most :data:`MAX_WAIT_DAYS`).
        counts_from: the event the wait counts from.
        guidance: what the drafter is told about this touch ("one angle, one ask").
        with_note: for ``linkedin_connect`` only: whether the request carries a drafted note.
        new_thread: for ``email`` only: this email starts a new thread with its own drafted
            subject (a genuinely new angle). Otherwise a lead's emails in a campaign form one
            thread: a follow-up replies to the earlier ones (``In-Reply-To``/``References``)
            under "Re: " and the thread's first subject.
        variants: A/B variants of the step (none, or two or more); leads are split evenly
            among them (see :mod:`starlight_sequences.variants`).
        winner: when to stop the A/B test and send the best variant to the leads not yet
            reached (None: every lead keeps its variant).
    """

    number: int
    action: Action
    wait_days: int = 0
    counts_from: WaitAnchor = WaitAnchor.PREVIOUS_STEP
    guidance: str = ""
    with_note: bool = False
    new_thread: bool = False
    variants: tuple[Variant, ...] = attrs.field(default=(), converter=_variants_tuple)
    winner: WinnerRule | None = None

    @property
    def channel(self) -> Channel:
        """The channel the step goes out on."""
        return self.action.channel

    @property
    def is_fallback(self) -> bool:
        """Whether the step is the fallback branch: sent only when the connection request is
        declined or times out (it counts from ``CONNECTION_NOT_ACCEPTED``)."""
        return self.counts_from is WaitAnchor.CONNECTION_NOT_ACCEPTED

    @property
    def variant_keys(self) -> tuple[str, ...]:
        """The keys of the step's variants, in order (empty: no A/B test)."""
        return tuple(v.key for v in self.variants)

    def guidance_for(self, key: str) -> str:
        """The drafting guidance of a lead on variant ``key``: the step's own guidance, a blank
        line, and the variant's (just the variant's when the step has none).

        Raises:
            KeyError: the step has no variant with that key.
        """
        for variant in self.variants:
            if variant.key == key:
                if not self.guidance.strip():
                    return variant.guidance
                return f"{self.guidance}\n\n{variant.guidance}"
        raise KeyError(f"step {self.number} has no variant {key!r}")

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
    * a step has an unknown action, a negative or non-integer wait, a wait longer than
      :data:`MAX_WAIT_DAYS`, or an unknown anchor;
    * ``with_note`` is set on a step that is not a ``linkedin_connect``;
    * there is more than one ``linkedin_connect``;
    * a ``linkedin_message`` has no ``linkedin_connect`` before it, unless
      ``for_connected_leads`` is set (then such a message reaches only leads that are already
      connected; a shape for connected leads sends no connection request at all);
    * a step counts from ``CONNECTION_ACCEPTED`` but is not a ``linkedin_message`` with a
      ``linkedin_connect`` before it;
    * a step has exactly one variant, two variants with the same key, a variant key that is
      not a short name, a variant with empty guidance, variants on a step that sends no
      drafted text (a ``linkedin_connect`` without note), or a winner rule without variants
      or with ``after_sends`` below 1 (the error names the step and, where one is at fault,
      the variant);
    * a step counts from ``CONNECTION_NOT_ACCEPTED`` (the fallback branch) but is not an
      ``email``, is not the last step, or does not follow a ``linkedin_connect`` with only
      ``linkedin_message`` steps (at least one) between them; there is one fallback at most.

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
        return shape_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SendShape:
        """Read a shape from the plain dict :meth:`to_dict` wrote (e.g. after ``json.loads``).

        Raises:
            InvalidShape: a field is missing, unknown or of the wrong type, an action name is
                unknown (the error names the step), the ``schema_version`` is missing or newer
                than this library reads, or the shape breaks a rule of :class:`SendShape`.
        """
        return shape_from_dict(data)


def _is_int(value: object) -> bool:
    # bool is an int subclass; True is not a wait of one day.
    return isinstance(value, int) and not isinstance(value, bool)


def _number_text(value: int) -> str:
    """An integer for an error message: past 40 digits only its size (``str`` of a huge int is
    slow, and refused past 4,300 digits)."""
    if -(10**40) < value < 10**40:
        return str(value)
    return f"{'a negative' if value < 0 else 'an'} integer of more than 40 digits"


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
        if step.new_thread and step.action is not Action.EMAIL:
            raise InvalidShape(
                key, f"new_thread applies to email steps only, not to {step.action}", step=n
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
    _validate_fallback(key, shape.steps)


def _validate_fallback(key: str, steps: tuple[Step, ...]) -> None:
    """The fallback branch: one ``email``, the last step, after a ``linkedin_connect`` and the
    LinkedIn messages it gates (so it is reached only by a timeout or a decline)."""
    fallbacks = [step for step in steps if step.is_fallback]
    if not fallbacks:
        return
    step = fallbacks[0]
    n = step.number
    if step.action is not Action.EMAIL:
        raise InvalidShape(
            key,
            f"a fallback (counts_from connection_not_accepted) must be an email, not "
            f"{step.action}: it is the channel a lead that does not connect can still get",
            step=n,
        )
    if step is not steps[-1] or len(fallbacks) > 1:
        raise InvalidShape(
            key,
            "a fallback (counts_from connection_not_accepted) must be the last step, and "
            "there is one at most",
            step=n,
        )
    connects = [s for s in steps if s.action is Action.LINKEDIN_CONNECT]
    if not connects:
        raise InvalidShape(
            key, "a fallback needs a linkedin_connect before it: nothing to not accept", step=n
        )
    between = steps[connects[0].number : n - 1]
    if not between or any(s.action is not Action.LINKEDIN_MESSAGE for s in between):
        raise InvalidShape(
            key,
            "a fallback must follow the linkedin_connect and the linkedin_message steps it "
            "gates (at least one, and nothing else between them)",
            step=n,
        )


def _validate_numbering(key: str, steps: tuple[Step, ...]) -> None:
    seen: set[int] = set()
    for position, step in enumerate(steps, start=1):
        if not isinstance(step, Step):
            raise InvalidShape(key, f"step #{position} is not a Step: {step!r}")
        n = step.number
        if not _is_int(n) or n < 1:
            shown = _number_text(n) if _is_int(n) else repr(n)
            raise InvalidShape(key, f"step number must be an integer >= 1, not {shown}")
        if n > len(steps):
            raise InvalidShape(
                key,
                f"steps must be numbered 1..{len(steps)} in order; "
                f"step #{position} has number {_number_text(n)}",
                step=n if n < 10**40 else None,
            )
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
        raise InvalidShape(
            key, f"negative wait ({_number_text(step.wait_days)} business days)", step=n
        )
    if step.wait_days > MAX_WAIT_DAYS:
        raise InvalidShape(
            key,
            f"wait_days is {_number_text(step.wait_days)}, more than the maximum of "
            f"{MAX_WAIT_DAYS} business days (about a year)",
            step=n,
        )
    if not isinstance(step.counts_from, WaitAnchor):
        known = ", ".join(a.value for a in WaitAnchor)
        raise InvalidShape(
            key, f"unknown counts_from {step.counts_from!r} (known: {known})", step=n
        )
    if not isinstance(step.guidance, str):
        raise InvalidShape(key, "guidance must be text", step=n)
    if not isinstance(step.with_note, bool):
        raise InvalidShape(key, "with_note must be true or false", step=n)
    if not isinstance(step.new_thread, bool):
        raise InvalidShape(key, "new_thread must be true or false", step=n)
    _validate_variants(key, step)


def _validate_variants(key: str, step: Step) -> None:
    n = step.number
    if step.winner is not None:
        if not isinstance(step.winner, WinnerRule):
            raise InvalidShape(key, f"winner must be a WinnerRule, not {step.winner!r}", step=n)
        after = step.winner.after_sends
        if not _is_int(after) or after < 1:
            shown = _number_text(after) if _is_int(after) else repr(after)
            raise InvalidShape(
                key, f"winner.after_sends must be a whole number >= 1, not {shown}", step=n
            )
        days = step.winner.after_days
        if not _is_int(days) or not 0 <= days <= MAX_WAIT_DAYS:
            shown = _number_text(days) if _is_int(days) else repr(days)
            raise InvalidShape(
                key,
                f"winner.after_days must be a whole number from 0 to {MAX_WAIT_DAYS}, not {shown}",
                step=n,
            )
        if not step.variants:
            raise InvalidShape(key, "a winner rule needs variants to pick from", step=n)
    if not step.variants:
        return
    if len(step.variants) < 2:
        raise InvalidShape(key, "an A/B test needs at least 2 variants (or none), not 1", step=n)
    if not step.needs_draft:
        raise InvalidShape(
            key,
            "variants need drafted text; a linkedin_connect without note sends none "
            "(set with_note)",
            step=n,
        )
    seen: set[str] = set()
    for position, variant in enumerate(step.variants, start=1):
        if not isinstance(variant, Variant):
            raise InvalidShape(key, f"variant #{position} is not a Variant: {variant!r}", step=n)
        vkey = variant.key
        if not isinstance(vkey, str) or VARIANT_KEY_PATTERN.fullmatch(vkey) is None:
            raise InvalidShape(
                key,
                f"variant #{position} key {str(vkey)[:60]!r} is not a short name (a letter or "
                "digit, then up to 39 letters, digits, '_', '.' or '-')",
                step=n,
            )
        if vkey in seen:
            raise InvalidShape(key, "duplicate variant key", step=n, variant=vkey)
        seen.add(vkey)
        if not isinstance(variant.guidance, str) or not variant.guidance.strip():
            raise InvalidShape(
                key, "empty guidance: a variant is an angle for the drafter", step=n, variant=vkey
            )


# --- the dict format -------------------------------------------------------------------------

SCHEMA_VERSION = 1
"""The version of the dict format ``SendShape.to_dict`` writes and ``from_dict`` reads."""

_T = TypeVar("_T")

_SHAPE_FIELDS = frozenset(
    {"schema_version", "key", "name", "description", "for_connected_leads", "steps"}
)
_STEP_FIELDS = frozenset(
    {
        "number",
        "action",
        "wait_days",
        "counts_from",
        "guidance",
        "with_note",
        "new_thread",
        "variants",
        "winner",
    }
)


def shape_to_dict(shape: SendShape) -> dict[str, Any]:
    """The shape as a plain dict of str, int, bool and lists (see the module docstring)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "key": shape.key,
        "name": shape.name,
        "description": shape.description,
        "for_connected_leads": shape.for_connected_leads,
        "steps": [
            {
                "number": step.number,
                "action": step.action.value,
                "wait_days": step.wait_days,
                "counts_from": step.counts_from.value,
                "guidance": step.guidance,
                "with_note": step.with_note,
                **({"new_thread": True} if step.new_thread else {}),
                **_variants_to_dict(step),
            }
            for step in shape.steps
        ],
    }


def shape_from_dict(data: Mapping[str, Any]) -> SendShape:
    """Read a shape written by :func:`shape_to_dict` (this or an older schema version).

    Raises:
        InvalidShape: see ``SendShape.from_dict``.
    """
    if not isinstance(data, Mapping):
        raise InvalidShape("?", f"a shape must be a mapping, not {type(data).__name__}")
    raw_key = data.get("key")
    key = raw_key if isinstance(raw_key, str) and raw_key else "?"
    _check_version(key, data)
    unknown = sorted(str(name) for name in set(data) - _SHAPE_FIELDS)
    if unknown:
        raise InvalidShape(key, f"unknown field(s): {', '.join(unknown)}")
    if not isinstance(raw_key, str) or not raw_key:
        raise InvalidShape(key, "field 'key' is required and must be a non-empty string")
    name = _required(key, data, "name", str)
    description = _optional(key, data, "description", str, "")
    for_connected = _optional(key, data, "for_connected_leads", bool, False)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, Sequence) or isinstance(raw_steps, str | bytes):
        raise InvalidShape(key, "field 'steps' is required and must be a list")
    steps = tuple(
        _step_from_dict(key, position, raw) for position, raw in enumerate(raw_steps, start=1)
    )
    return SendShape(
        key=raw_key,
        name=name,
        description=description,
        steps=steps,
        for_connected_leads=for_connected,
    )


def _check_version(key: str, data: Mapping[str, Any]) -> None:
    version = data.get("schema_version")
    if version is None:
        raise InvalidShape(
            key, f"field 'schema_version' is missing (this library writes {SCHEMA_VERSION})"
        )
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidShape(key, f"schema_version must be a positive integer, not {version!r}")
    if version > SCHEMA_VERSION:
        raise InvalidShape(
            key,
            f"schema_version {version} is newer than this version of starlight_sequences "
            f"reads (up to {SCHEMA_VERSION}); upgrade the library to load this shape",
        )


def _step_from_dict(key: str, position: int, raw: object) -> Step:
    if not isinstance(raw, Mapping):
        raise InvalidShape(key, f"steps[{position - 1}] must be a mapping")
    number = raw.get("number")
    if not isinstance(number, int) or isinstance(number, bool):
        raise InvalidShape(
            key, f"steps[{position - 1}]: 'number' is required and must be an integer"
        )
    unknown = sorted(str(name) for name in set(raw) - _STEP_FIELDS)
    if unknown:
        raise InvalidShape(key, f"unknown field(s): {', '.join(unknown)}", step=number)
    action_name = raw.get("action")
    try:
        if not isinstance(action_name, str):
            raise ValueError(action_name)
        action = Action(action_name)
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise InvalidShape(
            key, f"unknown action {action_name!r} (known: {known})", step=number
        ) from None
    anchor_name = raw.get("counts_from", WaitAnchor.PREVIOUS_STEP.value)
    try:
        anchor = WaitAnchor(anchor_name)
    except ValueError:
        known = ", ".join(a.value for a in WaitAnchor)
        raise InvalidShape(
            key, f"unknown counts_from {anchor_name!r} (known: {known})", step=number
        ) from None
    wait_days = raw.get("wait_days", 0)
    if not isinstance(wait_days, int) or isinstance(wait_days, bool):
        raise InvalidShape(
            key, f"wait_days must be a whole number of days, not {wait_days!r}", step=number
        )
    guidance = raw.get("guidance", "")
    if not isinstance(guidance, str):
        raise InvalidShape(key, "guidance must be a string", step=number)
    with_note = raw.get("with_note", False)
    if not isinstance(with_note, bool):
        raise InvalidShape(key, "with_note must be true or false", step=number)
    new_thread = raw.get("new_thread", False)
    if not isinstance(new_thread, bool):
        raise InvalidShape(key, "new_thread must be true or false", step=number)
    return Step(
        number=number,
        action=action,
        wait_days=wait_days,
        counts_from=anchor,
        guidance=guidance,
        with_note=with_note,
        new_thread=new_thread,
        variants=_variants_from_dict(key, number, raw.get("variants", [])),
        winner=_winner_from_dict(key, number, raw.get("winner")),
    )


def _variants_to_dict(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if step.variants:
        out["variants"] = [{"key": v.key, "guidance": v.guidance} for v in step.variants]
    if step.winner is not None:
        out["winner"] = {
            "after_sends": step.winner.after_sends,
            "after_days": step.winner.after_days,
        }
    return out


def _variants_from_dict(key: str, number: int, raw: object) -> tuple[Variant, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str | bytes):
        raise InvalidShape(key, "variants must be a list", step=number)
    variants: list[Variant] = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, Mapping):
            raise InvalidShape(key, f"variant #{position} must be a mapping", step=number)
        unknown = sorted(str(name) for name in set(item) - {"key", "guidance"})
        if unknown:
            raise InvalidShape(
                key, f"variant #{position}: unknown field(s): {', '.join(unknown)}", step=number
            )
        vkey, guidance = item.get("key"), item.get("guidance", "")
        if not isinstance(vkey, str):
            raise InvalidShape(
                key, f"variant #{position}: 'key' is required and must be a string", step=number
            )
        if not isinstance(guidance, str):
            raise InvalidShape(key, "guidance must be a string", step=number, variant=vkey)
        variants.append(Variant(key=vkey, guidance=guidance))
    return tuple(variants)


def _winner_from_dict(key: str, number: int, raw: object) -> WinnerRule | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidShape(key, 'winner must be a mapping such as {"after_sends": 40}', step=number)
    unknown = sorted(str(name) for name in set(raw) - {"after_sends", "after_days"})
    if unknown:
        raise InvalidShape(key, f"winner: unknown field(s): {', '.join(unknown)}", step=number)
    after = raw.get("after_sends")
    if not isinstance(after, int) or isinstance(after, bool):
        raise InvalidShape(
            key, "winner: 'after_sends' is required and must be a whole number", step=number
        )
    days = raw.get("after_days", 0)
    if not isinstance(days, int) or isinstance(days, bool):
        raise InvalidShape(key, "winner: 'after_days' must be a whole number", step=number)
    return WinnerRule(after_sends=after, after_days=days)


def _required(key: str, data: Mapping[str, Any], field: str, kind: type[_T]) -> _T:
    value = data.get(field)
    if not isinstance(value, kind):
        raise InvalidShape(key, f"field {field!r} is required and must be a {kind.__name__}")
    return value


def _optional(key: str, data: Mapping[str, Any], field: str, kind: type[_T], default: _T) -> _T:
    value = data.get(field, default)
    if not isinstance(value, kind):
        raise InvalidShape(key, f"field {field!r} must be a {kind.__name__}")
    return value
