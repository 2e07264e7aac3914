"""What the rooms of the service genuinely share: the ports, and the few rules that more than
one use case applies (placing a send in its sender's schedule, releasing reservations,
carrying a lead on after a dropped step, completing a campaign).

Nothing here is a use case of its own; each function is called by at least two rooms.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import attrs

from starlight_sequences.calendar import (
    BusinessCalendar,
    SenderLimits,
    SlotRequest,
    allocate_slots,
)
from starlight_sequences.campaigns import (
    Campaign,
    CampaignStatus,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action, Channel
from starlight_sequences.credits import (
    CreditMovement,
    MovementKind,
    PriceTable,
    fallback_borrow,
    send_reservations,
)
from starlight_sequences.drafts import Draft
from starlight_sequences.errors import ConcurrentUpdate, DraftNotFound
from starlight_sequences.events import Activity, ActivityKind, ActivityReason
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.planning import calendar_for, step_moment
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.drafter import Drafter
from starlight_sequences.ports.senders import EmailSender, LinkedInSender
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.service._journal import Listeners

RETRIES = 5
"""How often a use case re-reads and retries after another writer changed its records."""

OPEN_UNCLAIMED = frozenset({SendStatus.PENDING, SendStatus.WAITING, SendStatus.SCHEDULED})
"""Sends that are still to go out and that no worker holds."""

DRAFTER_FAILED_PREFIX = "drafter failed"
"""How the problem of a draft the drafter could not make begins (it was not charged)."""

ACTION_LABEL = {
    Action.EMAIL: "Email",
    Action.LINKEDIN_CONNECT: "LinkedIn connection request",
    Action.LINKEDIN_MESSAGE: "LinkedIn message",
}

CHANNEL_ACTIONS: dict[Channel, frozenset[Action]] = {
    channel: frozenset(a for a in Action if a.channel is channel) for channel in Channel
}

_SAME_CAP_GROUP: dict[Action, frozenset[Action]] = {
    Action.EMAIL: frozenset({Action.EMAIL}),
    Action.LINKEDIN_CONNECT: frozenset({Action.LINKEDIN_CONNECT}),
    Action.LINKEDIN_MESSAGE: frozenset({Action.LINKEDIN_MESSAGE}),
}

_Record = TypeVar("_Record", Campaign, Enrolment, ScheduledSend)


@attrs.define(kw_only=True)
class ServiceContext:
    """The ports and settings every room works through (one instance per service).

    Mutable on purpose: a host may swap an adapter or its prices on a running service, and
    every room sees the change.
    """

    storage: Storage
    ledger: CreditLedger
    drafter: Drafter
    clock: Clock
    email_sender: EmailSender | None
    linkedin_sender: LinkedInSender | None
    prices: PriceTable
    draft_batch_size: int
    unsubscribe_url: Callable[[ScheduledSend], str] | None
    send_without_unsubscribe: bool = False
    sleep: Callable[[float], None] = time.sleep
    """How the service waits out a storage blip before writing again (tests replace it)."""
    listeners: Listeners = attrs.Factory(Listeners)
    """The host's callbacks, told of each activity once its commit returned."""

    def commit(self, workspace_id: WorkspaceId, changes: Changes) -> bool:
        """``storage.commit``, then the listeners told of the activities it recorded."""
        stored = self.storage.commit(workspace_id, changes)
        if stored:
            self.listeners.publish(workspace_id, changes.activities)
        return stored

    def finish_send(
        self,
        send: ScheduledSend,
        *,
        worker_id: str,
        now: dt.datetime,
        changes: Changes | None = None,
    ) -> None:
        """``storage.finish_send``, then the listeners told of the activities it recorded."""
        self.storage.finish_send(send, worker_id=worker_id, now=now, changes=changes)
        if changes is not None:
            self.listeners.publish(send.workspace_id, changes.activities)

    def prices_of(self, campaign: Campaign | None) -> PriceTable:
        """The prices a campaign's credits move by: those it was created under."""
        if campaign is not None and campaign.prices is not None:
            return campaign.prices
        return self.prices


def bump(record: _Record, **changes: Any) -> _Record:
    """The record with ``changes`` applied and its revision bumped (see ports.Changes)."""
    return attrs.evolve(record, revision=record.revision + 1, **changes)


