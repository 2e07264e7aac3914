"""What the service returns: previews, reports and views (immutable values)."""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from starlight_sequences.bounce_breaker import SenderHold
from starlight_sequences.campaigns import Campaign, EnrolmentStatus, Excluded, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.drafts import Draft
from starlight_sequences.events import EventKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.inbound import InboundKind
from starlight_sequences.leads import Lead
from starlight_sequences.variants import VariantResult

__all__ = [
    "CampaignCredits",
    "CampaignPreview",
    "CampaignStatusReport",
    "ContactStatus",
    "CreationReport",
    "DispatchOutcome",
    "DispatchReport",
    "IngestResult",
    "MatchedBy",
    "PlannedStep",
    "RecipientPreview",
    "SendRecord",
    "WaitingOnConnection",
]


@attrs.frozen(kw_only=True)
class CreationReport:
    """What :meth:`CampaignService.create_campaign` did.

    Attributes:
        campaign: the stored campaign (status ``draft``).
        enrolled: how many leads were enrolled.
        excluded: the leads left out, each with its reason.
        needs_attention: drafts that are invalid or failed (they block approval of their lead).
        drafts: how many messages were drafted (and charged).
        drafting_credits: credits charged for drafting.
    """

    campaign: Campaign
    enrolled: int
    excluded: tuple[Excluded, ...]
    needs_attention: tuple[Draft, ...]
    drafts: int
    drafting_credits: int


@attrs.frozen(kw_only=True)
class PlannedStep:
    """One step of a recipient as the preview shows it.

    Attributes:
        step: the shape's step number.
        action: what it does.
        draft: its draft (None for a connection request without note).
        due_utc: when it is planned (UTC); None when it waits on an event not forecast.
        due_local: the same instant in the recipient's timezone.
        status: the send's status once scheduled (None before approval).
        gated: waits for the connection request to be accepted.
        reason: why it was skipped or failed, if it was.
        thread_of: for an email that follows up a thread, the step that started it (it goes
            out as a reply, under "Re: " and that step's subject); None when the email starts
            a thread, or for LinkedIn steps.
        subject: the subject the email goes out with (None for LinkedIn steps).
        variant: the key of the step's A/B variant this recipient is on ("" for none).
        sender_id: the mailbox or LinkedIn account of the recipient's pool this step goes
            out from (None when the campaign has no identity of the step's channel).
    """

    step: int
    action: Action
    draft: Draft | None
    due_utc: dt.datetime | None
    due_local: dt.datetime | None
    status: SendStatus | None
    gated: bool
    reason: str = ""
    thread_of: int | None = None
    subject: str | None = None
    variant: str = ""
    sender_id: SenderId | None = None


@attrs.frozen(kw_only=True)
class RecipientPreview:
    """A recipient's cadence, drafts and planned dates.

    Attributes:
        lead: the lead as enrolled: country and timezone filled in (see
            :func:`~starlight_sequences.leads.locate`).
        status: the enrolment's status (``in_review`` before approval).
        approved: the reviewer approved this recipient (``approve_recipient``).
        reason: why it stopped, is paused or was excluded ("" otherwise).
        steps: one row per step of its cadence, in order.
        assumed_timezone: the zone the library assumed because the lead gave none (its
            country's only or principal zone, or the campaign's default); None when the lead
            gave its own. Dates of ``steps`` are in this zone.
        timezone_reason: why that zone was assumed ("" when the lead gave its own).
        fallback_dropped: why the shape's fallback branch (an email if the connection request
            is not accepted) is not in this lead's steps ("" when the shape has none or the
            lead keeps it; see :func:`~starlight_sequences.cadence.fallback_dropped`).
    """

    lead: Lead
    status: EnrolmentStatus
    approved: bool
    reason: str
    steps: tuple[PlannedStep, ...]
    assumed_timezone: str | None = None
    timezone_reason: str = ""
    fallback_dropped: str = ""


