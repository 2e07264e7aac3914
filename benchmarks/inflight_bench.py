"""Sends in flight: dispatch throughput against a relay that takes L ms to accept a message.

Each run seeds ``--count`` due sends (one email step, New York leads, SQLite) spread over
``--mailboxes`` mailboxes (one campaign each, no spacing, caps far above what is sent), starts
an aiosmtpd relay on 127.0.0.1 in a child process that waits ``L`` ms in DATA before accepting,
then starts W worker processes ("spawn"), each running ``run_worker(in_flight=N)`` with the
shipped ``SMTPEmailSender`` (plain SMTP, one kept connection per mailbox) until nothing is left.
A run is timed from the moment every worker is ready to the relay's last accepted message; the
relay's log must hold every message exactly once.

Beside each figure it prints the bound ``W × min(N, mailboxes) ÷ (L + c)``, where ``c`` is the
per-send cost measured at L = 0, N = 1, one worker (``1 ÷ that rate``), figure ÷ bound, and
the CPU time the workers spent per send (one process, one GIL: ``1 ÷ that`` caps its rate on
an idle core).

A last run sets a spacing (``--spacing`` seconds) on 16 mailboxes with several sends each, all
due at once, one worker with N = 16 at L = 50 ms, and checks on the relay's receive times that
no mailbox ever received two messages closer than the spacing.

    PYTHONPATH=src .venv/bin/python benchmarks/inflight_bench.py           # about 4 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/inflight_bench.py --quick   # about 1.5 minutes
    PYTHONPATH=src .venv/bin/python benchmarks/inflight_bench.py --goal 5  # the goal, 5 runs

``--goal RUNS`` runs only the goal's configuration (one worker, N = 16, L = 200 ms), RUNS
times, each run with its own c measured just before it, continuous (the worker's default with
N > 1) and pass by pass (``continuous=False``) side by side; it prints each run's ratio, the
load average, and the median ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import multiprocessing.synchronize
import os
import platform
import re
import socket
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from starlight_sequences import shapes
from starlight_sequences.adapters.smtp import SMTPEmailSender, SMTPSecurity
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.cadence import Cadence, resolve_cadence
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    CampaignStatus,
    EmailIdentity,
    Enrolment,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
    send_id_for,
)
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditMovement, MovementKind
from starlight_sequences.drafts import Draft, DraftStatus
from starlight_sequences.ids import CampaignId, LeadId, SenderId, WorkspaceId
from starlight_sequences.leads import Lead
from starlight_sequences.ports.storage import Changes
from starlight_sequences.reports import DispatchReport
from starlight_sequences.service import CampaignService
from starlight_sequences.worker import run_worker

WS = WorkspaceId("bench")
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # Monday, 10:00 in New York
LEASE = dt.timedelta(minutes=5)
BATCH = 100
PRICE = 2
JOIN_TIMEOUT = 900.0
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the relay ---------------------------------------------------------------------------------


def _relay(
    port: int,
    latency: float,
    log_path: str,
    ready: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
) -> None:
    """The child process: an aiosmtpd relay that waits ``latency`` s in DATA, then accepts and
    notes (mailbox, Message-ID, monotonic time); the notes go to ``log_path`` when stopped."""
    from aiosmtpd.controller import Controller

    received: list[tuple[str, str, float]] = []

    class Slow:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if latency:
                await asyncio.sleep(latency)
            found = MESSAGE_ID.search(envelope.content)
            message_id = found.group(1).decode() if found else ""
            received.append((envelope.mail_from, message_id, time.monotonic()))
            return "250 OK"

    controller = Controller(Slow(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()
    Path(log_path).write_text(json.dumps(received))


# --- the database ------------------------------------------------------------------------------


def seed(path: str, count: int, mailboxes: int, spacing: dt.timedelta) -> None:
    """``mailboxes`` active cold-email campaigns (one mailbox each) with ``count`` drafted
    sends in all, dealt out round-robin, every one due before NOW, credits reserved.

    Without spacing the sends fall due a millisecond apart in that order (as a plan spreads
    them), so a claim of the oldest takes a few of every mailbox; with spacing, every send
    falls due at the same moment, so that each mailbox has several sends due at once."""
    storage, ledger = SQLiteStorage(path), SQLiteCreditLedger(path)
    campaigns = [
        Campaign(
            workspace_id=WS,
            id=CampaignId(f"bench-{m:03}"),
            name=f"bench {m}",
            brief="We make rockets cheaper.",
            shape=shapes.get("cold-email"),
            settings=CampaignSettings(),
            email_identity=EmailIdentity(
                id=SenderId(f"mbx-{m:03}"),
                address=f"sales{m}@acme.example.com",
                min_spacing=spacing,
                daily_cap=100_000,
            ),
            linkedin_identity=None,
            status=CampaignStatus.ACTIVE,
            created_at=NOW - dt.timedelta(days=1),
            approved_at=NOW - dt.timedelta(hours=1),
        )
        for m in range(mailboxes)
    ]
    enrolments, drafts, sends = [], [], []
    for n in range(count):
        campaign = campaigns[n % mailboxes]
        assert campaign.email_identity is not None
        lead = Lead(
            id=LeadId(f"lead-{n:06}"),
            first_name="Ann",
            last_name="Lee",
            company="Acme",
            title="CTO",
            email=f"ann{n}@acme{n % 97}.example.com",
            country="US",
            timezone="America/New_York",
        )
        cadence = resolve_cadence(campaign.shape, lead)
        assert isinstance(cadence, Cadence)
        enrolments.append(
            Enrolment(
                workspace_id=WS,
                campaign_id=campaign.id,
                lead=lead,
                steps=cadence.steps,
                status=EnrolmentStatus.ACTIVE,
                approved=True,
            )
        )
        drafts.append(
            Draft(
                campaign_id=campaign.id,
                lead_id=lead.id,
                step=1,
                action=Action.EMAIL,
                subject="Cheaper rockets",
                body="Hello Ann, fifteen minutes this week?",
                status=DraftStatus.READY,
            )
        )
        due = NOW - dt.timedelta(minutes=1)
        if not spacing:
            due -= dt.timedelta(milliseconds=count - n)
        sends.append(
            ScheduledSend(
                id=send_id_for(campaign.id, lead.id, 1),
                workspace_id=WS,
                campaign_id=campaign.id,
                lead_id=lead.id,
                step=1,
                action=Action.EMAIL,
                sender_id=campaign.email_identity.id,
                due_at=due,
                forecast_at=due,
                status=SendStatus.SCHEDULED,
            )
        )
    storage.commit(
        WS,
        Changes(
            campaigns=tuple(campaigns),
            enrolments=tuple(enrolments),
            drafts=tuple(drafts),
            sends=tuple(sends),
        ),
    )
    ledger.post(
        WS,
        CreditMovement(kind=MovementKind.TOP_UP, amount=PRICE * count),
        CreditMovement(kind=MovementKind.RESERVE, amount=PRICE * count),
    )
    storage.close()
    ledger.close()


# --- the workers -------------------------------------------------------------------------------


class RunningClock:
    """NOW plus the real time since ``base`` (a ``time.monotonic()`` reading, the same clock in
    every process of the machine): real seconds, inside the leads' business hours."""

    def __init__(self, base: float) -> None:
        self._base = base

    def now(self) -> dt.datetime:
        return NOW + dt.timedelta(seconds=time.monotonic() - self._base)


