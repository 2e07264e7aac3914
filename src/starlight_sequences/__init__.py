"""starlight_sequences: multi-step outreach campaigns over email and LinkedIn.

The public API is what this module re-exports; see ``docs/`` for the guides.
"""

from __future__ import annotations

from starlight_sequences import adapters, calendar, credits, pools, ports, shapes, variants
from starlight_sequences.async_service import AsyncCampaignService
from starlight_sequences.async_worker import run_worker_async
from starlight_sequences.bounce_breaker import BounceBreaker, SenderHold
from starlight_sequences.cadence import (
    Cadence,
    CadenceStep,
    Exclusion,
    ExclusionReason,
    resolve_cadence,
)
from starlight_sequences.calendar import WarmUp
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
    StopScope,
)
from starlight_sequences.channels import Action, Channel
from starlight_sequences.credits import (
    CreditAccount,
    CreditEstimate,
    CreditMovement,
    LeadEstimate,
    MovementKind,
    PriceTable,
    estimate_credits,
)
from starlight_sequences.errors import StarlightError
from starlight_sequences.events import (
    Activity,
    ActivityKind,
    ActivityPage,
    ActivityReason,
    EventKind,
    InboundEvent,
    JournalEntry,
)
from starlight_sequences.ids import CampaignId, LeadId, SenderId, SendId, WorkspaceId
from starlight_sequences.leads import (
    Lead,
    LeadImport,
    LeadProblem,
    import_leads,
    import_leads_csv,
    locate,
)
from starlight_sequences.service import CampaignService
from starlight_sequences.shapes import SendShape, Step, Variant, WaitAnchor, WinnerRule
from starlight_sequences.unsubscribe import UnsubscribeLinks
from starlight_sequences.worker import run_worker

__all__ = [
    "Action",
    "Activity",
    "ActivityKind",
    "ActivityPage",
    "ActivityReason",
    "AsyncCampaignService",
    "BounceBreaker",
    "Cadence",
    "CadenceStep",
    "Campaign",
    "CampaignId",
    "CampaignService",
    "CampaignSettings",
    "CampaignStatus",
    "Channel",
    "CreditAccount",
    "CreditEstimate",
    "CreditMovement",
    "EmailIdentity",
    "Enrolment",
    "EnrolmentStatus",
    "EventKind",
    "Exclusion",
    "ExclusionReason",
    "InboundEvent",
    "JournalEntry",
    "Lead",
    "LeadEstimate",
    "LeadId",
    "LeadImport",
    "LeadProblem",
    "LinkedInIdentity",
    "MovementKind",
    "PriceTable",
    "ScheduledSend",
    "SendId",
    "SendShape",
    "SendStatus",
    "SenderHold",
    "SenderId",
    "StarlightError",
    "Step",
    "StopScope",
    "UnsubscribeLinks",
    "Variant",
    "WaitAnchor",
    "WarmUp",
    "WinnerRule",
    "WorkspaceId",
    "adapters",
    "calendar",
    "credits",
    "estimate_credits",
    "import_leads",
    "import_leads_csv",
    "locate",
    "pools",
    "ports",
    "resolve_cadence",
    "run_worker",
    "run_worker_async",
    "shapes",
    "variants",
]

__version__ = "0.1.0"
