"""The dispatcher worker loop: what ``starlight run`` and host apps run in a process.

Each pass claims due sends with a lease and dispatches them
(:meth:`~starlight_sequences.service.CampaignService.dispatch_due`); between passes the loop
sleeps for the poll interval. SIGTERM and SIGINT stop it gracefully: the send in hand is
finished and recorded, the rest of the batch is handed back, and the loop returns.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import attrs

from starlight_sequences.errors import InvalidSettings
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.service import CampaignService, DispatchReport

__all__ = ["WorkerStats", "run_worker"]


@attrs.frozen(kw_only=True)
class WorkerStats:
    """What a worker did before it stopped: passes made and the sum of their reports."""

    passes: int
    totals: DispatchReport


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
    workspace_id: WorkspaceId | None = None,
    once: bool = False,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
    on_pass: Callable[[DispatchReport], None] | None = None,
) -> WorkerStats:
    """Dispatch due sends until stopped.

    Args:
        service: the service to dispatch with.
        worker_id: this worker's identity; unique per process (e.g. ``host:pid``).
        poll_interval: seconds to sleep when a pass found less than a full batch.
        lease: how long each claim lasts (longer than the slowest send).
        batch: most sends claimed per pass.
        workspace_id: serve one workspace only (None: all).
        once: make a single pass and return (cron-style use).
        stop: set it (from any thread) to stop after the send in hand.
        handle_signals: stop gracefully on SIGTERM and SIGINT (main thread only).
        on_pass: called with each pass's report (logging, metrics).

    Returns:
        The passes made and the totals of their reports.
    """
    if poll_interval < 0 or batch < 1 or lease <= dt.timedelta(0):
        raise InvalidSettings("worker: poll_interval must be >= 0, batch >= 1 and lease positive")
    stop = stop if stop is not None else threading.Event()
    totals = DispatchReport()
    passes = 0
    guard = _stop_on_signals(stop) if handle_signals else _nothing()
    with guard:
        while not stop.is_set():
            report = service.dispatch_due(
                worker_id=worker_id,
                lease=lease,
                limit=batch,
                workspace_id=workspace_id,
                should_stop=stop.is_set,
            )
            passes += 1
            totals = _add(totals, report)
            if on_pass is not None:
                on_pass(report)
            if once:
                break
            if report.handled < batch:
                stop.wait(poll_interval)
    return WorkerStats(passes=passes, totals=totals)


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