def worker(
    path: str,
    port: int,
    worker_id: str,
    in_flight: int,
    base: float,
    start: multiprocessing.synchronize.Barrier,
    cpu_path: str,
    batch: int = BATCH,
    continuous: bool = True,
) -> None:
    """Dispatch with ``in_flight`` sends at once until nothing is due or claimed; write the
    CPU seconds the process spent dispatching to ``cpu_path``."""
    storage, ledger = SQLiteStorage(path), SQLiteCreditLedger(path)
    sender = SMTPEmailSender(host="127.0.0.1", port=port, security=SMTPSecurity.PLAIN)
    service = CampaignService(
        storage=storage,
        ledger=ledger,
        drafter=TemplateDrafter(),
        clock=RunningClock(base),
        email_sender=sender,
        send_without_unsubscribe=True,
    )
    stop = threading.Event()

    def on_pass(report: DispatchReport) -> None:
        # Done when no send is waiting or claimed at all: asked from a day before the sends
        # fell due (next_due from now leaves out what is due now but was not yet claimed).
        if report.handled < batch and storage.next_due(NOW - dt.timedelta(days=1)) is None:
            stop.set()

    start.wait(JOIN_TIMEOUT)
    cpu = time.process_time()
    run_worker(
        service,
        worker_id=worker_id,
        poll_interval=0.05,
        lease=LEASE,
        batch=batch,
        stop=stop,
        handle_signals=False,
        on_pass=on_pass,
        in_flight=in_flight,
        continuous=continuous,
    )
    Path(cpu_path).write_text(str(time.process_time() - cpu))
    sender.close()
    storage.close()
    ledger.close()


