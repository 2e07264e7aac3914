"""Sends in flight: how one dispatcher pass splits its batch into per-sender lanes and runs up
to ``in_flight`` of them at once on threads the dispatcher keeps.

A lane holds the claimed sends of one sender (mailbox or LinkedIn account) in claim order; a
lane's sends go one after the other, so a sender never has two sends of one pass in flight
and each is checked against the spacing after the previous one's actual send instant.
Different senders' lanes run in parallel.

Owns no decision about a send: it runs whatever the dispatcher gives it per lane.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from starlight_sequences.campaigns import ScheduledSend
from starlight_sequences.channels import Channel
from starlight_sequences.ids import SenderId, WorkspaceId
from starlight_sequences.reports import DispatchReport

SenderKey = tuple[WorkspaceId, SenderId, Channel]


def sender_key(send: ScheduledSend) -> SenderKey:
    """The sender a send goes out from: its workspace, sender id and channel."""
    return (send.workspace_id, send.sender_id, send.action.channel)


def sender_lanes(batch: Sequence[ScheduledSend]) -> list[list[ScheduledSend]]:
    """``batch`` split by sender, each lane in claim order; the longest lanes first, lanes of
    one length in the order of their first send.

    A pass lasts as long as its busiest thread: starting the longest lanes first keeps the
    threads busy to nearly the end (a long lane started last would run alone).
    """
    lanes: dict[SenderKey, list[ScheduledSend]] = {}
    for send in batch:
        lanes.setdefault(sender_key(send), []).append(send)
    return sorted(lanes.values(), key=len, reverse=True)


def merged(reports: Iterable[DispatchReport]) -> DispatchReport:
    """The sum of ``reports``."""
    total = DispatchReport()
    for report in reports:
        total = DispatchReport(
            **{
                field.name: getattr(total, field.name) + getattr(report, field.name)
                for field in attrs.fields(DispatchReport)
            }
        )
    return total


@attrs.define
class PassState:
    """What the lanes of one pass share: the worker, its stop check, the pass's own halt
    (a storage fault or an unexpected error in one lane hands the rest of every lane back),
    and the slowest send seen so far (a send is not started once its lease has less than that
    left)."""

    worker_id: str
    should_stop: Callable[[], bool] | None
    halt: threading.Event = attrs.Factory(threading.Event)
    slowest: dt.timedelta = dt.timedelta(0)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False, repr=False)

    def stopping(self) -> bool:
        """True when the pass must start no further send."""
        return self.halt.is_set() or (self.should_stop is not None and self.should_stop())

    def took(self, elapsed: dt.timedelta) -> None:
        """Note that one send took ``elapsed`` (checks, sender call and record)."""
        with self._lock:
            self.slowest = max(self.slowest, elapsed)

    def lease_too_short(self, send: ScheduledSend, now: dt.datetime) -> bool:
        """True when ``send``'s lease ends before a send as slow as the slowest so far would
        be recorded: starting it could let another worker reclaim and send it again."""
        with self._lock:
            slowest = self.slowest
        expires = send.lease_expires_at
        return expires is not None and now + slowest >= expires


class LanePool:
    """The threads that run sender lanes, kept across passes.

    Kept rather than made per pass because a storage may keep a connection per thread (the
    SQLite adapter does): threads that live as long as the dispatcher reuse theirs. The pool
    grows when a pass asks for more sends in flight than it has threads; a pass never runs more
    than its own ``in_flight`` lanes at once, whatever the pool's size.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._size = 0

    def run(
        self,
        in_flight: int,
        lanes: Sequence[Sequence[ScheduledSend]],
        work: Callable[[Sequence[ScheduledSend]], DispatchReport],
    ) -> DispatchReport:
        """Run ``work`` on every lane, at most ``in_flight`` at once; the sum of the reports.

        Each of ``min(in_flight, len(lanes))`` runners takes the next lane not yet started
        until none is left, so lanes start in the given order and a finished lane's thread
        takes the next.
        """
        runners = min(in_flight, len(lanes))
        executor = self._executor_for(runners)
        waiting = collections.deque(lanes)
        take = threading.Lock()

        def runner() -> DispatchReport:
            done: list[DispatchReport] = []
            while True:
                with take:
                    if not waiting:
                        return merged(done)
                    lane = waiting.popleft()
                done.append(work(lane))

        futures = [executor.submit(runner) for _ in range(runners)]
        # Every runner ends before the pass does, even when one raised: no send of this pass
        # may still be in flight when the next pass claims.
        concurrent.futures.wait(futures)
        return merged(future.result() for future in futures)

    def _executor_for(self, size: int) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None or self._size < size:
                previous = self._executor
                self._executor = ThreadPoolExecutor(
                    max_workers=size, thread_name_prefix="starlight-send"
                )
                self._size = size
                if previous is not None:
                    previous.shutdown(wait=False)  # its running lanes finish first
            return self._executor
