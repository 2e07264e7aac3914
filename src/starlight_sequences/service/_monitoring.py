"""Monitoring: read-only views of campaigns — status per contact, the send log, the
Waiting-on-connections tasks, and timelines of the shape and of one lead.

Reads storage only; it may not write anything or move credits.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from starlight_sequences.campaigns import (
    Campaign,
    Enrolment,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId
from starlight_sequences.locations import load_timezone
from starlight_sequences.reports import (
    CampaignStatusReport,
    ContactStatus,
    SendRecord,
    WaitingOnConnection,
)
from starlight_sequences.service._shared import ServiceContext, lead_calendar
from starlight_sequences.timeline import (
    LeadStepState,
    Timeline,
    timeline_of_lead,
    timeline_of_shape,
)
from starlight_sequences.variants import variant_results


def _send_record(send: ScheduledSend, zone: zoneinfo.ZoneInfo) -> SendRecord:
    return SendRecord(
        lead_id=send.lead_id,
        step=send.step,
        action=send.action,
        status=send.status,
        sender_id=send.sender_id,
        timezone=zone.key,
        forecast_utc=send.forecast_at.astimezone(dt.UTC),
        due_utc=send.due_at.astimezone(dt.UTC),
        due_local=send.due_at.astimezone(zone),
        sent_utc=send.sent_at.astimezone(dt.UTC) if send.sent_at else None,
        sent_local=send.sent_at.astimezone(zone) if send.sent_at else None,
        attempts=send.attempts,
        receipt=send.receipt,
        reason=send.reason,
    )


def _contact_status(
    campaign: Campaign, enrolment: Enrolment, sends: list[ScheduledSend]
) -> ContactStatus:
    """One contact's row: the step it is on, and when that step goes out."""
    current = next((s for s in sends if not s.status.is_final), None)
    if current is None and sends:
        current = sends[-1]
    next_utc = (
        current.due_at
        if current is not None and current.status in (SendStatus.SCHEDULED, SendStatus.CLAIMED)
        else None
    )
    zone = lead_calendar(campaign, enrolment).zone
    return ContactStatus(
        lead=enrolment.lead,
        step=current.step if current is not None else enrolment.steps[0].number,
        action=current.action if current is not None else enrolment.steps[0].action,
        status=enrolment.status,
        send_status=current.status if current is not None else None,
        next_send_utc=next_utc,
        next_send_local=next_utc.astimezone(zone) if next_utc else None,
        reason=enrolment.reason,
    )


class Monitoring:
    """Status, Waiting on connections, and timelines."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def status(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> CampaignStatusReport:
        """Every enrolled contact with its step, status and next send; counts per step."""
        storage = self._ctx.storage
        campaign = storage.get_campaign(workspace_id, campaign_id)
        sends_by_lead: dict[LeadId, list[ScheduledSend]] = {}
        all_sends = storage.list_sends(workspace_id, campaign_id)
        for send in all_sends:
            sends_by_lead.setdefault(send.lead_id, []).append(send)
        rows = []
        counts: dict[tuple[int, SendStatus], int] = {}
        enrolments = storage.list_enrolments(workspace_id, campaign_id)
        for enrolment in enrolments:
            sends = sends_by_lead.get(enrolment.lead_id, [])
            rows.append(_contact_status(campaign, enrolment, sends))
            for send in sends:
                key = (send.step, send.status)
                counts[key] = counts.get(key, 0) + 1
        senders = {i.id for i in (campaign.email_identity, campaign.linkedin_identity) if i}
        return CampaignStatusReport(
            campaign=campaign,
            contacts=tuple(rows),
            counts=tuple(sorted((step, st, n) for (step, st), n in counts.items())),
            variants=variant_results(
                campaign.shape, enrolments, all_sends, dict(campaign.variant_winners)
            ),
            held_senders=tuple(
                h
                for h in storage.list_sender_holds(workspace_id)
                if h.held and h.sender_id in senders
            ),
        )

    def sends(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId | None
    ) -> list[SendRecord]:
        """The campaign's sends (of one lead when given), by lead then step."""
        storage = self._ctx.storage
        storage.get_campaign(workspace_id, campaign_id)
        if lead_id is not None:
            enrolments = [storage.get_enrolment(workspace_id, campaign_id, lead_id)]
        else:
            enrolments = storage.list_enrolments(workspace_id, campaign_id)
        zones = {e.lead_id: load_timezone(e.lead.timezone or "UTC") for e in enrolments}
        return [
            _send_record(send, zones[send.lead_id])
            for send in storage.list_sends(workspace_id, campaign_id, lead_id)
        ]

    def waiting_on_connections(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId | None
    ) -> list[WaitingOnConnection]:
        """Leads whose LinkedIn message waits for an acceptance."""
        storage = self._ctx.storage
        campaigns = (
            [storage.get_campaign(workspace_id, campaign_id)]
            if campaign_id is not None
            else storage.list_campaigns(workspace_id)
        )
        tasks = []
        for campaign in campaigns:
            enrolments = {e.lead_id: e for e in storage.list_enrolments(workspace_id, campaign.id)}
            for send in storage.list_sends(workspace_id, campaign.id):
                if send.status is not SendStatus.WAITING:
                    continue
                enrolment = enrolments[send.lead_id]
                tasks.append(
                    WaitingOnConnection(
                        campaign_id=campaign.id,
                        lead=enrolment.lead,
                        step=send.step,
                        since=enrolment.connect_sent_at,
                        times_out_at=send.due_at,
                    )
                )
        return sorted(tasks, key=lambda t: (t.times_out_at, t.lead.id))

    def shape_timeline(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Timeline:
        """The campaign's shape as a timeline."""
        return timeline_of_shape(self._ctx.storage.get_campaign(workspace_id, campaign_id).shape)

    def lead_timeline(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Timeline:
        """One lead's timeline, in the lead's own timezone."""
        enrolment, sends = self.lead_timeline_states(workspace_id, campaign_id, lead_id)
        lead = enrolment.lead
        name = " ".join(p for p in (lead.first_name, lead.last_name) if p) or lead.id
        states = [
            LeadStepState(
                step=send.step,
                status=send.status,
                at=send.sent_at or send.due_at,
                reason=send.reason,
            )
            for send in sends
        ]
        return timeline_of_lead(name, enrolment.steps, states, timezone=lead.timezone)

    def lead_timeline_states(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        """The enrolment and its sends."""
        storage = self._ctx.storage
        storage.get_campaign(workspace_id, campaign_id)
        return (
            storage.get_enrolment(workspace_id, campaign_id, lead_id),
            storage.list_sends(workspace_id, campaign_id, lead_id),
        )