@attrs.frozen(kw_only=True)
class CampaignPreview:
    """The review screen of a campaign: every recipient, and every lead left out.

    Attributes:
        campaign: the campaign.
        recipients: every enrolled lead (or the one asked for), in enrolment order.
        excluded: the leads left out at creation, each with its reason.
        last_send_at: forecast UTC instant of the campaign's last send, or None when nothing
            will go or the preview is of one recipient (it needs all of them). In review it is
            the plan approval would make now: first touches staggered under each sender's
            spacing, caps and warm-up ramp (``docs/settings.md``), later steps after their
            waits; once approved, the latest planned or actual instant of the sends. Later
            steps are re-timed under the caps when they fall due, so it is a lower bound.
    """

    campaign: Campaign
    recipients: tuple[RecipientPreview, ...]
    excluded: tuple[Excluded, ...]
    last_send_at: dt.datetime | None = None

    @property
    def needs_attention(self) -> tuple[Draft, ...]:
        """Drafts that block approval (of recipients that are not excluded)."""
        return tuple(
            step.draft
            for recipient in self.recipients
            if recipient.status is not EnrolmentStatus.EXCLUDED
            for step in recipient.steps
            if step.draft is not None and step.draft.needs_attention
        )


@attrs.frozen(kw_only=True)
class ContactStatus:
    """One enrolled contact in the status view.

    Attributes:
        lead: the contact.
        step: the step it is on (the next one to send, or the last one when finished).
        action: that step's action.
        status: the enrolment's status.
        send_status: that step's send status (None before approval).
        next_send_utc, next_send_local: when it goes out (None when not scheduled).
        reason: why it stopped or is paused.
    """

    lead: Lead
    step: int
    action: Action
    status: EnrolmentStatus
    send_status: SendStatus | None
    next_send_utc: dt.datetime | None
    next_send_local: dt.datetime | None
    reason: str


@attrs.frozen(kw_only=True)
class CampaignStatusReport:
    """A campaign's contacts and the counts per (step, send status).

    Attributes:
        campaign: the campaign.
        contacts: one row per enrolled contact.
        counts: ``(step, send status, how many)``, sorted by step then status.
        variants: per A/B step and variant, sent, replied, bounced and the reply rate with its
            Wilson interval (empty when the shape has no A/B step).
        held_senders: the campaign's senders the bounce breaker holds, each saying why (its
            ``reason``: the rate, the window, the threshold) and since when (``held_at``);
            their sends wait until ``CampaignService.resume_sender``.
    """

    campaign: Campaign
    contacts: tuple[ContactStatus, ...]
    counts: tuple[tuple[int, SendStatus, int], ...]
    variants: tuple[VariantResult, ...] = ()
    held_senders: tuple[SenderHold, ...] = ()


@attrs.frozen(kw_only=True)
class SendRecord:
    """One step of one lead in the send log: when it was planned, when it is due, and when it
    actually went out (:meth:`CampaignService.sends`).

    Every instant is timezone-aware; ``*_utc`` ones are in UTC and ``*_local`` the same instant
    in the recipient's ``timezone``.

    Attributes:
        lead_id, step: which send.
        action: what it does.
        status: where it stands (``sent`` once the sender accepted it).
        sender_id: the mailbox or LinkedIn account it goes out from.
        timezone: the recipient's IANA zone.
        forecast_utc: the instant planned at approval (or when the step was first scheduled).
        due_utc, due_local: when it is (or was last) due; for a step waiting on an acceptance,
            the deadline.
        sent_utc, sent_local: when the sender accepted it; None until then.
        attempts: how many times it was handed to a sender.
        receipt: the sender's id for the sent message (an email's ``Message-ID``).
        reason: why it was skipped or failed, or the last transient error.
    """

    lead_id: LeadId
    step: int
    action: Action
    status: SendStatus
    sender_id: SenderId
    timezone: str
    forecast_utc: dt.datetime
    due_utc: dt.datetime
    due_local: dt.datetime
    sent_utc: dt.datetime | None
    sent_local: dt.datetime | None
    attempts: int
    receipt: str
    reason: str


@attrs.frozen(kw_only=True)
class WaitingOnConnection:
    """A lead whose LinkedIn message waits for the connection request to be accepted.

    Attributes:
        campaign_id: the campaign.
        lead: the lead.
        step: the gated LinkedIn message's step.
        since: when the connection request went out (UTC; None if not recorded).
        times_out_at: when the gated steps are skipped unless the request is accepted (UTC).
    """

    campaign_id: CampaignId
    lead: Lead
    step: int
    since: dt.datetime | None
    times_out_at: dt.datetime


