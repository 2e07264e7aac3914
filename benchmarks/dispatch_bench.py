"""Dispatch throughput and slot lag: the library beside minimal reference loops.

One dispatched send is a claim (in batches), the dispatcher's re-checks, a recording email
sender, the credit charge and the record of the outcome, all through
:meth:`CampaignService.dispatch_due`. Each case seeds ``--counts`` due sends of one active
campaign (one email step, New York leads, the clock at 10:00 New York time, no mailbox
spacing), then times from the moment every worker is ready until the last one finds nothing
due. Workers are processes started with "spawn"; the in-memory case runs in this process.

Beside each library case runs its reference loop on the same database
(``dispatch_reference.py``: the same durable work per send, one commit, nothing else), and
the table prints library ÷ reference, and each rate at the largest count ÷ at the smallest.

Slot lag is measured apart: ``run_worker`` (in a thread, real time, on a clock shifted to a
Monday morning in New York) dispatches sends planned a fraction of a second apart; the lag of a
send is its ``sent_at`` minus its planned ``due_at``.

    PYTHONPATH=src .venv/bin/python benchmarks/dispatch_bench.py         # no PostgreSQL
    STARLIGHT_PG_DSN=postgresql://postgres@127.0.0.1:5432/test \\
        PYTHONPATH=src .venv/bin/python benchmarks/dispatch_bench.py     # every case

PostgreSQL cases run in a schema of their own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import multiprocessing.synchronize
import os
import platform
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import psycopg.conninfo
from psycopg import sql

import dispatch_reference as reference
from starlight_sequences import shapes
from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import (
    InMemoryCreditLedger,
    InMemoryStorage,
    RecordingEmailSender,
)
from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
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
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.reports import DispatchReport
from starlight_sequences.service import CampaignService
from starlight_sequences.worker import run_worker

WS = WorkspaceId("bench")
NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)  # Monday, 10:00 in New York
LEASE = dt.timedelta(minutes=5)
BATCH = 100
PRICE = 2

Backend = tuple[str, str]  # ("sqlite", path) or ("postgres", dsn)


def open_adapters(backend: Backend) -> tuple[Storage, CreditLedger]:
    kind, location = backend
    if kind == "postgres":
        storage = PostgresStorage(location, max_size=1)
        return storage, PostgresCreditLedger(storage.pool)
    return SQLiteStorage(location), SQLiteCreditLedger(location)


def seed(
    storage: Storage,
    ledger: CreditLedger,
    count: int,
    *,
    first_due: dt.datetime | None = None,
    apart: dt.timedelta = dt.timedelta(seconds=1),
) -> None:
    """One active cold-email campaign with ``count`` drafted sends, ``apart`` from each other
    from ``first_due`` on (by default, the last one due one step before NOW)."""
    first = first_due if first_due is not None else NOW - count * apart
    mailbox = EmailIdentity(
        id=SenderId("mbx"), address="sales@acme.example.com", min_spacing=dt.timedelta(0)
    )
    campaign = Campaign(
        workspace_id=WS,
        id=CampaignId("bench"),
        name="bench",
        brief="We make rockets cheaper.",
        shape=shapes.get("cold-email"),
        settings=CampaignSettings(),
        email_identity=mailbox,
        linkedin_identity=None,
        status=CampaignStatus.ACTIVE,
        created_at=NOW - dt.timedelta(days=1),
        approved_at=NOW - dt.timedelta(hours=1),
    )
    enrolments, drafts, sends = [], [], []
    for n in range(count):
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
        due = first + n * apart
        sends.append(
            ScheduledSend(
                id=send_id_for(campaign.id, lead.id, 1),
                workspace_id=WS,
                campaign_id=campaign.id,
                lead_id=lead.id,
                step=1,
                action=Action.EMAIL,
                sender_id=mailbox.id,
                due_at=due,
                forecast_at=due,
                status=SendStatus.SCHEDULED,
            )
        )
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
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


def dispatch(storage: Storage, ledger: CreditLedger, worker_id: str) -> int:
    """Dispatch at NOW until a pass finds nothing; the sends sent."""
    service = CampaignService(
        storage=storage,
        ledger=ledger,
        drafter=TemplateDrafter(),
        clock=SettableClock(NOW),
        email_sender=RecordingEmailSender(),
        send_without_unsubscribe=True,
    )
    sent = 0
    while (report := service.dispatch_due(worker_id=worker_id, lease=LEASE, limit=BATCH)).handled:
        sent += report.sent
    return sent


def worker(
    case: str,
    location: str,
    worker_id: str,
    ready: multiprocessing.synchronize.Barrier,
    out: str,
) -> None:
    if case.startswith("library"):
        storage, ledger = open_adapters((case.split("-")[1], location))
        ready.wait()
        start = time.time()
        sent = dispatch(storage, ledger, worker_id)
    else:
        run = reference.run_postgres if case == "ref-postgres" else reference.run_sqlite
        ready.wait()
        start = time.time()
        sent = run(location, worker_id, NOW)
    Path(out).write_text(f"{start} {time.time()} {sent}")


def run_case(case: str, location: str, workers: int, count: int, scratch: Path) -> float:
    """Seed ``count`` due sends for ``case`` at ``location``; sends per second of ``workers``
    processes draining them."""
    if case == "ref-postgres":
        reference.seed_postgres(location, count, NOW)
    elif case == "ref-sqlite":
        reference.seed_sqlite(location, count, NOW)
    else:
        storage, ledger = open_adapters((case.split("-")[1], location))
        seed(storage, ledger, count)
        for adapter in (storage, ledger):
            adapter.close()  # type: ignore[attr-defined]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(workers)
    outs = [scratch / f"{uuid.uuid4().hex}.txt" for _ in range(workers)]
    processes = [
        ctx.Process(target=worker, args=(case, location, f"w{n}", ready, str(out)))
        for n, out in enumerate(outs)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        assert process.exitcode == 0, f"{case}: a worker failed"
    results = [out.read_text().split() for out in outs]
    sent = sum(int(r[2]) for r in results)
    assert sent == count, f"{case}: sent {sent} of {count}"
    elapsed = max(float(r[1]) for r in results) - min(float(r[0]) for r in results)
    return count / elapsed


def run_memory(count: int) -> float:
    storage, ledger = InMemoryStorage(), InMemoryCreditLedger()
    seed(storage, ledger, count)
    start = time.perf_counter()
    sent = dispatch(storage, ledger, "w0")
    elapsed = time.perf_counter() - start
    assert sent == count
    return count / elapsed


def fresh_schema(dsn: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema, psycopg.conninfo.make_conninfo(dsn, options=f"-csearch_path={schema}")


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


class ShiftedClock:
    """Real time, moved so that the benchmark starts at NOW (a Monday, 10:00 in New York)."""

    def __init__(self) -> None:
        self._offset = NOW - dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self._offset


def slot_lag(
    storage: Storage, ledger: CreditLedger, count: int, poll_interval: float
) -> tuple[float, float]:
    """p50 and p99 of (sent_at - due_at), in seconds, of ``count`` sends planned 0.25 s apart
    from 1 s after the worker starts, dispatched by ``run_worker`` polling every
    ``poll_interval`` seconds."""
    seed(storage, ledger, count, first_due=NOW + dt.timedelta(seconds=1), apart=0.25 * SECOND)
    clock = ShiftedClock()
    service = CampaignService(
        storage=storage,
        ledger=ledger,
        drafter=TemplateDrafter(),
        clock=clock,
        email_sender=RecordingEmailSender(),
        send_without_unsubscribe=True,
    )
    stop = threading.Event()

    def after_pass(report: DispatchReport) -> None:
        if len(storage.list_sends(WS, CampaignId("bench"))) == sum(
            s.status is SendStatus.SENT for s in storage.list_sends(WS, CampaignId("bench"))
        ):
            stop.set()

    thread = threading.Thread(
        target=run_worker,
        args=(service,),
        kwargs={
            "worker_id": "lag",
            "poll_interval": poll_interval,
            "stop": stop,
            "handle_signals": False,
            "on_pass": after_pass,
        },
    )
    thread.start()
    thread.join(timeout=count * 0.25 + 10 * poll_interval + 30)
    stop.set()
    sends = storage.list_sends(WS, CampaignId("bench"))
    lags = sorted((s.sent_at - s.due_at).total_seconds() for s in sends if s.sent_at is not None)
    assert len(lags) == count, f"slot lag: {len(lags)} of {count} sent"
    return statistics.median(lags), lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))]


SECOND = dt.timedelta(seconds=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--counts", type=int, nargs="+", default=[2_000, 20_000], help="due sends per case"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--dsn", default=os.environ.get("STARLIGHT_PG_DSN", ""))
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--lag-sends", type=int, default=80)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args()

    print(f"{os.cpu_count()} CPUs; {platform.platform()}; Python {platform.python_version()}")
    print(f"SQLite {sqlite3.sqlite_version}")
    if args.dsn:
        with psycopg.connect(args.dsn) as conn:
            version = conn.info.server_version
        print(f"PostgreSQL {version // 10000}.{version % 10000}")
    if not args.skip_throughput:
        throughput(args.counts, args.workers, args.dsn)
    print()
    print(
        f"Slot lag, {args.lag_sends} sends 0.25 s apart, run_worker with poll_interval "
        f"{args.poll_interval:g} s (seconds, actual - planned):"
    )
    print("| storage | p50 | p99 |")
    print("|---|---:|---:|")
    p50, p99 = slot_lag(
        InMemoryStorage(), InMemoryCreditLedger(), args.lag_sends, args.poll_interval
    )
    print(f"| in-memory | {p50:.3f} | {p99:.3f} |")
    with tempfile.TemporaryDirectory() as scratch:
        path = str(Path(scratch) / "lag.sqlite3")
        storage, ledger = SQLiteStorage(path), SQLiteCreditLedger(path)
        p50, p99 = slot_lag(storage, ledger, args.lag_sends, args.poll_interval)
        print(f"| SQLite | {p50:.3f} | {p99:.3f} |")


def throughput(counts: list[int], worker_counts: list[int], dsn: str) -> None:
    """Print sends/s of the library and of its reference loop, per storage, workers, count."""
    rates: dict[tuple[str, int, int], float] = {}
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        for count in counts:
            rates[("memory", 1, count)] = run_memory(count)
            for workers in worker_counts:
                for case in ("library-sqlite", "ref-sqlite"):
                    path = str(scratch / f"{case}-{workers}-{count}.sqlite3")
                    rates[(case, workers, count)] = run_case(case, path, workers, count, scratch)
                if not dsn:
                    continue
                for case in ("library-postgres", "ref-postgres"):
                    schema, location = fresh_schema(dsn)
                    try:
                        rate = run_case(case, location, workers, count, scratch)
                    finally:
                        drop_schema(dsn, schema)
                    rates[(case, workers, count)] = rate
    if not dsn:
        print("PostgreSQL skipped: set STARLIGHT_PG_DSN or pass --dsn")
    low, high = min(counts), max(counts)
    print()
    print(
        "| storage | workers | due sends | library sends/s | reference sends/s | "
        f"library ÷ reference | library at {high:,} ÷ at {low:,} |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (case, workers, count), rate in rates.items():
        if case.startswith("ref-"):
            continue
        kind = case.split("-")[-1]
        ref = rates.get((f"ref-{kind}", workers, count))
        scaling = rates.get((case, workers, high), 0) / rates[(case, workers, low)]
        print(
            f"| {kind} | {workers} | {count:,} | {rate:,.0f} | "
            f"{'' if ref is None else f'{ref:,.0f}'} | "
            f"{'' if ref is None else f'{rate / ref:.2f}'} | "
            f"{f'{scaling:.2f}' if count == high else ''} |"
        )


if __name__ == "__main__":
    main()
