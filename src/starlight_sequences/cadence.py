"""Per-lead channel cadence: the steps of a shape that one lead can receive (pure).

:func:`resolve_cadence` applies the rules of DESIGN 1.3 (tabled in ``docs/shapes.md``):

1. A lead can be reached by email when it has an ``email``, on LinkedIn when it has a
   ``linkedin_url``. ``linkedin_connected`` without a ``linkedin_url`` reaches nobody: there is
   no profile to write to.
2. Steps on a channel the lead lacks are dropped.
3. A lead that is already connected skips every ``linkedin_connect``; its LinkedIn messages
   are not gated on an acceptance. A message that counted from the acceptance now counts from
   the previous kept step, with the connection request's wait plus its own, as if the request
   had been sent and accepted at once (so a connected lead never gets it earlier than the
   quickest accepting lead would).
4. A lead that is not connected cannot receive a message that no connection request precedes
   (those exist only in shapes marked ``for_connected_leads``); such messages are dropped.
   Every other message it keeps is gated on the acceptance of its request.
5. The first kept step starts at enrolment: its wait becomes 0, counted from the enrolment.
   Every later kept step keeps its own wait, counted from the previous kept step (or from the
   acceptance, for a gated step that counted from it). The waits of dropped steps are not
   carried over.
6. A lead with no kept step is excluded with a reason code and a sentence; never dropped
   silently, never ``None``.
7. The fallback branch (a step counting from ``CONNECTION_NOT_ACCEPTED``) is kept only for a
   lead that gets the connection request and has an email address; it is dropped otherwise,
   and :func:`fallback_dropped` says why (the campaign preview shows it). It counts from the
   moment the request is declined or times out, never from the previous step.
"""

from __future__ import annotations

import enum

import attrs

from starlight_sequences.channels import Action, Channel
from starlight_sequences.ids import LeadId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import SendShape, Step, WaitAnchor

__all__ = [
    "Cadence",
    "CadenceStep",
    "Exclusion",
    "ExclusionReason",
    "fallback_dropped",
    "lead_channels",
    "resolve_cadence",
]


@attrs.frozen(kw_only=True)
class CadenceStep:
    """One step a lead will get: the shape's step, re-timed for this lead.

    Attributes:
        number: the step's number in the shape (kept, so drafts and sends name the same step
            for every lead; a lead's numbers can have gaps).
        action: what the step does.
        wait_days: business days to wait before it, counted from ``counts_from``.
        counts_from: ``PREVIOUS_STEP`` (the lead's previous kept step, or the enrolment for its
            first) or ``CONNECTION_ACCEPTED``.
        guidance: the shape's drafting guidance for the step.
        with_note: for ``linkedin_connect``: the request carries a drafted note.
        gated_on_acceptance: the step waits for the lead to accept the connection request
            (every LinkedIn message to a lead that is not connected yet).
        new_thread: an email that starts a new thread with its own subject (see
            ``Step.new_thread``); the lead's first email always does.
        variant: the key of the step's A/B variant this lead is on ("" when the step has no
            variants); ``guidance`` is then that variant's (see
            :func:`starlight_sequences.variants.assign_variants`).
    """

    number: int
    action: Action
    wait_days: int
    counts_from: WaitAnchor
    guidance: str
    with_note: bool
    gated_on_acceptance: bool
    new_thread: bool = False
    variant: str = ""

    @property
    def channel(self) -> Channel:
        """The channel the step goes out on."""
        return self.action.channel

    @property
    def needs_draft(self) -> bool:
        """Whether the step sends drafted text (every message; a request only with a note)."""
        return self.action is not Action.LINKEDIN_CONNECT or self.with_note

    @property
    def is_fallback(self) -> bool:
        """Whether the step is the fallback branch: sent only when the lead's connection
        request is declined or times out (never alongside an accepted connection)."""
        return self.counts_from is WaitAnchor.CONNECTION_NOT_ACCEPTED


