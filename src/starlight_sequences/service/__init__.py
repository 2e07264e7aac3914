"""The application service: every use case, driven through the ports.

A host app builds one :class:`CampaignService` from its adapters and calls it. The service is
a thin facade over one room per family of use cases; each room loads, decides with the pure
core, stores, and calls the senders, and reads the time only from the
:class:`~starlight_sequences.ports.Clock`:

- ``_outbound``: estimate, create (enrol and draft), approve (reserve and schedule);
- ``_review`` (with ``_drafting``): preview, edit, regenerate, exclude and approve recipients;
- ``_dispatch`` (with ``_finishing``): claim, send-time checks, send, and how each send ends;
- ``_inbound``: replies, bounces, unsubscribes, acceptances, declines, out-of-office;
- ``_ingest``: raw inbound mail, classified, matched to a send or contact, applied;
- ``_breaker``: the bounce breaker: mailboxes held after hard bounces, and resumed;
- ``_controls``: settings, pause, resume, cancel;
- ``_monitoring``: status, Waiting on connections, timelines;
- ``_accounts``: balance, journal, top-ups, campaign credits and their repair;
- ``_shared``: the ports and the few rules more than one room applies.

Identifiers are plain strings in every public signature (``"acme"``, ``"q1"``); inside, they
carry the distinct types of :mod:`starlight_sequences.ids`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar, overload

from starlight_sequences.bounce_breaker import SenderHold
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    EmailIdentity,
    Enrolment,
    LinkedInIdentity,
    ScheduledSend,
)
from starlight_sequences.credits import CreditAccount, CreditEstimate, CreditMovement, PriceTable
from starlight_sequences.drafts import Draft
from starlight_sequences.events import ActivityPage, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.inbound import normalise_message_id
from starlight_sequences.leads import Lead
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.drafter import Drafter
from starlight_sequences.ports.senders import EmailSender, LinkedInSender
from starlight_sequences.ports.storage import Storage
from starlight_sequences.reports import (
    CampaignCredits,
    CampaignPreview,
    CampaignStatusReport,
    ContactStatus,
    CreationReport,
    DispatchReport,
    IngestResult,
    MatchedBy,
    PlannedStep,
    RecipientPreview,
    SendRecord,
    WaitingOnConnection,
)
from starlight_sequences.service._accounts import Accounts
from starlight_sequences.service._breaker import BounceBreakerRoom
from starlight_sequences.service._controls import Controls
from starlight_sequences.service._dispatch import Dispatcher
from starlight_sequences.service._drafting import ProgressCallback
from starlight_sequences.service._inbound import InboundEvents
from starlight_sequences.service._ingest import MailIngest
from starlight_sequences.service._journal import ActivityListener, Subscription
from starlight_sequences.service._monitoring import Monitoring
from starlight_sequences.service._outbound import OutboundBuilder
from starlight_sequences.service._pools import SenderPools
from starlight_sequences.service._review import Review
from starlight_sequences.service._shared import ServiceContext
from starlight_sequences.shapes import SendShape
from starlight_sequences.timeline import Timeline

__all__ = [
    "ActivityListener",
    "CampaignCredits",
    "CampaignPreview",
    "CampaignService",
    "CampaignStatusReport",
    "ContactStatus",
    "CreationReport",
    "DispatchReport",
    "IngestResult",
    "MatchedBy",
    "PlannedStep",
    "ProgressCallback",
    "RecipientPreview",
    "SendRecord",
    "Subscription",
    "WaitingOnConnection",
]

_T = TypeVar("_T")


class _Port(Generic[_T]):
    """An attribute of the service kept in its shared context, so every room sees a change."""

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _Port[_T]: ...
    @overload
    def __get__(self, instance: CampaignService, owner: type[Any]) -> _T: ...
    def __get__(self, instance: CampaignService | None, owner: type[Any]) -> _Port[_T] | _T:
        if instance is None:
            return self
        value: _T = getattr(instance._ctx, self._name)
        return value

    def __set__(self, instance: CampaignService, value: _T) -> None:
        setattr(instance._ctx, self._name, value)


class CampaignService:
    """Creates, reviews, approves, runs and reports campaigns through the ports.

    Args:
        storage: where state lives (in-memory, SQLite, PostgreSQL, or the host's own).
        ledger: the credit ledger.
        drafter: drafts messages (``TemplateDrafter`` offline, or an LLM).
        clock: the only source of "now".
        email_sender: sends emails (needed to dispatch email steps).
        linkedin_sender: performs LinkedIn actions (needed to dispatch LinkedIn steps).
        prices: the credit price table of campaigns created from now on.
        draft_batch_size: messages per drafter call.
        unsubscribe_url: builds the ``List-Unsubscribe`` target of each email send: an https
            URL (one-click, RFC 8058) or a ``mailto:`` address. Use
            :class:`~starlight_sequences.unsubscribe.UnsubscribeLinks` for signed links your
            endpoint can verify. Approving a campaign with email steps needs it, unless
            ``send_without_unsubscribe`` is set.
        send_without_unsubscribe: opt out of the unsubscribe requirement (e.g. for one-to-one
            mail that is not bulk); emails then carry no ``List-Unsubscribe``.

    The arguments stay readable and replaceable as attributes of the same names.
    """

    storage = _Port[Storage]()
    ledger = _Port[CreditLedger]()
    drafter = _Port[Drafter]()
    clock = _Port[Clock]()
    email_sender = _Port[EmailSender | None]()
    linkedin_sender = _Port[LinkedInSender | None]()
    prices = _Port[PriceTable]()
    draft_batch_size = _Port[int]()
    unsubscribe_url = _Port[Callable[[ScheduledSend], str] | None]()
    send_without_unsubscribe = _Port[bool]()

    def __init__(
        self,
        *,
        storage: Storage,
        ledger: CreditLedger,
        drafter: Drafter,
        clock: Clock,
        email_sender: EmailSender | None = None,
        linkedin_sender: LinkedInSender | None = None,
        prices: PriceTable | None = None,
        draft_batch_size: int = 50,
        unsubscribe_url: Callable[[ScheduledSend], str] | None = None,
        send_without_unsubscribe: bool = False,
    ) -> None:
        self._ctx = ServiceContext(
            storage=storage,
            ledger=ledger,
            drafter=drafter,
            clock=clock,
            email_sender=email_sender,
            linkedin_sender=linkedin_sender,
            prices=prices if prices is not None else PriceTable(),
            draft_batch_size=max(1, draft_batch_size),
            unsubscribe_url=unsubscribe_url,
            send_without_unsubscribe=send_without_unsubscribe,
        )
        self._outbound = OutboundBuilder(self._ctx)
        self._review = Review(self._ctx)
        self._dispatch = Dispatcher(self._ctx)
        self._inbound = InboundEvents(self._ctx)
        self._ingest = MailIngest(self._ctx, self._inbound)
        self._controls = Controls(self._ctx)
        self._pools = SenderPools(self._ctx)
        self._monitoring = Monitoring(self._ctx)
        self._accounts = Accounts(self._ctx)
        self._breaker = BounceBreakerRoom(self._ctx)

    # -- outbound: estimate, create, approve -----------------------------------------------

    def estimate(self, shape: SendShape | str, leads: Iterable[Lead]) -> CreditEstimate:
        """The exact credits a campaign would cost: drafting plus the maximum send cost.

        Uses the same cadence rules the service charges by. Excluded leads cost nothing.
        """
        return self._outbound.estimate(shape, leads)

    def create_campaign(
        self,
        workspace_id: str,
        *,
        name: str,
        brief: str,
        shape: SendShape | str,
        leads: Iterable[Lead],
        email_identity: EmailIdentity | None = None,
        linkedin_identity: LinkedInIdentity | None = None,
        settings: CampaignSettings | None = None,
        campaign_id: str | None = None,
        progress: ProgressCallback | None = None,
        email_identities: Sequence[EmailIdentity] = (),
        linkedin_identities: Sequence[LinkedInIdentity] = (),
    ) -> CreationReport:
        """Enrol leads, draft every message, and store the campaign for review.

        Nothing is scheduled or sent: that takes :meth:`approve`. Leads that cannot be enrolled
        are excluded with a reason (no channel for the shape, no location, suppressed, active
        in another campaign, listed twice); the rest are enrolled.
        ``email_identities``/``linkedin_identities``: sender pools (``docs/settings.md``).

        Raises:
            InsufficientCredits: the workspace cannot pay for the drafts; nothing is stored.
            InvalidSettings: the campaign id exists, the brief is empty, or an identity the
                cadences need is missing.
            InvalidShape, UnknownShape: a bad shape.
        """
        return self._outbound.create_campaign(
            WorkspaceId(workspace_id),
            name=name,
            brief=brief,
            shape=shape,
            leads=leads,
            email_identity=email_identity,
            linkedin_identity=linkedin_identity,
            settings=settings,
            campaign_id=CampaignId(campaign_id) if campaign_id else None,
            progress=progress,
            email_identities=tuple(email_identities),
            linkedin_identities=tuple(linkedin_identities),
        )

    def approve(self, workspace_id: str, campaign_id: str) -> Campaign:
        """Approve the campaign: reserve the send credits and schedule every recipient that is
        not excluded. Approving an approved campaign changes nothing.

        Raises:
            DraftsNeedAttention: a recipient that is not excluded has a draft needing attention.
            InsufficientCredits: the send credits cannot be reserved; nothing is scheduled.
            IllegalTransition: the campaign was cancelled or completed.
            InvalidSettings: the campaign sends email and the service has no unsubscribe
                target (``unsubscribe_url``), or it builds one that is not an https URL or a
                ``mailto:`` address; nothing is reserved or scheduled.
        """
        return self._outbound.approve(WorkspaceId(workspace_id), CampaignId(campaign_id))

    # -- review -----------------------------------------------------------------------------

    def preview(
        self, workspace_id: str, campaign_id: str, lead_id: str | None = None
    ) -> CampaignPreview:
        """Every recipient's cadence, drafts and planned dates (local and UTC), and the leads
        left out with their reasons. Before approval the dates are a forecast from now (or the
        campaign's start); after, they are the scheduled instants."""
        return self._review.preview(
            WorkspaceId(workspace_id),
            CampaignId(campaign_id),
            LeadId(lead_id) if lead_id is not None else None,
        )

    def edit_draft(
        self,
        workspace_id: str,
        campaign_id: str,
        lead_id: str,
        step: int,
        *,
        subject: str | None = None,
        body: str | None = None,
    ) -> Draft:
        """Replace a draft's subject and/or body; the result is validated again.

        Raises:
            InvalidDraft: the edit breaks the channel's rules; the stored draft is unchanged.
            IllegalTransition: the campaign is no longer in review.
        """
        return self._review.edit_draft(
            WorkspaceId(workspace_id),
            CampaignId(campaign_id),
            LeadId(lead_id),
            step,
            subject=subject,
            body=body,
        )

    def regenerate_draft(
        self, workspace_id: str, campaign_id: str, lead_id: str, step: int
    ) -> Draft:
        """Draft one message again (charged as a draft). A failure is stored as needing
        attention, like any failed draft.

        Raises:
            InsufficientCredits: nothing is drafted.
        """
        return self._review.regenerate_draft(
            WorkspaceId(workspace_id), CampaignId(campaign_id), LeadId(lead_id), step
        )

    def exclude_recipient(
        self,
        workspace_id: str,
        campaign_id: str,
        lead_id: str,
        reason: str = "excluded by the reviewer",
    ) -> Enrolment:
        """Leave a recipient out of the campaign (before approval)."""
        return self._review.exclude_recipient(
            WorkspaceId(workspace_id), CampaignId(campaign_id), LeadId(lead_id), reason
        )

    def approve_recipient(self, workspace_id: str, campaign_id: str, lead_id: str) -> Enrolment:
        """Mark one recipient as reviewed. Raises ``DraftsNeedAttention`` if one of its
        drafts needs attention."""
        return self._review.approve_recipient(
            WorkspaceId(workspace_id), CampaignId(campaign_id), LeadId(lead_id)
        )

    # -- dispatch ---------------------------------------------------------------------------

    def dispatch_due(
        self,
        *,
        worker_id: str = "worker",
        lease: dt.timedelta = dt.timedelta(minutes=5),
        limit: int = 100,
        workspace_id: str | None = None,
        should_stop: Callable[[], bool] | None = None,
        in_flight: int = 1,
    ) -> DispatchReport:
        """Send what is due now: claim with a lease, re-check, send, record, charge, re-time.

        Each claimed send is checked again against its lead's status, its campaign's status
        and its business window at this moment; what no longer fits is re-timed or skipped,
        not sent. A sent step re-times the lead's next step from the actual send. Transient
        sender failures retry with backoff inside business hours, up to the campaign's
        ``max_attempts``; permanent ones stop the lead and release its reserved credits.

        Args:
            worker_id: this worker's identity (leases are held in its name).
            lease: how long a claim lasts; a crashed worker's sends are retried after it, with
                the same idempotency key.
            limit: most sends to claim in this pass.
            workspace_id: serve one workspace only (None: all).
            should_stop: checked between sends; True stops the pass after the sends in hand
                (every one in flight is finished and recorded, the rest handed back).
            in_flight: most sends handed to senders at once (default 1: one at a time, in
                claim order). Above 1 the batch is split by sender: one sender's sends go one
                after the other, each checked against the spacing after the previous one's
                actual send; up to ``in_flight`` senders send at once, on threads the service
                keeps, so the ports are called from several threads (every shipped adapter
                allows it; a PostgreSQL pool needs ``max_size`` ≥ ``in_flight``). A send whose
                lease has less left than the pass's slowest send took is handed back: keep
                ``lease`` above ``ceil(limit / in_flight)`` slowest sends
                (docs/operations.md, "Many sends in flight").

        Raises:
            InvalidSettings: ``in_flight`` is below 1.
        """
        return self._dispatch.dispatch_due(
            worker_id=worker_id,
            lease=lease,
            limit=limit,
            workspace_id=WorkspaceId(workspace_id) if workspace_id is not None else None,
            should_stop=should_stop,
            in_flight=in_flight,
        )

    def next_due(self, workspace_id: str | None = None) -> dt.datetime | None:
        """When a dispatcher pass will next find something it does not find now: the next
        send falling due, or the end of a claim's lease (UTC); None when nothing is waiting.

        A worker sleeps until then (or its poll interval, whichever is sooner), so sends go out
        at their slot rather than up to a poll interval late. A read; it claims nothing.

        Args:
            workspace_id: look in one workspace only (None: all).
        """
        return self._ctx.storage.next_due(
            self._ctx.clock.now(),
            workspace_id=WorkspaceId(workspace_id) if workspace_id is not None else None,
        )

    # -- inbound events and controls --------------------------------------------------------

    def report_event(self, workspace_id: str, event: InboundEvent) -> tuple[Enrolment, ...]:
        """Apply an event the host app observed (reply, acceptance, bounce...).

        A reply (or a booked meeting) stops every remaining step of the contact in that
        campaign — in every campaign when the campaign's ``stop_scope`` is ``workspace`` —
        and, with ``stop_company_on_reply``, of every contact at the same email domain.
        Unsubscribe and bounce stop the contact everywhere and add it to the suppression list.
        An acceptance starts the gated message's wait; a decline skips the gated steps. An
        out-of-office pauses the lead until the return date (or ``out_of_office_days``).
        Reserved credits of every step that will not be sent are released.

        Reporting the same event twice changes nothing.

        Returns:
            The enrolments the event changed (empty for a repeat).

        Raises:
            UnknownContact: no campaign of the workspace enrolled this lead.
            InvalidEvent: the event's time is naive.
        """
        return self._inbound.report_event(WorkspaceId(workspace_id), event)

    def ingest_email(self, workspace_id: str, raw: bytes) -> IngestResult:
        """Read one raw inbound email (RFC 5322 bytes) and apply what it means.

        The message is classified (a reply, an out-of-office with its return date, a hard or
        soft bounce, an unsubscribe request, or unmatched; see ``docs/inbound.md``), matched to
        whom it concerns — by its ``In-Reply-To``/``References`` (or, in a bounce, the original
        message's ids) against the Message-IDs of sent emails first, then a bounce's failed
        recipient, then the sender's address among the workspace's contacts — and applied as
        :meth:`report_event` would: a reply stops the lead, an out-of-office pauses it, a hard
        bounce and an unsubscribe stop it everywhere and suppress it. A soft bounce is only
        journalled. Never across workspaces.

        Ingesting the same message twice changes nothing (its Message-ID, or a hash of the
        bytes when it has none, is the event key). Bad input — malformed MIME, no headers,
        unknown charsets, over ``inbound.MAX_MESSAGE_BYTES`` — is ``unmatched`` with a reason,
        never an exception.

        Returns:
            What was decided: kind, event, lead, campaign, return date, and why.
        """
        return self._ingest.ingest_email(WorkspaceId(workspace_id), raw)

    def find_send(self, workspace_id: str, *, message_id: str) -> ScheduledSend | None:
        """The sent email whose Message-ID is ``message_id`` (with or without angle brackets,
        any case of domain), or None. For matching what an ESP's webhook reports (a bounce, a
        complaint) to a lead and campaign before :meth:`report_event`."""
        normal = normalise_message_id(message_id) if isinstance(message_id, str) else None
        if normal is None:
            return None
        return self._ctx.storage.find_send(WorkspaceId(workspace_id), message_id=normal)

    # -- events out: the journal for a CRM -------------------------------------------------

    def activities_since(
        self, workspace_id: str, cursor: str | None = None, *, limit: int = 100
    ) -> ActivityPage:
        """The workspace's activities after ``cursor``, for a consumer that mirrors them.

        The at-least-once channel out (``docs/events.md``): keep the page's ``cursor``
        durably once you have acted on its entries, and pass it to the next call; a consumer
        that crashes in between sees the page again, so act idempotently (each entry's
        ``position`` is unique in the workspace). Nothing is ever skipped, even when
        transactions commit out of order, and each lead's activities come in the order they
        were committed. An empty page keeps the cursor; ``more`` says a full page was cut.

        Args:
            workspace_id: whose journal.
            cursor: None to start at the beginning, or the ``cursor`` (or an entry's
                ``position``) of an earlier page.
            limit: the most entries in the page, 1 to 1000.

        Raises:
            InvalidInput: ``cursor`` is not one this storage returned, or ``limit`` is out of
                range.
        """
        return self._ctx.storage.activities_since(WorkspaceId(workspace_id), cursor, limit=limit)

    def subscribe(self, callback: ActivityListener) -> Subscription:
        """Call ``callback(workspace_id, activity)`` for each activity this service records,
        after the commit that recorded it.

        Called in the thread that made the commit (the caller's, or a worker's), in journal
        order, while the use case waits. A callback that raises is logged on the
        ``starlight_sequences.events`` logger and never breaks the use case. Best-effort: a
        crash between the commit and the call loses the call, and activities recorded by
        another process (another worker) are not seen; use :meth:`activities_since` where
        every activity must arrive. Keep callbacks short (hand work to a queue).

        Returns:
            The subscription; ``cancel()`` it (or use it as a context manager) to stop.
        """
        return self._ctx.listeners.add(callback)

    def update_settings(
        self, workspace_id: str, campaign_id: str, settings: CampaignSettings
    ) -> Campaign:
        """Replace a campaign's settings (business hours, closures, timeouts, stop rules...).

        Scheduled sends keep their instants; each is checked against the new settings when it
        is claimed (a send that no longer lies in the recipient's business hours is re-timed,
        not sent), and later steps are timed with them.

        Raises:
            IllegalTransition: the campaign is cancelled or completed.
        """
        return self._controls.update_settings(
            WorkspaceId(workspace_id), CampaignId(campaign_id), settings
        )

    def pause_campaign(self, workspace_id: str, campaign_id: str) -> Campaign:
        """Stop sending; nothing pending is lost. Raises ``IllegalTransition`` unless active."""
        return self._controls.pause_campaign(WorkspaceId(workspace_id), CampaignId(campaign_id))

    def resume_campaign(self, workspace_id: str, campaign_id: str) -> Campaign:
        """Send again. Sends that fell due during the pause are re-timed from now (staggered),
        so the waits after them are honoured from their actual sends."""
        return self._controls.resume_campaign(WorkspaceId(workspace_id), CampaignId(campaign_id))

    def cancel_campaign(self, workspace_id: str, campaign_id: str) -> Campaign:
        """Stop for good: every pending step is skipped and its reserved credits released."""
        return self._controls.cancel_campaign(WorkspaceId(workspace_id), CampaignId(campaign_id))

    def remove_sender(
        self, workspace_id: str, campaign_id: str, sender_id: str, *, move_started: bool = False
    ) -> Campaign:
        """Retire a pool sender: its leads not yet started with it (or all, ``move_started``)
        move to the channel's other senders by remaining capacity, re-timed; sends in flight
        stay. Raises ``UnknownSender``, or ``LastSender`` when leads would have no sender."""
        ids = WorkspaceId(workspace_id), CampaignId(campaign_id), SenderId(sender_id)
        return self._pools.remove_sender(*ids, move_started=move_started)

    def pause_enrolment(self, workspace_id: str, campaign_id: str, lead_id: str) -> Enrolment:
        """Hold one lead's remaining steps until :meth:`resume_enrolment`."""
        return self._controls.pause_enrolment(
            WorkspaceId(workspace_id), CampaignId(campaign_id), LeadId(lead_id)
        )

    def resume_enrolment(self, workspace_id: str, campaign_id: str, lead_id: str) -> Enrolment:
        """Resume one paused lead; its overdue step is re-timed from now."""
        return self._controls.resume_enrolment(
            WorkspaceId(workspace_id), CampaignId(campaign_id), LeadId(lead_id)
        )

    def resume_sender(self, workspace_id: str, sender_id: str) -> SenderHold:
        """Let a held mailbox send again (its sends are checked again within the hour).
        Raises ``SenderNotHeld`` when it is not held; journals SENDER_RESUMED."""
        return self._breaker.resume(WorkspaceId(workspace_id), SenderId(sender_id))

    def sender_holds(self, workspace_id: str) -> tuple[SenderHold, ...]:
        """The mailboxes the bounce breaker holds now, by sender id, each with its reason."""
        return self._breaker.holds(WorkspaceId(workspace_id))

    # -- monitoring -------------------------------------------------------------------------

    def status(self, workspace_id: str, campaign_id: str) -> CampaignStatusReport:
        """Every enrolled contact with its current step, status and next send (local and UTC),
        and the counts per step and status."""
        return self._monitoring.status(WorkspaceId(workspace_id), CampaignId(campaign_id))

    def waiting_on_connections(
        self, workspace_id: str, campaign_id: str | None = None
    ) -> list[WaitingOnConnection]:
        """The tasks view: leads whose LinkedIn message waits for an acceptance, with since when
        and when it times out."""
        return self._monitoring.waiting_on_connections(
            WorkspaceId(workspace_id), CampaignId(campaign_id) if campaign_id is not None else None
        )

    def shape_timeline(self, workspace_id: str, campaign_id: str) -> Timeline:
        """The campaign's shape as a timeline: numbered steps joined by their waits."""
        return self._monitoring.shape_timeline(WorkspaceId(workspace_id), CampaignId(campaign_id))

    def lead_timeline(self, workspace_id: str, campaign_id: str, lead_id: str) -> Timeline:
        """One lead's timeline: its cadence with each step's status and moment (sent, or due;
        for a step waiting on an acceptance, the deadline), in the lead's own timezone."""
        return self._monitoring.lead_timeline(
            WorkspaceId(workspace_id), CampaignId(campaign_id), LeadId(lead_id)
        )

    def lead_timeline_states(
        self, workspace_id: str, campaign_id: str, lead_id: str
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        """The enrolment and its sends, for timelines and reports.

        Raises:
            CampaignNotFound: no such campaign in the workspace.
            EnrolmentNotFound: the campaign did not enrol that lead.
        """
        return self._monitoring.lead_timeline_states(
            WorkspaceId(workspace_id), CampaignId(campaign_id), LeadId(lead_id)
        )

    def sends(
        self, workspace_id: str, campaign_id: str, lead_id: str | None = None
    ) -> list[SendRecord]:
        """The send log: every scheduled step of the campaign (of one lead when given), by lead
        then step, with when it was planned, when it is due and when it actually went out (UTC
        and in the recipient's timezone). Empty before approval.

        Raises:
            CampaignNotFound: no such campaign in the workspace.
            EnrolmentNotFound: ``lead_id`` is given and the campaign did not enrol that lead.
        """
        return self._monitoring.sends(
            WorkspaceId(workspace_id),
            CampaignId(campaign_id),
            LeadId(lead_id) if lead_id is not None else None,
        )

    def campaigns(self, workspace_id: str) -> list[Campaign]:
        """The workspace's campaigns, oldest first."""
        return self._ctx.storage.list_campaigns(WorkspaceId(workspace_id))

    # -- accounts ---------------------------------------------------------------------------

    def campaign_credits(self, workspace_id: str, campaign_id: str) -> CampaignCredits:
        """What one campaign moved in the workspace's credits, from the journal."""
        return self._accounts.campaign_credits(WorkspaceId(workspace_id), CampaignId(campaign_id))

    def reconcile_credits(self, workspace_id: str, campaign_id: str) -> list[CreditMovement]:
        """Repair a campaign's credits after a crash between a stored change and its movement.

        Every credit movement the service posts has an idempotency key, and the store says
        what each movement should have been: a sent step is charged, a skipped or failed one
        released, an approval that never committed gives its reservation back, a drafting hold
        is settled. This posts whatever is missing (keys already posted are skipped by the
        ledger), so it is safe to run at any time and any number of times, e.g. from a
        periodic job.

        Returns:
            The movements that were missing and are now posted.
        """
        return self._accounts.reconcile_credits(WorkspaceId(workspace_id), CampaignId(campaign_id))

    def balance(self, workspace_id: str) -> CreditAccount:
        """The workspace's credits: available and reserved."""
        return self._accounts.balance(WorkspaceId(workspace_id))

    def movements(self, workspace_id: str, campaign_id: str | None = None) -> list[CreditMovement]:
        """The credit journal of the workspace (or of one campaign)."""
        return self._accounts.movements(
            WorkspaceId(workspace_id), CampaignId(campaign_id) if campaign_id is not None else None
        )

    def top_up(self, workspace_id: str, amount: int, note: str = "top-up") -> CreditAccount:
        """Add credits to the workspace."""
        return self._accounts.top_up(WorkspaceId(workspace_id), amount, note)