def contact_keys(lead: Lead) -> set[str]:
    """How a contact appears on a suppression list: its id and its email address."""
    return {lead.id, *([lead.email.lower()] if lead.email else [])}


def send_activity(
    kind: ActivityKind, send: ScheduledSend, at: dt.datetime, detail: str, reason: str = ""
) -> Activity:
    """The journal line of something that happened to one send."""
    return Activity(
        kind=kind,
        at=at,
        campaign_id=send.campaign_id,
        lead_id=send.lead_id,
        step=send.step,
        detail=detail,
        reason=reason,
    )


STOP_REASONS: dict[EnrolmentStatus, ActivityReason] = {
    EnrolmentStatus.REPLIED: ActivityReason.REPLY,
    EnrolmentStatus.MEETING_BOOKED: ActivityReason.MEETING_BOOKED,
    EnrolmentStatus.BOUNCED: ActivityReason.BOUNCE,
    EnrolmentStatus.UNSUBSCRIBED: ActivityReason.UNSUBSCRIBE,
    EnrolmentStatus.FAILED: ActivityReason.SEND_FAILED,
    EnrolmentStatus.CANCELLED: ActivityReason.CAMPAIGN_CANCELLED,
}
"""The machine-readable reason of a lead stopped with each final status."""


def lead_ended(
    before: Enrolment,
    after: Enrolment,
    at: dt.datetime,
    reason: str = "",
    *,
    stopped: bool = False,
) -> tuple[Activity, ...]:
    """The journal line of a lead whose sequence ended between ``before`` and ``after``:
    COMPLETED when it completed (STOPPED instead when ``stopped``), STOPPED with the reason
    of its final status otherwise; nothing when it had ended already or goes on.

    Args:
        before: the enrolment as read.
        after: the enrolment as it will be written.
        at: when it ended.
        reason: the machine-readable reason (default: that of ``after``'s status).
        stopped: a COMPLETED status that is a stop (another contact's reply).
    """
    if before.status.is_final or not after.status.is_final:
        return ()
    completed = after.status is EnrolmentStatus.COMPLETED and not stopped
    return (
        Activity(
            kind=ActivityKind.COMPLETED if completed else ActivityKind.STOPPED,
            at=at.astimezone(dt.UTC),
            campaign_id=after.campaign_id,
            lead_id=after.lead_id,
            detail=after.reason or after.status.value.replace("_", " "),
            reason=reason or STOP_REASONS.get(after.status, ""),
        ),
    )


def lead_calendar(campaign: Campaign, enrolment: Enrolment) -> BusinessCalendar:
    """The business calendar a lead of the campaign is timed by."""
    return calendar_for(
        enrolment.lead, campaign.settings.business_hours, campaign.settings.closures
    )


def find_draft(
    storage: Storage, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId, step: int
) -> Draft:
    """The current draft of one step of one lead.

    Raises:
        DraftNotFound: the campaign has no draft for that step.
    """
    for draft in storage.list_drafts(workspace_id, campaign_id, lead_id):
        if draft.step == step:
            return draft
    raise DraftNotFound(f"campaign {campaign_id!r} has no draft for {lead_id!r} step {step}")


def releases(
    ctx: ServiceContext, sends: Iterable[ScheduledSend], note: str
) -> list[CreditMovement]:
    """The keyed movements that give back the reservations of sends that will not go out."""
    prices: dict[tuple[WorkspaceId, CampaignId], PriceTable] = {}
    branched: dict[tuple[WorkspaceId, CampaignId], bool] = {}
    movements = []
    for s in sends:
        key = (s.workspace_id, s.campaign_id)
        if key not in prices:
            campaign = ctx.storage.get_campaign(*key)
            prices[key] = ctx.prices_of(campaign)
            branched[key] = any(step.is_fallback for step in campaign.shape.steps)
        amount = prices[key].price_of(s.action)
        if branched[key]:
            amount = held_by(ctx, s, prices[key])
        movements.append(
            CreditMovement(
                kind=MovementKind.RELEASE,
                amount=amount,
                campaign_id=s.campaign_id,
                lead_id=s.lead_id,
                key=f"release:{s.workspace_id}:{s.id}",
                note=note,
            )
        )
    return movements


