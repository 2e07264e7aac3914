"""What ``starlight ... --json`` prints: one JSON object per command, in the shapes
``docs/cli.md`` documents.

The shapes are stable: within a major version, fields are only added, never renamed, removed
or given another type. Instants are ISO 8601 strings: ``*_utc`` ones end in ``Z``, ``*_local``
ones carry the recipient's UTC offset (its zone's name is beside them); absent values are
``null``. The output is ASCII (other characters as ``\\uXXXX`` escapes), so it survives any
terminal or pipe encoding, and control characters from users are escaped by JSON itself.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

from starlight_sequences._cli_inputs import lead_record
from starlight_sequences.adapters.linkedin_tasks import LinkedInTask
from starlight_sequences.campaigns import Campaign, Excluded
from starlight_sequences.credits import CreditAccount, CreditEstimate, CreditMovement
from starlight_sequences.drafts import Draft
from starlight_sequences.leads import Lead
from starlight_sequences.locations import load_timezone
from starlight_sequences.reports import (
    CampaignPreview,
    CampaignStatusReport,
    PlannedStep,
    RecipientPreview,
    WaitingOnConnection,
)
from starlight_sequences.timeline import Timeline

__all__ = [
    "account_json",
    "campaign_json",
    "emit",
    "estimate_json",
    "instant",
    "movement_json",
    "preview_json",
    "status_json",
    "task_json",
    "timeline_json",
    "waiting_json",
]

JSONObject = dict[str, Any]


def emit(document: JSONObject) -> int:
    """Print ``document`` as indented ASCII JSON on stdout; returns exit code 0."""
    sys.stdout.write(json.dumps(document, ensure_ascii=True, indent=2) + "\n")
    return 0


def instant(moment: dt.datetime | None, *, utc: bool = True) -> str | None:
    """``2026-12-01T15:14:00Z`` (``utc``), or the instant with its own offset, or None."""
    if moment is None:
        return None
    if utc:
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return moment.isoformat()


def campaign_json(campaign: Campaign) -> JSONObject:
    """A campaign's identity and status."""
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status.value,
        "shape": campaign.shape.key,
        "created_utc": instant(campaign.created_at),
        "approved_utc": instant(campaign.approved_at),
    }


def _excluded_json(excluded: Sequence[Excluded]) -> list[JSONObject]:
    return [
        {"lead_id": e.lead_id, "reason": e.reason.value, "message": e.message} for e in excluded
    ]


def _draft_json(draft: Draft | None) -> JSONObject | None:
    if draft is None:
        return None
    return {
        "subject": draft.subject,
        "body": draft.body,
        "version": draft.version,
        "edited": draft.edited,
        "needs_attention": draft.needs_attention,
        "problem": draft.problem,
    }


def _step_json(step: PlannedStep) -> JSONObject:
    return {
        "step": step.step,
        "action": step.action.value,
        "due_utc": instant(step.due_utc),
        "due_local": instant(step.due_local, utc=False),
        "status": step.status.value if step.status else None,
        "gated": step.gated,
        "reason": step.reason,
        "draft": _draft_json(step.draft),
        "variant": step.variant or None,
        "sender_id": step.sender_id,
    }


def _recipient_json(recipient: RecipientPreview) -> JSONObject:
    return {
        "lead": lead_record(recipient.lead),
        "status": recipient.status.value,
        "approved": recipient.approved,
        "reason": recipient.reason,
        "timezone": recipient.lead.timezone,
        "assumed_timezone": recipient.assumed_timezone,
        "timezone_reason": recipient.timezone_reason,
        "fallback_dropped": recipient.fallback_dropped,
        "steps": [_step_json(step) for step in recipient.steps],
    }


def preview_json(preview: CampaignPreview) -> JSONObject:
    """``starlight preview --json``."""
    return {
        "campaign": campaign_json(preview.campaign),
        "recipients": [_recipient_json(r) for r in preview.recipients],
        "excluded": _excluded_json(preview.excluded),
        "last_send_utc": instant(preview.last_send_at),
        "needs_attention": [
            {"lead_id": d.lead_id, "step": d.step, "problem": d.problem}
            for d in preview.needs_attention
        ],
    }


def _name(lead: Lead) -> str:
    return " ".join(part for part in (lead.first_name, lead.last_name) if part)


