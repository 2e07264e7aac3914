"""Dispatch throughput: sends per second through the real service, per storage and workers.

One dispatched send is a claim (in batches), the dispatcher's re-checks, a recording email
sender, the credit charge and the record of the outcome, all through
:meth:`CampaignService.dispatch_due`. Each case seeds ``--count`` due sends of one active
campaign (one email step, New York leads, the clock at 10:00 New York time, no mailbox
spacing), then times from the moment every worker is ready until the last one finds nothing
due. Workers are processes started with "spawn"; the in-memory case runs in this process.

    .venv/bin/python benchmarks/dispatch_bench.py                 # no PostgreSQL
    STARLIGHT_PG_DSN=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python benchmarks/dispatch_bench.py             # every case

PostgreSQL cases run in a schema of their own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import multiprocessing.synchronize
import os
import platform
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import psycopg.conninfo
from psycopg import sql

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
from starlight_sequences.service import CampaignService

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


def seed(storage: Storage, ledger: CreditLedger, count: int) -> None:
    """One active cold-email campaign with ``count`` drafted sends due before NOW."""
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
        due = NOW - dt.timedelta(seconds=count - n)
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
    )
    sent = 0
    while (report := service.dispatch_due(worker_id=worker_id, lease=LEASE, limit=BATCH)).handled:
        sent += report.sent
    return sent


def worker(
    backend: Backend, worker_id: str, ready: multiprocessing.synchronize.Barrier, out: str
) -> None:
    storage, ledger = open_adapters(backend)
    ready.wait()
    start = time.time()
    sent = dispatch(storage, ledger, worker_id)
    Path(out).write_text(f"{start} {time.time()} {sent}")


def run_processes(backend: Backend, workers: int, count: int, scratch: Path) -> float:
    storage, ledger = open_adapters(backend)
    seed(storage, ledger, count)
    for adapter in (storage, ledger):
        adapter.close()  # type: ignore[attr-defined]
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Barrier(workers)
    outs = [scratch / f"{uuid.uuid4().hex}.txt" for _ in range(workers)]
    processes = [
        ctx.Process(target=worker, args=(backend, f"w{n}", ready, str(out)))
        for n, out in enumerate(outs)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
        assert process.exitcode == 0
    results = [out.read_text().split() for out in outs]
    sent = sum(int(r[2]) for r in results)
    assert sent == count, f"sent {sent} of {count}"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="due sends per case")
    parser.add_argument("--dsn", default=os.environ.get("STARLIGHT_PG_DSN", ""))
    args = parser.parse_args()

    print(f"{args.count:,} due sends per case; {os.cpu_count()} CPUs; {platform.platform()}")
    print(f"Python {platform.python_version()}")
    rows: list[tuple[str, int, float]] = [("in-memory", 1, run_memory(args.count))]
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, 4):
            path = Path(scratch) / f"bench-{workers}.sqlite3"
            rate = run_processes(("sqlite", str(path)), workers, args.count, Path(scratch))
            rows.append(("SQLite", workers, rate))
        if args.dsn:
            with psycopg.connect(args.dsn) as conn:
                version = conn.info.server_version
            print(f"PostgreSQL {version // 10000}.{version % 10000}")
            for workers in (1, 4):
                schema, dsn = fresh_schema(args.dsn)
                try:
                    rate = run_processes(("postgres", dsn), workers, args.count, Path(scratch))
                finally:
                    drop_schema(args.dsn, schema)
                rows.append(("PostgreSQL", workers, rate))
        else:
            print("PostgreSQL skipped: set STARLIGHT_PG_DSN or pass --dsn")
    print()
    print("| storage | worker processes | sends / s |")
    print("|---|---:|---:|")
    for name, workers, rate in rows:
        print(f"| {name} | {workers} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
