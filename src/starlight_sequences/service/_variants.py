"""A/B variants at run time: the winner rule of a step, applied after a dispatcher pass.

The decisions are pure (:mod:`starlight_sequences.variants`); this room loads what they need,
asks the drafter for the winner's drafts, and stores the pick in one commit: the campaign's
``variant_winners``, the moved leads' cadence steps and drafts, and a ``variant_picked`` line
in the activity journal.

Credits: a winner's redraft replaces the draft of that (lead, step) that was drafted, and
charged, at creation; it is not charged again. So a campaign's charges stay one draft per
drafted step of each lead, and the estimate stays exact (``docs/monitoring.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs

from starlight_sequences.campaigns import (
    Campaign,
    CampaignStatus,
    Enrolment,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.drafts import Draft
from starlight_sequences.errors import ConcurrentUpdate, InvalidSettings
from starlight_sequences.events import Activity, ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId
from starlight_sequences.ports.storage import Changes
from starlight_sequences.service._drafting import draft_request, to_draft
from starlight_sequences.service._shared import ServiceContext
from starlight_sequences.shapes import Step
from starlight_sequences.variants import (
    VariantResult,
    leads_to_switch,
    pick_winner,
    variant_results,
)

log = logging.getLogger("starlight_sequences.variants")


def pick_due_winners(
    ctx: ServiceContext, workspace_id: WorkspaceId, campaign_id: CampaignId
) -> tuple[int, ...]:
    """Apply the first winner rule of the campaign that is due; the step picked now, if any.

    At most one pick per call (a pick changes the leads a second rule would read; the next
    pass decides that one). Cheap when there is nothing to decide (no rule, or every rule
    already picked): one campaign read. A concurrent change of the campaign, of a moved lead
    or of its send makes the commit fail; nothing is written and the next pass decides again.
    """
    storage = ctx.storage
    campaign = storage.get_campaign(workspace_id, campaign_id)
    decided = dict(campaign.variant_winners)
    open_rules = [
        s for s in campaign.shape.steps if s.winner is not None and s.number not in decided
    ]
    if campaign.status is not CampaignStatus.ACTIVE or not open_rules:
        return ()
    enrolments = storage.list_enrolments(workspace_id, campaign_id)
    sends = storage.list_sends(workspace_id, campaign_id)
    results = variant_results(campaign.shape, enrolments, sends, decided)
    now = ctx.clock.now()
    for step in open_rules:
        sent_at = [
            s.sent_at
            for s in sends
            if s.step == step.number and s.status is SendStatus.SENT and s.sent_at is not None
        ]
        winner = pick_winner(step, results, sent_at=sent_at, now=now)
        if winner is None:
            continue
        switch = leads_to_switch(step.number, winner, enrolments, sends)
        try:
            _commit_pick(ctx, campaign, step, winner, switch, results, sends)
        except ConcurrentUpdate:
            log.info(
                "campaign %s step %s: pick of variant %r met a concurrent change; retried on "
                "the next pass",
                campaign_id,
                step.number,
                winner,
            )
            return ()
        return (step.number,)
    return ()


def _commit_pick(
    ctx: ServiceContext,
    campaign: Campaign,
    step: Step,
    winner: str,
    switch: Sequence[Enrolment],
    results: Sequence[VariantResult],
    sends: Sequence[ScheduledSend],
) -> None:
    moved, drafts, kept = _redraft(ctx, campaign, step, winner, switch)
    now = ctx.clock.now()
    # The moved leads' sends of the step are written back unchanged but for their revision:
    # a worker that claimed one since they were read (a claim bumps the revision) makes the
    # commit fail, so a lead is never moved while its old draft is being sent.
    moved_ids = {e.lead_id for e in moved}
    held = tuple(
        attrs.evolve(s, revision=s.revision + 1)
        for s in sends
        if s.step == step.number and s.lead_id in moved_ids
    )
    shown = ", ".join(_result_text(r) for r in results if r.step == step.number)
    sent = sum(r.sent for r in results if r.step == step.number)
    detail = (
        f"step {step.number}: variant {winner!r} wins after {sent} sends ({shown}); "
        f"{len(moved)} leads not yet reached moved to it"
        + (f", {kept} kept their variant (edited draft or failed redraft)" if kept else "")
    )
    ctx.storage.commit(
        campaign.workspace_id,
        Changes(
            campaigns=(
                attrs.evolve(
                    campaign,
                    variant_winners=(*campaign.variant_winners, (step.number, winner)),
                    revision=campaign.revision + 1,
                ),
            ),
            enrolments=tuple(moved),
            sends=held,
            drafts=tuple(drafts),
            activities=(
                Activity(
                    kind=ActivityKind.VARIANT_PICKED,
                    at=now,
                    campaign_id=campaign.id,
                    step=step.number,
                    detail=detail,
                ),
            ),
        ),
    )


def _result_text(result: VariantResult) -> str:
    low, high = result.interval
    return f"{result.key}: {result.replied}/{result.sent} replied, 95% CI {low:.1%}–{high:.1%}"


def _redraft(
    ctx: ServiceContext,
    campaign: Campaign,
    step: Step,
    winner: str,
    switch: Sequence[Enrolment],
) -> tuple[list[Enrolment], list[Draft], int]:
    """The moved enrolments and their new drafts, and how many leads kept their variant.

    A lead keeps its variant (and its reviewed draft) when a person edited that draft, or
    when the winner's draft fails or breaks a channel rule: nothing unreviewed and invalid is
    ever queued.
    """
    if not switch:
        return [], [], 0
    storage, workspace_id = ctx.storage, campaign.workspace_id
    existing: dict[LeadId, list[Draft]] = {}
    for draft in storage.list_drafts(workspace_id, campaign.id):
        existing.setdefault(draft.lead_id, []).append(draft)
    work: list[tuple[Enrolment, Draft | None]] = []
    for enrolment in switch:
        old = next((d for d in existing.get(enrolment.lead_id, ()) if d.step == step.number), None)
        if old is None or not old.edited:
            work.append((_moved(enrolment, step, winner), old))
    moved: list[Enrolment] = []
    drafts: list[Draft] = []
    batch_size = max(1, ctx.draft_batch_size)
    for start in range(0, len(work), batch_size):
        batch = work[start : start + batch_size]
        requests = []
        for enrolment, _ in batch:
            cadence_step = next(s for s in enrolment.steps if s.number == step.number)
            earlier = [d for d in existing.get(enrolment.lead_id, ()) if d.step < step.number]
            requests.append(draft_request(campaign, enrolment, cadence_step, earlier))
        results = ctx.drafter.draft(requests)
        if len(results) != len(requests):
            raise InvalidSettings(
                f"drafter returned {len(results)} results for {len(requests)} requests"
            )
        for (enrolment, old), result in zip(batch, results, strict=True):
            cadence_step = next(s for s in enrolment.steps if s.number == step.number)
            version = old.version + 1 if old is not None else 1
            draft = to_draft(campaign, enrolment, cadence_step, result, version)
            if draft.needs_attention:
                continue
            moved.append(enrolment)
            drafts.append(draft)
    return moved, drafts, len(switch) - len(moved)


def _moved(enrolment: Enrolment, step: Step, winner: str) -> Enrolment:
    return attrs.evolve(
        enrolment,
        steps=tuple(
            attrs.evolve(s, variant=winner, guidance=step.guidance_for(winner))
            if s.number == step.number
            else s
            for s in enrolment.steps
        ),
        revision=enrolment.revision + 1,
    )