FALLBACK_TAKES_OVER = "; the fallback email takes over"
"""How the skip reason of a gated step ends when the connection request was declined or timed
out and the lead's fallback is still to go: such a step hands part of its reservation to the
fallback (see ``credits.fallback_borrow``)."""

FALLBACK_NOT_NEEDED = "connection accepted: the fallback is not needed"
"""The skip reason of a fallback step once the lead accepted the connection request."""


def not_accepted_reason(reason: str, enrolment: Enrolment, sends: Iterable[ScheduledSend]) -> str:
    """The skip reason of the lead's gated steps on a decline or a timeout: ``reason``, marked
    with :data:`FALLBACK_TAKES_OVER` when the lead's fallback is still open (it takes over)."""
    fallback = {s.number for s in enrolment.steps if s.is_fallback}
    if any(s.step in fallback and s.status in OPEN_UNCLAIMED for s in sends):
        return reason + FALLBACK_TAKES_OVER
    return reason


def complete_if_nothing_left(
    ctx: ServiceContext, enrolment: Enrolment, now: dt.datetime, reason: str
) -> None:
    """Complete a lead that has no step left to go (its fallback skipped by the dispatcher
    because the connection was accepted while it was claimed). Another writer's change
    meanwhile wins: the lead is then left as that writer made it."""
    stored = ctx.storage.get_enrolment(
        enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
    )
    sends = ctx.storage.list_sends(enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id)
    if stored.status.is_final or not all(s.status.is_final for s in sends):
        return
    done = bump(stored.stop(EnrolmentStatus.COMPLETED, reason))
    with contextlib.suppress(ConcurrentUpdate):
        ctx.commit(
            enrolment.workspace_id,
            Changes(enrolments=(done,), activities=lead_ended(stored, done, now)),
        )


def held_by(ctx: ServiceContext, send: ScheduledSend, prices: PriceTable) -> int:
    """What the reservation of ``send`` (which will not go out) holds now, for a campaign whose
    shape has a fallback branch: its approval reservation (``credits.send_reservations``),
    minus what a gated step handed to the fallback when the request was not accepted, plus
    what the fallback took over from them (``credits.fallback_borrow``)."""
    steps = ctx.storage.get_enrolment(send.workspace_id, send.campaign_id, send.lead_id).steps
    own = send_reservations(steps, prices).get(send.step, prices.price_of(send.action))
    borrow = fallback_borrow(steps, prices)
    if not borrow:
        return own
    # The stored sends: the caller's copy of a send may predate its skip reason.
    stored = ctx.storage.list_sends(send.workspace_id, send.campaign_id, send.lead_id)
    handed = {
        o.step
        for o in stored
        if o.step in borrow
        and o.status is SendStatus.SKIPPED
        and o.reason.endswith(FALLBACK_TAKES_OVER)
    }
    if send.step in borrow:
        return own - borrow[send.step] if send.step in handed else own
    if any(step.number == send.step and step.is_fallback for step in steps) and handed:
        return own + sum(borrow.values())
    return own


def complete_if_done(
    ctx: ServiceContext, workspace_id: WorkspaceId, campaign_id: CampaignId
) -> None:
    """Mark an active campaign completed once every lead has reached a final status.

    Checked after every dispatch pass, so it costs two indexed reads whatever the size of the
    campaign (never a read of every enrolment).
    """
    if ctx.storage.has_unfinished_enrolments(workspace_id, campaign_id):
        return
    campaign = ctx.storage.get_campaign(workspace_id, campaign_id)
    if campaign.status is not CampaignStatus.ACTIVE:
        return
    now = ctx.clock.now()
    done = bump(campaign, status=CampaignStatus.COMPLETED, finished_at=now)
    completed = Activity(
        kind=ActivityKind.COMPLETED,
        at=now.astimezone(dt.UTC),
        campaign_id=campaign_id,
        detail="campaign completed: every lead finished",
        reason=ActivityReason.EVERY_LEAD_FINISHED,
    )
    with contextlib.suppress(ConcurrentUpdate):  # another writer got there first
        ctx.commit(workspace_id, Changes(campaigns=(done,), activities=(completed,)))


