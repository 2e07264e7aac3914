"""Campaigns, enrolments and scheduled sends: the state the service stores, and its transitions.

Everything here is an immutable value; a transition returns a new value or raises
:class:`~starlight_sequences.errors.IllegalTransition`. Instants are UTC-aware datetimes.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib

import attrs

from starlight_sequences.bounce_breaker import BounceBreaker
from starlight_sequences.cadence import CadenceStep, ExclusionReason
from starlight_sequences.calendar import BusinessHours, WarmUp
from starlight_sequences.channels import Action, Channel
from starlight_sequences.credits import PriceTable
from starlight_sequences.errors import (
    IllegalTransition,
    InvalidIdentity,
    InvalidLead,
    InvalidSettings,
)
from starlight_sequences.header_text import (
    header_text_problem,
    identifier_problem,
    normalise_header_text,
)
from starlight_sequences.ids import CampaignId, LeadId, SenderId, SendId, WorkspaceId
from starlight_sequences.leads import Lead, normalise_email
from starlight_sequences.shapes import MAX_WAIT_DAYS, SendShape

__all__ = [
    "Campaign",
    "CampaignSettings",
    "CampaignStatus",
    "EmailIdentity",
    "Enrolment",
    "EnrolmentStatus",
    "Excluded",
    "LinkedInIdentity",
    "ScheduledSend",
    "SendStatus",
    "StopScope",
    "idempotency_key_for",
    "send_id_for",
]


class CampaignStatus(enum.StrEnum):
    """Lifecycle: ``draft`` → ``active`` ⇄ ``paused`` → ``completed`` or ``cancelled``."""

    DRAFT = "draft"
    """Created and drafted; in review. Nothing is scheduled or sent."""
    ACTIVE = "active"
    """Approved and scheduled; the dispatcher sends what is due."""
    PAUSED = "paused"
    """Nothing is sent; pending sends are kept and re-timed on resume."""
    COMPLETED = "completed"
    """Every enrolment reached a final status."""
    CANCELLED = "cancelled"
    """Stopped for good; reserved credits released."""


class EnrolmentStatus(enum.StrEnum):
    """Where one lead stands in one campaign."""

    IN_REVIEW = "in_review"
    ACTIVE = "active"
    WAITING_ON_CONNECTION = "waiting_on_connection"
    PAUSED = "paused"
    OUT_OF_OFFICE = "out_of_office"
    REPLIED = "replied"
    MEETING_BOOKED = "meeting_booked"
    BOUNCED = "bounced"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXCLUDED = "excluded"

    @property
    def is_final(self) -> bool:
        """True when no further step will be sent to this lead."""
        return self in _FINAL_ENROLMENT


_FINAL_ENROLMENT = frozenset(
    {
        EnrolmentStatus.REPLIED,
        EnrolmentStatus.MEETING_BOOKED,
        EnrolmentStatus.BOUNCED,
        EnrolmentStatus.UNSUBSCRIBED,
        EnrolmentStatus.FAILED,
        EnrolmentStatus.COMPLETED,
        EnrolmentStatus.CANCELLED,
        EnrolmentStatus.EXCLUDED,
    }
)


class SendStatus(enum.StrEnum):
    """Lifecycle of one scheduled send (one lead, one step)."""

    PENDING = "pending"
    """Forecast only: waits for the previous step; ``due_at`` is the forecast."""
    WAITING = "waiting"
    """Gated on the LinkedIn connection being accepted; ``due_at`` is the acceptance deadline
    (the step is skipped if no acceptance comes by then)."""
    SCHEDULED = "scheduled"
    """Due at ``due_at``; claimable by a dispatcher from then on."""
    CLAIMED = "claimed"
    """Held by a worker until ``lease_expires_at``."""
    SENT = "sent"
    SKIPPED = "skipped"
    """Will not be sent (reply, timeout, bounce, cancel...); ``reason`` says why."""
    FAILED = "failed"
    """Permanent sender failure; ``reason`` says why."""

    @property
    def is_final(self) -> bool:
        """True when the send will never go out (again)."""
        return self in (SendStatus.SENT, SendStatus.SKIPPED, SendStatus.FAILED)


class StopScope(enum.StrEnum):
    """Which campaigns a reply stops."""

    CAMPAIGN = "campaign"
    WORKSPACE = "workspace"


def _sender_id(value: str) -> SenderId:
    # A converter only for the type: EmailIdentity(id="ada") type-checks, the attribute is a
    # SenderId.
    return SenderId(value)


def _check_sender_id(sender_id: object) -> None:
    if not isinstance(sender_id, str):
        raise InvalidIdentity(str(sender_id), "id", f"must be text, not {type(sender_id).__name__}")
    if not sender_id.strip():
        raise InvalidIdentity(sender_id, "id", "is empty")
    unsafe = identifier_problem(sender_id)
    if unsafe is not None:
        raise InvalidIdentity(
            sender_id, "id", f"{unsafe.reason}; an id cannot hold control characters"
        )


@attrs.frozen(kw_only=True)
class EmailIdentity:
    """A mailbox that sends a campaign's emails.

    Construction checks and normalises the header fields, so a mailbox that review accepted
    is never refused by a sender: the address as a lead's email is (``docs/leads.md``: the
    domain in lower-case ASCII form), the display name by the header rule of
    :mod:`starlight_sequences.header_text` (tabs become spaces, surrounding white space goes;
    line breaks and other control characters are refused).

    Attributes:
        id: the sender id (stable; caps and spacing are counted per id across campaigns).
            Plain ``str`` is accepted; no control characters.
        address: the From address.
        display_name: the From name ("" for none).
        timezone: where the mailbox's day and week are counted for caps.
        min_spacing: shortest gap between two emails of this mailbox.
        daily_cap: most emails per mailbox-local day (with a warm-up: once ramped up).
        warm_up: a ramp of the daily cap for a new mailbox, or None (``docs/settings.md``):
            the cap on a mailbox-local date is then :meth:`cap_on` of it. Its ceiling may not
            exceed ``daily_cap``.
        daily_cap: most emails per mailbox-local day.
        bounce_breaker: when the mailbox is held for hard bounces (``docs/deliverability.md``).
            On the identity, not the campaign, because the hold is the mailbox's: it stops
            the mailbox in every campaign that uses it.

    Raises:
        InvalidIdentity: naming the identity and the field (``id``, ``address``,
            ``display_name``, ``daily_cap``, ``warm_up``).
    """

    id: SenderId = attrs.field(converter=_sender_id)
    address: str
    display_name: str = ""
    timezone: str = "UTC"
    min_spacing: dt.timedelta = dt.timedelta(minutes=3)
    daily_cap: int = 40
    warm_up: WarmUp | None = None
    bounce_breaker: BounceBreaker = attrs.field(factory=BounceBreaker)

    def __attrs_post_init__(self) -> None:
        _check_sender_id(self.id)
        if isinstance(self.daily_cap, bool) or not isinstance(self.daily_cap, int):
            raise InvalidIdentity(self.id, "daily_cap", f"{self.daily_cap!r} is not a whole number")
        if self.daily_cap < 1:
            raise InvalidIdentity(self.id, "daily_cap", f"{self.daily_cap} must be at least 1")
        if self.warm_up is not None:
            if not isinstance(self.warm_up, WarmUp):
                raise InvalidIdentity(self.id, "warm_up", "must be a WarmUp value")
            if self.warm_up.ceiling > self.daily_cap:
                raise InvalidIdentity(
                    self.id,
                    "warm_up",
                    f"ceiling {self.warm_up.ceiling} is above daily_cap {self.daily_cap}; "
                    "raise daily_cap to the ceiling",
                )
        try:
            address = normalise_email(self.address)
        except InvalidLead as exc:
            raise InvalidIdentity(self.id, "address", exc.reason) from None
        unsafe = header_text_problem(self.display_name)
        if unsafe is not None:
            raise InvalidIdentity(
                self.id, "display_name", f"{unsafe.reason}; the From name must be one line"
            )
        # Frozen class: attrs documents object.__setattr__ as the way to normalise on init.
        object.__setattr__(self, "address", address)
        object.__setattr__(self, "display_name", normalise_header_text(self.display_name))

    def cap_on(self, day: dt.date) -> int:
        """The most emails this mailbox may send on the mailbox-local date ``day``: the
        warm-up ramp's cap of that day, or ``daily_cap`` without a ramp."""
        if self.warm_up is None:
            return self.daily_cap
        return min(self.daily_cap, self.warm_up.cap_on(day))


