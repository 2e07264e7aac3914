"""The application service as coroutines, for asyncio hosts (FastAPI, async SQLAlchemy...).

:class:`AsyncCampaignService` offers every use case of
:class:`~starlight_sequences.service.CampaignService` under the same name, with the same
parameters and results, as a coroutine. The ports stay synchronous: each call runs the
synchronous service in a worker thread of a small thread pool the async service owns, and the
event loop stays free while storage, the drafter or a sender works. ``docs/async.md`` says which
calls block on what, and how thread-safe each shipped adapter is.

**Why a pool of its own** (not :func:`asyncio.to_thread`, which uses the loop's shared
default executor): it bounds how many port calls run at once (``max_threads``, 4 by default,
the PostgreSQL adapters' default pool size; SQLite has one writer at a time anyway), so a burst
of requests waits in the pool's queue instead of piling up behind the database's write lock or
its connection pool; a long drafting run or dispatch pass never starves what the host and
asyncio itself run on the default executor (``getaddrinfo``, the host's own ``to_thread``);
and :meth:`AsyncCampaignService.aclose` waits for the calls in flight, so the host can close
its adapters afterwards knowing no thread still uses them. As with ``to_thread``, the caller's
:mod:`contextvars` are visible in the thread.

**Cancelling a call.** A call still waiting in the pool's queue never runs. A call already
running in its thread cannot be interrupted: it runs to its end (its changes are stored as they
would be without the cancellation) and its result is dropped. Cancelling
:meth:`AsyncCampaignService.dispatch_due` additionally tells the pass to stop: the send in hand
is finished and recorded, and the rest of the batch is handed back (see
:func:`~starlight_sequences.async_worker.run_worker_async`, which also waits for that).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, Self, TypeVar

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
from starlight_sequences.errors import IllegalTransition, InvalidSettings
from starlight_sequences.events import ActivityPage, InboundEvent
from starlight_sequences.leads import Lead
from starlight_sequences.ports.clock import Clock
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.drafter import Drafter
from starlight_sequences.ports.senders import EmailSender, LinkedInSender
from starlight_sequences.ports.storage import Storage
from starlight_sequences.service import (
    ActivityListener,
    CampaignCredits,
    CampaignPreview,
    CampaignService,
    CampaignStatusReport,
    CreationReport,
    DispatchReport,
    IngestResult,
    ProgressCallback,
    SendRecord,
    Subscription,
    WaitingOnConnection,
)
from starlight_sequences.shapes import SendShape
from starlight_sequences.timeline import Timeline

__all__ = ["DEFAULT_MAX_THREADS", "AsyncCampaignService"]

DEFAULT_MAX_THREADS = 4
"""Port calls an :class:`AsyncCampaignService` runs at once unless told otherwise."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


