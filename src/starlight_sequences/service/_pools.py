"""Sender pools: assigning leads to a campaign's senders, and removing a sender mid-campaign.

Owns ``Enrolment.senders`` and ``Campaign.retired_senders``. The decision is the pure
:func:`starlight_sequences.pools.assign_senders`; this room measures each sender's remaining
capacity from storage (bookings across every campaign of the workspace) and writes the result.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

import attrs

from starlight_sequences.calendar import SlotRequest
from starlight_sequences.campaigns import (
    Campaign,
    EmailIdentity,
    Enrolment,
    LinkedInIdentity,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action, Channel
from starlight_sequences.errors import ConcurrentUpdate, LastSender, UnknownSender
from starlight_sequences.events import Activity, ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.pools import SenderCapacity, assign_senders
from starlight_sequences.ports.storage import Changes
from starlight_sequences.service._shared import (
    RETRIES,
    ServiceContext,
    allocate,
    bump,
    lead_calendar,
)

_STARTED = frozenset({SendStatus.SENT, SendStatus.CLAIMED})
"""A lead has started with a sender once a send of its channel went out (or is going out)."""


def _period(now: dt.datetime, zone: str, weekly: bool) -> tuple[dt.datetime, dt.datetime]:
    """The sender-local day (or ISO week) holding ``now``, as UTC instants."""
    local = now.astimezone(zoneinfo.ZoneInfo(zone))
    day = local.date() - dt.timedelta(days=local.weekday() if weekly else 0)
    start = dt.datetime.combine(day, dt.time(), tzinfo=local.tzinfo)
    end = start + dt.timedelta(days=7 if weekly else 1)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def remaining_capacity(
    ctx: ServiceContext,
    workspace_id: WorkspaceId,
    identity: EmailIdentity | LinkedInIdentity,
    action: Action,
    now: dt.datetime,
) -> int:
    """Room left in ``identity``'s cap of ``action`` for its current day (a LinkedIn account's
    connection requests: its current ISO week), counting every campaign of the workspace."""
    if isinstance(identity, EmailIdentity):
        cap, weekly = identity.daily_cap, False
    elif action is Action.LINKEDIN_CONNECT:
        cap, weekly = identity.weekly_connect_cap, True
    else:
        cap, weekly = identity.daily_message_cap, False
    start, end = _period(now, identity.timezone, weekly)
    booked = ctx.storage.sender_bookings(workspace_id, identity.id, start, end, actions={action})
    return max(0, cap - len(booked))


def _first_action(enrolments: Sequence[Enrolment], channel: Channel) -> Action:
    """The action whose cap decides the split: the leads' first step of the channel."""
    for enrolment in enrolments:
        for step in enrolment.steps:
            if step.channel is channel:
                return step.action
    return Action.EMAIL if channel is Channel.EMAIL else Action.LINKEDIN_MESSAGE


def _with_sender(
    campaign: Campaign, enrolment: Enrolment, channel: Channel, sender: SenderId
) -> tuple[SenderId, ...]:
    """The enrolment's senders with its sender of ``channel`` set to ``sender``."""
    others = {i.id for i in campaign.pool(channel)}
    return (*(s for s in enrolment.senders if s not in others), sender)


def assign_pool(
    ctx: ServiceContext, campaign: Campaign, enrolments: Sequence[Enrolment], now: dt.datetime
) -> list[Enrolment]:
    """Each enrolment with its sender of every channel its steps use, spread over the pool by
    remaining capacity (see :func:`starlight_sequences.pools.assign_senders`)."""
    result = list(enrolments)
    for channel in (Channel.EMAIL, Channel.LINKEDIN):
        pool = campaign.active_pool(channel)
        needing = [e for e in result if any(s.channel is channel for s in e.steps)]
        if not pool or not needing:
            continue
        action = _first_action(needing, channel)
        capacities = [
            SenderCapacity(
                sender_id=i.id,
                remaining=remaining_capacity(ctx, campaign.workspace_id, i, action, now),
            )
            for i in pool
        ]
        chosen = assign_senders([e.lead_id for e in needing], capacities)
        result = [
            attrs.evolve(e, senders=_with_sender(campaign, e, channel, chosen[e.lead_id]))
            if e.lead_id in chosen
            else e
            for e in result
        ]
    return result