@attrs.frozen(kw_only=True)
class LinkedInIdentity:
    """A LinkedIn account that sends a campaign's connection requests and messages.

    Attributes:
        id: the sender id. Plain ``str`` is accepted; no control characters.
        profile_url: the account's own profile.
        premium: premium accounts may write 300-character notes; free ones 200.
        notes_exhausted: the account's monthly quota of notes is used up.
        send_without_note_when_exhausted: then plan requests without a note instead of
            stalling (the default); when False, such drafts need attention.
        timezone: where the account's day and week are counted for caps.
        min_spacing: shortest gap between two actions of this account.
        weekly_connect_cap: most connection requests per account-local ISO week.
        daily_message_cap: most messages per account-local day.

    Raises:
        InvalidIdentity: the id is empty or holds a control character.
    """

    id: SenderId = attrs.field(converter=_sender_id)
    profile_url: str = ""
    premium: bool = False
    notes_exhausted: bool = False
    send_without_note_when_exhausted: bool = True
    timezone: str = "UTC"
    min_spacing: dt.timedelta = dt.timedelta(minutes=5)
    weekly_connect_cap: int = 100
    daily_message_cap: int = 50

    def __attrs_post_init__(self) -> None:
        _check_sender_id(self.id)


@attrs.frozen(kw_only=True)
class CampaignSettings:
    """How a campaign is timed and when it stops.

    Attributes:
        business_hours: the recipients' local business hours.
        start: earliest moment of the first sends (None: approval time).
        default_country, default_timezone, default_subdivision: for leads without their own.
        closures: extra non-business dates for every recipient.
        connection_timeout_days: business days to wait for an acceptance before gated steps
            are skipped (1 to ``shapes.MAX_WAIT_DAYS``, 260).
        stop_scope: a reply stops the contact in this campaign, or in every campaign.
        stop_company_on_reply: a reply also stops every contact with the same email domain.
        allow_overlap: enrol contacts already active in another campaign of the workspace.
        out_of_office_days: business days an out-of-office pauses a lead when no return date
            (1 to 260).
        max_attempts: attempts a send makes in all before a transient failure becomes final
            (1 to 20).
        seed: seeds the staggering jitter; the same seed gives the same slots.
    """

    business_hours: BusinessHours = attrs.field(factory=BusinessHours)
    start: dt.datetime | None = None
    default_country: str | None = None
    default_timezone: str | None = None
    default_subdivision: str | None = None
    closures: frozenset[dt.date] = frozenset()
    connection_timeout_days: int = 15
    stop_scope: StopScope = StopScope.CAMPAIGN
    stop_company_on_reply: bool = False
    allow_overlap: bool = False
    out_of_office_days: int = 5
    max_attempts: int = 5
    seed: str = ""

    def __attrs_post_init__(self) -> None:
        if self.start is not None and self.start.utcoffset() is None:
            raise InvalidSettings("campaign settings: start must be timezone-aware")
        for name, value, most in (
            ("connection_timeout_days", self.connection_timeout_days, MAX_WAIT_DAYS),
            ("out_of_office_days", self.out_of_office_days, MAX_WAIT_DAYS),
            ("max_attempts", self.max_attempts, _MAX_ATTEMPTS),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                raise InvalidSettings(
                    f"campaign settings: {name} must be a whole number from 1 to {most}"
                    f" (got {str(value)[:40]})"
                )


_MAX_ATTEMPTS = 20
"""The most attempts a send may make (with doubling backoff, 20 attempts span months)."""


@attrs.frozen(kw_only=True)
class Excluded:
    """A lead left out of a campaign, and why (shown in the preview; never silent).

    Attributes:
        lead_id: the lead (or the row's best identifier).
        reason: why, as a stable code (a string from storage is converted).
        message: a sentence for people.
    """

    lead_id: LeadId
    reason: ExclusionReason = attrs.field(converter=ExclusionReason)
    message: str


@attrs.frozen(kw_only=True)
class Campaign:
    """A campaign: who is written to, with which shape and brief, from which identities.

    ``revision`` is bumped by every stored change (optimistic concurrency, see ports.Storage).
    ``prices`` is the price table the campaign was created under: its reservations, charges and
    releases all use it, so changing the host's prices later cannot make a charge exceed what
    was reserved (None: campaigns stored before prices were kept; the service's table applies).
    ``variant_winners`` holds ``(step, variant key)`` for each A/B step whose winner rule has
    picked (see :mod:`starlight_sequences.variants`).

    Sender pools: ``email_identities`` and ``linkedin_identities`` are every mailbox and
    LinkedIn account the campaign sends from; ``email_identity`` and ``linkedin_identity`` are
    their first members (either form may be given; the other is filled in).
    ``retired_senders`` were removed from the pool: they take no new leads but keep the
    threads they started (see ``CampaignService.remove_sender``).

    Raises:
        InvalidSettings: a single identity that is not in its pool, or a pool that repeats an
            id.
    """

    workspace_id: WorkspaceId
    id: CampaignId
    name: str
    brief: str
    shape: SendShape
    settings: CampaignSettings
    email_identity: EmailIdentity | None
    linkedin_identity: LinkedInIdentity | None
    status: CampaignStatus
    created_at: dt.datetime
    approved_at: dt.datetime | None = None
    paused_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    excluded: tuple[Excluded, ...] = ()
    revision: int = 0
    prices: PriceTable | None = None
    variant_winners: tuple[tuple[int, str], ...] = ()
    email_identities: tuple[EmailIdentity, ...] = ()
    linkedin_identities: tuple[LinkedInIdentity, ...] = ()
    retired_senders: tuple[SenderId, ...] = ()

    def __attrs_post_init__(self) -> None:
        # Sender pools (docs/settings.md): the single identity fields stay the pool's first
        # member, so code and rows that know only them keep working.
        for single, pool, what in (
            ("email_identity", "email_identities", "email"),
            ("linkedin_identity", "linkedin_identities", "LinkedIn"),
        ):
            one, many = getattr(self, single), getattr(self, pool)
            if one is not None and not many:
                object.__setattr__(self, pool, (one,))
            elif one is None and many:
                object.__setattr__(self, single, many[0])
            elif one is not None and one not in many:
                raise InvalidSettings(f"campaign {self.id!r}: {single} {one.id!r} is not in {pool}")
            ids = [identity.id for identity in getattr(self, pool)]
            if len(set(ids)) != len(ids):
                raise InvalidSettings(f"campaign {self.id!r}: {what} pool repeats a sender id")

    def pool(self, channel: Channel) -> tuple[EmailIdentity | LinkedInIdentity, ...]:
        """Every identity of ``channel`` (retired ones too: they keep their started leads)."""
        return self.email_identities if channel is Channel.EMAIL else self.linkedin_identities

    def active_pool(self, channel: Channel) -> tuple[EmailIdentity | LinkedInIdentity, ...]:
        """The identities of ``channel`` that take new leads (not retired)."""
        return tuple(i for i in self.pool(channel) if i.id not in self.retired_senders)

    def email_identity_of(self, sender_id: SenderId) -> EmailIdentity | None:
        """The pool's mailbox with id ``sender_id`` (None if not in the pool)."""
        return next((i for i in self.email_identities if i.id == sender_id), None)

    def linkedin_identity_of(self, sender_id: SenderId) -> LinkedInIdentity | None:
        """The pool's LinkedIn account with id ``sender_id`` (None if not in the pool)."""
        return next((i for i in self.linkedin_identities if i.id == sender_id), None)

    def sender_for(self, action: Action, enrolment: Enrolment | None = None) -> SenderId:
        """The identity that sends ``action`` (to ``enrolment``'s lead: its assigned sender).

        A lead without an assigned sender of the channel (rows stored before pools) is sent
        from the channel's single identity (``email_identity`` / ``linkedin_identity``).

        Raises:
            InvalidSettings: the campaign has no identity for that channel.
        """
        pool = self.pool(action.channel)
        if not pool:
            name = "email" if action.channel is Channel.EMAIL else "LinkedIn"
            raise InvalidSettings(f"campaign {self.id!r}: no {name} identity")
        if enrolment is not None:
            ids = {identity.id for identity in pool}
            for sender in enrolment.senders:
                if sender in ids:
                    return sender
        single = self.email_identity if action.channel is Channel.EMAIL else self.linkedin_identity
        return single.id if single is not None else pool[0].id

    def approve(self, at: dt.datetime) -> Campaign:
        """Approved and scheduled from ``at``."""
        if self.status is not CampaignStatus.DRAFT:
            raise IllegalTransition(f"campaign {self.id!r} is {self.status}, not draft")
        return attrs.evolve(self, status=CampaignStatus.ACTIVE, approved_at=at)

    def pause(self, at: dt.datetime) -> Campaign:
        """Stop sending; pending sends are kept."""
        if self.status is not CampaignStatus.ACTIVE:
            raise IllegalTransition(f"campaign {self.id!r} is {self.status}; only active pauses")
        return attrs.evolve(self, status=CampaignStatus.PAUSED, paused_at=at)

    def resume(self) -> Campaign:
        """Send again; the caller re-times pending sends."""
        if self.status is not CampaignStatus.PAUSED:
            raise IllegalTransition(f"campaign {self.id!r} is {self.status}, not paused")
        return attrs.evolve(self, status=CampaignStatus.ACTIVE, paused_at=None)

    def cancel(self, at: dt.datetime) -> Campaign:
        """Stop for good."""
        if self.status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
            raise IllegalTransition(f"campaign {self.id!r} is already {self.status}")
        return attrs.evolve(self, status=CampaignStatus.CANCELLED, finished_at=at)


@attrs.frozen(kw_only=True)
class Enrolment:
    """One lead in one campaign: its cadence and where it stands.

    Attributes:
        workspace_id, campaign_id: where it belongs.
        lead: the lead, with country and timezone resolved.
        steps: the lead's cadence (the shape's steps it can receive).
        status: see :class:`EnrolmentStatus`.
        approved: the reviewer approved this recipient.
        reason: why it stopped or is paused ("" otherwise).
        resume_at: for an out-of-office pause, when to resume (UTC).
        accepted_at: when the LinkedIn connection was accepted (or None).
        connect_sent_at: when the connection request went out (or None).
        revision: bumped by every stored change (optimistic concurrency, see ports.Storage).
        senders: the lead's assigned sender of each channel of its pool (at most one per
            channel; see :mod:`starlight_sequences.pools`). Empty: the first identity.
    """

    workspace_id: WorkspaceId
    campaign_id: CampaignId
    lead: Lead
    steps: tuple[CadenceStep, ...]
    status: EnrolmentStatus = EnrolmentStatus.IN_REVIEW
    approved: bool = False
    reason: str = ""
    resume_at: dt.datetime | None = None
    accepted_at: dt.datetime | None = None
    connect_sent_at: dt.datetime | None = None
    revision: int = 0
    senders: tuple[SenderId, ...] = ()

    @property
    def lead_id(self) -> LeadId:
        """The enrolled lead's id."""
        return self.lead.id

    def stop(self, status: EnrolmentStatus, reason: str) -> Enrolment:
        """A final status with its reason; a final enrolment stays as it is."""
        if not status.is_final:
            raise IllegalTransition(f"{status} is not a final enrolment status")
        if self.status.is_final:
            return self
        return attrs.evolve(self, status=status, reason=reason, resume_at=None)


def idempotency_key_for(workspace_id: str, send_id: str) -> str:
    """The idempotency key of a send (see ``ScheduledSend.idempotency_key``): a hash of its
    workspace and send id, so it is the same on every attempt and differs across workspaces."""
    digest = hashlib.sha256(f"{workspace_id}\x00{send_id}".encode()).hexdigest()
    return f"stl-{digest[:32]}"


def send_id_for(campaign_id: CampaignId, lead_id: LeadId, step: int) -> SendId:
    """The stable id of the send of ``step`` to ``lead_id`` in ``campaign_id``."""
    return SendId(f"{campaign_id}:{lead_id}:{step}")


@attrs.frozen(kw_only=True)
class ScheduledSend:
    """One step to one lead: when it is due, who holds it, and what became of it.

    Attributes:
        id: stable across retries (see :func:`send_id_for`).
        workspace_id, campaign_id, lead_id, step: what it is.
        action: the step's action.
        sender_id: the identity it goes out from.
        due_at: when it is due (UTC); for PENDING sends, the forecast.
        forecast_at: the instant planned at approval (for reports).
        status: see :class:`SendStatus`.
        attempts: how many times it was handed to a sender.
        lease_owner, lease_expires_at: the worker holding the claim, and until when.
        sent_at: when the sender accepted it.
        receipt: the sender's id for the sent message.
        reason: why it was skipped or failed, or the last transient error.
        with_note: a connection request carries its note.
        revision: bumped by every stored change (optimistic concurrency, see ports.Storage).
    """

    id: SendId
    workspace_id: WorkspaceId
    campaign_id: CampaignId
    lead_id: LeadId
    step: int
    action: Action
    sender_id: SenderId
    due_at: dt.datetime
    forecast_at: dt.datetime
    status: SendStatus
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    receipt: str = ""
    reason: str = ""
    with_note: bool = False
    revision: int = 0

    @property
    def idempotency_key(self) -> str:
        """A stable key for the sender: the same for every attempt of this send."""
        return idempotency_key_for(self.workspace_id, self.id)