class AsyncCampaignService:
    """Creates, reviews, approves, runs and reports campaigns, as coroutines.

    Every method is the coroutine twin of the :class:`CampaignService` method of the same name
    (same parameters, same result, same errors), run in a worker thread. Build it around a
    service, or from the service's own arguments with :meth:`from_ports`; use it as an
    ``async with`` block (or call :meth:`aclose`) so its threads end with it::

        async with AsyncCampaignService(CampaignService(storage=..., ...)) as service:
            report = await service.create_campaign("acme", name=..., ...)

    Callbacks the service calls (``progress`` of :meth:`create_campaign`, ``should_stop`` of
    :meth:`dispatch_due`, ``unsubscribe_url``) run in the worker thread, not in the event loop:
    to touch asyncio objects from one, use :meth:`asyncio.loop.call_soon_threadsafe`.

    Args:
        service: the synchronous service whose use cases this runs.
        max_threads: most calls running at once; more wait their turn in a queue. A running
            :func:`~starlight_sequences.async_worker.run_worker_async` holds one thread for each
            dispatch pass.

    Raises:
        InvalidSettings: ``max_threads`` is below 1.
    """

    def __init__(self, service: CampaignService, *, max_threads: int = DEFAULT_MAX_THREADS) -> None:
        if max_threads < 1:
            raise InvalidSettings(
                f"AsyncCampaignService: max_threads must be at least 1, not {max_threads}"
            )
        self._service = service
        self._executor = ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix="starlight-async"
        )
        self._closed = False

    @classmethod
    def from_ports(
        cls,
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
        max_threads: int = DEFAULT_MAX_THREADS,
    ) -> Self:
        """Build the service from the same arguments as :class:`CampaignService`, plus
        ``max_threads``."""
        service = CampaignService(
            storage=storage,
            ledger=ledger,
            drafter=drafter,
            clock=clock,
            email_sender=email_sender,
            linkedin_sender=linkedin_sender,
            prices=prices,
            draft_batch_size=draft_batch_size,
            unsubscribe_url=unsubscribe_url,
            send_without_unsubscribe=send_without_unsubscribe,
        )
        return cls(service, max_threads=max_threads)

    @property
    def service(self) -> CampaignService:
        """The synchronous service underneath (its ports are its attributes)."""
        return self._service

    async def aclose(self) -> None:
        """Refuse new calls, wait for the calls in flight and queued, and end the threads.

        The adapters stay open: they belong to the host, which may close them once this
        returns. Closing twice does nothing more.
        """
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _submit(
        self, function: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_R]:
        """Run ``function`` in the pool, in a copy of the caller's context."""
        if self._closed:
            raise IllegalTransition("AsyncCampaignService: the service is closed")
        context = contextvars.copy_context()
        call = functools.partial(context.run, function, *args, **kwargs)
        return asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def _call(self, function: Callable[_P, _R], /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        return await self._submit(function, *args, **kwargs)

    async def estimate(self, shape: SendShape | str, leads: Iterable[Lead]) -> CreditEstimate:
        """The exact credits a campaign would cost: drafting plus the maximum send cost.

        No I/O (CPU only: resolves every lead's cadence). See :meth:`CampaignService.estimate`.
        """
        return await self._call(self._service.estimate, shape, leads)

    async def create_campaign(
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

        Blocks on storage, the ledger and the drafter. See :meth:`CampaignService.create_campaign`.
        """
        return await self._call(
            self._service.create_campaign,
            workspace_id,
            name=name,
            brief=brief,
            shape=shape,
            leads=leads,
            email_identity=email_identity,
            linkedin_identity=linkedin_identity,
            settings=settings,
            campaign_id=campaign_id,
            progress=progress,
            email_identities=email_identities,
            linkedin_identities=linkedin_identities,
        )

    async def approve(self, workspace_id: str, campaign_id: str) -> Campaign:
        """Approve the campaign: reserve the send credits and schedule every recipient that is
        not excluded. Approving an approved campaign changes nothing.

        Blocks on storage and the ledger. See :meth:`CampaignService.approve`.
        """
        return await self._call(self._service.approve, workspace_id, campaign_id)

    async def preview(
        self, workspace_id: str, campaign_id: str, lead_id: str | None = None
    ) -> CampaignPreview:
        """Every recipient's cadence, drafts and planned dates (local and UTC), and the leads
        left out with their reasons. Before approval the dates are a forecast from now (or the
        campaign's start); after, they are the scheduled instants.

        Blocks on storage. See :meth:`CampaignService.preview`.
        """
        return await self._call(self._service.preview, workspace_id, campaign_id, lead_id)

    async def edit_draft(
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

        Blocks on storage. See :meth:`CampaignService.edit_draft`.
        """
        return await self._call(
            self._service.edit_draft,
            workspace_id,
            campaign_id,
            lead_id,
            step,
            subject=subject,
            body=body,
        )

    async def regenerate_draft(
        self, workspace_id: str, campaign_id: str, lead_id: str, step: int
    ) -> Draft:
        """Draft one message again (charged as a draft). A failure is stored as needing
        attention, like any failed draft.

        Blocks on storage, the ledger and the drafter. See :meth:`CampaignService.regenerate_draft`.
        """
        return await self._call(
            self._service.regenerate_draft, workspace_id, campaign_id, lead_id, step
        )

    async def exclude_recipient(
        self,
        workspace_id: str,
        campaign_id: str,
        lead_id: str,
        reason: str = "excluded by the reviewer",
    ) -> Enrolment:
        """Leave a recipient out of the campaign (before approval).

        Blocks on storage. See :meth:`CampaignService.exclude_recipient`.
        """
        return await self._call(
            self._service.exclude_recipient, workspace_id, campaign_id, lead_id, reason
        )

    async def approve_recipient(
        self, workspace_id: str, campaign_id: str, lead_id: str
    ) -> Enrolment:
        """Mark one recipient as reviewed. Raises ``DraftsNeedAttention`` if one of its
        drafts needs attention.

        Blocks on storage. See :meth:`CampaignService.approve_recipient`.
        """
        return await self._call(self._service.approve_recipient, workspace_id, campaign_id, lead_id)

    async def dispatch_due(
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

        Blocks on storage, the ledger and the senders. See :meth:`CampaignService.dispatch_due`.

        With ``in_flight`` above 1 the pass's sends go out from threads the synchronous service
        keeps, not from this object's pool (the pass itself holds one of its threads).

        Cancelling the coroutine stops the pass as ``should_stop`` would: the sends in hand are
        finished and recorded in their threads, the rest of the batch is handed back; a pass
        still queued for a thread never starts. The coroutine does not wait for that (use
        :func:`~starlight_sequences.async_worker.run_worker_async` to wait).
        """
        cancelled = threading.Event()

        def stop_now() -> bool:
            return cancelled.is_set() or (should_stop is not None and should_stop())

        running = self._submit(
            self._service.dispatch_due,
            worker_id=worker_id,
            lease=lease,
            limit=limit,
            workspace_id=workspace_id,
            should_stop=stop_now,
            in_flight=in_flight,
        )
        try:
            return await running
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def report_event(self, workspace_id: str, event: InboundEvent) -> tuple[Enrolment, ...]:
        """Apply an event the host app observed (reply, acceptance, bounce...).

        Blocks on storage and the ledger. See :meth:`CampaignService.report_event`.
        """
        return await self._call(self._service.report_event, workspace_id, event)

    async def next_due(self, workspace_id: str | None = None) -> dt.datetime | None:
        """When a dispatcher pass will next find something it does not find now: the next
        send falling due, or the end of a claim's lease (UTC); None when nothing is waiting.

        Blocks on storage. See :meth:`CampaignService.next_due`.
        """
        return await self._call(self._service.next_due, workspace_id)

    async def ingest_email(self, workspace_id: str, raw: bytes) -> IngestResult:
        """Read one raw inbound email (RFC 5322 bytes) and apply what it means.

        Blocks on storage and the ledger. See :meth:`CampaignService.ingest_email`.
        """
        return await self._call(self._service.ingest_email, workspace_id, raw)

    async def find_send(self, workspace_id: str, *, message_id: str) -> ScheduledSend | None:
        """The sent email whose Message-ID is ``message_id`` (with or without angle brackets,
        any case of domain), or None. For matching what an ESP's webhook reports (a bounce, a
        complaint) to a lead and campaign before :meth:`report_event`.

        Blocks on storage. See :meth:`CampaignService.find_send`.
        """
        return await self._call(self._service.find_send, workspace_id, message_id=message_id)

    async def activities_since(
        self, workspace_id: str, cursor: str | None = None, *, limit: int = 100
    ) -> ActivityPage:
        """The workspace's activities after ``cursor``, for a consumer that mirrors them.

        Blocks on storage. See :meth:`CampaignService.activities_since`.
        """
        return await self._call(self._service.activities_since, workspace_id, cursor, limit=limit)

    async def subscribe(self, callback: ActivityListener) -> Subscription:
        """Call ``callback(workspace_id, activity)`` for each activity this service records,
        after the commit that recorded it.

        Blocks on nothing. The callback is a plain function, called in the pool thread that
        ran the use case, not on the event loop: to reach the loop, hand the activity over
        with ``loop.call_soon_threadsafe``. See :meth:`CampaignService.subscribe`.
        """
        return self._service.subscribe(callback)

    async def update_settings(
        self, workspace_id: str, campaign_id: str, settings: CampaignSettings
    ) -> Campaign:
        """Replace a campaign's settings (business hours, closures, timeouts, stop rules...).

        Blocks on storage. See :meth:`CampaignService.update_settings`.
        """
        return await self._call(self._service.update_settings, workspace_id, campaign_id, settings)

    async def pause_campaign(self, workspace_id: str, campaign_id: str) -> Campaign:
        """Stop sending; nothing pending is lost. Raises ``IllegalTransition`` unless active.

        Blocks on storage. See :meth:`CampaignService.pause_campaign`.
        """
        return await self._call(self._service.pause_campaign, workspace_id, campaign_id)

    async def resume_campaign(self, workspace_id: str, campaign_id: str) -> Campaign:
        """Send again. Sends that fell due during the pause are re-timed from now (staggered),
        so the waits after them are honoured from their actual sends.

        Blocks on storage. See :meth:`CampaignService.resume_campaign`.
        """
        return await self._call(self._service.resume_campaign, workspace_id, campaign_id)

    async def resume_sender(self, workspace_id: str, sender_id: str) -> SenderHold:
        """Let a held mailbox send again (its sends are checked again within the hour).
        Raises ``SenderNotHeld`` when it is not held; journals SENDER_RESUMED.

        Blocks on storage. See :meth:`CampaignService.resume_sender`.
        """
        return await self._call(self._service.resume_sender, workspace_id, sender_id)

    async def sender_holds(self, workspace_id: str) -> tuple[SenderHold, ...]:
        """The mailboxes the bounce breaker holds now, by sender id, each with its reason.

        Blocks on storage. See :meth:`CampaignService.sender_holds`.
        """
        return await self._call(self._service.sender_holds, workspace_id)

    async def cancel_campaign(self, workspace_id: str, campaign_id: str) -> Campaign:
        """Stop for good: every pending step is skipped and its reserved credits released.

        Blocks on storage and the ledger. See :meth:`CampaignService.cancel_campaign`.
        """
        return await self._call(self._service.cancel_campaign, workspace_id, campaign_id)

    async def remove_sender(
        self, workspace_id: str, campaign_id: str, sender_id: str, *, move_started: bool = False
    ) -> Campaign:
        """Retire a pool sender: its leads not yet started with it (or all, ``move_started``)
        move to the channel's other senders by remaining capacity, re-timed; sends in flight
        stay. Raises ``UnknownSender``, or ``LastSender`` when leads would have no sender.

        Blocks on storage. See :meth:`CampaignService.remove_sender`.
        """
        return await self._call(
            self._service.remove_sender,
            workspace_id,
            campaign_id,
            sender_id,
            move_started=move_started,
        )

    async def pause_enrolment(self, workspace_id: str, campaign_id: str, lead_id: str) -> Enrolment:
        """Hold one lead's remaining steps until :meth:`resume_enrolment`.

        Blocks on storage. See :meth:`CampaignService.pause_enrolment`.
        """
        return await self._call(self._service.pause_enrolment, workspace_id, campaign_id, lead_id)

    async def resume_enrolment(
        self, workspace_id: str, campaign_id: str, lead_id: str
    ) -> Enrolment:
        """Resume one paused lead; its overdue step is re-timed from now.

        Blocks on storage. See :meth:`CampaignService.resume_enrolment`.
        """
        return await self._call(self._service.resume_enrolment, workspace_id, campaign_id, lead_id)

    async def status(self, workspace_id: str, campaign_id: str) -> CampaignStatusReport:
        """Every enrolled contact with its current step, status and next send (local and UTC),
        and the counts per step and status.

        Blocks on storage. See :meth:`CampaignService.status`.
        """
        return await self._call(self._service.status, workspace_id, campaign_id)

    async def waiting_on_connections(
        self, workspace_id: str, campaign_id: str | None = None
    ) -> list[WaitingOnConnection]:
        """The tasks view: leads whose LinkedIn message waits for an acceptance, with since when
        and when it times out.

        Blocks on storage. See :meth:`CampaignService.waiting_on_connections`.
        """
        return await self._call(self._service.waiting_on_connections, workspace_id, campaign_id)

    async def shape_timeline(self, workspace_id: str, campaign_id: str) -> Timeline:
        """The campaign's shape as a timeline: numbered steps joined by their waits.

        Blocks on storage. See :meth:`CampaignService.shape_timeline`.
        """
        return await self._call(self._service.shape_timeline, workspace_id, campaign_id)

    async def lead_timeline(self, workspace_id: str, campaign_id: str, lead_id: str) -> Timeline:
        """One lead's timeline: its cadence with each step's status and moment (sent, or due;
        for a step waiting on an acceptance, the deadline), in the lead's own timezone.

        Blocks on storage. See :meth:`CampaignService.lead_timeline`.
        """
        return await self._call(self._service.lead_timeline, workspace_id, campaign_id, lead_id)

    async def lead_timeline_states(
        self, workspace_id: str, campaign_id: str, lead_id: str
    ) -> tuple[Enrolment, list[ScheduledSend]]:
        """The enrolment and its sends, for timelines and reports.

        Blocks on storage. See :meth:`CampaignService.lead_timeline_states`.
        """
        return await self._call(
            self._service.lead_timeline_states, workspace_id, campaign_id, lead_id
        )

    async def sends(
        self, workspace_id: str, campaign_id: str, lead_id: str | None = None
    ) -> list[SendRecord]:
        """The send log: every scheduled step of the campaign (of one lead when given), by lead
        then step, with when it was planned, when it is due and when it actually went out (UTC
        and in the recipient's timezone). Empty before approval.

        Blocks on storage. See :meth:`CampaignService.sends`.
        """
        return await self._call(self._service.sends, workspace_id, campaign_id, lead_id)

    async def campaigns(self, workspace_id: str) -> list[Campaign]:
        """The workspace's campaigns, oldest first.

        Blocks on storage. See :meth:`CampaignService.campaigns`.
        """
        return await self._call(self._service.campaigns, workspace_id)

    async def campaign_credits(self, workspace_id: str, campaign_id: str) -> CampaignCredits:
        """What one campaign moved in the workspace's credits, from the journal.

        Blocks on the ledger. See :meth:`CampaignService.campaign_credits`.
        """
        return await self._call(self._service.campaign_credits, workspace_id, campaign_id)

    async def reconcile_credits(self, workspace_id: str, campaign_id: str) -> list[CreditMovement]:
        """Repair a campaign's credits after a crash between a stored change and its movement.

        Blocks on storage and the ledger. See :meth:`CampaignService.reconcile_credits`.
        """
        return await self._call(self._service.reconcile_credits, workspace_id, campaign_id)

    async def balance(self, workspace_id: str) -> CreditAccount:
        """The workspace's credits: available and reserved.

        Blocks on the ledger. See :meth:`CampaignService.balance`.
        """
        return await self._call(self._service.balance, workspace_id)

    async def movements(
        self, workspace_id: str, campaign_id: str | None = None
    ) -> list[CreditMovement]:
        """The credit journal of the workspace (or of one campaign).

        Blocks on the ledger. See :meth:`CampaignService.movements`.
        """
        return await self._call(self._service.movements, workspace_id, campaign_id)

    async def top_up(self, workspace_id: str, amount: int, note: str = "top-up") -> CreditAccount:
        """Add credits to the workspace.

        Blocks on the ledger. See :meth:`CampaignService.top_up`.
        """
        return await self._call(self._service.top_up, workspace_id, amount, note)
