"""starlight_sequences: multi-step outreach campaigns over email and LinkedIn.

The public API is what this module re-exports; see ``docs/`` for the guides.
"""

from __future__ import annotations

from starlight_sequences import calendar, credits, shapes
from starlight_sequences.cadence import (
    Cadence,
    CadenceStep,
    Exclusion,
    ExclusionReason,
    resolve_cadence,
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
from starlight_sequences.ids import CampaignId, LeadId, SenderId, SendId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes import SendShape, Step, WaitAnchor

__all__ = [
    "Action",
    "Cadence",
    "CadenceStep",
    "CampaignId",
    "Channel",
    "CreditAccount",
    "CreditEstimate",
    "CreditMovement",
    "Exclusion",
    "ExclusionReason",
    "Lead",
    "LeadEstimate",
    "LeadId",
    "MovementKind",
    "PriceTable",
    "SendId",
    "SendShape",
    "SenderId",
    "StarlightError",
    "Step",
    "WaitAnchor",
    "WorkspaceId",
    "calendar",
    "credits",
    "estimate_credits",
    "resolve_cadence",
    "shapes",
]

__version__ = "0.1.0"