@attrs.frozen(kw_only=True)
class CampaignCredits:
    """One campaign's credits.

    Attributes:
        drafting: charged for drafts (and regenerations).
        reserved: reserved for sends at approval.
        charged: charged for sends that went out.
        released: given back for steps that will not be sent.
    """

    drafting: int
    reserved: int
    charged: int
    released: int

    @property
    def outstanding(self) -> int:
        """Still reserved for steps not sent yet."""
        return self.reserved - self.charged - self.released

    @property
    def spent(self) -> int:
        """Drafting plus sends charged."""
        return self.drafting + self.charged


class DispatchOutcome(enum.StrEnum):
    """How one claimed send ended in a dispatcher pass (a field of :class:`DispatchReport`)."""

    SENT = "sent"
    """Handed to its sender and recorded."""
    RETRIED = "retried"
    """A transient sender failure; put back for a later attempt."""
    FAILED = "failed"
    """A permanent failure, or the last attempt failed: the lead is stopped."""
    SKIPPED = "skipped"
    """Not sent: the lead stopped or is suppressed."""
    TIMED_OUT = "timed_out"
    """A gated step whose connection request was not accepted in time."""
    DEFERRED = "deferred"
    """Not sent now (outside business hours, sender spacing, paused): re-timed."""
    LEASE_LOST = "lease_lost"
    """Another worker took the send over; this worker wrote nothing."""
    HANDED_BACK = "handed_back"
    """Returned unsent: the worker was asked to stop, or an earlier send of the batch met an
    unexpected error."""
    ERRORED = "errored"
    """An unexpected error (a sender or storage fault): recorded as a transient failure of
    the send (retried with backoff, counted as an attempt) when it could be written, else left
    to its lease, after which it is retried with the same idempotency key."""


@attrs.frozen(kw_only=True)
class DispatchReport:
    """What one dispatcher pass did: how many claimed sends ended each way."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    timed_out: int = 0
    deferred: int = 0
    lease_lost: int = 0
    handed_back: int = 0
    errored: int = 0

    @property
    def handled(self) -> int:
        """Every claimed send this pass dealt with."""
        return sum(attrs.astuple(self))

    def count(self, outcome: DispatchOutcome) -> DispatchReport:
        """This report with one more ``outcome``."""
        return attrs.evolve(self, **{outcome.value: getattr(self, outcome.value) + 1})


class MatchedBy(enum.StrEnum):
    """How an inbound message was matched to the contact it concerns."""

    MESSAGE_ID = "message_id"
    """Its thread headers (or, in a bounce, the original message's ids) named a sent email."""
    FAILED_RECIPIENT = "failed_recipient"
    """A bounce's failed recipient is a contact's address."""
    SENDER_ADDRESS = "sender_address"
    """Its ``From`` is a contact's address."""
    NOTHING = ""
    """Nobody matched."""


@attrs.frozen(kw_only=True)
class IngestResult:
    """What :meth:`CampaignService.ingest_email` decided about one inbound message.

    Attributes:
        kind: what the message is (reply, auto-reply, hard or soft bounce, unsubscribe,
            unmatched).
        event: the event applied for it (None: nothing to apply — a soft bounce, an unmatched
            message, or nobody we wrote to).
        applied: the event changed something now (False for a repeat of a message already
            ingested, and whenever ``event`` is None).
        lead_id: the contact it concerns (None when nobody matched).
        campaign_id: the campaign of the send it answers, when it named one (None: every
            campaign of the workspace that wrote to the contact).
        matched_by: how the contact was found (:class:`MatchedBy`).
        return_date: for an out-of-office, the day the contact is back, when stated.
        message_id: the inbound message's own Message-ID (or a hash of it): its key, so
            ingesting it twice changes nothing.
        reason: a sentence for people (why it is what it is, or why nothing was done).
    """

    kind: InboundKind
    event: EventKind | None
    applied: bool
    lead_id: LeadId | None
    campaign_id: CampaignId | None
    matched_by: MatchedBy
    return_date: dt.date | None
    message_id: str
    reason: str