@attrs.frozen(kw_only=True)
class Cadence:
    """The steps one lead will get from one shape, in the shape's order.

    Attributes:
        lead_id: the lead.
        shape_key: the shape it was resolved from.
        steps: at least one step; the first starts at enrolment.
    """

    lead_id: LeadId
    shape_key: str
    steps: tuple[CadenceStep, ...]

    @property
    def channels(self) -> frozenset[Channel]:
        """The channels the lead's steps use."""
        return frozenset(step.channel for step in self.steps)

    @property
    def drafts_needed(self) -> int:
        """How many steps need a drafted message."""
        return sum(1 for step in self.steps if step.needs_draft)

    @property
    def waits_on_connection(self) -> bool:
        """Whether some step waits for a connection request to be accepted."""
        return any(step.gated_on_acceptance for step in self.steps)


class ExclusionReason(enum.StrEnum):
    """Why a lead is left out of a campaign.

    The first five come from the shape (no step of it reaches the lead, see
    :func:`resolve_cadence`); the rest from the campaign being created (see
    ``CampaignService.create_campaign``).
    """

    NO_CHANNEL = "no_channel"
    """The lead has neither an email address nor a LinkedIn profile."""
    NO_EMAIL_FOR_SHAPE = "no_email_for_shape"
    """The shape only sends email and the lead has no email address."""
    NO_LINKEDIN_FOR_SHAPE = "no_linkedin_for_shape"
    """The lead has no LinkedIn profile and the shape reaches it only on LinkedIn (its only
    email, if any, is the fallback of a connection request)."""
    ALREADY_CONNECTED = "already_connected"
    """The shape's only steps the lead could get are connection requests, and the lead is
    already connected."""
    NOT_CONNECTED = "not_connected"
    """The shape's only steps the lead could get are messages for existing connections, and
    the lead is not connected."""
    DUPLICATE = "duplicate"
    """The lead is listed twice in the campaign (same id or email); it is enrolled once."""
    SUPPRESSED = "suppressed"
    """The lead (its id or email) is on the workspace's suppression list."""
    MISSING_LOCATION = "missing_location"
    """Neither the lead nor the campaign's defaults give a country and timezone."""
    ACTIVE_ELSEWHERE = "active_elsewhere"
    """The lead is active in another campaign of the workspace (and overlap is not allowed)."""


@attrs.frozen(kw_only=True)
class Exclusion:
    """A lead that a shape cannot reach, and why (the campaign preview shows it).

    Attributes:
        lead_id: the lead.
        shape_key: the shape that cannot reach it.
        reason: the reason code.
        message: the reason as a sentence for people.
    """

    lead_id: LeadId
    shape_key: str
    reason: ExclusionReason
    message: str


def lead_channels(lead: Lead) -> frozenset[Channel]:
    """The channels a lead can be reached on: email with an address, LinkedIn with a profile."""
    channels: set[Channel] = set()
    if lead.email:
        channels.add(Channel.EMAIL)
    if lead.linkedin_url:
        channels.add(Channel.LINKEDIN)
    return frozenset(channels)


def resolve_cadence(shape: SendShape, lead: Lead) -> Cadence | Exclusion:
    """The steps of ``shape`` that ``lead`` will get, re-timed, or why it gets none.

    The rules are in this module's docstring and in ``docs/shapes.md``. The result depends on
    nothing but the two arguments.

    Args:
        shape: a (validated) send shape.
        lead: the lead; only ``id``, ``email``, ``linkedin_url`` and ``linkedin_connected``
            are read.

    Returns:
        A :class:`Cadence` with at least one step, or an :class:`Exclusion`; never ``None``.
    """
    channels = lead_channels(lead)
    connected = lead.linkedin_connected and Channel.LINKEDIN in channels
    kept: list[CadenceStep] = []
    skipped_connect: Step | None = None
    connect_before = False
    for step in shape.steps:
        if step.action is Action.LINKEDIN_CONNECT:
            connect_before = True
        if step.channel not in channels:
            continue
        if step.action is Action.LINKEDIN_CONNECT and connected:
            skipped_connect = step
            continue
        if step.action is Action.LINKEDIN_MESSAGE and not connected and not connect_before:
            continue
        if step.is_fallback and not any(k.action is Action.LINKEDIN_CONNECT for k in kept):
            continue  # no request goes out, so none can be left unaccepted
        kept.append(_cadence_step(step, connected=connected, skipped_connect=skipped_connect))
    if not kept:
        return _exclusion(shape, lead, channels)
    first = kept[0]
    kept[0] = attrs.evolve(first, wait_days=0, counts_from=WaitAnchor.PREVIOUS_STEP)
    return Cadence(lead_id=lead.id, shape_key=shape.key, steps=tuple(kept))


