"""Distinct identifier types, so a campaign id is never passed where a lead id is expected."""

from __future__ import annotations

from typing import NewType

__all__ = ["CampaignId", "LeadId", "SendId", "SenderId", "WorkspaceId"]

WorkspaceId = NewType("WorkspaceId", str)
"""A tenant. Every campaign, lead, balance and suppression list belongs to one."""

CampaignId = NewType("CampaignId", str)
"""A campaign, unique within its workspace."""

LeadId = NewType("LeadId", str)
"""A lead (contact), unique within its workspace; chosen by the host app."""

SendId = NewType("SendId", str)
"""One scheduled send: a (campaign, lead, step) triple, stable across retries."""

SenderId = NewType("SenderId", str)
"""A sender identity: a mailbox or a LinkedIn account."""
