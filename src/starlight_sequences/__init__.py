"""starlight_sequences: multi-step outreach campaigns over email and LinkedIn.

The public API is what this module re-exports; see ``docs/`` for the guides.
"""

from __future__ import annotations

from starlight_sequences.channels import Action, Channel
from starlight_sequences.errors import StarlightError
from starlight_sequences.ids import CampaignId, LeadId, SenderId, SendId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.shapes._model import SendShape, Step, WaitAnchor

__all__ = [
    "Action",
    "CampaignId",
    "Channel",
    "Lead",
    "LeadId",
    "SendId",
    "SendShape",
    "SenderId",
    "StarlightError",
    "Step",
    "WaitAnchor",
    "WorkspaceId",
]

__version__ = "0.1.0"
