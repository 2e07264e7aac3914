"""How a claimed send ends: recorded as sent (and the lead's next step re-timed from it),
put back for later, skipped, or failed (stopping the lead) — with the credit movement each
ending implies.

Owns the writes that close a claim (``Storage.finish_send``) and the charges and releases
that follow them. It decides nothing about whether to send: the dispatcher does, then calls
exactly one of these.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs

from starlight_sequences.calendar import BusinessCalendar
from starlight_sequences.campaigns import (
    Campaign,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditMovement, MovementKind
from starlight_sequences.errors import ConcurrentUpdate, LeaseLost, StorageError
from starlight_sequences.events import ActivityKind, ActivityReason
from starlight_sequences.planning import step_moment
from starlight_sequences.ports.senders import SendReceipt
from starlight_sequences.ports.storage import Changes, ChargingStorage
from starlight_sequences.service._shared import (
    ACTION_LABEL,
    OPEN_UNCLAIMED,
    RETRIES,
    ServiceContext,
    bump,
    continue_after,
    lead_ended,
    not_accepted_reason,
    releases,
    send_activity,
    slot,
)
from starlight_sequences.shapes import WaitAnchor

log = logging.getLogger("starlight_sequences.dispatch")

_T = TypeVar("_T")

_BLIP_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0)
"""Seconds between attempts to write what follows a delivered message (about 8 s in all)."""


class SendFinisher:
    """The ways a claimed send ends."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def retimed(
        self,
        send: ScheduledSend,
        worker_id: str,
        now: dt.datetime,
        due: dt.datetime,
        enrolment: Enrolment | None = None,
        reason: str = "",
        *,
        deferral: bool = False,
    ) -> None:
        """Put a claimed send back, due at ``due``. A deferral (nothing was handed to a
        sender) gives back the attempt its claim counted."""
        self._ctx.storage.finish_send(
            bump(
                send,
                status=SendStatus.SCHEDULED,
                due_at=due.astimezone(dt.UTC),
                attempts=max(send.attempts - 1, 0) if deferral else send.attempts,
                lease_owner=None,
                lease_expires_at=None,
                reason=reason,
            ),
            worker_id=worker_id,
            now=now,
            changes=Changes(enrolments=(enrolment,) if enrolment is not None else ()),
        )

    def skipped(
        self,
        send: ScheduledSend,
        worker_id: str,
        now: dt.datetime,
        reason: str,
        enrolment: Enrolment | None = None,
        *,
        timed_out: bool = False,
        campaign: Campaign | None = None,
    ) -> None:
        """Skip the send (and, on an acceptance timeout, every gated step of the lead, whose
        other steps carry on from now); release what will not be sent."""
        ctx = self._ctx
        others: list[ScheduledSend] = []
        if timed_out and enrolment is not None and campaign is not None:
            others = ctx.storage.list_sends(send.workspace_id, send.campaign_id, send.lead_id)
            # fallback branch: marks the reason when the lead's fallback takes over
            reason = not_accepted_reason(reason, enrolment, others)
        skipped = bump(
            send, status=SendStatus.SKIPPED, reason=reason, lease_owner=None, lease_expires_at=None
        )
        extra: list[ScheduledSend] = []
        enrolments: tuple[Enrolment, ...] = ()
        if timed_out and enrolment is not None and campaign is not None:
            gated = {s.number for s in enrolment.steps if s.gated_on_acceptance}
            extra = [
                bump(o, status=SendStatus.SKIPPED, reason=reason)
                for o in others
                if o.id != send.id and o.step in gated and o.status in OPEN_UNCLAIMED
            ]
            dropped = {send.id, *(o.id for o in extra)}
            left = [o for o in others if o.id not in dropped and not o.status.is_final]
            updated, scheduled = continue_after(ctx, campaign, enrolment, left, now, reason)
            extra += scheduled
            enrolments = (updated,)
        why = ActivityReason.CONNECTION_TIMEOUT if timed_out else ActivityReason.LEAD_STOPPED
        ended = (
            lead_ended(enrolment, enrolments[0], now, why)
            if enrolment is not None and enrolments
            else ()
        )
        ctx.finish_send(
            skipped,
            worker_id=worker_id,
            now=now,
            changes=Changes(
                sends=tuple(extra),
                enrolments=enrolments,
                activities=(send_activity(ActivityKind.SKIPPED, send, now, reason, why), *ended),
            ),
        )
        # Released only once recorded: a lost lease must not give back credits that another
        # worker's send will still charge.
        skipped_now = [send, *(o for o in extra if o.status is SendStatus.SKIPPED)]
        ctx.ledger.post(send.workspace_id, *releases(ctx, skipped_now, reason))

    def failed(
        self,
        enrolment: Enrolment,
        send: ScheduledSend,
        worker_id: str,
        now: dt.datetime,
        reason: str,
        *,
        send_status: SendStatus = SendStatus.FAILED,
        enrolment_status: EnrolmentStatus = EnrolmentStatus.FAILED,
    ) -> None:
        """Stop the lead: this send ends with ``send_status``, every other pending step of
        the lead is skipped, reservations are released."""
        ctx = self._ctx
        failed = bump(
            send, status=send_status, reason=reason, lease_owner=None, lease_expires_at=None
        )
        others = [
            bump(o, status=SendStatus.SKIPPED, reason=f"stopped: {reason}")
            for o in ctx.storage.list_sends(send.workspace_id, send.campaign_id, send.lead_id)
            if o.id != send.id and o.status in OPEN_UNCLAIMED
        ]
        stopped = enrolment.stop(enrolment_status, reason)
        kind = ActivityKind.FAILED if send_status is SendStatus.FAILED else ActivityKind.STOPPED
        # The only stop that is not a failure is a contact found on the suppression list.
        why = (
            ActivityReason.SEND_FAILED if kind is ActivityKind.FAILED else ActivityReason.SUPPRESSED
        )
        ctx.finish_send(
            failed,
            worker_id=worker_id,
            now=now,
            changes=Changes(
                sends=tuple(others),
                enrolments=(attrs.evolve(stopped, revision=enrolment.revision + 1),),
                activities=(send_activity(kind, send, now, reason, why),),
            ),
        )
        ctx.ledger.post(send.workspace_id, *releases(ctx, [send, *others], reason))

    def sent(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        calendar: BusinessCalendar,
        worker_id: str,
        receipt: SendReceipt,
        stored: Enrolment,
        lead_sends: Sequence[ScheduledSend] | None = None,
    ) -> None:
        """Record a send the sender accepted, re-time the lead's next step from it, charge.

        ``lead_sends`` are the lead's sends as the dispatch pass read them (read here when not
        given); a record that meets a concurrent change reads them again before its retry.

        The message is out, so it is recorded whatever happened to the lead meanwhile: when
        another writer changed the enrolment (a reply, an acceptance), it is read again and the
        record retried. The charge follows the record, keyed by the idempotency key; a crash in
        between leaves a sent step without its charge, which ``reconcile_credits`` posts.
        """
        ctx = self._ctx
        now = ctx.clock.now()
        fields = {"campaign_id": send.campaign_id, "lead_id": send.lead_id, "step": send.step}
        charge = CreditMovement(
            kind=MovementKind.CHARGE,
            amount=ctx.prices_of(campaign).price_of(send.action),
            campaign_id=send.campaign_id,
            lead_id=send.lead_id,
            key=f"charge:{send.idempotency_key}",
            note=f"step {send.step} sent",
        )
        # When the ledger lives in the storage's database, the charge rides in the record's
        # transaction (one commit per send); otherwise it is posted after the record.
        joint = (
            charge
            if isinstance(ctx.storage, ChargingStorage) and ctx.storage.charges_with(ctx.ledger)
            else None
        )
        charged = False
        for attempt in range(RETRIES + 1):
            try:
                charged = self._record_patiently(
                    campaign,
                    enrolment,
                    send,
                    calendar,
                    worker_id,
                    receipt,
                    (stored, lead_sends),
                    now,
                    joint,
                )
                break
            except ConcurrentUpdate:
                if attempt == RETRIES:
                    raise
                lead_sends = None
                stored = enrolment = ctx.storage.get_enrolment(
                    send.workspace_id, send.campaign_id, send.lead_id
                )
        if charged:
            return
        try:
            self._patiently("charge", lambda: ctx.ledger.post(send.workspace_id, charge))
        except StorageError:
            # The send is recorded; its keyed charge is what reconcile_credits posts.
            log.error(
                "could not charge campaign=%s lead=%s step=%s; reconcile_credits will",
                send.campaign_id,
                send.lead_id,
                send.step,
                exc_info=True,
                extra={**fields, "idempotency_key": send.idempotency_key},
            )

    def _patiently(self, what: str, write: Callable[[], _T]) -> _T:
        """Run ``write``, waiting out a storage blip (a dropped connection, a failover) for a
        few seconds before giving up with the last ``StorageError``. Used only for what must
        follow a message that is already out: its record and its charge."""
        for delay in (*_BLIP_DELAYS, None):
            try:
                return write()
            except StorageError:
                if delay is None:
                    raise
                log.warning("storage failed during %s; trying again in %.1f s", what, delay)
                self._ctx.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _record_patiently(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        calendar: BusinessCalendar,
        worker_id: str,
        receipt: SendReceipt,
        read: tuple[Enrolment, Sequence[ScheduledSend] | None],
        now: dt.datetime,
        charge: CreditMovement | None,
    ) -> bool:
        """Record the send (with ``charge`` in the same transaction, when given), retrying
        through storage blips; True when the charge went in with it. A retry after a commit
        whose outcome was lost with its connection finds the send already recorded: that is
        success, not a lost lease (the charge is then posted again: keyed, it counts once)."""
        blipped = False

        def record() -> bool:
            nonlocal blipped
            try:
                return self._record_sent(
                    campaign, enrolment, send, calendar, worker_id, receipt, read, now, charge
                )
            except StorageError:
                blipped = True
                raise
            except (LeaseLost, ConcurrentUpdate):
                if blipped and self._recorded(send, receipt):
                    return False
                raise

        return self._patiently("record of a sent message", record)

    def _recorded(self, send: ScheduledSend, receipt: SendReceipt) -> bool:
        stored = self._ctx.storage.list_sends(send.workspace_id, send.campaign_id, send.lead_id)
        return any(
            s.id == send.id and s.status is SendStatus.SENT and s.receipt == receipt.message_id
            for s in stored
        )

    def _record_sent(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        calendar: BusinessCalendar,
        worker_id: str,
        receipt: SendReceipt,
        read: tuple[Enrolment, Sequence[ScheduledSend] | None],
        now: dt.datetime,
        charge: CreditMovement | None = None,
    ) -> bool:
        stored, lead_sends = read
        if lead_sends is None:
            lead_sends = self._ctx.storage.list_sends(
                send.workspace_id, send.campaign_id, send.lead_id
            )
        sent = bump(
            send,
            status=SendStatus.SENT,
            sent_at=now,
            receipt=receipt.message_id,
            reason="",
            lease_owner=None,
            lease_expires_at=None,
        )
        updated = enrolment
        if send.action is Action.LINKEDIN_CONNECT:
            updated = attrs.evolve(updated, connect_sent_at=now)
        later = [s for s in lead_sends if s.step > send.step and s.status is SendStatus.PENDING]
        updated, changed = self._next_after(campaign, updated, send, calendar, later, now)
        # Written when anything changed since it was read (including a return from
        # out-of-office that the caller applied).
        enrolments = (
            (attrs.evolve(updated, revision=stored.revision + 1),) if updated != stored else ()
        )
        detail = f"{ACTION_LABEL[send.action]} sent ({receipt.message_id})"
        changes = Changes(
            sends=tuple(changed),
            enrolments=enrolments,
            activities=(
                send_activity(ActivityKind.SENT, send, now, detail),
                *lead_ended(enrolment, updated, now, ActivityReason.EVERY_STEP_SENT),
            ),
        )
        storage = self._ctx.storage
        if charge is not None and isinstance(storage, ChargingStorage):
            charged = storage.finish_send_charging(
                sent, worker_id=worker_id, now=now, changes=changes, charge=charge
            )
            self._ctx.listeners.publish(send.workspace_id, changes.activities)
            return charged
        self._ctx.finish_send(sent, worker_id=worker_id, now=now, changes=changes)
        return False

    def _next_after(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        calendar: BusinessCalendar,
        later: Sequence[ScheduledSend],
        now: dt.datetime,
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        """The lead's next step after ``send`` went out at ``now``: scheduled from it, or
        waiting for the acceptance; the lead completes when no step is left."""
        if enrolment.status.is_final:
            return enrolment, []  # stopped while this send was in flight: schedule nothing
        # The fallback branch is never the next step of a send: it follows a decline or a
        # timeout (continue_after), so the path here leaves it out unless it was this send.
        path = [s for s in enrolment.steps if s.number == send.step or not s.is_fallback]
        index = next(i for i, s in enumerate(path) if s.number == send.step)
        if index + 1 >= len(path):
            if any(not s.status.is_final for s in later):
                return enrolment, []
            return enrolment.stop(EnrolmentStatus.COMPLETED, "every step sent"), []
        nxt_step = path[index + 1]
        nxt = next((s for s in later if s.step == nxt_step.number), None)
        if nxt is None:
            # The next step was dropped already (a decline before the request went out): the
            # lead's next pending step (a fallback) follows from now, or the lead completes.
            return continue_after(self._ctx, campaign, enrolment, later, now, "every step sent")
        if nxt_step.gated_on_acceptance and enrolment.accepted_at is None:
            deadline = acceptance_deadline(campaign, calendar, now)
            return (
                attrs.evolve(enrolment, status=EnrolmentStatus.WAITING_ON_CONNECTION),
                [bump(nxt, status=SendStatus.WAITING, due_at=deadline)],
            )
        anchor = now
        if (
            nxt_step.counts_from is WaitAnchor.CONNECTION_ACCEPTED
            and enrolment.accepted_at is not None
        ):
            anchor = enrolment.accepted_at
        earliest = max(
            step_moment(calendar, anchor, nxt_step.wait_days),
            calendar.next_business_moment(now),
        )
        due = slot(self._ctx, campaign, nxt, calendar, earliest)
        return enrolment, [bump(nxt, status=SendStatus.SCHEDULED, due_at=due)]


def acceptance_deadline(
    campaign: Campaign, calendar: BusinessCalendar, connect_sent: dt.datetime
) -> dt.datetime:
    """When a connection request sent at ``connect_sent`` times out: the close of business
    on the campaign's timeout day in the recipient's calendar."""
    local = connect_sent.astimezone(calendar.zone)
    day = calendar.add_business_days(local.date(), campaign.settings.connection_timeout_days)
    window = calendar.business_window(day)
    assert window is not None
    return window[1].astimezone(dt.UTC)