# --- one run -----------------------------------------------------------------------------------


def run(
    *,
    count: int,
    mailboxes: int,
    latency_ms: int,
    workers: int,
    in_flight: int,
    spacing: dt.timedelta = dt.timedelta(0),
    batch: int = BATCH,
    continuous: bool = True,
) -> tuple[float, float, list[tuple[str, str, float]]]:
    """One run: sends per second, the workers' CPU seconds per send, and the relay's log."""
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        db = str(Path(folder) / "bench.sqlite3")
        log_path = str(Path(folder) / "relay.json")
        seed(db, count, mailboxes, spacing)
        port = _free_port()
        ready, stop = ctx.Event(), ctx.Event()
        relay = ctx.Process(target=_relay, args=(port, latency_ms / 1000, log_path, ready, stop))
        relay.start()
        assert ready.wait(30), "the relay did not start"
        start = ctx.Barrier(workers + 1)
        base = time.monotonic()
        processes = [
            ctx.Process(
                target=worker,
                args=(
                    db,
                    port,
                    f"w{w}",
                    in_flight,
                    base,
                    start,
                    f"{folder}/cpu-{w}",
                    batch,
                    continuous,
                ),
            )
            for w in range(workers)
        ]
        for process in processes:
            process.start()
        start.wait(JOIN_TIMEOUT)
        began = time.monotonic()
        for process in processes:
            process.join(JOIN_TIMEOUT)
            assert process.exitcode == 0, f"a worker exited with {process.exitcode}"
        stop.set()
        relay.join(30)
        received = [tuple(row) for row in json.loads(Path(log_path).read_text())]
        cpu = sum(float(Path(f"{folder}/cpu-{w}").read_text()) for w in range(workers))
    ids = [message_id for _, message_id, _ in received]
    if len(ids) != count or len(set(ids)) != count:
        raise SystemExit(
            f"the relay received {len(ids)} messages ({len(set(ids))} distinct), not {count}"
        )
    last = max(at for _, _, at in received)
    return count / (last - began), cpu / count, received  # type: ignore[return-value]


def closest_gaps(received: list[tuple[str, str, float]]) -> dict[str, float]:
    """Per mailbox, the shortest time between two messages it received (seconds)."""
    times: dict[str, list[float]] = defaultdict(list)
    for mailbox, _, at in received:
        times[mailbox].append(at)
    return {
        mailbox: min(b - a for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False))
        for mailbox, ts in times.items()
        if len(ts) > 1
    }


