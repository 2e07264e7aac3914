"""Controls: the user's levers on a running campaign — settings, pause, resume and cancel of
a campaign or of one lead.

Owns campaign and enrolment status changes made by people (never by events or sends).
It never sends and never drafts; a cancel releases reservations like any stopped step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from starlight_sequences.calendar import SlotRequest
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    CampaignStatus,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action
from starlight_sequences.errors import ConcurrentUpdate, IllegalTransition
from starlight_sequences.events import Activity, ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.ports.storage import Changes
from starlight_sequences.service._inbound import stop_lead
from starlight_sequences.service._shared import (
    RETRIES,
    ServiceContext,
    allocate,
    bump,
    lead_calendar,
    lead_ended,
    releases,
)


class Controls:
    """Settings, pause, resume and cancel."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def update_settings(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, settings: CampaignSettings
    ) -> Campaign:
        """Replace a campaign's settings (see ``CampaignService.update_settings``)."""
        storage = self._ctx.storage
        campaign = storage.get_campaign(workspace_id, campaign_id)
        if campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
            raise IllegalTransition(f"campaign {campaign_id!r} is {campaign.status}")
        updated = bump(campaign, settings=settings)
        storage.commit(workspace_id, Changes(campaigns=(updated,)))
        return updated

    def pause_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """Stop sending; nothing pending is lost."""
        ctx = self._ctx
        campaign = ctx.storage.get_campaign(workspace_id, campaign_id)
        now = ctx.clock.now()
        paused = bump(campaign.pause(now))
        ctx.commit(
            workspace_id,
            Changes(
                campaigns=(paused,),
                activities=(Activity(kind=ActivityKind.PAUSED, at=now, campaign_id=campaign_id),),
            ),
        )
        return paused

    def resume_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """Send again; what fell due during the pause is re-timed from now."""
        ctx = self._ctx
        campaign = ctx.storage.get_campaign(workspace_id, campaign_id)
        resumed = bump(campaign.resume())
        now = ctx.clock.now()
        retimed = self._retime_overdue(
            resumed, ctx.storage.list_sends(workspace_id, campaign_id), now
        )
        ctx.commit(
            workspace_id,
            Changes(
                campaigns=(resumed,),
                sends=tuple(retimed),
                activities=(Activity(kind=ActivityKind.RESUMED, at=now, campaign_id=campaign_id),),
            ),
        )
        return resumed

    def _retime_overdue(
        self, campaign: Campaign, sends: Sequence[ScheduledSend], now: dt.datetime
    ) -> list[ScheduledSend]:
        overdue = [s for s in sends if s.status is SendStatus.SCHEDULED and s.due_at < now]
        by_action: dict[tuple[Action, SenderId], list[SlotRequest]] = {}
        for send in overdue:
            enrolment = self._ctx.storage.get_enrolment(
                campaign.workspace_id, campaign.id, send.lead_id
            )
            calendar = lead_calendar(campaign, enrolment)
            by_action.setdefault((send.action, send.sender_id), []).append(
                SlotRequest(
                    key=send.id,
                    earliest=calendar.next_business_moment(now),
                    calendar=calendar,
                    follow_up=send.step > 1,
                )
            )
        slots: dict[str, dt.datetime] = {}
        for (action, sender), requests in sorted(by_action.items()):
            slots.update(allocate(self._ctx, campaign, action, requests, sender))
        return [bump(s, due_at=slots[s.id]) for s in overdue]

    def cancel_campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        """Stop for good: every pending step is skipped and its reservation released."""
        for _ in range(RETRIES):
            try:
                return self._cancel(workspace_id, campaign_id)
            except ConcurrentUpdate:
                continue
        return self._cancel(workspace_id, campaign_id)

    def _cancel(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        ctx = self._ctx
        campaign = ctx.storage.get_campaign(workspace_id, campaign_id)
        now = ctx.clock.now()
        cancelled = bump(campaign.cancel(now))
        released: list[ScheduledSend] = []
        enrolments = []
        sends = []
        journal = [Activity(kind=ActivityKind.CANCELLED, at=now, campaign_id=campaign_id)]
        for enrolment in ctx.storage.list_enrolments(workspace_id, campaign_id):
            if enrolment.status.is_final:
                continue
            stopped, skipped = stop_lead(
                ctx, enrolment, EnrolmentStatus.CANCELLED, "campaign cancelled", released
            )
            enrolments.append(stopped)
            sends.extend(skipped)
            journal.extend(lead_ended(enrolment, stopped, now))
        ctx.commit(
            workspace_id,
            Changes(
                campaigns=(cancelled,),
                enrolments=tuple(enrolments),
                sends=tuple(sends),
                activities=tuple(journal),
            ),
        )
        if released:
            ctx.ledger.post(workspace_id, *releases(ctx, released, "campaign cancelled"))
        return cancelled

    def pause_enrolment(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """Hold one lead's remaining steps."""
        storage = self._ctx.storage
        enrolment = storage.get_enrolment(workspace_id, campaign_id, lead_id)
        if enrolment.status.is_final:
            raise IllegalTransition(f"lead {lead_id!r} in {campaign_id!r} is {enrolment.status}")
        paused = bump(enrolment, status=EnrolmentStatus.PAUSED, reason="paused by the user")
        storage.commit(workspace_id, Changes(enrolments=(paused,)))
        return paused

    def resume_enrolment(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """Resume one paused lead; its overdue step is re-timed from now."""
        ctx = self._ctx
        campaign = ctx.storage.get_campaign(workspace_id, campaign_id)
        enrolment = ctx.storage.get_enrolment(workspace_id, campaign_id, lead_id)
        if enrolment.status not in (EnrolmentStatus.PAUSED, EnrolmentStatus.OUT_OF_OFFICE):
            raise IllegalTransition(f"lead {lead_id!r} in {campaign_id!r} is not paused")
        sends = ctx.storage.list_sends(workspace_id, campaign_id, lead_id)
        if campaign.status is CampaignStatus.DRAFT:
            status = EnrolmentStatus.IN_REVIEW
        elif any(s.status is SendStatus.WAITING for s in sends):
            status = EnrolmentStatus.WAITING_ON_CONNECTION
        else:
            status = EnrolmentStatus.ACTIVE
        resumed = bump(enrolment, status=status, reason="", resume_at=None)
        retimed = self._retime_overdue(campaign, sends, ctx.clock.now())
        ctx.commit(workspace_id, Changes(enrolments=(resumed,), sends=tuple(retimed)))
        return resumed