def status_json(report: CampaignStatusReport, waiting: int) -> JSONObject:
    """``starlight status --json``."""
    return {
        "campaign": campaign_json(report.campaign),
        "contacts": [
            {
                "lead_id": c.lead.id,
                "name": _name(c.lead),
                "step": c.step,
                "action": c.action.value,
                "status": c.status.value,
                "send_status": c.send_status.value if c.send_status else None,
                "timezone": c.lead.timezone,
                "next_send_utc": instant(c.next_send_utc),
                "next_send_local": instant(c.next_send_local, utc=False),
                "reason": c.reason,
            }
            for c in report.contacts
        ],
        "counts": [
            {"step": step, "status": status.value, "count": count}
            for step, status, count in report.counts
        ],
        "waiting_on_connections": waiting,
        "variants": [
            {
                "step": r.step,
                "variant": r.key,
                "leads": r.leads,
                "sent": r.sent,
                "replied": r.replied,
                "bounced": r.bounced,
                "reply_rate": r.reply_rate,
                "interval_95": list(r.interval),
                "winner": r.winner,
            }
            for r in report.variants
        ],
        "held_senders": [
            {
                "sender_id": h.sender_id,
                "held_utc": instant(h.held_at),
                "sends": h.sends,
                "hard_bounces": h.hard_bounces,
                "threshold": h.threshold,
                "reason": h.reason,
            }
            for h in report.held_senders
        ],
    }


def estimate_json(estimate: CreditEstimate, leads: int, available: int | None) -> JSONObject:
    """``starlight estimate --json`` (``available``: the workspace's balance, if known)."""
    return {
        "shape": estimate.shape_key,
        "leads": leads,
        "reachable": len(estimate.leads),
        "drafts": estimate.drafts,
        "drafting_cost": estimate.drafting_cost,
        "sends": estimate.sends,
        "max_send_cost": estimate.max_send_cost,
        "total": estimate.total,
        "per_lead": [
            {
                "lead_id": e.lead_id,
                "drafts": e.drafts,
                "drafting_cost": e.drafting_cost,
                "sends": e.sends,
                "max_send_cost": e.max_send_cost,
                "total": e.total,
            }
            for e in estimate.leads
        ],
        "excluded": [
            {"lead_id": e.lead_id, "reason": e.reason.value, "message": e.message}
            for e in estimate.excluded
        ],
        "available": available,
    }


def account_json(account: CreditAccount) -> JSONObject:
    """A workspace's balance."""
    return {
        "workspace": account.workspace,
        "available": account.available,
        "reserved": account.reserved,
    }


def movement_json(movement: CreditMovement) -> JSONObject:
    """One movement of the credit journal."""
    return {
        "kind": movement.kind.value,
        "amount": movement.amount,
        "campaign_id": movement.campaign_id,
        "lead_id": movement.lead_id,
        "note": movement.note,
    }


def waiting_json(waiting: WaitingOnConnection) -> JSONObject:
    """One lead of Waiting on connections."""
    zone = waiting.lead.timezone
    return {
        "campaign_id": waiting.campaign_id,
        "lead_id": waiting.lead.id,
        "name": _name(waiting.lead),
        "step": waiting.step,
        "timezone": zone,
        "since_utc": instant(waiting.since),
        "since_local": _local(waiting.since, zone),
        "times_out_utc": instant(waiting.times_out_at),
        "times_out_local": _local(waiting.times_out_at, zone),
    }


def _local(moment: dt.datetime | None, zone: str | None) -> str | None:
    if moment is None or zone is None:
        return None
    return moment.astimezone(load_timezone(zone)).isoformat()


def task_json(task: LinkedInTask) -> JSONObject:
    """One pending LinkedIn task."""
    return {
        "id": task.id,
        "action": task.action.value,
        "campaign_id": task.campaign_id,
        "lead_id": task.lead_id,
        "step": task.step,
        "recipient_name": task.recipient_name,
        "profile_url": task.profile_url,
        "text": task.text,
        "status": task.status.value,
    }


def timeline_json(timeline: Timeline) -> JSONObject:
    """``starlight timeline --json``: the nodes and the waits between them."""
    return {
        "title": timeline.title,
        "nodes": [
            {
                "position": node.position,
                "step": node.step,
                "action": node.action.value,
                "label": node.label,
                "status": node.status.value if node.status else None,
                "at_local": instant(node.local_at, utc=False),
                "at_utc": instant(node.local_at),
                "timezone": node.timezone or None,
                "reason": node.reason,
            }
            for node in timeline.nodes
        ],
        "waits": [
            {
                "from_position": index + 1,
                "to_position": index + 2,
                "business_days": connector.wait_days,
                "counts_from": connector.counts_from.value,
                "gated_on_acceptance": connector.gated_on_acceptance,
                "label": connector.label,
            }
            for index, connector in enumerate(timeline.connectors)
        ],
    }
