"""Inbound events: what happens when a reply, a meeting, an unsubscribe, a bounce, an
acceptance, a decline or an out-of-office reaches a campaign.

Owns stopping leads on events, the suppression list, and re-timing gated and held steps. It
never sends and never changes campaigns' own status except through completion.
"""

from __future__ import annotations

import datetime as dt
import logging

from starlight_sequences.calendar import BusinessCalendar
from starlight_sequences.campaigns import (
    Campaign,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
    StopScope,
)
from starlight_sequences.errors import ConcurrentUpdate, InvalidEvent, UnknownContact
from starlight_sequences.events import (
    Activity,
    ActivityKind,
    ActivityReason,
    EventKind,
    InboundEvent,
)
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.planning import step_moment
from starlight_sequences.ports.storage import Changes
from starlight_sequences.service._breaker import BounceBreakerRoom
from starlight_sequences.service._shared import (
    FALLBACK_NOT_NEEDED,
    OPEN_UNCLAIMED,
    RETRIES,
    ServiceContext,
    bump,
    complete_if_done,
    continue_after,
    lead_calendar,
    lead_ended,
    not_accepted_reason,
    releases,
    send_activity,
    slot,
)

_Change = tuple[Enrolment, list[ScheduledSend]]

log = logging.getLogger("starlight_sequences.inbound")


def stop_lead(
    ctx: ServiceContext,
    enrolment: Enrolment,
    status: EnrolmentStatus,
    reason: str,
    released: list[ScheduledSend],
) -> _Change:
    """Stop a lead with ``status``: every open step is skipped (and added to ``released``)."""
    sends = [
        bump(s, status=SendStatus.SKIPPED, reason=reason)
        for s in ctx.storage.list_sends(
            enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
        )
        if s.status in OPEN_UNCLAIMED
    ]
    released.extend(sends)
    stopped = enrolment.stop(status, reason) if not enrolment.status.is_final else enrolment
    return bump(stopped), sends


def _journal(
    event: InboundEvent, befores: list[Enrolment], changes: list[_Change]
) -> list[Activity]:
    """The journal lines of what ``event`` did to each lead (``befores[i]`` became
    ``changes[i]``): acceptances, leads stopped or completed, steps a decline skipped."""
    at = event.at.astimezone(dt.UTC)
    journal: list[Activity] = []
    for before, (after, sends) in zip(befores, changes, strict=True):
        if event.kind is EventKind.CONNECTION_ACCEPTED:
            journal.append(
                Activity(
                    kind=ActivityKind.ACCEPTED,
                    at=at,
                    campaign_id=after.campaign_id,
                    lead_id=after.lead_id,
                    detail="LinkedIn connection request accepted",
                )
            )
            continue
        if event.kind is EventKind.CONNECTION_DECLINED:
            why = ActivityReason.CONNECTION_DECLINED
            journal.extend(
                send_activity(ActivityKind.SKIPPED, s, at, s.reason, why)
                for s in sends
                if s.status is SendStatus.SKIPPED
            )
            journal.extend(lead_ended(before, after, at, why))
            continue
        colleague = after.lead_id != event.lead_id
        journal.extend(
            lead_ended(
                before,
                after,
                at,
                ActivityReason.COLLEAGUE_REPLIED if colleague else "",
                stopped=colleague,
            )
        )
    return journal


