"""The library's results as JSON objects for the app's responses (plain functions, no I/O)."""

from __future__ import annotations

import datetime as dt

from starlight_sequences import CreditEstimate, LeadImport
from starlight_sequences.service import (
    CampaignPreview,
    CampaignStatusReport,
    CreationReport,
    IngestResult,
    RecipientPreview,
)

__all__ = [
    "creation_view",
    "estimate_view",
    "ingest_view",
    "preview_view",
    "problems_view",
    "status_view",
]


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def problems_view(imported: LeadImport) -> list[dict[str, object]]:
    """The rows an import left out, one entry per bad field."""
    return [
        {"row": p.row, "lead": p.lead, "field": p.field, "reason": p.reason}
        for p in imported.problems
    ]


def estimate_view(estimate: CreditEstimate, imported: LeadImport) -> dict[str, object]:
    """The most a campaign costs: in total, per lead, and who the shape cannot reach."""
    return {
        "shape": estimate.shape_key,
        "total": estimate.total,
        "drafting": estimate.drafting_cost,
        "max_sends": estimate.max_send_cost,
        "leads": [{"lead_id": line.lead_id, "total": line.total} for line in estimate.leads],
        "excluded": [
            {"lead_id": e.lead_id, "reason": e.reason.value, "message": e.message}
            for e in estimate.excluded
        ],
        "rejected": problems_view(imported),
    }


def creation_view(report: CreationReport, imported: LeadImport) -> dict[str, object]:
    """What ``POST /campaigns`` did: enrolled, excluded (with reasons), rejected rows."""
    return {
        "campaign_id": report.campaign.id,
        "status": report.campaign.status.value,
        "enrolled": report.enrolled,
        "excluded": [
            {"lead_id": e.lead_id, "reason": e.reason.value, "message": e.message}
            for e in report.excluded
        ],
        "rejected": problems_view(imported),
        "needs_attention": [
            {"lead_id": d.lead_id, "step": d.step, "problem": d.problem}
            for d in report.needs_attention
        ],
        "drafting_credits": report.drafting_credits,
    }


def _recipient_view(recipient: RecipientPreview) -> dict[str, object]:
    return {
        "lead_id": recipient.lead.id,
        "status": recipient.status.value,
        "timezone": recipient.lead.timezone,
        "timezone_reason": recipient.timezone_reason,
        "reason": recipient.reason,
        "steps": [
            {
                "step": step.step,
                "action": step.action.value,
                "due_local": _iso(step.due_local),
                "due_utc": _iso(step.due_utc),
                "status": step.status.value if step.status is not None else None,
                "subject": step.subject,
                "body": step.draft.body if step.draft is not None else None,
                "needs_attention": step.draft.problem if step.draft is not None else "",
                "reason": step.reason,
            }
            for step in recipient.steps
        ],
    }


def preview_view(preview: CampaignPreview) -> dict[str, object]:
    """The review screen: each recipient's steps with drafts and dates, and who was left out."""
    return {
        "campaign_id": preview.campaign.id,
        "status": preview.campaign.status.value,
        "recipients": [_recipient_view(r) for r in preview.recipients],
        "excluded": [
            {"lead_id": e.lead_id, "reason": e.reason.value, "message": e.message}
            for e in preview.excluded
        ],
    }


def status_view(report: CampaignStatusReport) -> dict[str, object]:
    """Where each contact stands: its step, status, next send, and why it stopped."""
    return {
        "campaign_id": report.campaign.id,
        "status": report.campaign.status.value,
        "contacts": [
            {
                "lead_id": c.lead.id,
                "step": c.step,
                "status": c.status.value,
                "send_status": c.send_status.value if c.send_status is not None else None,
                "next_send_utc": _iso(c.next_send_utc),
                "next_send_local": _iso(c.next_send_local),
                "reason": c.reason,
            }
            for c in report.contacts
        ],
    }


def ingest_view(result: IngestResult) -> dict[str, object]:
    """What ``ingest_email`` decided about one inbound message."""
    return {
        "kind": result.kind.value,
        "event": result.event.value if result.event is not None else None,
        "applied": result.applied,
        "lead_id": result.lead_id,
        "campaign_id": result.campaign_id,
        "matched_by": result.matched_by.value,
        "reason": result.reason,
    }