class SenderPools:
    """Remove a sender from a campaign's pool mid-campaign."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def remove_sender(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        sender_id: SenderId,
        *,
        move_started: bool,
    ) -> Campaign:
        """See ``CampaignService.remove_sender``."""
        for _ in range(RETRIES):
            try:
                return self._remove(workspace_id, campaign_id, sender_id, move_started)
            except ConcurrentUpdate:
                continue
        return self._remove(workspace_id, campaign_id, sender_id, move_started)

    def _remove(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        sender_id: SenderId,
        move_started: bool,
    ) -> Campaign:
        ctx = self._ctx
        campaign = ctx.storage.get_campaign(workspace_id, campaign_id)
        channel = _channel_of(campaign, sender_id)
        now = ctx.clock.now()
        sends: dict[str, list[ScheduledSend]] = {}
        for send in ctx.storage.list_sends(workspace_id, campaign_id):
            if send.action.channel is channel and send.sender_id == sender_id:
                sends.setdefault(send.lead_id, []).append(send)
        any_action = Action.EMAIL if channel is Channel.EMAIL else Action.LINKEDIN_MESSAGE
        needing = [
            e
            for e in ctx.storage.list_enrolments(workspace_id, campaign_id)
            if not e.status.is_final
            and any(step.channel is channel for step in e.steps)
            and campaign.sender_for(any_action, e) == sender_id
            # before approval a lead has no sends yet: it still needs its sender
            and (e.lead_id not in sends or any(not s.status.is_final for s in sends[e.lead_id]))
        ]
        retired = bump(campaign, retired_senders=(*campaign.retired_senders, sender_id))
        others = retired.active_pool(channel)
        if needing and not others:
            raise LastSender(campaign_id, sender_id, len(needing))
        movers = [
            e
            for e in needing
            if move_started or not any(s.status in _STARTED for s in sends.get(e.lead_id, ()))
        ]
        enrolments: list[Enrolment] = []
        moved: list[ScheduledSend] = []
        if movers:
            action = _first_action(movers, channel)
            capacities = [
                SenderCapacity(
                    sender_id=i.id,
                    remaining=remaining_capacity(ctx, workspace_id, i, action, now),
                )
                for i in others
            ]
            chosen = assign_senders([e.lead_id for e in movers], capacities)
            for enrolment in movers:
                new = chosen[enrolment.lead_id]
                enrolments.append(
                    bump(enrolment, senders=_with_sender(retired, enrolment, channel, new))
                )
            moved = self._move(retired, movers, sends, chosen, now)
        note = Activity(
            kind=ActivityKind.SENDER_REMOVED,
            at=now.astimezone(dt.UTC),
            campaign_id=campaign_id,
            detail=f"sender {sender_id} removed from the pool: {len(movers)} lead(s) moved to"
            f" the others, {len(needing) - len(movers)} kept it",
        )
        changes = Changes(
            campaigns=(retired,),
            enrolments=tuple(enrolments),
            sends=tuple(moved),
            activities=(note,),
        )
        ctx.commit(workspace_id, changes)
        return retired

    def _move(
        self,
        campaign: Campaign,
        movers: Sequence[Enrolment],
        sends: dict[str, list[ScheduledSend]],
        chosen: dict[LeadId, SenderId],
        now: dt.datetime,
    ) -> list[ScheduledSend]:
        """The movers' sends that are neither final nor in flight, from their new sender; the
        scheduled ones get slots in the new sender's spacing and caps (one batch per sender,
        so they keep their distance from each other too)."""
        moved: list[ScheduledSend] = []
        lanes: dict[tuple[Action, SenderId], list[SlotRequest]] = {}
        for enrolment in movers:
            calendar = lead_calendar(campaign, enrolment)
            for send in sends.get(enrolment.lead_id, ()):
                if send.status.is_final or send.status is SendStatus.CLAIMED:
                    continue
                moved.append(attrs.evolve(send, sender_id=chosen[enrolment.lead_id]))
                if send.status is SendStatus.SCHEDULED:
                    lanes.setdefault((send.action, moved[-1].sender_id), []).append(
                        SlotRequest(
                            key=send.id,
                            earliest=calendar.next_business_moment(max(send.due_at, now)),
                            calendar=calendar,
                            follow_up=send.step > 1,
                        )
                    )
        slots: dict[str, dt.datetime] = {}
        for (action, sender), requests in sorted(lanes.items()):
            slots.update(allocate(self._ctx, campaign, action, requests, sender))
        return [bump(s, due_at=slots.get(s.id, s.due_at)) for s in moved]


def _channel_of(campaign: Campaign, sender_id: SenderId) -> Channel:
    if sender_id in campaign.retired_senders:
        raise UnknownSender(campaign.id, sender_id)
    if campaign.email_identity_of(sender_id) is not None:
        return Channel.EMAIL
    if campaign.linkedin_identity_of(sender_id) is not None:
        return Channel.LINKEDIN
    raise UnknownSender(campaign.id, sender_id)