class InboundEvents:
    """Applies the events a host observed (or the inbound mail classifier recognised)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._breaker = BounceBreakerRoom(ctx)

    def report_event(self, workspace_id: WorkspaceId, event: InboundEvent) -> tuple[Enrolment, ...]:
        """Apply one event; a repeat changes nothing (see ``CampaignService.report_event``)."""
        if event.at.utcoffset() is None:
            raise InvalidEvent(f"event {event.kind} for {event.lead_id!r}: 'at' must be aware")
        changed = self._apply_retrying(workspace_id, event)
        if event.kind is EventKind.BOUNCE:
            # After the bounce is stored (the breaker reads committed state), and also when it
            # was stored before: a repeated event then finishes a trip a crash cut short.
            self._breaker.after_hard_bounce(workspace_id, event.lead_id, event.campaign_id)
        return changed

    def _apply_retrying(
        self, workspace_id: WorkspaceId, event: InboundEvent
    ) -> tuple[Enrolment, ...]:
        for _ in range(RETRIES):
            try:
                return self._apply(workspace_id, event)
            except ConcurrentUpdate:
                continue
        return self._apply(workspace_id, event)

    def _apply(self, workspace_id: WorkspaceId, event: InboundEvent) -> tuple[Enrolment, ...]:
        ctx = self._ctx
        mine = ctx.storage.find_enrolments(workspace_id, lead_id=event.lead_id)
        scoped = [e for e in mine if event.campaign_id in (None, e.campaign_id)]
        if not scoped:
            where = f" in campaign {event.campaign_id!r}" if event.campaign_id else ""
            raise UnknownContact(
                f"workspace {workspace_id!r} never enrolled lead {event.lead_id!r}{where}"
            )
        now = ctx.clock.now()
        released: list[ScheduledSend] = []
        suppress: tuple[str, ...] = ()
        # What the event did to each lead, for the journal: read before, written after.
        befores: list[Enrolment] = []
        kind = event.kind
        if kind in (EventKind.REPLY, EventKind.MEETING_BOOKED):
            changes = self._replied(workspace_id, event, mine, scoped, released, befores)
        elif kind in (EventKind.UNSUBSCRIBE, EventKind.BOUNCE):
            status = (
                EnrolmentStatus.UNSUBSCRIBED
                if kind is EventKind.UNSUBSCRIBE
                else EnrolmentStatus.BOUNCED
            )
            befores = list(mine)
            changes = [stop_lead(ctx, e, status, kind.value, released) for e in mine]
            emails = {e.lead.email.lower() for e in mine if e.lead.email}
            suppress = (event.lead_id, *sorted(emails))
        elif kind is EventKind.CONNECTION_ACCEPTED:
            befores = [e for e in scoped if e.accepted_at is None and not e.status.is_final]
            changes = [self._accepted(e, event.at, now, released) for e in befores]
        elif kind is EventKind.CONNECTION_DECLINED:
            befores = [e for e in scoped if not e.status.is_final]
            changes = [self._declined(e, released, now) for e in befores]
        elif kind is EventKind.OUT_OF_OFFICE:
            befores = [e for e in scoped if not e.status.is_final]
            changes = [self._out_of_office(e, event) for e in befores]
        else:  # a kind this version does not act on: journalled only
            changes = []
        journal = _journal(event, befores, changes)
        return self._store(workspace_id, event, changes, suppress, released, journal)

    def _store(
        self,
        workspace_id: WorkspaceId,
        event: InboundEvent,
        changes: list[_Change],
        suppress: tuple[str, ...],
        released: list[ScheduledSend],
        journal: list[Activity],
    ) -> tuple[Enrolment, ...]:
        ctx = self._ctx
        stored = ctx.commit(
            workspace_id,
            Changes(
                enrolments=tuple(e for e, _ in changes),
                sends=tuple(s for _, sends in changes for s in sends),
                suppress=suppress,
                activities=(
                    Activity(
                        kind=ActivityKind.EVENT,
                        at=event.at.astimezone(dt.UTC),
                        campaign_id=event.campaign_id,
                        lead_id=event.lead_id,
                        detail=f"{event.kind.value}: {event.detail}".rstrip(": "),
                        key=event.dedupe_key,
                    ),
                    *journal,
                ),
            ),
        )
        fields = {
            "workspace_id": workspace_id,
            "campaign_id": event.campaign_id,
            "lead_id": event.lead_id,
            "event": event.kind.value,
        }
        if not stored:
            log.debug(
                "%s for lead %s already applied", event.kind.value, event.lead_id, extra=fields
            )
            return ()
        log.info(
            "%s for lead %s: %d enrolments changed, %d steps released",
            event.kind.value,
            event.lead_id,
            len(changes),
            len(released),
            extra=fields,
        )
        if released:
            ctx.ledger.post(workspace_id, *releases(ctx, released, event.kind.value))
        for campaign_id in sorted({e.campaign_id for e, _ in changes}):
            complete_if_done(ctx, workspace_id, campaign_id)
        return tuple(e for e, _ in changes)

    def _replied(
        self,
        workspace_id: WorkspaceId,
        event: InboundEvent,
        mine: list[Enrolment],
        scoped: list[Enrolment],
        released: list[ScheduledSend],
        befores: list[Enrolment],
    ) -> list[_Change]:
        """A reply or a booked meeting stops the contact in the campaign (or the workspace, by
        ``stop_scope``) and, with ``stop_company_on_reply``, everyone at its email domain."""
        storage = self._ctx.storage
        status = (
            EnrolmentStatus.REPLIED
            if event.kind is EventKind.REPLY
            else EnrolmentStatus.MEETING_BOOKED
        )
        targets = {(e.campaign_id, e.lead_id): e for e in scoped}
        for enrolment in scoped:
            settings = storage.get_campaign(workspace_id, enrolment.campaign_id).settings
            if settings.stop_scope is StopScope.WORKSPACE:
                targets.update({(e.campaign_id, e.lead_id): e for e in mine})
            if settings.stop_company_on_reply and enrolment.lead.email:
                domain = enrolment.lead.email.rsplit("@", 1)[1].lower()
                for other in storage.find_enrolments(workspace_id, email_domain=domain):
                    targets.setdefault((other.campaign_id, other.lead_id), other)
        changes = []
        for enrolment in targets.values():
            own = enrolment.lead_id == event.lead_id
            why = event.kind.value.replace("_", " ") + ("" if own else f" from {event.lead_id}")
            new_status = status if own else EnrolmentStatus.COMPLETED
            befores.append(enrolment)
            changes.append(stop_lead(self._ctx, enrolment, new_status, why, released))
        return changes

    def _calendar_of(self, enrolment: Enrolment) -> tuple[Campaign, BusinessCalendar]:
        campaign = self._ctx.storage.get_campaign(enrolment.workspace_id, enrolment.campaign_id)
        return campaign, lead_calendar(campaign, enrolment)

    def _accepted(
        self,
        enrolment: Enrolment,
        at: dt.datetime,
        now: dt.datetime,
        released: list[ScheduledSend],
    ) -> _Change:
        campaign, calendar = self._calendar_of(enrolment)
        steps = {s.number: s for s in enrolment.steps}
        sends = []
        every = self._ctx.storage.list_sends(
            enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
        )
        for send in every:
            if steps[send.step].is_fallback and send.status in OPEN_UNCLAIMED:
                # Never alongside an accepted connection: its reservation goes back.
                skipped = bump(send, status=SendStatus.SKIPPED, reason=FALLBACK_NOT_NEEDED)
                released.append(skipped)
                sends.append(skipped)
                continue
            if send.status is not SendStatus.WAITING:
                continue
            earliest = max(
                step_moment(calendar, at, steps[send.step].wait_days),
                calendar.next_business_moment(now),
            )
            due = slot(self._ctx, campaign, send, calendar, earliest)
            sends.append(bump(send, status=SendStatus.SCHEDULED, due_at=due))
        status = (
            EnrolmentStatus.ACTIVE
            if enrolment.status is EnrolmentStatus.WAITING_ON_CONNECTION
            else enrolment.status
        )
        updated = bump(enrolment, accepted_at=at.astimezone(dt.UTC), status=status)
        latest = {s.id: s for s in (*every, *sends)}
        if any(s.reason == FALLBACK_NOT_NEEDED for s in sends) and all(
            s.status.is_final for s in latest.values()
        ):
            # Accepted after the fallback took over: nothing is left for the lead.
            updated = updated.stop(EnrolmentStatus.COMPLETED, FALLBACK_NOT_NEEDED)
        return updated, sends

    def _declined(
        self, enrolment: Enrolment, released: list[ScheduledSend], now: dt.datetime
    ) -> _Change:
        ctx = self._ctx
        all_sends = ctx.storage.list_sends(
            enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
        )
        if not all_sends:
            # Nothing scheduled yet, so no request can have been declined: nothing changes but
            # the revision (the event is still journalled).
            return bump(enrolment), []
        gated = {s.number for s in enrolment.steps if s.gated_on_acceptance}
        reason = not_accepted_reason("connection request declined", enrolment, all_sends)
        sends = [
            bump(s, status=SendStatus.SKIPPED, reason=reason)
            for s in all_sends
            if s.step in gated and s.status in OPEN_UNCLAIMED
        ]
        released.extend(sends)
        skipped = {s.id for s in sends}
        left = [s for s in all_sends if s.id not in skipped and not s.status.is_final]
        campaign = ctx.storage.get_campaign(enrolment.workspace_id, enrolment.campaign_id)
        updated, scheduled = continue_after(
            ctx, campaign, enrolment, left, now, "connection request declined"
        )
        return updated, sends + scheduled

    def _out_of_office(self, enrolment: Enrolment, event: InboundEvent) -> _Change:
        campaign, calendar = self._calendar_of(enrolment)
        if event.return_date is not None:
            day = calendar.add_business_days(event.return_date, 0)
        else:
            local = event.at.astimezone(calendar.zone).date()
            day = calendar.add_business_days(local, campaign.settings.out_of_office_days)
        window = calendar.business_window(day)
        assert window is not None
        resume = window[0].astimezone(dt.UTC)
        sends = [
            bump(s, due_at=slot(self._ctx, campaign, s, calendar, resume))
            for s in self._ctx.storage.list_sends(
                enrolment.workspace_id, enrolment.campaign_id, enrolment.lead_id
            )
            if s.status is SendStatus.SCHEDULED and s.due_at < resume
        ]
        updated = bump(
            enrolment,
            status=EnrolmentStatus.OUT_OF_OFFICE,
            resume_at=resume,
            reason=f"out of office until {day.isoformat()}",
        )
        return updated, sends
