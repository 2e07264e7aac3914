"""The dispatcher worker loop: what ``starlight run`` and host apps run in a process.

Each pass claims due sends with a lease and dispatches them
(:meth:`~starlight_sequences.service.CampaignService.dispatch_due`); between passes the loop
sleeps until the next send falls due
(:meth:`~starlight_sequences.service.CampaignService.next_due`) or for the poll interval,
whichever is sooner, so a send goes out at its slot, not up to a poll interval late.
SIGTERM and SIGINT stop it gracefully: the sends in hand are finished and recorded, the rest
of the batch is handed back, and the loop returns.

**Sends in flight.** ``in_flight=N`` keeps up to N sends handed to senders at once, each on a
thread: one sender's (mailbox or LinkedIn account) sends go one after the other (so a sender
never has two in flight, and its spacing is checked against its actual sends), different
senders' sends go in parallel. With N above 1 the loop runs continuously, with no pass
barrier: when a thread frees up and no claimed send of an idle sender is waiting, it claims
again while the other sends are still in flight (at most ``batch`` sends held at once), so
the threads do not wait for a pass's slowest sender; a "pass" (``on_pass``,
``WorkerStats.passes``) is then one such run, from its first claim to the claim that comes
back short and the last send. ``continuous=False`` (or ``once``) makes it pass by pass
instead (:meth:`~starlight_sequences.service.CampaignService.dispatch_due`, each pass waiting
for its slowest sender). A worker sending at relay latency ``L`` reaches about
``min(N, senders due) / (L + per-send cost)`` sends per second instead of ``1 / (L + cost)``.
The lease must outlast what the worker holds: up to ``batch`` sends claimed, about
``ceil(batch / N)`` sends one after the other when the due sends are spread over at least N
senders, up to one sender's share otherwise; a send whose lease has less left than the
slowest send so far is handed back instead of started.

The loop survives its faults: a pass that fails (the database unreachable, a failover) is
logged and retried after a backoff that doubles up to a cap, and the loop resumes by itself
when the storage answers again. It stops only when asked. It logs to the
``starlight_sequences.worker`` logger; each send's fate goes to
``starlight_sequences.dispatch``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import attrs

from starlight_sequences.errors import InvalidSettings
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.service import CampaignService, DispatchReport
from starlight_sequences.service._dispatch import dispatch_continuously

__all__ = ["WorkerStats", "run_worker"]

log = logging.getLogger("starlight_sequences.worker")


@attrs.frozen(kw_only=True)
class WorkerStats:
    """What a worker did before it stopped.

    Attributes:
        passes: dispatcher passes that completed.
        totals: the sum of their reports.
        failed_passes: passes that raised (storage unreachable...) and were retried.
    """

    passes: int
    totals: DispatchReport
    failed_passes: int = 0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGTERM/SIGINT while inside; restore the old handlers after.

    Only the main thread may install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_worker(
    service: CampaignService,
    *,
    worker_id: str,
    poll_interval: float = 5.0,
    lease: dt.timedelta = dt.timedelta(minutes=5),
    batch: int = 100,
    workspace_id: str | None = None,
    once: bool = False,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    on_pass: Callable[[DispatchReport], None] | None = None,
    error_backoff: float = 1.0,
    max_error_backoff: float = 60.0,
    in_flight: int = 1,
    continuous: bool = True,
) -> WorkerStats:
    """Dispatch due sends until stopped.

    Args:
        service: the service to dispatch with.
        worker_id: this worker's identity; unique per process (e.g. ``host:pid``).
        poll_interval: the most seconds to sleep when a pass found less than a full batch
            (the loop wakes earlier when a send falls due sooner; this bounds how late a send
            that another process makes due, or moves earlier, is picked up).
        lease: how long each claim lasts: longer than ``ceil(batch / in_flight)`` times the
            slowest send (see the module's documentation).
        batch: most sends claimed per pass.
        workspace_id: serve one workspace only (None: all).
        once: make a single pass and return (cron-style use); a failing pass is then raised.
        stop: set it (from any thread) to stop after the sends in hand.
        handle_signals: stop gracefully on SIGTERM and SIGINT (main thread only).
        on_pass: called with each completed pass's report (logging, metrics).
        error_backoff: seconds to wait after a failed pass; doubled after each further
            failure in a row.
        max_error_backoff: the most it waits between failed passes.
        in_flight: most sends handed to senders at once, from 1 (one at a time, the default)
            to ``batch``; different senders only (see the module's documentation).
        continuous: with ``in_flight`` above 1 (and not ``once``), claim again as threads
            free up instead of pass by pass (see the module's documentation).

    Returns:
        The passes made, the totals of their reports, and how many passes failed.

    Raises:
        InvalidSettings: a setting is out of range.
    """
    _check_settings(poll_interval, batch, lease, error_backoff, max_error_backoff, in_flight)
    stop = stop if stop is not None else threading.Event()
    totals = DispatchReport()
    passes = 0
    backoff = _Backoff(first=error_backoff, cap=max_error_backoff)
    fields: dict[str, object] = {"worker_id": worker_id, "pid": os.getpid()}
    guard = _stop_on_signals(stop) if handle_signals else _nothing()
    refill = continuous and in_flight > 1 and not once
    log.info("worker %s started", worker_id, extra=fields)
    with guard:
        while not stop.is_set():
            try:
                report = _one_run(
                    service, worker_id, lease, batch, workspace_id, stop, in_flight, refill
                )
            except Exception as exc:
                if once:
                    raise
                stop.wait(backoff.failed(worker_id, exc, fields))
                continue
            backoff.succeeded(worker_id)
            passes += 1
            totals = _add(totals, report)
            if on_pass is not None:
                on_pass(report)
            if once:
                break
            if refill or report.handled < batch:  # a continuous run ends when nothing is due
                stop.wait(_until_next(service, poll_interval, workspace_id, fields))
    return _stopped(worker_id, passes, totals, backoff, fields)


def _one_run(
    service: CampaignService,
    worker_id: str,
    lease: dt.timedelta,
    batch: int,
    workspace_id: str | None,
    stop: threading.Event,
    in_flight: int,
    refill: bool,
) -> DispatchReport:
    """One pass, or with ``refill`` one continuous run (no pass barrier)."""
    if refill:
        return dispatch_continuously(
            service._dispatch,
            worker_id=worker_id,
            lease=lease,
            limit=batch,
            workspace_id=WorkspaceId(workspace_id) if workspace_id is not None else None,
            should_stop=stop.is_set,
            in_flight=in_flight,
        )
    return service.dispatch_due(
        worker_id=worker_id,
        lease=lease,
        limit=batch,
        workspace_id=workspace_id,
        should_stop=stop.is_set,
        in_flight=in_flight,
    )


def _stopped(
    worker_id: str,
    passes: int,
    totals: DispatchReport,
    backoff: _Backoff,
    fields: dict[str, object],
) -> WorkerStats:
    """Log that the worker stopped; what it did."""
    log.info(
        "worker %s stopped after %d passes (%d sent, %d failed passes)",
        worker_id,
        passes,
        totals.sent,
        backoff.total,
        extra=fields,
    )
    return WorkerStats(passes=passes, totals=totals, failed_passes=backoff.total)


_SHORTEST_SLEEP = 0.05
"""Seconds: the least a worker sleeps before a send that falls due sooner (no busy loop
when the clock is coarse, or stands still in a test)."""


def _until_next(
    service: CampaignService,
    poll_interval: float,
    workspace_id: str | None,
    fields: dict[str, object],
) -> float:
    """Seconds to sleep: until the next send falls due, at most ``poll_interval``."""
    try:
        upcoming = service.next_due(workspace_id)
    except Exception:  # the next pass meets the storage again; meanwhile poll as before
        log.debug("could not read when the next send falls due", exc_info=True, extra=fields)
        return poll_interval
    if upcoming is None:
        return poll_interval
    wait = (upcoming - service.clock.now()).total_seconds()
    return min(poll_interval, max(wait, _SHORTEST_SLEEP))


def _check_settings(
    poll_interval: float,
    batch: int,
    lease: dt.timedelta,
    error_backoff: float,
    max_error_backoff: float,
    in_flight: int = 1,
) -> None:
    if not 1 <= in_flight <= batch:
        raise InvalidSettings(
            f"worker: in_flight must be from 1 to batch ({batch}), not {in_flight}: a pass "
            "never has more sends in flight than it claims"
        )
    if (
        poll_interval < 0
        or batch < 1
        or lease <= dt.timedelta(0)
        or error_backoff <= 0
        or max_error_backoff < error_backoff
    ):
        raise InvalidSettings(
            "worker: poll_interval must be >= 0, batch >= 1, lease positive, and "
            "0 < error_backoff <= max_error_backoff"
        )


@attrs.define
class _Backoff:
    """How long to wait after failed passes: ``first`` seconds, doubled after each further
    failure in a row, at most ``cap``."""

    first: float
    cap: float
    in_a_row: int = 0
    total: int = 0

    def failed(self, worker_id: str, exc: Exception, fields: dict[str, object]) -> float:
        self.in_a_row += 1
        self.total += 1
        delay: float = min(self.cap, self.first * 2.0 ** (self.in_a_row - 1))
        log.warning(
            "worker %s: dispatch pass failed (%s: %s); trying again in %.1f s",
            worker_id,
            type(exc).__name__,
            exc,
            delay,
            exc_info=self.in_a_row == 1,
            extra={**fields, "failures_in_a_row": self.in_a_row},
        )
        return delay

    def succeeded(self, worker_id: str) -> None:
        if self.in_a_row:
            log.info(
                "worker %s: dispatching again after %d failed passes", worker_id, self.in_a_row
            )
        self.in_a_row = 0


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _add(left: DispatchReport, right: DispatchReport) -> DispatchReport:
    return DispatchReport(
        **{
            field.name: getattr(left, field.name) + getattr(right, field.name)
            for field in attrs.fields(DispatchReport)
        }
    )
