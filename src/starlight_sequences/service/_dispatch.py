"""Dispatch: claim what is due, check each claimed send again at this moment, hand it to its
sender, and end it through the finisher (sent, retried, re-timed, skipped or failed).

Owns the send-time checks and the sender calls. It may not create campaigns, apply inbound
events or change drafts; every write that closes a claim goes through ``SendFinisher``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence

import attrs

from starlight_sequences.cadence import CadenceStep
from starlight_sequences.calendar import BusinessCalendar
from starlight_sequences.campaigns import (
    Campaign,
    CampaignStatus,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.channels import Action, Channel
from starlight_sequences.drafts import Draft
from starlight_sequences.email_threads import ThreadHeaders, follow_up_headers, thread_starter
from starlight_sequences.errors import DraftNotFound, InvalidSettings, LeaseLost, StorageError
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.inbound import normalise_message_id
from starlight_sequences.ports.senders import (
    LinkedInAction,
    OutgoingEmail,
    SendFailure,
    SendReceipt,
)
from starlight_sequences.ports.storage import Storage
from starlight_sequences.reports import DispatchOutcome, DispatchReport
from starlight_sequences.service._breaker import HELD_RECHECK, held_senders
from starlight_sequences.service._finishing import SendFinisher
from starlight_sequences.service._lanes import (
    Claim,
    LanePool,
    PassState,
    Refilling,
    sender_lanes,
)
from starlight_sequences.service._shared import (
    CHANNEL_ACTIONS,
    FALLBACK_NOT_NEEDED,
    ServiceContext,
    bump,
    complete_if_done,
    complete_if_nothing_left,
    contact_keys,
    lead_calendar,
    sender_limits,
    slot,
)
from starlight_sequences.service._variants import pick_due_winners

log = logging.getLogger("starlight_sequences.dispatch")


def _draft_of(drafts: dict[int, Draft], send: ScheduledSend, step: int) -> Draft:
    """The lead's draft of ``step`` among ``drafts``.

    Raises:
        DraftNotFound: the campaign has no draft for that step.
    """
    draft = drafts.get(step)
    if draft is None:
        raise DraftNotFound(
            f"campaign {send.campaign_id!r} has no draft for {send.lead_id!r} step {step}"
        )
    return draft


class StorageFaultBeforeDelivery(StorageError):
    """The storage failed while a claimed send was checked, before any sender saw it."""


@attrs.frozen(kw_only=True)
class _Ready:
    """What sending one checked send needs."""

    campaign: Campaign
    stored: Enrolment
    enrolment: Enrolment
    changed: Enrolment | None
    calendar: BusinessCalendar
    draft: Draft | None
    now: dt.datetime
    lead_sends: Sequence[ScheduledSend] = ()
    thread: ThreadHeaders | None = None


@attrs.define
class _PassReads:
    """What one pass reads once for its whole batch instead of once per send: each campaign,
    the suppression list for the batch's contacts, each sender's last send (then kept up to
    date with this worker's own sends), the senders the bounce breaker holds, and per campaign
    the drafts and the earlier sends of the batch's leads (one query each; a lead's sends are
    read again after this pass sent one of them, for the thread headers of a later step in the
    same batch).

    A pause, a hold or a send by another worker that lands during the pass is seen at the next
    pass;
    a reply, an unsubscribe or a cancellation still stops a send of this pass, because the
    lead's enrolment is read fresh for every send, just before its sender is called.

    Thread-safe: the lanes of a pass with several sends in flight share one. The batch's
    suppression list is read once, under the lock; a campaign or a sender's last send is read
    outside it (a sender's last send is read and updated only by its own lane).
    """

    storage: Storage
    batch: Sequence[ScheduledSend]
    campaigns: dict[tuple[WorkspaceId, CampaignId], Campaign] = attrs.Factory(dict)
    asked: dict[WorkspaceId, set[str]] = attrs.Factory(dict)
    listed: dict[WorkspaceId, set[str]] = attrs.Factory(dict)
    last: dict[tuple[WorkspaceId, SenderId, Channel], dt.datetime | None] = attrs.Factory(dict)
    drafts_of: dict[tuple[WorkspaceId, CampaignId], dict[LeadId, dict[int, Draft]]] = attrs.Factory(
        dict
    )
    sends_of: dict[tuple[WorkspaceId, CampaignId], dict[LeadId, list[ScheduledSend]]] = (
        attrs.Factory(dict)
    )
    stale: set[tuple[WorkspaceId, CampaignId, LeadId]] = attrs.Factory(set)
    _lock: threading.RLock = attrs.field(factory=threading.RLock, init=False, repr=False)
    held: dict[WorkspaceId, frozenset[SenderId]] = attrs.Factory(dict)

    def sender_held(self, workspace_id: WorkspaceId, sender_id: SenderId) -> bool:
        """The bounce breaker holds this sender (read once per pass, like a pause)."""
        if workspace_id not in self.held:
            self.held[workspace_id] = held_senders(self.storage, workspace_id)
        return sender_id in self.held[workspace_id]

    def campaign(self, workspace_id: WorkspaceId, campaign_id: CampaignId) -> Campaign:
        key = (workspace_id, campaign_id)
        with self._lock:
            if key in self.campaigns:
                return self.campaigns[key]
        # Read outside the lock, so that lanes starting together read in parallel; two lanes
        # of one campaign may both read it, and keep the first.
        campaign = self.storage.get_campaign(workspace_id, campaign_id)
        with self._lock:
            return self.campaigns.setdefault(key, campaign)

    def _leads(self, key: tuple[WorkspaceId, CampaignId]) -> list[LeadId]:
        return sorted({s.lead_id for s in self.batch if (s.workspace_id, s.campaign_id) == key})

    def drafts(self, send: ScheduledSend) -> dict[int, Draft]:
        """The drafts of ``send``'s lead, by step (read for the whole batch's leads at once)."""
        key = (send.workspace_id, send.campaign_id)
        with self._lock:
            if key not in self.drafts_of:
                found: dict[LeadId, dict[int, Draft]] = {}
                for draft in self.storage.list_drafts(*key, lead_ids=self._leads(key)):
                    found.setdefault(draft.lead_id, {})[draft.step] = draft
                self.drafts_of[key] = found
            return self.drafts_of[key].get(send.lead_id, {})

    def sends(self, send: ScheduledSend) -> list[ScheduledSend]:
        """The sends of ``send``'s lead (read for the whole batch's leads at once; read
        again for a lead this pass has sent to since)."""
        key = (send.workspace_id, send.campaign_id)
        with self._lock:
            if (*key, send.lead_id) in self.stale:
                return self.storage.list_sends(*key, send.lead_id)
            if key not in self.sends_of:
                found: dict[LeadId, list[ScheduledSend]] = {}
                for stored in self.storage.list_sends(*key, lead_ids=self._leads(key)):
                    found.setdefault(stored.lead_id, []).append(stored)
                self.sends_of[key] = found
            return self.sends_of[key].get(send.lead_id, [])

    def suppressed(self, workspace_id: WorkspaceId, keys: set[str]) -> set[str]:
        with self._lock:
            if workspace_id not in self.asked:
                leads = [s.lead_id for s in self.batch if s.workspace_id == workspace_id]
                asked: set[str] = set(leads)
                for enrolment in self.storage.find_enrolments(workspace_id, lead_ids=leads):
                    asked |= contact_keys(enrolment.lead)
                self.listed[workspace_id] = self.storage.suppressed(workspace_id, asked)
                self.asked[workspace_id] = asked
            if keys <= self.asked[workspace_id]:
                return keys & self.listed[workspace_id]
        return self.storage.suppressed(workspace_id, keys)

    def last_sent(
        self, workspace_id: WorkspaceId, sender_id: SenderId, channel: Channel
    ) -> dt.datetime | None:
        key = (workspace_id, sender_id, channel)
        with self._lock:
            if key in self.last:
                return self.last[key]
        # Only the sender's own lane reads and updates its last send: no lock needed to read.
        last = self.storage.last_sent(workspace_id, sender_id, actions=CHANNEL_ACTIONS[channel])
        with self._lock:
            return self.last.setdefault(key, last)

    def sent(self, send: ScheduledSend, at: dt.datetime) -> None:
        key = (send.workspace_id, send.sender_id, send.action.channel)
        with self._lock:
            self.stale.add((send.workspace_id, send.campaign_id, send.lead_id))
            if key in self.last:
                previous = self.last[key]
                self.last[key] = at if previous is None else max(previous, at)


def _thread(
    send: ScheduledSend, enrolment: Enrolment, drafts: dict[int, Draft], reads: _PassReads
) -> ThreadHeaders | None:
    """The headers that make an email follow up its thread, or None when it starts one (or
    nothing of its thread went out with a Message-ID)."""
    starter = thread_starter(enrolment.steps, send.step)
    if starter is None or starter == send.step:
        return None
    first = _draft_of(drafts, send, starter)
    members = {
        s.number
        for s in enrolment.steps
        if s.number < send.step and thread_starter(enrolment.steps, s.number) == starter
    }
    earlier = [
        s.receipt
        for s in sorted(reads.sends(send), key=lambda s: s.step)
        if s.step in members
        and s.status is SendStatus.SENT
        and normalise_message_id(s.receipt) == s.receipt  # a Message-ID, not a provider id
    ]
    return follow_up_headers(first.subject or "", earlier)


def _describe(send: ScheduledSend) -> str:
    return f"campaign={send.campaign_id} lead={send.lead_id} step={send.step}"


def _fields(send: ScheduledSend, worker_id: str) -> dict[str, object]:
    """The structured ``extra`` of a log line about one send (never its text)."""
    return {
        "workspace_id": send.workspace_id,
        "campaign_id": send.campaign_id,
        "lead_id": send.lead_id,
        "step": send.step,
        "idempotency_key": send.idempotency_key,
        "worker_id": worker_id,
    }


def _after_pass(ctx: ServiceContext, claimed: Sequence[ScheduledSend]) -> None:
    """Check each campaign this pass claimed sends of."""
    for workspace, campaign_id in sorted({(s.workspace_id, s.campaign_id) for s in claimed}):
        try:
            complete_if_done(ctx, workspace, campaign_id)
        except Exception:  # checked again on the campaign's next dispatched send
            log.warning(
                "could not check completion of campaign %s",
                campaign_id,
                exc_info=True,
                extra={"workspace_id": workspace, "campaign_id": campaign_id},
            )
        # A/B variants: a winner rule whose sends are in picks now (service/_variants.py).
        try:
            pick_due_winners(ctx, workspace, campaign_id)
        except Exception:  # decided again after the campaign's next dispatched send
            log.warning(
                "could not apply the A/B winner rules of campaign %s",
                campaign_id,
                exc_info=True,
                extra={"workspace_id": workspace, "campaign_id": campaign_id},
            )


class Dispatcher:
    """Claims due sends and sends them, each checked again at send time."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._finish = SendFinisher(ctx)
        self._lanes = LanePool()

    def dispatch_due(
        self,
        *,
        worker_id: str,
        lease: dt.timedelta,
        limit: int,
        workspace_id: WorkspaceId | None,
        should_stop: Callable[[], bool] | None,
        in_flight: int = 1,
    ) -> DispatchReport:
        """Send what is due now (see ``CampaignService.dispatch_due``).

        One send's fault never ends the pass with an exception: it is recorded as a transient
        failure of that send, and the rest of the batch is handed back for the next pass. Only
        a failure to claim (storage unreachable) reaches the caller.

        With ``in_flight`` above 1 the batch is split into per-sender lanes (see
        ``_lanes``) and up to ``in_flight`` lanes run at once, each on a thread of its own.

        Raises:
            InvalidSettings: ``in_flight`` is below 1.
        """
        if in_flight < 1:
            raise InvalidSettings(f"dispatch_due: in_flight must be at least 1, not {in_flight}")
        ctx = self._ctx
        claimed = ctx.storage.claim_due(
            ctx.clock.now(),
            worker_id=worker_id,
            lease=lease,
            limit=limit,
            workspace_id=workspace_id,
        )
        if claimed:
            log.debug("claimed %d sends", len(claimed), extra={"worker_id": worker_id})
        reads = _PassReads(storage=ctx.storage, batch=claimed)
        state = PassState(worker_id=worker_id, should_stop=should_stop)
        lanes = sender_lanes(claimed)
        if in_flight == 1 or len(lanes) <= 1:
            # One at a time, in claim order (what a worker always did).
            report = self._run_lane(claimed, state, reads)
        else:
            report = self._lanes.run(
                in_flight, lanes, lambda lane: self._run_lane(lane, state, reads)
            )
        _after_pass(self._ctx, claimed)
        return report

    def _run_lane(
        self, sends: Sequence[ScheduledSend], state: PassState, reads: _PassReads
    ) -> DispatchReport:
        """Dispatch ``sends`` one after the other; what the pass will not send (a stop, a
        storage fault, a lease too short for another send) is handed back."""
        clock, worker_id = self._ctx.clock, state.worker_id
        report = DispatchReport()
        for index, send in enumerate(sends):
            if state.stopping():
                # Hand back what this pass will not send, so another worker need not wait
                # for the lease to expire.
                return self._hand_back_all(sends[index:], worker_id, report)
            started = clock.now()
            if state.lease_too_short(send, started):
                log.warning(
                    "the lease of %s ends before a send as slow as this pass's slowest (%.1f s) "
                    "would be recorded; handing it and the rest of its sender's sends back "
                    "(make the lease longer than batch / in_flight sends)",
                    _describe(send),
                    state.slowest.total_seconds(),
                    extra=_fields(send, worker_id),
                )
                return self._hand_back_all(sends[index:], worker_id, report)
            try:
                outcome = self.dispatch_one(send, worker_id, reads)
            except LeaseLost:
                outcome = DispatchOutcome.LEASE_LOST
                log.warning("lease lost %s", _describe(send), extra=_fields(send, worker_id))
            except StorageFaultBeforeDelivery as exc:
                # Nothing reached a sender: hand this send and the rest back as they were
                # (no attempt counted); the next pass meets the storage again.
                log.warning(
                    "storage failed before %s was sent (%s); handing the batch back",
                    _describe(send),
                    exc,
                    extra=_fields(send, worker_id),
                )
                state.halt.set()
                return self._hand_back_all(sends[index:], worker_id, report)
            except StorageError:
                log.error(
                    "storage failed after %s was handed to its sender; once its lease expires "
                    "it is sent again with the same idempotency key",
                    _describe(send),
                    exc_info=True,
                    extra=_fields(send, worker_id),
                )
                state.halt.set()
                report = report.count(DispatchOutcome.ERRORED)
                return self._hand_back_all(sends[index + 1 :], worker_id, report)
            except Exception as exc:  # one send's fault must not end the worker
                state.halt.set()
                report = report.count(self._after_fault(send, worker_id, exc))
                return self._hand_back_all(sends[index + 1 :], worker_id, report)
            state.took(clock.now() - started)
            if outcome in (DispatchOutcome.SKIPPED, DispatchOutcome.TIMED_OUT):
                log.info("%s %s", outcome.value, _describe(send), extra=_fields(send, worker_id))
            elif outcome is DispatchOutcome.DEFERRED:
                log.debug("deferred %s", _describe(send), extra=_fields(send, worker_id))
            report = report.count(outcome)
        return report

    def _hand_back_all(
        self, sends: Sequence[ScheduledSend], worker_id: str, report: DispatchReport
    ) -> DispatchReport:
        for send in sends:
            try:
                report = report.count(self.hand_back(send, worker_id))
            except Exception:  # left to its lease
                log.warning(
                    "could not hand back %s; it waits for its lease to expire",
                    _describe(send),
                    exc_info=True,
                    extra=_fields(send, worker_id),
                )
                report = report.count(DispatchOutcome.ERRORED)
        return report

    def _after_fault(self, send: ScheduledSend, worker_id: str, exc: Exception) -> DispatchOutcome:
        """Record an unexpected error as a transient failure of ``send``: retried after a
        backoff, counted as an attempt, failed for good after the campaign's ``max_attempts``.
        When even that cannot be written, the send is left to its lease."""
        fields = _fields(send, worker_id)
        log.error(
            "unexpected error while dispatching %s: %s",
            _describe(send),
            type(exc).__name__,
            exc_info=exc,
            extra=fields,
        )
        reason = f"unexpected error: {type(exc).__name__}"
        try:
            ctx = self._ctx
            now = ctx.clock.now()
            campaign = ctx.storage.get_campaign(send.workspace_id, send.campaign_id)
            enrolment = ctx.storage.get_enrolment(send.workspace_id, send.campaign_id, send.lead_id)
            if send.attempts >= campaign.settings.max_attempts:
                gave_up = f"gave up after {send.attempts} attempts: {reason}"
                self._finish.failed(enrolment, send, worker_id, now, gave_up)
                return DispatchOutcome.FAILED
            backoff = dt.timedelta(minutes=5 * 2 ** max(send.attempts - 1, 0))
            due = slot(ctx, campaign, send, lead_calendar(campaign, enrolment), now + backoff)
            self._finish.retimed(send, worker_id, now, due, reason=f"retrying: {reason}")
        except LeaseLost:
            return DispatchOutcome.LEASE_LOST
        except Exception:
            log.warning(
                "could not record the failure of %s; it waits for its lease to expire",
                _describe(send),
                exc_info=True,
                extra=fields,
            )
        return DispatchOutcome.ERRORED

    def hand_back(self, send: ScheduledSend, worker_id: str) -> DispatchOutcome:
        """Return a claimed, unsent send to the queue as it was before the claim."""
        ctx = self._ctx
        enrolment = ctx.storage.get_enrolment(send.workspace_id, send.campaign_id, send.lead_id)
        gated = any(s.number == send.step and s.gated_on_acceptance for s in enrolment.steps)
        # A gated step still waiting for its acceptance was claimed for its deadline.
        waiting = gated and enrolment.accepted_at is None
        try:
            ctx.storage.finish_send(
                bump(
                    send,
                    status=SendStatus.WAITING if waiting else SendStatus.SCHEDULED,
                    attempts=max(send.attempts - 1, 0),
                    lease_owner=None,
                    lease_expires_at=None,
                ),
                worker_id=worker_id,
                now=ctx.clock.now(),
            )
        except LeaseLost:
            return DispatchOutcome.LEASE_LOST
        return DispatchOutcome.HANDED_BACK

    def dispatch_one(
        self, send: ScheduledSend, worker_id: str, reads: _PassReads | None = None
    ) -> DispatchOutcome:
        """Check one claimed send at this moment, then send it or end it otherwise; returns
        how it ended.

        Raises:
            StorageFaultBeforeDelivery: the storage failed before anything reached the sender
                (the send can be handed back as it was).
            StorageError: the storage failed after the sender accepted the message, beyond
                what the finisher waits out.
        """
        reads = reads if reads is not None else _PassReads(storage=self._ctx.storage, batch=[send])
        try:
            ready = self._prepare(send, worker_id, reads)
            if isinstance(ready, DispatchOutcome):
                return ready
            result = self._send(ready, send)
            if isinstance(result, SendFailure):
                return self._refused(ready, send, worker_id, result)
        except StorageError as exc:
            raise StorageFaultBeforeDelivery(str(exc)) from exc
        self._finish.sent(
            ready.campaign,
            ready.enrolment,
            send,
            ready.calendar,
            worker_id,
            result,
            ready.stored,
            ready.lead_sends,
        )
        reads.sent(send, self._ctx.clock.now())
        log.info(
            "sent %s (attempt %d)", _describe(send), send.attempts, extra=_fields(send, worker_id)
        )
        return DispatchOutcome.SENT

    def _prepare(
        self, send: ScheduledSend, worker_id: str, reads: _PassReads
    ) -> _Ready | DispatchOutcome:
        """Everything the send-time checks decide before a sender is called: the outcome when
        the send must not go out now, else what sending it needs."""
        storage = self._ctx.storage
        campaign = reads.campaign(send.workspace_id, send.campaign_id)
        stored = storage.get_enrolment(send.workspace_id, send.campaign_id, send.lead_id)
        step = next(s for s in stored.steps if s.number == send.step)
        now = self._ctx.clock.now()
        stopped = self._stopped_or_held(campaign, stored, send, step, worker_id, now, reads)
        if stopped is not None:
            return stopped
        calendar = lead_calendar(campaign, stored)
        enrolment = self._back_from_absence(campaign, stored, send, calendar, worker_id, now)
        if enrolment is None:
            return DispatchOutcome.DEFERRED
        changed = bump(enrolment) if enrolment is not stored else None
        if self._deferred_for_timing(
            campaign, send, step, calendar, changed, worker_id, now, reads
        ):
            return DispatchOutcome.DEFERRED
        needs_draft = step.needs_draft and (
            step.action is not Action.LINKEDIN_CONNECT or send.with_note
        )
        # The lead's drafts are read once: its own, and a follow-up's thread's first subject.
        drafts = reads.drafts(send) if needs_draft or step.action is Action.EMAIL else {}
        return _Ready(
            campaign=campaign,
            stored=stored,
            enrolment=enrolment,
            changed=changed,
            calendar=calendar,
            draft=_draft_of(drafts, send, send.step) if needs_draft else None,
            now=now,
            lead_sends=reads.sends(send),  # read before the sender is called
            thread=_thread(send, enrolment, drafts, reads) if step.action is Action.EMAIL else None,
        )

    def _refused(
        self, ready: _Ready, send: ScheduledSend, worker_id: str, result: SendFailure
    ) -> DispatchOutcome:
        """The sender refused the message: retry a transient failure with backoff while
        attempts are left, else stop the lead."""
        fields = _fields(send, worker_id)
        if not result.permanent and send.attempts < ready.campaign.settings.max_attempts:
            backoff = result.retry_after or dt.timedelta(minutes=5 * 2 ** (send.attempts - 1))
            retry = slot(self._ctx, ready.campaign, send, ready.calendar, ready.now + backoff)
            self._finish.retimed(
                send,
                worker_id,
                ready.now,
                retry,
                ready.changed,
                reason=f"retrying: {result.reason}",
            )
            log.warning(
                "transient failure of %s, retry at %s: %s",
                _describe(send),
                retry.isoformat(),
                result.reason,
                extra=fields,
            )
            return DispatchOutcome.RETRIED
        reason = (
            result.reason
            if result.permanent
            else f"gave up after {send.attempts} attempts: {result.reason}"
        )
        self._finish.failed(ready.enrolment, send, worker_id, ready.now, reason)
        log.warning("failed %s; the lead is stopped: %s", _describe(send), reason, extra=fields)
        return DispatchOutcome.FAILED

    def _stopped_or_held(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        step: CadenceStep,
        worker_id: str,
        now: dt.datetime,
        reads: _PassReads,
    ) -> DispatchOutcome | None:
        """End a send that must not go out at all (a stopped lead, a paused campaign, a
        suppressed contact, an acceptance that never came); None when it may."""
        # A stopped lead first: a cancelled campaign has stopped every lead, so its claimed
        # sends are skipped (and released) here rather than put back.
        if enrolment.status.is_final:
            self._finish.skipped(send, worker_id, now, enrolment.reason or str(enrolment.status))
            return DispatchOutcome.SKIPPED
        if campaign.status is not CampaignStatus.ACTIVE:
            # Paused after the claim: hand it back as it was (a waiting step stays waiting).
            self.hand_back(send, worker_id)
            return DispatchOutcome.DEFERRED
        if reads.sender_held(send.workspace_id, send.sender_id):
            # Held by the bounce breaker: re-timed, not failed nor charged, until resumed.
            later = now + HELD_RECHECK
            due = slot(self._ctx, campaign, send, lead_calendar(campaign, enrolment), later)
            self._finish.retimed(send, worker_id, now, due, deferral=True)
            return DispatchOutcome.DEFERRED
        suppressed = reads.suppressed(send.workspace_id, contact_keys(enrolment.lead))
        if suppressed:
            self._finish.failed(
                enrolment,
                send,
                worker_id,
                now,
                f"on the suppression list ({sorted(suppressed)[0]})",
                send_status=SendStatus.SKIPPED,
                enrolment_status=EnrolmentStatus.UNSUBSCRIBED,
            )
            return DispatchOutcome.SKIPPED
        if step.gated_on_acceptance and enrolment.accepted_at is None:
            reason = (
                "connection request not accepted within "
                f"{campaign.settings.connection_timeout_days} business days"
            )
            self._finish.skipped(
                send, worker_id, now, reason, enrolment, timed_out=True, campaign=campaign
            )
            return DispatchOutcome.TIMED_OUT
        if step.is_fallback and enrolment.accepted_at is not None:
            # fallback branch: never alongside an accepted connection (accepted meanwhile)
            self._finish.skipped(send, worker_id, now, FALLBACK_NOT_NEEDED)
            complete_if_nothing_left(self._ctx, enrolment, now, FALLBACK_NOT_NEEDED)
            return DispatchOutcome.SKIPPED
        return None

    def _back_from_absence(
        self,
        campaign: Campaign,
        enrolment: Enrolment,
        send: ScheduledSend,
        calendar: BusinessCalendar,
        worker_id: str,
        now: dt.datetime,
    ) -> Enrolment | None:
        """The enrolment to send for (back from out-of-office when its return has come), or
        None when the lead is held and the send was re-timed."""
        if enrolment.status not in (EnrolmentStatus.PAUSED, EnrolmentStatus.OUT_OF_OFFICE):
            return enrolment
        resume = enrolment.resume_at
        if enrolment.status is EnrolmentStatus.PAUSED or resume is None or resume > now:
            # Held by the user (look again tomorrow) or out of office (until the return).
            later = (
                resume
                if enrolment.status is EnrolmentStatus.OUT_OF_OFFICE
                and resume is not None
                and resume > now
                else now + dt.timedelta(days=1)
            )
            due = slot(self._ctx, campaign, send, calendar, later)
            self._finish.retimed(send, worker_id, now, due, deferral=True)
            return None
        # Back from out-of-office: written (bumped) with whatever this send records.
        return attrs.evolve(enrolment, status=EnrolmentStatus.ACTIVE, resume_at=None, reason="")

    def _deferred_for_timing(
        self,
        campaign: Campaign,
        send: ScheduledSend,
        step: CadenceStep,
        calendar: BusinessCalendar,
        changed: Enrolment | None,
        worker_id: str,
        now: dt.datetime,
        reads: _PassReads,
    ) -> bool:
        """Re-time a send that falls outside the recipient's business hours now, or too close
        to its sender's last actual send; True when it was re-timed."""
        moment = calendar.next_business_moment(now)
        if moment != now.astimezone(moment.tzinfo):
            # Outside the recipient's business hours now (hours changed, or a late worker).
            due = slot(self._ctx, campaign, send, calendar, moment)
            self._finish.retimed(send, worker_id, now, due, changed, deferral=True)
            return True
        # Keep the sender's actual sends apart too: a worker that polls less often than the
        # spacing would otherwise send everything that fell due since its last pass at once.
        spacing = sender_limits(campaign, send.action, send.sender_id).min_spacing
        last = reads.last_sent(send.workspace_id, send.sender_id, step.channel)
        if last is not None and dt.timedelta(0) <= now - last < spacing:
            due = slot(self._ctx, campaign, send, calendar, last + spacing)
            self._finish.retimed(send, worker_id, now, due, changed, deferral=True)
            return True
        return False

    def _send(self, ready: _Ready, send: ScheduledSend) -> SendReceipt | SendFailure:
        ctx, campaign, draft = self._ctx, ready.campaign, ready.draft
        lead = ready.enrolment.lead
        name = " ".join(p for p in (lead.first_name, lead.last_name) if p)
        if send.action is Action.EMAIL:
            mailbox = campaign.email_identity_of(send.sender_id)  # the lead's pool sender
            if ctx.email_sender is None or mailbox is None or draft is None or not lead.email:
                return SendFailure(permanent=True, reason="no email sender, mailbox or address")
            thread = ready.thread
            return ctx.email_sender.send_email(
                OutgoingEmail(
                    idempotency_key=send.idempotency_key,
                    sender_id=mailbox.id,
                    from_address=mailbox.address,
                    from_name=mailbox.display_name,
                    to_address=lead.email,
                    to_name=name,
                    subject=thread.subject if thread is not None else draft.subject or "",
                    in_reply_to=thread.in_reply_to if thread is not None else "",
                    references=thread.references if thread is not None else (),
                    body=draft.body,
                    campaign_id=send.campaign_id,
                    lead_id=send.lead_id,
                    step=send.step,
                    unsubscribe=ctx.unsubscribe_url(send) if ctx.unsubscribe_url else "",
                    workspace_id=send.workspace_id,
                )
            )
        account = campaign.linkedin_identity_of(send.sender_id)  # the lead's pool sender
        if ctx.linkedin_sender is None or account is None or not lead.linkedin_url:
            return SendFailure(permanent=True, reason="no LinkedIn sender, account or profile")
        return ctx.linkedin_sender.send_linkedin(
            LinkedInAction(
                idempotency_key=send.idempotency_key,
                sender_id=account.id,
                action=send.action,
                profile_url=lead.linkedin_url,
                recipient_name=name,
                text=draft.body if draft is not None else None,
                campaign_id=send.campaign_id,
                lead_id=send.lead_id,
                step=send.step,
                workspace_id=send.workspace_id,
            )
        )


