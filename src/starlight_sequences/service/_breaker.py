"""The bounce breaker's room: after a hard bounce, hold the mailbox that sent the bounced
message when its recent hard-bounce rate passes its threshold; resume it when the host says.

Owns sender holds (storage's ``sender_holds``) and the SENDER_HELD / SENDER_RESUMED journal
lines. It decides with the pure :func:`~starlight_sequences.bounce_breaker.evaluate_breaker`,
never sends, and never changes campaigns, leads or sends: a held mailbox's sends wait at the
dispatcher (``_dispatch``), which asks :func:`held_senders` once per pass.
"""

from __future__ import annotations

import datetime as dt
import logging

import attrs

from starlight_sequences.bounce_breaker import (
    BounceBreaker,
    SenderHold,
    evaluate_breaker,
    window_outcomes,
)
from starlight_sequences.campaigns import Enrolment, EnrolmentStatus, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.errors import ConcurrentUpdate, SenderNotHeld
from starlight_sequences.events import Activity, ActivityKind, ActivityReason
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.service._shared import RETRIES, ServiceContext

log = logging.getLogger("starlight_sequences.breaker")

HELD_RECHECK = dt.timedelta(hours=1)
"""How long a claimed send of a held mailbox waits before the dispatcher looks again."""


def held_senders(storage: Storage, workspace_id: WorkspaceId) -> frozenset[SenderId]:
    """The senders the bounce breaker holds now in the workspace (one read)."""
    return frozenset(h.sender_id for h in storage.list_sender_holds(workspace_id) if h.held)


class BounceBreakerRoom:
    """Trips and resumes the bounce breaker of a workspace's mailboxes."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def after_hard_bounce(
        self, workspace_id: WorkspaceId, lead_id: LeadId, campaign_id: CampaignId | None
    ) -> tuple[SenderHold, ...]:
        """Evaluate the breaker of each mailbox whose latest email to ``lead_id`` bounced (in
        ``campaign_id`` when given) and hold those that pass their threshold.

        Reads the committed state, so it is called after the bounce is stored; calling it
        again (a repeated event) holds nothing twice. Returns the holds it made.
        """
        made = []
        for sender_id, breaker in self._bounced_senders(workspace_id, lead_id, campaign_id).items():
            for _ in range(RETRIES):
                try:
                    hold = self._evaluate(workspace_id, sender_id, breaker)
                    break
                except ConcurrentUpdate:
                    continue
            else:
                hold = self._evaluate(workspace_id, sender_id, breaker)
            if hold is not None:
                made.append(hold)
        return tuple(made)

    def _bounced_senders(
        self, workspace_id: WorkspaceId, lead_id: LeadId, campaign_id: CampaignId | None
    ) -> dict[SenderId, BounceBreaker]:
        """The mailboxes of the lead's bounced enrolments' latest sent emails, each with the
        breaker of the campaign identity it sent under."""
        storage = self._ctx.storage
        senders: dict[SenderId, BounceBreaker] = {}
        for enrolment in storage.find_enrolments(workspace_id, lead_id=lead_id):
            if enrolment.status is not EnrolmentStatus.BOUNCED or campaign_id not in (
                None,
                enrolment.campaign_id,
            ):
                continue
            sent = [
                s
                for s in storage.list_sends(workspace_id, enrolment.campaign_id, lead_id)
                if s.status is SendStatus.SENT and s.action is Action.EMAIL
            ]
            if not sent:
                continue
            latest = max(sent, key=lambda s: s.sent_at or dt.datetime.min.replace(tzinfo=dt.UTC))
            identity = storage.get_campaign(workspace_id, enrolment.campaign_id).email_identity
            if identity is not None and identity.id == latest.sender_id:
                senders.setdefault(latest.sender_id, identity.bounce_breaker)
            else:  # sent under an identity the campaign no longer names: the defaults
                senders.setdefault(latest.sender_id, BounceBreaker())
        return senders

    def _evaluate(
        self, workspace_id: WorkspaceId, sender_id: SenderId, breaker: BounceBreaker
    ) -> SenderHold | None:
        storage = self._ctx.storage
        stored = storage.get_sender_hold(workspace_id, sender_id)
        if stored is not None and stored.held:
            return None
        if not breaker.enabled:
            return None
        recent = storage.recent_sends(
            workspace_id,
            sender_id,
            limit=breaker.window,
            after=None if stored is None else stored.resumed_at,
        )
        # Emails only: a LinkedIn account that shares the id has no bounces to count.
        recent = [s for s in recent if s.action is Action.EMAIL]
        keys = [(s.campaign_id, s.lead_id) for s in recent]
        bounced = {
            (e.campaign_id, e.lead_id)
            for e in _enrolments(self._ctx, workspace_id, recent_leads=[s.lead_id for s in recent])
            if e.status is EnrolmentStatus.BOUNCED
        }
        verdict = evaluate_breaker(breaker, window_outcomes(keys, bounced))
        if not verdict.trip:
            return None
        now = self._ctx.clock.now().astimezone(dt.UTC)
        fresh = SenderHold(
            workspace_id=workspace_id,
            sender_id=sender_id,
            held_at=now,
            sends=verdict.sends,
            hard_bounces=verdict.hard_bounces,
            threshold=breaker.threshold,
        )
        hold = fresh if stored is None else attrs.evolve(fresh, revision=stored.revision + 1)
        self._ctx.commit(
            workspace_id,
            Changes(
                sender_holds=(hold,),
                activities=(
                    Activity(
                        kind=ActivityKind.SENDER_HELD,
                        at=now,
                        detail=f"sender {sender_id} held: {hold.reason}",
                        reason=ActivityReason.BOUNCE_RATE,
                    ),
                ),
            ),
        )
        log.warning(
            "sender %s held: %s",
            sender_id,
            hold.reason,
            extra={"workspace_id": workspace_id, "sender_id": sender_id},
        )
        return hold

    def resume(self, workspace_id: WorkspaceId, sender_id: SenderId) -> SenderHold:
        """Resume a held mailbox (see ``CampaignService.resume_sender``)."""
        stored = self._ctx.storage.get_sender_hold(workspace_id, sender_id)
        if stored is None or not stored.held:
            raise SenderNotHeld(workspace_id, sender_id)
        now = self._ctx.clock.now().astimezone(dt.UTC)
        resumed = attrs.evolve(stored, resumed_at=now, revision=stored.revision + 1)
        self._ctx.commit(
            workspace_id,
            Changes(
                sender_holds=(resumed,),
                activities=(
                    Activity(
                        kind=ActivityKind.SENDER_RESUMED,
                        at=now,
                        detail=f"sender {sender_id} resumed by the host",
                        reason=ActivityReason.BOUNCE_RATE,
                    ),
                ),
            ),
        )
        log.info("sender %s resumed", sender_id, extra={"workspace_id": workspace_id})
        return resumed

    def holds(self, workspace_id: WorkspaceId) -> tuple[SenderHold, ...]:
        """The workspace's held mailboxes, by sender id."""
        return tuple(h for h in self._ctx.storage.list_sender_holds(workspace_id) if h.held)


def _enrolments(
    ctx: ServiceContext, workspace_id: WorkspaceId, *, recent_leads: list[LeadId]
) -> list[Enrolment]:
    """The enrolments of the window's contacts, in one read."""
    if not recent_leads:
        return []
    return ctx.storage.find_enrolments(workspace_id, lead_ids=sorted(set(recent_leads)))
