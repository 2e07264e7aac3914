"""Review: what a user sees and changes between creation and approval — the preview, edits,
regenerations, and excluding or approving one recipient.

Owns drafts after creation and the in-review status of recipients. It never schedules or
sends; approval of the whole campaign belongs to the outbound builder.
"""

from __future__ import annotations

import datetime as dt
import uuid

import attrs

from starlight_sequences.cadence import fallback_dropped
from starlight_sequences.campaigns import (
    Campaign,
    CampaignStatus,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditMovement, MovementKind
from starlight_sequences.drafts import Draft
from starlight_sequences.email_threads import reply_subject, thread_starter
from starlight_sequences.errors import DraftsNeedAttention, IllegalTransition, InvalidDraft
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId
from starlight_sequences.planning import forecast, step_moment
from starlight_sequences.ports.drafter import DraftFailure
from starlight_sequences.ports.storage import Changes
from starlight_sequences.reports import CampaignPreview, PlannedStep, RecipientPreview
from starlight_sequences.service._drafting import checked_draft, draft_request, to_draft
from starlight_sequences.service._forecast import forecast_last_send
from starlight_sequences.service._outbound import campaign_start
from starlight_sequences.service._shared import (
    ServiceContext,
    bump,
    find_draft,
    lead_calendar,
)


def _require_review(campaign: Campaign) -> None:
    if campaign.status is not CampaignStatus.DRAFT:
        raise IllegalTransition(
            f"campaign {campaign.id!r} is {campaign.status}; drafts change only in review"
        )


class Review:
    """Preview, edit, regenerate, exclude and approve recipients."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def preview(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId | None
    ) -> CampaignPreview:
        """Every recipient's cadence, drafts and planned dates (see ``CampaignService``)."""
        storage = self._ctx.storage
        campaign = storage.get_campaign(workspace_id, campaign_id)
        enrolments = storage.list_enrolments(workspace_id, campaign_id)
        if lead_id is not None:
            enrolments = [e for e in enrolments if e.lead_id == lead_id]
        drafts: dict[tuple[LeadId, int], Draft] = {
            (d.lead_id, d.step): d for d in storage.list_drafts(workspace_id, campaign_id, lead_id)
        }
        listed = storage.list_sends(workspace_id, campaign_id, lead_id)
        sends: dict[tuple[LeadId, int], ScheduledSend] = {(s.lead_id, s.step): s for s in listed}
        start = campaign_start(self._ctx, campaign)
        recipients = tuple(
            self._recipient(campaign, enrolment, drafts, sends, start) for enrolment in enrolments
        )
        # The campaign-wide forecast needs every lead: the preview of one lead goes without.
        last = (
            forecast_last_send(self._ctx, campaign, enrolments, listed, start)
            if lead_id is None
            else None
        )
        return CampaignPreview(
            campaign=campaign, recipients=recipients, excluded=campaign.excluded, last_send_at=last
        )

    @staticmethod
    def _recipient(
        campaign: Campaign,
        enrolment: Enrolment,
        drafts: dict[tuple[LeadId, int], Draft],
        sends: dict[tuple[LeadId, int], ScheduledSend],
        start: dt.datetime,
    ) -> RecipientPreview:
        calendar = lead_calendar(campaign, enrolment)
        planned: list[dt.datetime] | None = None
        if not sends:
            planned = forecast(calendar, enrolment.steps, step_moment(calendar, start, 0))
        rows = []
        for index, step in enumerate(enrolment.steps):
            send = sends.get((enrolment.lead_id, step.number))
            due = send.due_at if send is not None else (planned[index] if planned else None)
            if send is not None and send.status is SendStatus.SENT:
                due = send.sent_at
            draft = drafts.get((enrolment.lead_id, step.number))
            starter = thread_starter(enrolment.steps, step.number)
            thread_of = starter if starter is not None and starter != step.number else None
            subject = draft.subject if draft is not None else None
            if thread_of is not None:
                first = drafts.get((enrolment.lead_id, thread_of))
                subject = reply_subject(first.subject or "") if first is not None else None
            rows.append(
                PlannedStep(
                    step=step.number,
                    action=step.action,
                    draft=draft,
                    due_utc=due,
                    due_local=due.astimezone(calendar.zone) if due is not None else None,
                    status=send.status if send is not None else None,
                    gated=step.gated_on_acceptance,
                    reason=send.reason if send is not None else "",
                    thread_of=thread_of,
                    subject=subject if step.action is Action.EMAIL else None,
                    variant=step.variant,
                    sender_id=(
                        send.sender_id
                        if send is not None
                        else campaign.sender_for(step.action, enrolment)
                        if campaign.pool(step.action.channel)
                        else None
                    ),
                )
            )
        lead = enrolment.lead
        return RecipientPreview(
            lead=lead,
            status=enrolment.status,
            approved=enrolment.approved,
            reason=enrolment.reason,
            steps=tuple(rows),
            assumed_timezone=lead.timezone if lead.timezone_reason else None,
            timezone_reason=lead.timezone_reason,
            fallback_dropped=fallback_dropped(campaign.shape, lead),
        )

    def edit_draft(
        self,
        workspace_id: WorkspaceId,
        campaign_id: CampaignId,
        lead_id: LeadId,
        step: int,
        *,
        subject: str | None,
        body: str | None,
    ) -> Draft:
        """Replace a draft's subject and/or body; the result is validated again."""
        storage = self._ctx.storage
        campaign = storage.get_campaign(workspace_id, campaign_id)
        _require_review(campaign)
        current = find_draft(storage, workspace_id, campaign_id, lead_id, step)
        edited = attrs.evolve(
            current,
            subject=subject if subject is not None else current.subject,
            body=body if body is not None else current.body,
            version=current.version + 1,
            edited=True,
        )
        checked = checked_draft(campaign, edited)
        if checked.needs_attention:
            raise InvalidDraft(
                f"campaign {campaign_id!r} lead {lead_id!r} step {step}", "draft", checked.problem
            )
        storage.commit(workspace_id, Changes(drafts=(checked,)))
        return checked

    def regenerate_draft(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId, step: int
    ) -> Draft:
        """Draft one message again, charged as a draft."""
        ctx = self._ctx
        campaign = ctx.storage.get_campaign(workspace_id, campaign_id)
        _require_review(campaign)
        current = find_draft(ctx.storage, workspace_id, campaign_id, lead_id, step)
        enrolment = ctx.storage.get_enrolment(workspace_id, campaign_id, lead_id)
        cadence_step = next(s for s in enrolment.steps if s.number == step)
        earlier = [
            d for d in ctx.storage.list_drafts(workspace_id, campaign_id, lead_id) if d.step < step
        ]
        price = ctx.prices_of(campaign).draft
        key = f"redraft:{campaign_id}:{lead_id}:{step}:{uuid.uuid4().hex[:12]}"
        ctx.ledger.post(
            workspace_id,
            CreditMovement(
                kind=MovementKind.RESERVE,
                amount=price,
                campaign_id=campaign_id,
                lead_id=lead_id,
                key=f"hold-{key}",
            ),
        )
        charged = 0
        try:
            request = draft_request(campaign, enrolment, cadence_step, earlier)
            result = ctx.drafter.draft([request])[0]
            draft = to_draft(campaign, enrolment, cadence_step, result, current.version + 1)
            ctx.storage.commit(workspace_id, Changes(drafts=(draft,)))
            charged = 0 if isinstance(result, DraftFailure) else price
        finally:
            ctx.ledger.post(
                workspace_id,
                CreditMovement(
                    kind=MovementKind.RELEASE,
                    amount=price,
                    campaign_id=campaign_id,
                    lead_id=lead_id,
                    key=f"unhold-{key}",
                ),
                CreditMovement(
                    kind=MovementKind.DRAFT,
                    amount=charged,
                    campaign_id=campaign_id,
                    lead_id=lead_id,
                    key=key,
                    note=f"regenerated draft of step {step}",
                ),
            )
        return draft

    def exclude_recipient(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId, reason: str
    ) -> Enrolment:
        """Leave a recipient out of the campaign (before approval)."""
        storage = self._ctx.storage
        _require_review(storage.get_campaign(workspace_id, campaign_id))
        enrolment = storage.get_enrolment(workspace_id, campaign_id, lead_id)
        updated = bump(enrolment, status=EnrolmentStatus.EXCLUDED, reason=reason, approved=False)
        storage.commit(workspace_id, Changes(enrolments=(updated,)))
        return updated

    def approve_recipient(
        self, workspace_id: WorkspaceId, campaign_id: CampaignId, lead_id: LeadId
    ) -> Enrolment:
        """Mark one recipient as reviewed."""
        storage = self._ctx.storage
        _require_review(storage.get_campaign(workspace_id, campaign_id))
        enrolment = storage.get_enrolment(workspace_id, campaign_id, lead_id)
        bad = [
            f"{d.lead_id} step {d.step}: {d.problem}"
            for d in storage.list_drafts(workspace_id, campaign_id, lead_id)
            if d.needs_attention
        ]
        if bad:
            raise DraftsNeedAttention(campaign_id, bad)
        updated = bump(enrolment, approved=True, status=EnrolmentStatus.IN_REVIEW)
        storage.commit(workspace_id, Changes(enrolments=(updated,)))
        return updated