def dispatch_continuously(
    dispatcher: Dispatcher,
    *,
    worker_id: str,
    lease: dt.timedelta,
    limit: int,
    workspace_id: WorkspaceId | None,
    should_stop: Callable[[], bool] | None,
    in_flight: int,
) -> DispatchReport:
    """Send what is due with up to ``in_flight`` sends in flight and no pass barrier: claim
    again (at most ``limit`` sends held at once) whenever a thread would go idle, until a
    claim comes back short and every send has ended, or until stopped (see
    ``_lanes.Refilling``). Each send is checked, sent and recorded as in a pass
    (``Dispatcher.dispatch_due``); each claim's campaigns are checked once its sends have
    all ended. What the worker loop runs with ``in_flight`` above 1.

    Raises:
        InvalidSettings: ``in_flight`` is below 1.
    """
    if in_flight < 1:
        raise InvalidSettings(f"dispatch: in_flight must be at least 1, not {in_flight}")
    ctx = dispatcher._ctx
    state = PassState(worker_id=worker_id, should_stop=should_stop)

    def claim(room: int) -> Claim:
        claimed = ctx.storage.claim_due(
            ctx.clock.now(), worker_id=worker_id, lease=lease, limit=room, workspace_id=workspace_id
        )
        if claimed:
            log.debug("claimed %d sends", len(claimed), extra={"worker_id": worker_id})
        reads = _PassReads(storage=ctx.storage, batch=claimed)
        return Claim(
            sends=claimed,
            run=lambda send: dispatcher._run_lane([send], state, reads),
            finished=lambda: _after_pass(ctx, claimed),
        )

    def hand_back(sends: Sequence[ScheduledSend]) -> DispatchReport:
        return dispatcher._hand_back_all(sends, worker_id, DispatchReport())

    return Refilling(dispatcher._lanes, in_flight, limit, state, claim, hand_back).run()