def sender_limits(
    campaign: Campaign, action: Action, sender_id: SenderId | None = None
) -> SenderLimits:
    """The spacing and caps of the campaign's identity that performs ``action`` (the pool's
    ``sender_id``; None: the channel's first identity); a mailbox's daily cap is ramped by its
    warm-up, so planning and every re-timing honour the ramp."""
    if action is Action.EMAIL:
        mailbox = campaign.email_identity
        if sender_id is not None:  # sender pools
            mailbox = campaign.email_identity_of(sender_id) or mailbox
        assert mailbox is not None
        return SenderLimits(
            min_spacing=mailbox.min_spacing,
            daily_cap=mailbox.daily_cap,
            weekly_cap=None,
            timezone=mailbox.timezone,
            warm_up=mailbox.warm_up,
        )
    account = campaign.linkedin_identity
    if sender_id is not None:  # sender pools
        account = campaign.linkedin_identity_of(sender_id) or account
    assert account is not None
    if action is Action.LINKEDIN_CONNECT:
        return SenderLimits(
            min_spacing=account.min_spacing,
            daily_cap=None,
            weekly_cap=account.weekly_connect_cap,
            timezone=account.timezone,
        )
    return SenderLimits(
        min_spacing=account.min_spacing,
        daily_cap=account.daily_message_cap,
        weekly_cap=None,
        timezone=account.timezone,
    )


def allocate(
    ctx: ServiceContext,
    campaign: Campaign,
    action: Action,
    requests: Sequence[SlotRequest],
    sender_id: SenderId | None = None,
) -> dict[str, dt.datetime]:
    """Stagger ``requests`` (all of one action) for the campaign's identity of it (the pool's
    ``sender_id``; None: the channel's first identity)."""
    if not requests:
        return {}
    sender = sender_id if sender_id is not None else campaign.sender_for(action)
    earliest = min(r.earliest for r in requests)
    window = (earliest - dt.timedelta(days=8), earliest + dt.timedelta(days=400))
    same = _SAME_CAP_GROUP[action]
    booked = ctx.storage.sender_bookings(campaign.workspace_id, sender, *window, actions=same)
    # The account's other kinds of action keep their distance but have caps of their own.
    others = CHANNEL_ACTIONS[action.channel] - same
    occupied = (
        ctx.storage.sender_bookings(campaign.workspace_id, sender, *window, actions=others)
        if others
        else []
    )
    return allocate_slots(
        requests,
        sender_limits(campaign, action, sender),
        seed=f"{campaign.settings.seed}:{campaign.id}:{action}",
        booked=booked,
        occupied=occupied,
    )


def slot(
    ctx: ServiceContext,
    campaign: Campaign,
    send: ScheduledSend,
    calendar: BusinessCalendar,
    earliest: dt.datetime,
) -> dt.datetime:
    """A staggered instant for one send of the campaign at or after ``earliest``."""
    request = SlotRequest(
        key=send.id,
        earliest=calendar.next_business_moment(earliest),
        calendar=calendar,
        follow_up=send.step > 1,
    )
    return allocate(ctx, campaign, send.action, [request], send.sender_id)[send.id]


def continue_after(
    ctx: ServiceContext,
    campaign: Campaign,
    enrolment: Enrolment,
    left: Sequence[ScheduledSend],
    anchor: dt.datetime,
    reason: str,
) -> tuple[Enrolment, list[ScheduledSend]]:
    """After a lead's gated steps were dropped (a decline, a timeout): schedule its next
    step from ``anchor`` when nothing else is on its way, or complete the lead when no step
    is left. Returns the enrolment (revision bumped) and the sends to write."""
    if not left:
        return bump(enrolment.stop(EnrolmentStatus.COMPLETED, reason)), []
    status = (
        EnrolmentStatus.ACTIVE
        if enrolment.status is EnrolmentStatus.WAITING_ON_CONNECTION
        else enrolment.status
    )
    updated = bump(enrolment, status=status)
    if any(o.status is not SendStatus.PENDING for o in left):
        return updated, []  # a step is already scheduled (or in flight)
    nxt = min(left, key=lambda o: o.step)
    step = next(s for s in enrolment.steps if s.number == nxt.step)
    calendar = lead_calendar(campaign, enrolment)
    earliest = step_moment(calendar, anchor, step.wait_days)
    due = slot(ctx, campaign, nxt, calendar, earliest)
    return updated, [bump(nxt, status=SendStatus.SCHEDULED, due_at=due)]
