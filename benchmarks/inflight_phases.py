"""Where one worker's time goes with sends in flight: the phases of a send, and how busy the
pass's threads are.

Seeds ``--count`` due sends over 64 mailboxes and starts the relay as ``inflight_bench.py``
does (L = ``--latency`` ms in DATA), then runs one worker with ``--in-flight`` N in this
process, with timers wrapped around the dispatcher's phases (re-checks, composing, the SMTP
exchange and its commands, the record and charge). Prints the milliseconds per send of each
phase (summed over the threads, so each is what one send spends in it) and, per pass, how long
its lanes took beside the mean busy time of its threads.

    PYTHONPATH=src .venv/bin/python benchmarks/inflight_phases.py --in-flight 16 --latency 200
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import smtplib
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import inflight_bench as bench
from starlight_sequences.adapters import smtp
from starlight_sequences.campaigns import ScheduledSend
from starlight_sequences.reports import DispatchReport
from starlight_sequences.service import _dispatch, _finishing

_spent: dict[str, float] = defaultdict(float)
_lock = threading.Lock()


def _timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            with _lock:
                _spent[name] += time.monotonic() - started

    return timed


def _instrument(passes: list[tuple[float, float]]) -> None:
    _dispatch.Dispatcher._prepare = _timed("re-checks", _dispatch.Dispatcher._prepare)  # type: ignore[method-assign]
    _finishing.SendFinisher.sent = _timed("record and charge", _finishing.SendFinisher.sent)  # type: ignore[method-assign]
    smtp.compose_email = _timed("compose", smtp.compose_email)
    smtp.SMTPEmailSender._attempt = _timed("SMTP exchange", smtp.SMTPEmailSender._attempt)  # type: ignore[method-assign]
    for command in ("mail", "rcpt", "data"):
        setattr(smtplib.SMTP, command, _timed(f"  SMTP {command}", getattr(smtplib.SMTP, command)))
    run = _dispatch.LanePool.run

    def timed_run(
        self: _dispatch.LanePool,
        in_flight: int,
        lanes: Sequence[Sequence[ScheduledSend]],
        work: Callable[[Sequence[ScheduledSend]], DispatchReport],
    ) -> DispatchReport:
        busy: list[float] = []

        def measured(lane: Sequence[ScheduledSend]) -> DispatchReport:
            started = time.monotonic()
            try:
                return work(lane)
            finally:
                with _lock:
                    busy.append(time.monotonic() - started)

        started = time.monotonic()
        report = run(self, in_flight, lanes, measured)
        passes.append((time.monotonic() - started, sum(busy) / min(in_flight, len(lanes))))
        return report

    _dispatch.LanePool.run = timed_run  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--in-flight", type=int, default=16, help="N (16)")
    parser.add_argument("--latency", type=int, default=200, help="L in ms (200)")
    parser.add_argument("--count", type=int, default=300, help="due sends (300)")
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        db, log = f"{folder}/bench.sqlite3", f"{folder}/relay.json"
        bench.seed(db, args.count, 64, dt.timedelta(0))
        port = bench._free_port()
        ready, stop = ctx.Event(), ctx.Event()
        relay = ctx.Process(target=bench._relay, args=(port, args.latency / 1000, log, ready, stop))
        relay.start()
        assert ready.wait(30), "the relay did not start"
        passes: list[tuple[float, float]] = []
        _instrument(passes)
        started = time.monotonic()
        bench.worker(db, port, "w0", args.in_flight, started, threading.Barrier(1), f"{folder}/cpu")
        elapsed = time.monotonic() - started
        stop.set()
        relay.join(30)
        received = len(json.loads(Path(log).read_text()))
    print(
        f"N={args.in_flight}, L={args.latency} ms, {args.count} sends over 64 mailboxes: "
        f"{args.count / elapsed:.1f} sends/s ({received} received)"
    )
    for name, seconds in sorted(_spent.items(), key=lambda item: item[0].strip()):
        print(f"  {name}: {seconds / args.count * 1000:.1f} ms per send")
    for took, busy in passes:
        if took > 0:
            print(f"  pass: lanes {took:.2f} s, threads busy {busy:.2f} s ({busy / took:.0%})")


if __name__ == "__main__":
    main()