def fallback_dropped(shape: SendShape, lead: Lead) -> str:
    """Why the shape's fallback branch is dropped for ``lead`` ("" when the shape has none or
    the lead keeps it): the lead has no email address, is already connected, or has no
    LinkedIn profile (no request goes out)."""
    fallback = next((step for step in shape.steps if step.is_fallback), None)
    if fallback is None:
        return ""
    channels = lead_channels(lead)
    what = f"step {fallback.number} (email if the connection request is not accepted) dropped"
    if Channel.EMAIL not in channels:
        return f"{what}: the lead has no email address"
    if Channel.LINKEDIN not in channels:
        return f"{what}: the lead has no LinkedIn profile, so no request is sent"
    if lead.linkedin_connected:
        return f"{what}: the lead is already connected, so no request is sent"
    return ""


def _cadence_step(step: Step, *, connected: bool, skipped_connect: Step | None) -> CadenceStep:
    wait_days = step.wait_days
    counts_from = step.counts_from
    if connected and counts_from is WaitAnchor.CONNECTION_ACCEPTED:
        # Timed as if the request had gone out and been accepted at once.
        extra = skipped_connect.wait_days if skipped_connect is not None else 0
        wait_days += extra
        counts_from = WaitAnchor.PREVIOUS_STEP
    return CadenceStep(
        number=step.number,
        action=step.action,
        wait_days=wait_days,
        counts_from=counts_from,
        guidance=step.guidance,
        with_note=step.with_note,
        gated_on_acceptance=step.action is Action.LINKEDIN_MESSAGE and not connected,
        new_thread=step.new_thread,
    )


def _exclusion(shape: SendShape, lead: Lead, channels: frozenset[Channel]) -> Exclusion:
    who = f"lead {lead.id!r}"
    what = f"send shape {shape.key!r}"
    if not channels:
        linked = " (marked connected, but with no LinkedIn profile URL)"
        return Exclusion(
            lead_id=lead.id,
            shape_key=shape.key,
            reason=ExclusionReason.NO_CHANNEL,
            message=(
                f"{who} has neither an email address nor a LinkedIn profile"
                f"{linked if lead.linkedin_connected else ''}, so {what} cannot reach it."
            ),
        )
    if Channel.LINKEDIN in channels and Channel.LINKEDIN in shape.channels:
        # The lead has LinkedIn and the shape uses it, yet nothing was kept: every LinkedIn
        # step was dropped because of the lead's connection status.
        if lead.linkedin_connected:
            return Exclusion(
                lead_id=lead.id,
                shape_key=shape.key,
                reason=ExclusionReason.ALREADY_CONNECTED,
                message=(
                    f"{who} is already a LinkedIn connection, and the only steps of {what} "
                    "it could get are connection requests."
                ),
            )
        return Exclusion(
            lead_id=lead.id,
            shape_key=shape.key,
            reason=ExclusionReason.NOT_CONNECTED,
            message=(
                f"{who} is not a LinkedIn connection yet, and {what} only writes LinkedIn "
                "messages to existing connections."
            ),
        )
    if Channel.EMAIL in channels:
        # The lead has an address, yet nothing was kept: the shape's only email is its
        # fallback branch, which follows a connection request the lead cannot get.
        return Exclusion(
            lead_id=lead.id,
            shape_key=shape.key,
            reason=ExclusionReason.NO_LINKEDIN_FOR_SHAPE,
            message=(
                f"{who} has no LinkedIn profile URL, and {what} only emails as the fallback "
                "of a LinkedIn connection request."
            ),
        )
    if Channel.EMAIL in shape.channels:
        return Exclusion(
            lead_id=lead.id,
            shape_key=shape.key,
            reason=ExclusionReason.NO_EMAIL_FOR_SHAPE,
            message=f"{who} has no email address, and {what} only sends email.",
        )
    return Exclusion(
        lead_id=lead.id,
        shape_key=shape.key,
        reason=ExclusionReason.NO_LINKEDIN_FOR_SHAPE,
        message=f"{who} has no LinkedIn profile URL, and {what} only uses LinkedIn.",
    )