def goal_runs(runs: int, count: int, mailboxes: int) -> None:
    """The goal, ``runs`` times: each run measures c (L = 0, N = 1, one worker), then one worker
    with N = 16 at L = 200 ms continuous (the worker loop's default) and pass by pass
    (``continuous=False``); the ratio of each to 16 ÷ (L + c) of the same run, per run and the
    median, with the load average before each run."""
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; {count} due sends over {mailboxes} mailboxes, SQLite, "
        f"batch {BATCH}; one worker, N = 16, L = 200 ms"
    )
    print(
        "| run | load avg (1 min) | c (ms) | bound 16÷(L+c) | continuous sends/s | ratio "
        "| pass by pass sends/s | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios: list[float] = []
    barrier: list[float] = []
    for number in range(1, runs + 1):
        load = os.getloadavg()[0]
        rate0, _, _ = run(count=count, mailboxes=mailboxes, latency_ms=0, workers=1, in_flight=1)
        cost = 1 / rate0
        bound = 16 / (0.2 + cost)
        figures = [
            run(
                count=count,
                mailboxes=mailboxes,
                latency_ms=200,
                workers=1,
                in_flight=16,
                continuous=continuous,
            )[0]
            for continuous in (True, False)
        ]
        ratios.append(figures[0] / bound)
        barrier.append(figures[1] / bound)
        print(
            f"| {number} | {load:.1f} | {cost * 1000:.1f} | {bound:.1f} | {figures[0]:.1f} "
            f"| {ratios[-1]:.2f} | {figures[1]:.1f} | {barrier[-1]:.2f} |",
            flush=True,
        )
    print(
        f"median ratio: continuous {statistics.median(ratios):.2f}, pass by pass "
        f"{statistics.median(barrier):.2f} (goal: continuous ≥ 0.70); load average now "
        f"{os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=600, help="due sends per run (600)")
    parser.add_argument("--mailboxes", type=int, default=64, help="mailboxes (64, at least 16)")
    parser.add_argument("--spacing", type=float, default=1.0, help="spacing run: seconds (1)")
    parser.add_argument("--quick", action="store_true", help="200 sends per run")
    parser.add_argument(
        "--goal",
        type=int,
        default=0,
        metavar="RUNS",
        help="only the goal (1 × 16, L = 200 ms): RUNS runs, each with its own c; the median",
    )
    args = parser.parse_args()
    count = 200 if args.quick else args.count
    if args.goal:
        goal_runs(args.goal, count, args.mailboxes)
        return
    assert args.mailboxes >= 16, "spread the sends over at least 16 mailboxes"
    print(
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{count} due sends over {args.mailboxes} mailboxes, SQLite, batch {BATCH}"
    )
    cost: float | None = None
    rows: list[tuple[int, int, int, float]] = []
    plan = [(latency, 1, n) for latency in (0, 50, 200) for n in (1, 4, 16, 64)]
    plan += [(latency, 4, 16) for latency in (0, 50, 200)]
    print(
        "| L (ms) | workers × in flight | sends/s | bound W×N÷(L+c) | ratio "
        "| worker CPU ms per send |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for latency, workers, in_flight in plan:
        rate, cpu, _ = run(
            count=count,
            mailboxes=args.mailboxes,
            latency_ms=latency,
            workers=workers,
            in_flight=in_flight,
        )
        if cost is None:
            cost = 1 / rate  # L = 0, N = 1, one worker: the per-send cost
        bound = workers * min(in_flight, args.mailboxes) / (latency / 1000 + cost)
        rows.append((latency, workers, in_flight, rate))
        print(
            f"| {latency} | {workers} × {in_flight} | {rate:.1f} | {bound:.1f} | "
            f"{rate / bound:.2f} | {cpu * 1000:.1f} |",
            flush=True,
        )
    assert cost is not None
    print(f"per-send cost c (L=0, N=1, one worker): {cost * 1000:.1f} ms")
    goal = next(r for lat, w, n, r in rows if (lat, w, n) == (200, 1, 16))
    goal_bound = 16 / (0.2 + cost)
    print(
        f"goal: one worker, N=16, L=200 ms: {goal:.1f} sends/s = {goal / goal_bound:.2f} × "
        f"16÷(L+c) (goal ≥ 0.70)"
    )
    # A pass ends with its longest sender's sends: a bigger batch leaves less of each pass to
    # that tail (a batch of 25 × N for the goal's configuration).
    big, cpu, _ = run(
        count=count, mailboxes=args.mailboxes, latency_ms=200, workers=1, in_flight=16, batch=400
    )
    print(
        f"the same with batch 400: {big:.1f} sends/s = {big / goal_bound:.2f} × 16÷(L+c) "
        f"(worker CPU {cpu * 1000:.1f} ms per send)"
    )
    spacing = dt.timedelta(seconds=args.spacing)
    per_mailbox = 4
    rate, _, received = run(
        count=16 * per_mailbox,
        mailboxes=16,
        latency_ms=50,
        workers=1,
        in_flight=16,
        spacing=spacing,
    )
    gaps = closest_gaps(received)
    shortest = min(gaps.values())
    verdict = "never violated" if shortest >= args.spacing else "VIOLATED"
    print(
        f"spacing run: 16 mailboxes × {per_mailbox} sends due at once, spacing {args.spacing:g} s, "
        f"N=16, L=50 ms: closest two messages of one mailbox at the relay {shortest:.3f} s apart "
        f"(spacing {verdict}); {rate:.1f} sends/s"
    )


if __name__ == "__main__":
    main()
