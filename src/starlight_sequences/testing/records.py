"""Sample records for the contract suites, and for a host's own storage tests.

Every builder returns a valid value of the public types (``make_campaign`` an active campaign of
a stock shape in workspace :data:`WS`, ``make_send`` a send due at :data:`T0`, ...); keyword
overrides replace any field. The contract suites build all their data here, so a host's extra
tests can build the same records.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeVar

import attrs

from starlight_sequences import shapes
from starlight_sequences.cadence import Cadence, resolve_cadence
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    CampaignStatus,
    EmailIdentity,
    Enrolment,
    EnrolmentStatus,
    LinkedInIdentity,
    ScheduledSend,
    SendStatus,
    send_id_for,
)
from starlight_sequences.channels import Action
from starlight_sequences.drafts import Draft, DraftStatus
from starlight_sequences.events import Activity, ActivityKind
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead

__all__ = [
    "EMAIL_SENDER",
    "LINKEDIN_SENDER",
    "OTHER_WS",
    "T0",
    "WS",
    "bumped",
    "cadence_of",
    "make_activity",
    "make_campaign",
    "make_draft",
    "make_enrolment",
    "make_lead",
    "make_send",
]

WS = WorkspaceId("ws-acme")
"""The workspace most records belong to."""
OTHER_WS = WorkspaceId("ws-globex")
"""A second workspace, for the isolation checks."""
EMAIL_SENDER = SenderId("mailbox-1")
"""The id of the campaigns' email identity."""
LINKEDIN_SENDER = SenderId("linkedin-1")
"""The id of the campaigns' LinkedIn identity."""
T0 = dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC)
"""A Monday afternoon, UTC: the suites' "now"."""

Revised = TypeVar("Revised", Campaign, Enrolment, ScheduledSend)


def make_lead(lead_id: str = "lead-ann", **overrides: Any) -> Lead:
    """A reachable lead (email and LinkedIn) in New York, with personalisation fields."""
    values: dict[str, Any] = {
        "id": LeadId(lead_id),
        "first_name": "Ann",
        "last_name": "Lee",
        "company": "Acme",
        "title": "CTO",
        "email": f"{lead_id}@acme.example.com",
        "linkedin_url": f"https://www.linkedin.com/in/{lead_id}",
        "country": "US",
        "subdivision": "NY",
        "timezone": "America/New_York",
        "fields": {"industry": "rockets", "city": "New York"},
    }
    values.update(overrides)
    return Lead(**values)


def make_campaign(
    campaign_id: str = "camp-1",
    *,
    workspace_id: WorkspaceId = WS,
    status: CampaignStatus = CampaignStatus.ACTIVE,
    shape_key: str = "email-sequence",
    **overrides: Any,
) -> Campaign:
    """A campaign of a stock shape with both identities, created (in Berlin time) before T0."""
    values: dict[str, Any] = {
        "workspace_id": workspace_id,
        "id": CampaignId(campaign_id),
        "name": f"Campaign {campaign_id}",
        "brief": "We make rockets cheaper. Ask for a 15-minute call.",
        "shape": shapes.get(shape_key),
        "settings": CampaignSettings(),
        "email_identity": EmailIdentity(id=EMAIL_SENDER, address="sales@acme.example.com"),
        "linkedin_identity": LinkedInIdentity(id=LINKEDIN_SENDER),
        "status": status,
        "created_at": dt.datetime(2026, 11, 20, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    }
    values.update(overrides)
    return Campaign(**values)


def cadence_of(campaign: Campaign, lead: Lead) -> Cadence:
    """The lead's cadence in the campaign (the lead must be reachable)."""
    resolved = resolve_cadence(campaign.shape, lead)
    assert isinstance(resolved, Cadence), resolved
    return resolved


def make_enrolment(campaign: Campaign, lead: Lead, **overrides: Any) -> Enrolment:
    """The lead enrolled in the campaign with its resolved cadence."""
    values: dict[str, Any] = {
        "workspace_id": campaign.workspace_id,
        "campaign_id": campaign.id,
        "lead": lead,
        "steps": cadence_of(campaign, lead).steps,
        "status": EnrolmentStatus.ACTIVE,
        "approved": True,
    }
    values.update(overrides)
    return Enrolment(**values)


def make_send(
    campaign: Campaign,
    lead_id: str = "lead-ann",
    step: int = 1,
    *,
    due_at: dt.datetime = T0,
    status: SendStatus = SendStatus.SCHEDULED,
    action: Action = Action.EMAIL,
    sender_id: SenderId = EMAIL_SENDER,
    **overrides: Any,
) -> ScheduledSend:
    """A send of one step of the campaign to one lead."""
    values: dict[str, Any] = {
        "id": send_id_for(campaign.id, LeadId(lead_id), step),
        "workspace_id": campaign.workspace_id,
        "campaign_id": campaign.id,
        "lead_id": LeadId(lead_id),
        "step": step,
        "action": action,
        "sender_id": sender_id,
        "due_at": due_at,
        "forecast_at": due_at,
        "status": status,
    }
    values.update(overrides)
    return ScheduledSend(**values)


def make_draft(
    campaign: Campaign, lead_id: str = "lead-ann", step: int = 1, **overrides: Any
) -> Draft:
    """A ready email draft."""
    values: dict[str, Any] = {
        "campaign_id": campaign.id,
        "lead_id": LeadId(lead_id),
        "step": step,
        "action": Action.EMAIL,
        "subject": f"Step {step} for {lead_id}",
        "body": f"Hello {lead_id}, this is step {step}.",
        "status": DraftStatus.READY,
    }
    values.update(overrides)
    return Draft(**values)


def make_activity(
    kind: ActivityKind = ActivityKind.SENT,
    *,
    campaign_id: str | None = "camp-1",
    lead_id: str | None = "lead-ann",
    at: dt.datetime = T0,
    **overrides: Any,
) -> Activity:
    """A journal line."""
    values: dict[str, Any] = {
        "kind": kind,
        "at": at,
        "campaign_id": None if campaign_id is None else CampaignId(campaign_id),
        "lead_id": None if lead_id is None else LeadId(lead_id),
    }
    values.update(overrides)
    return Activity(**values)


def bumped(record: Revised, **changes: Any) -> Revised:
    """``record`` with its revision bumped and ``changes`` applied (what the service writes)."""
    return attrs.evolve(record, revision=record.revision + 1, **changes)
