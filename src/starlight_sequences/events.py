"""What happened to a contact: inbound events a host app reports, and the activity journal."""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from starlight_sequences.ids import CampaignId, LeadId

__all__ = ["Activity", "ActivityKind", "EventKind", "InboundEvent"]


class EventKind(enum.StrEnum):
    """Events a host app reports about a contact."""

    REPLY = "reply"
    CONNECTION_ACCEPTED = "connection_accepted"
    CONNECTION_DECLINED = "connection_declined"
    """Declined or withdrawn: gated LinkedIn steps will not be sent."""
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"
    MEETING_BOOKED = "meeting_booked"
    OUT_OF_OFFICE = "out_of_office"


@attrs.frozen(kw_only=True)
class InboundEvent:
    """An event about a contact, reported by the host app.

    Attributes:
        kind: what happened.
        lead_id: the contact.
        at: when it happened (aware).
        campaign_id: the campaign it came from, when known (None: every campaign of the
            workspace that wrote to the contact).
        key: the host's idempotency key (e.g. the reply's Message-ID); reporting the same key
            twice changes nothing. Empty: derived from kind, lead, campaign and ``at``.
        return_date: for an out-of-office, the date the contact is back (None: use the
            campaign's default pause).
        detail: free text kept in the journal (the bounce reason, ...).
    """

    kind: EventKind
    lead_id: LeadId
    at: dt.datetime
    campaign_id: CampaignId | None = None
    key: str = ""
    return_date: dt.date | None = None
    detail: str = ""

    @property
    def dedupe_key(self) -> str:
        """The key that makes reporting this event idempotent."""
        if self.key:
            return f"{self.kind}:{self.key}"
        return f"{self.kind}:{self.lead_id}:{self.campaign_id or '*'}:{self.at.isoformat()}"


class ActivityKind(enum.StrEnum):
    """Entries of the activity journal."""

    DRAFTED = "drafted"
    APPROVED = "approved"
    SENT = "sent"
    RETRIED = "retried"
    FAILED = "failed"
    SKIPPED = "skipped"
    STOPPED = "stopped"
    EVENT = "event"
    PAUSED = "paused"
    RESUMED = "resumed"
    CANCELLED = "cancelled"


@attrs.frozen(kw_only=True)
class Activity:
    """One line of a workspace's activity journal.

    Attributes:
        kind: what happened.
        at: when (UTC-aware).
        campaign_id: the campaign, if any.
        lead_id: the contact, if any.
        step: the step, if any.
        detail: a sentence for people.
        key: for inbound events, the dedupe key (unique per workspace).
    """

    kind: ActivityKind
    at: dt.datetime
    campaign_id: CampaignId | None = None
    lead_id: LeadId | None = None
    step: int | None = None
    detail: str = ""
    key: str = ""
