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
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from starlight_sequences.campaigns import ScheduledSend
from starlight_sequences.channels import Channel
from starlight_sequences.ids import SenderId, WorkspaceId
from starlight_sequences.reports import DispatchReport

log = logging.getLogger("starlight_sequences.dispatch")

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
        executor = self.executor_for(runners)
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

    def executor_for(self, size: int) -> ThreadPoolExecutor:
        """The pool's executor, with at least ``size`` threads."""
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


@attrs.define(eq=False)
class Claim:
    """One claim of a continuous run: its sends, how to run one of them (a lane of one send,
    checked and recorded as in a pass), and what to do once every one of them has ended (the
    campaigns' completion and A/B checks a pass makes at its end)."""

    sends: Sequence[ScheduledSend]
    run: Callable[[ScheduledSend], DispatchReport]
    finished: Callable[[], None]
    left: int = 0


def refills(in_flight: int, limit: int, held: int, running: int, ready: int) -> int:
    """How many sends a continuous run claims now (0: none).

    It claims when a thread would otherwise go idle (fewer startable sends than free threads),
    never holding more than ``limit`` sends claimed at once, and then at least ``in_flight``
    (or whatever room is left when nothing is held), so that claims stay few.
    """
    room = limit - held - running
    if in_flight - running <= ready or room <= 0:
        return 0
    return room if room >= in_flight or held == 0 else 0


class Refilling:
    """Keeps up to ``in_flight`` sends in flight across claims, with no pass barrier: when a
    thread frees up and fewer sends are startable than threads are free, it claims again
    while the other sends are still in flight.

    A sender never has two sends in flight: a sender with a send running is *busy*, and its
    next send (kept in claim order, whichever claim it came from) starts only once that one
    has ended, recorded. Everything runs on the ``pool``'s threads; the claims, the starts
    and the hand-backs happen in the caller's thread.

    The run ends when a claim came back short (nothing more is due now) and every send has
    ended; or, on a stop or a halt (``state``), once every send in flight has ended and every
    send not started is handed back. A claim that fails after the first is logged and ends
    the claiming: the sends held are still sent (each meets the storage again) and the run
    ends; the first claim's failure is raised, as a pass's would be.
    """

    def __init__(
        self,
        pool: LanePool,
        in_flight: int,
        limit: int,
        state: PassState,
        claim: Callable[[int], Claim],
        hand_back: Callable[[Sequence[ScheduledSend]], DispatchReport],
    ) -> None:
        self._pool, self._in_flight, self._limit, self._state = pool, in_flight, limit, state
        self._claim, self._hand_back = claim, hand_back
        self._held: dict[SenderKey, collections.deque[tuple[ScheduledSend, Claim]]] = {}
        self._count = 0  # sends held, not started
        self._running: dict[concurrent.futures.Future[DispatchReport], tuple[SenderKey, Claim]]
        self._running = {}
        self._drained = False
        self._claims = 0
        self.report = DispatchReport()

    def run(self) -> DispatchReport:
        """Run until drained, stopped or halted; the sum of every send's report."""
        executor = self._pool.executor_for(self._in_flight)
        try:
            while True:
                if not self._state.stopping():
                    self._refill()
                    self._start(executor)
                if not self._running:
                    if self._state.stopping() or (self._drained and not self._held):
                        break
                    continue
                done, _ = concurrent.futures.wait(
                    self._running, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in done:
                    self._ended(future)
        finally:
            self._state.halt.set()  # nothing more starts, whatever ended the loop
            self._wait_for_running()
            self._hand_back_held()
        return self.report

    def _refill(self) -> None:
        if self._drained:
            return
        ready = sum(1 for key in self._held if key not in self._busy())
        room = refills(self._in_flight, self._limit, self._count, len(self._running), ready)
        if not room:
            return
        try:
            claim = self._claim(room)
        except Exception:
            if self._claims == 0:
                raise
            log.warning("a refill claim failed; sending what is held, then ending the run")
            self._drained = True
            return
        self._claims += 1
        self._drained = len(claim.sends) < room
        claim.left = len(claim.sends)
        for send in claim.sends:
            self._held.setdefault(sender_key(send), collections.deque()).append((send, claim))
            self._count += 1
        if not claim.sends:
            claim.finished()

    def _busy(self) -> set[SenderKey]:
        return {key for key, _ in self._running.values()}

    def _start(self, executor: ThreadPoolExecutor) -> None:
        busy = self._busy()
        # The longest queues first: the run's end waits for its longest sender.
        for key in sorted(self._held, key=lambda k: len(self._held[k]), reverse=True):
            if len(self._running) >= self._in_flight:
                return
            if key in busy:
                continue
            queue = self._held[key]
            send, claim = queue.popleft()
            self._count -= 1
            if not queue:
                del self._held[key]
            self._running[executor.submit(claim.run, send)] = (key, claim)

    def _ended(self, future: concurrent.futures.Future[DispatchReport]) -> None:
        _, claim = self._running.pop(future)
        try:
            self.report = merged((self.report, future.result()))
        finally:
            self._one_less(claim, 1)

    def _one_less(self, claim: Claim, count: int) -> None:
        claim.left -= count
        if claim.left == 0:
            claim.finished()

    def _wait_for_running(self) -> None:
        error: BaseException | None = None
        while self._running:
            future = next(iter(self._running))
            concurrent.futures.wait([future])
            try:
                self._ended(future)
            except BaseException as exc:  # raised once every send in flight has ended
                error = error or exc
        if error is not None:
            raise error

    def _hand_back_held(self) -> None:
        held, self._held, self._count = self._held, {}, 0
        for queue in held.values():
            for send, claim in queue:
                self.report = merged((self.report, self._hand_back([send])))
                self._one_less(claim, 1)
