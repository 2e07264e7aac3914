"""Drafting for the outbound builder: turns a lead's cadence into drafter requests, and the
drafter's answers into validated drafts.

Owns the shape of a ``DraftRequest`` and the channel checks of a draft. It never stores,
charges or schedules: the builder and review rooms do that with what it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from starlight_sequences.cadence import CadenceStep
from starlight_sequences.campaigns import Campaign, Enrolment
from starlight_sequences.channels import Action
from starlight_sequences.drafts import ChannelLimits, Draft, DraftStatus, draft_problems
from starlight_sequences.errors import InvalidSettings
from starlight_sequences.ids import LeadId
from starlight_sequences.ports.drafter import (
    DraftedMessage,
    Drafter,
    DraftFailure,
    DraftRequest,
    EarlierTouch,
)
from starlight_sequences.service._shared import ACTION_LABEL, DRAFTER_FAILED_PREFIX

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while drafting: messages drafted so far, and in all."""


def channel_limits(campaign: Campaign, action: Action) -> ChannelLimits:
    """What a draft of ``action`` may hold, for the campaign's LinkedIn account."""
    accounts = campaign.linkedin_identities
    # A pool's leads may go out from any account: premium limits only when every one is.
    return ChannelLimits.for_action(
        action, premium_linkedin=bool(accounts) and all(a.premium for a in accounts)
    )


def draft_request(
    campaign: Campaign,
    enrolment: Enrolment,
    step: CadenceStep,
    earlier: Sequence[Draft],
    limits: ChannelLimits | None = None,
) -> DraftRequest:
    """What the drafter is asked for one step of one lead, with the lead's earlier drafts.

    ``limits`` are the step's :func:`channel_limits`, when the caller has them already.
    """
    index = enrolment.steps.index(step) + 1
    sender_name = ""
    if step.action is Action.EMAIL and campaign.email_identities:  # the lead's pool mailbox
        mailbox = campaign.email_identity_of(campaign.sender_for(step.action, enrolment))
        sender_name = mailbox.display_name if mailbox is not None else ""
    return DraftRequest(
        key=f"{enrolment.lead_id}:{step.number}",
        brief=campaign.brief,
        guidance=step.guidance,
        step=step.number,
        step_index=index,
        step_count=len(enrolment.steps),
        limits=limits if limits is not None else channel_limits(campaign, step.action),
        lead=enrolment.lead,
        sender_name=sender_name,
        earlier=tuple(
            EarlierTouch(
                step=d.step,
                action_label=ACTION_LABEL[d.action],
                subject=d.subject,
                body=d.body,
            )
            for d in earlier
            if d.body
        ),
    )


def to_draft(
    campaign: Campaign,
    enrolment: Enrolment,
    step: CadenceStep,
    result: DraftedMessage | DraftFailure,
    version: int = 1,
    limits: ChannelLimits | None = None,
) -> Draft:
    """The stored draft of a drafter's answer: checked, or needing attention with why.

    ``limits`` are the step's :func:`channel_limits`, when the caller has them already.
    """
    if isinstance(result, DraftFailure):
        return Draft(
            campaign_id=campaign.id,
            lead_id=enrolment.lead_id,
            step=step.number,
            action=step.action,
            version=version,
            subject=None,
            body="",
            status=DraftStatus.NEEDS_ATTENTION,
            problem=f"{DRAFTER_FAILED_PREFIX}: {result.reason}",
        )
    # Checked before the draft is built, so each drafted message makes one Draft.
    problem = _problem(campaign, step.action, result.subject, result.body, limits)
    return Draft(
        campaign_id=campaign.id,
        lead_id=enrolment.lead_id,
        step=step.number,
        action=step.action,
        version=version,
        subject=result.subject,
        body=result.body,
        status=DraftStatus.NEEDS_ATTENTION if problem else DraftStatus.READY,
        problem=problem,
    )


def checked_draft(campaign: Campaign, draft: Draft) -> Draft:
    """The draft marked ready, or needing attention with every rule of its channel it breaks."""
    problem = _problem(campaign, draft.action, draft.subject, draft.body, None)
    if problem:
        return attrs.evolve(draft, status=DraftStatus.NEEDS_ATTENTION, problem=problem)
    return attrs.evolve(draft, status=DraftStatus.READY, problem="")


def _problem(
    campaign: Campaign,
    action: Action,
    subject: str | None,
    body: str,
    limits: ChannelLimits | None,
) -> str:
    """Every rule a message of ``action`` breaks, joined into one sentence ("" if none)."""
    if limits is None:
        limits = channel_limits(campaign, action)
    problems = list(draft_problems(subject, body, limits))
    identity = campaign.linkedin_identity
    if action is Action.LINKEDIN_CONNECT and identity is not None and identity.notes_exhausted:
        problems.append("the LinkedIn account's monthly quota of connection notes is used up")
    return "; ".join(problems)


def draft_all(
    drafter: Drafter,
    campaign: Campaign,
    enrolments: Sequence[Enrolment],
    batch_size: int,
    progress: ProgressCallback | None,
) -> list[Draft]:
    """Draft every step of every lead, step by step so each draft sees the lead's earlier
    ones, in batches of ``batch_size`` requests per drafter call."""
    total = sum(1 for e in enrolments for s in e.steps if s.needs_draft)
    done = 0
    if progress is not None:
        progress(0, total)
    limits = {action: channel_limits(campaign, action) for action in Action}
    drafts: dict[LeadId, list[Draft]] = {e.lead_id: [] for e in enrolments}
    depth = max((len(e.steps) for e in enrolments), default=0)
    for index in range(depth):
        work = [
            (e, e.steps[index])
            for e in enrolments
            if index < len(e.steps) and e.steps[index].needs_draft
        ]
        for start in range(0, len(work), batch_size):
            batch = work[start : start + batch_size]
            requests = [
                draft_request(campaign, e, s, drafts[e.lead_id], limits[s.action]) for e, s in batch
            ]
            results = drafter.draft(requests)
            if len(results) != len(requests):
                raise InvalidSettings(
                    f"drafter returned {len(results)} results for {len(requests)} requests"
                )
            for (enrolment, step), result in zip(batch, results, strict=True):
                drafts[enrolment.lead_id].append(
                    to_draft(campaign, enrolment, step, result, limits=limits[step.action])
                )
            done += len(batch)
            if progress is not None:
                progress(done, total)
    return [d for per_lead in drafts.values() for d in per_lead]
