"""Inbound mail: one raw message in — classified by the pure ``inbound`` package, matched to
the send or the contact it concerns, and applied as the event it means.

Owns matching (thread headers first, then a bounce's failed recipient, then the sender's
address) and the idempotency of ingesting. It applies events only through the inbound-events
room, never across workspaces, and never sends.
"""

from __future__ import annotations

import datetime as dt
import logging

import attrs

from starlight_sequences.campaigns import Enrolment
from starlight_sequences.errors import UnknownContact
from starlight_sequences.events import Activity, ActivityKind, EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId
from starlight_sequences.inbound import (
    InboundClassification,
    InboundKind,
    classify_message,
    normalise_address,
)
from starlight_sequences.ports.storage import Changes
from starlight_sequences.reports import IngestResult, MatchedBy
from starlight_sequences.service._inbound import InboundEvents
from starlight_sequences.service._shared import ServiceContext

log = logging.getLogger("starlight_sequences.inbound")


@attrs.frozen(kw_only=True)
class _Match:
    lead_id: LeadId
    campaign_id: CampaignId | None
    by: MatchedBy


class MailIngest:
    """Turns raw inbound mail into events."""

    def __init__(self, ctx: ServiceContext, events: InboundEvents) -> None:
        self._ctx = ctx
        self._events = events

    def ingest_email(self, workspace_id: WorkspaceId, raw: bytes) -> IngestResult:
        """Classify, match and apply one message (see ``CampaignService.ingest_email``)."""
        now = self._ctx.clock.now()
        found = classify_message(raw, received_on=now.date())
        result = IngestResult(
            kind=found.kind,
            event=None,
            applied=False,
            lead_id=None,
            campaign_id=None,
            matched_by=MatchedBy.NOTHING,
            return_date=found.return_date,
            message_id=found.message_id,
            reason=found.reason,
        )
        if found.kind is InboundKind.UNMATCHED:
            log.info("inbound %s unmatched: %s", found.message_id, found.reason)
            return result
        match = self._match(workspace_id, found)
        if match is None:
            log.info("inbound %s (%s) concerns nobody we wrote to", found.message_id, found.kind)
            return attrs.evolve(
                result, reason=f"{found.reason}; it concerns nobody this workspace wrote to"
            )
        result = attrs.evolve(
            result, lead_id=match.lead_id, campaign_id=match.campaign_id, matched_by=match.by
        )
        at = found.sent_at if found.sent_at is not None and found.sent_at <= now else now
        kind = found.kind.event_kind
        if kind is None:  # a soft bounce: noted in the journal, nothing stops
            self._note(workspace_id, found, match, at)
            return result
        event = InboundEvent(
            kind=kind,
            lead_id=match.lead_id,
            campaign_id=match.campaign_id,
            at=at,
            key=f"mail:{found.message_id}",
            return_date=found.return_date if kind is EventKind.OUT_OF_OFFICE else None,
            detail=_detail(found),
        )
        try:
            changed = self._events.report_event(workspace_id, event)
        except UnknownContact as exc:
            return attrs.evolve(result, reason=str(exc))
        reason = found.reason if changed else f"{found.reason}; already ingested"
        return attrs.evolve(result, event=kind, applied=bool(changed), reason=reason)

    def _match(self, workspace_id: WorkspaceId, found: InboundClassification) -> _Match | None:
        storage = self._ctx.storage
        for message_id in found.related_message_ids:
            send = storage.find_send(workspace_id, message_id=message_id)
            if send is not None:
                return _Match(
                    lead_id=send.lead_id, campaign_id=send.campaign_id, by=MatchedBy.MESSAGE_ID
                )
        if found.kind in (InboundKind.BOUNCE_HARD, InboundKind.BOUNCE_SOFT):
            for address in found.failed_recipients:
                lead_id = self._lead_by_address(workspace_id, address)
                if lead_id is not None:
                    return _Match(lead_id=lead_id, campaign_id=None, by=MatchedBy.FAILED_RECIPIENT)
            return None  # a bounce's From is the mail system, never the contact
        if found.from_address:
            lead_id = self._lead_by_address(workspace_id, found.from_address)
            if lead_id is not None:
                return _Match(lead_id=lead_id, campaign_id=None, by=MatchedBy.SENDER_ADDRESS)
        return None

    def _lead_by_address(self, workspace_id: WorkspaceId, address: str) -> LeadId | None:
        """The contact with this email address: one still active if there is one, else the
        most recently enrolled."""
        normal = normalise_address(address)
        if normal is None or "@" not in normal:
            return None
        domain = normal.rsplit("@", 1)[1]
        candidates: list[Enrolment] = [
            e
            for e in self._ctx.storage.find_enrolments(workspace_id, email_domain=domain)
            if e.lead.email is not None and normalise_address(e.lead.email) == normal
        ]
        if not candidates:
            return None
        active = [e for e in candidates if not e.status.is_final]
        return (active or candidates)[-1].lead_id

    def _note(
        self,
        workspace_id: WorkspaceId,
        found: InboundClassification,
        match: _Match,
        at: dt.datetime,
    ) -> None:
        """Journal a soft bounce (once per message); nothing stops."""
        self._ctx.commit(
            workspace_id,
            Changes(
                activities=(
                    Activity(
                        kind=ActivityKind.EVENT,
                        at=at.astimezone(dt.UTC),
                        campaign_id=match.campaign_id,
                        lead_id=match.lead_id,
                        detail=f"soft bounce: {_detail(found)}".rstrip(": "),
                        key=f"mail:{found.message_id}",
                    ),
                )
            ),
        )
        log.info("soft bounce for lead %s noted", match.lead_id)


def _detail(found: InboundClassification) -> str:
    """What the journal keeps of a message: its kind's evidence, never its text."""
    parts = [found.status_code or "", (found.diagnostic or "")[:200]]
    return " ".join(p for p in parts if p)
