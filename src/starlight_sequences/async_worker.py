"""The dispatcher worker loop as a coroutine, for asyncio hosts (a FastAPI lifespan).

:func:`run_worker_async` is the asyncio twin of :func:`~starlight_sequences.worker.run_worker`.

It behaves as ``run_worker`` does, pass for pass (with ``in_flight`` above 1, continuous run
for continuous run: see :mod:`starlight_sequences.worker`): each pass claims due sends with a
lease and dispatches them through :meth:`AsyncCampaignService.dispatch_due
<starlight_sequences.async_service.AsyncCampaignService.dispatch_due>` (in one of the async
service's threads, so the event loop stays free); between passes it waits for the poll
interval; a failing pass is logged and retried after a backoff that doubles up to a cap; it
returns :class:`~starlight_sequences.worker.WorkerStats`. It logs to the same
``starlight_sequences.worker`` logger. It installs no signal handlers: an asyncio host
(uvicorn, ...) handles signals itself and stops the worker with ``stop`` or by cancelling it.

Two ways to stop it:

- **Set** ``stop`` (an :class:`asyncio.Event`): the pass in hand finishes the sends it is on,
  hands the rest of its batch back, and the coroutine returns its stats.
- **Cancel** its task: the same, and then :class:`asyncio.CancelledError` is raised. A
  cancelled worker first tells the pass running in its thread to stop (the pass checks before
  each send), then waits for that thread to finish the sends in hand, record them and hand the rest
  of the batch back, so that when the task is done no send it claimed is left claimed and the
  host may close its adapters. A thread cannot be interrupted: the wait lasts as long as the
  send in hand (bounded by the sender's own timeout). Cancelling the task *again* while it waits
  stops the waiting: the task ends at once, and the thread still finishes that send and hands
  the rest back on its own. Cancelled while waiting between passes, it ends at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable

from starlight_sequences.async_service import AsyncCampaignService
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.service import DispatchReport
from starlight_sequences.service._dispatch import dispatch_continuously
from starlight_sequences.worker import WorkerStats, _add, _Backoff, _check_settings, _stopped

__all__ = ["run_worker_async"]

log = logging.getLogger("starlight_sequences.worker")


async def run_worker_async(
    service: AsyncCampaignService,
    *,
    worker_id: str,
    poll_interval: float = 5.0,
    lease: dt.timedelta = dt.timedelta(minutes=5),
    batch: int = 100,
    workspace_id: str | None = None,
    once: bool = False,
    stop: asyncio.Event | None = None,
    on_pass: Callable[[DispatchReport], None] | None = None,
    error_backoff: float = 1.0,
    max_error_backoff: float = 60.0,
    in_flight: int = 1,
    continuous: bool = True,
) -> WorkerStats:
    """Dispatch due sends until stopped or cancelled.

    Args:
        service: the async service to dispatch with.
        worker_id: this worker's identity; unique per process (e.g. ``host:pid``).
        poll_interval: seconds to wait when a pass found less than a full batch.
        lease: how long each claim lasts (longer than the slowest send).
        batch: most sends claimed per pass.
        workspace_id: serve one workspace only (None: all).
        once: make a single pass and return (cron-style use); a failing pass is then raised.
        stop: set it (in the event loop) to stop after the sends in hand.
        on_pass: called in the event loop with each completed pass's report.
        error_backoff: seconds to wait after a failed pass; doubled after each further
            failure in a row.
        max_error_backoff: the most it waits between failed passes.
        in_flight: most sends handed to senders at once (as for ``run_worker``).
        continuous: with ``in_flight`` above 1 (and not ``once``), claim again as threads
            free up instead of pass by pass (as for ``run_worker``).

    Returns:
        The passes made, the totals of their reports, and how many passes failed.

    Raises:
        asyncio.CancelledError: the task was cancelled; raised once the pass in hand has
            finished its send and handed the rest back (see the module's documentation).
        InvalidSettings: a setting is out of range (as for ``run_worker``).
    """
    _check_settings(poll_interval, batch, lease, error_backoff, max_error_backoff, in_flight)
    stop = stop if stop is not None else asyncio.Event()
    # The pass runs in a thread, which must not read an asyncio.Event: a relay copies ``stop``
    # into a threading.Event that the pass's should_stop reads.
    halt = threading.Event()
    relay = asyncio.create_task(_relay(stop, halt), name=f"starlight-stop-relay-{worker_id}")
    fields: dict[str, object] = {"worker_id": worker_id, "pid": os.getpid()}
    backoff = _Backoff(first=error_backoff, cap=max_error_backoff)
    totals = DispatchReport()
    passes = 0
    sends = (in_flight, continuous and in_flight > 1 and not once)  # in flight; refill
    log.info("worker %s started (asyncio)", worker_id, extra=fields)
    try:
        while not stop.is_set():
            try:
                report = await _one_pass(
                    service, halt, worker_id, lease, batch, sends, workspace_id, fields
                )
            except Exception as exc:
                if once:
                    raise
                await _wait(stop, backoff.failed(worker_id, exc, fields))
                continue
            backoff.succeeded(worker_id)
            passes += 1
            totals = _add(totals, report)
            if on_pass is not None:
                on_pass(report)
            if once:
                break
            if sends[1] or report.handled < batch:  # a continuous run ends when nothing is due
                await _wait(stop, poll_interval)
    finally:
        relay.cancel()
        stats = _stopped(worker_id, passes, totals, backoff, fields)
    return stats


async def _one_pass(
    service: AsyncCampaignService,
    halt: threading.Event,
    worker_id: str,
    lease: dt.timedelta,
    batch: int,
    sends: tuple[int, bool],
    workspace_id: str | None,
    fields: dict[str, object],
) -> DispatchReport:
    """One dispatch pass (or continuous run: ``sends`` is ``in_flight`` and whether to refill);
    when cancelled, stop it and wait for its thread before re-raising."""
    in_flight, refill = sends
    running: asyncio.Future[DispatchReport]
    if refill:
        running = service._submit(
            dispatch_continuously,
            service.service._dispatch,
            worker_id=worker_id,
            lease=lease,
            limit=batch,
            workspace_id=WorkspaceId(workspace_id) if workspace_id is not None else None,
            should_stop=halt.is_set,
            in_flight=in_flight,
        )
    else:
        running = asyncio.ensure_future(
            service.dispatch_due(
                worker_id=worker_id,
                lease=lease,
                limit=batch,
                workspace_id=workspace_id,
                should_stop=halt.is_set,
                in_flight=in_flight,
            )
        )
    try:
        # Shielded, so that a cancellation reaches this function and not the pass: the pass is
        # told to stop through ``halt`` and waited for.
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        halt.set()
        log.info(
            "worker %s cancelled: finishing the send in hand and handing the rest back",
            worker_id,
            extra=fields,
        )
        try:
            report = await running
        except asyncio.CancelledError:
            log.warning(
                "worker %s cancelled again: not waiting for the pass in hand; its thread "
                "finishes its send and hands the rest back",
                worker_id,
                extra=fields,
            )
        except Exception:
            log.warning(
                "worker %s: the cancelled pass failed", worker_id, exc_info=True, extra=fields
            )
        else:
            log.info(
                "worker %s: cancelled pass ended (%d sent, %d handed back)",
                worker_id,
                report.sent,
                report.handed_back,
                extra=fields,
            )
        raise


async def _relay(stop: asyncio.Event, halt: threading.Event) -> None:
    await stop.wait()
    halt.set()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
