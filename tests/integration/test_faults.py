"""A running fleet survives its faults, on the real servers (DESIGN 1.6).

PostgreSQL backends of four worker processes are terminated again and again
(``pg_terminate_backend``) while they dispatch: every worker is still alive at the end, nothing
is lost, and a message handed over twice (its record lost with the connection) carries the same
idempotency key both times. Skipped without ``STARLIGHT_PG_DSN`` unless ``STARLIGHT_REQUIRE_PG``
(CI) makes it fail. It runs with one send in flight per worker (one mailbox), and with four in
flight per worker over four mailboxes.
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import multiprocessing.synchronize
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import psycopg
import psycopg.conninfo
import pytest

from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.credits import CreditAccount, MovementKind
from starlight_sequences.reports import DispatchReport
from starlight_sequences.service import CampaignService
from starlight_sequences.worker import run_worker
from tests import pg
from tests.contract.conftest import WS
from tests.integration.test_concurrency import (
    JOIN_TIMEOUT,
    NOW,
    PRICE,
    Backend,
    KeyFileSender,
    _ledger_state,
    _reaped,
    _received,
    _stored_sends,
    open_ledger,
    open_storage,
    seed_due_sends,
)

SENDS = 2_000
WORKERS = 4
FAULT_TIMEOUT = 600.0
"""Seconds the faulted workers may take (about 30 s on an idle 2-core machine)."""
SPEED = 60.0
"""Simulated seconds per real second: a 5-minute lease expires after 5 real seconds."""


class FastClock:
    """Starts at NOW (inside the leads' business hours) and runs ``SPEED`` times faster than
    real time, so leases of a worker whose record was lost expire during the test."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def now(self) -> dt.datetime:
        return NOW + dt.timedelta(seconds=(time.monotonic() - self._start) * SPEED)


def faulted_worker(
    backend: Backend,
    worker_id: str,
    out: str,
    start: multiprocessing.synchronize.Barrier,
    in_flight: int = 1,
) -> None:
    """Dispatch until every send is final, through whatever the database does meanwhile."""
    storage = open_storage(backend, in_flight)
    service = CampaignService(
        storage=storage,
        ledger=open_ledger(backend, in_flight),
        drafter=TemplateDrafter(),
        clock=FastClock(),
        email_sender=KeyFileSender(Path(out)),
    )
    stop = threading.Event()

    def on_pass(report: DispatchReport) -> None:
        if report.handled:
            return
        try:
            sends = [s for c in service.campaigns(WS) for s in storage.list_sends(WS, c.id)]
        except Exception:  # the database is down again; look next time
            return
        if all(s.status.is_final for s in sends):
            stop.set()

    start.wait(JOIN_TIMEOUT)
    stats = run_worker(
        service,
        worker_id=worker_id,
        poll_interval=0.05,
        lease=dt.timedelta(minutes=5),
        batch=25,
        stop=stop,
        handle_signals=False,
        on_pass=on_pass,
        error_backoff=0.05,
        max_error_backoff=0.5,
        in_flight=in_flight,
    )
    Path(out + ".stats").write_text(
        json.dumps(
            {
                "failed_passes": stats.failed_passes,
                "errored": stats.totals.errored,
                "handed_back": stats.totals.handed_back,
            }
        )
    )


def _terminate_backends(
    dsn: str, application: str, stop: threading.Event, kills: list[int]
) -> None:
    """Every 0.3 s, terminate one backend of the workers (matched by application_name), at
    random: a connection dies under a claim, a record, a charge or an idle pool slot."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.wait(0.3):
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM ("
                "  SELECT pid FROM pg_stat_activity"
                "  WHERE application_name = %s AND pid <> pg_backend_pid()"
                "  ORDER BY random() LIMIT 1) AS victim",
                (application,),
            ).fetchall()
            kills.append(sum(1 for (done,) in rows if done))


@pytest.mark.slow
@pytest.mark.parametrize("in_flight", [1, 4], ids=["one-in-flight", "four-in-flight"])
def test_workers_survive_postgres_backends_terminated_mid_run_and_lose_nothing(
    tmp_path: Path, in_flight: int
) -> None:
    pg.skip_unless_configured()
    dsn = pg.fresh_dsn()
    application = f"starlight-fault-{uuid.uuid4().hex[:8]}"
    backend: Backend = (
        "postgres",
        psycopg.conninfo.make_conninfo(dsn, application_name=application),
    )
    sends = seed_due_sends(backend, SENDS, mailboxes=in_flight)

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WORKERS + 1)
    outs = [tmp_path / f"w{n}.keys" for n in range(WORKERS)]
    workers = [
        ctx.Process(
            target=faulted_worker,
            args=(backend, f"w{n}", str(out), start, in_flight),
            name=f"w{n}",
        )
        for n, out in enumerate(outs)
    ]
    stop_killing = threading.Event()
    kills: list[int] = []
    killer = threading.Thread(
        target=_terminate_backends, args=(dsn, application, stop_killing, kills), daemon=True
    )
    with _reaped(*workers):
        start.wait(JOIN_TIMEOUT)
        killer.start()
        try:
            for worker in workers:  # every worker finishes its work: none died of the faults
                worker.join(FAULT_TIMEOUT)
                assert worker.exitcode == 0, f"{worker.name} exited with {worker.exitcode}"
        finally:
            stop_killing.set()
            killer.join(10)

    assert sum(kills) >= 10, f"too few backends terminated to prove anything ({sum(kills)})"
    stats = [json.loads(Path(str(out) + ".stats").read_text()) for out in outs]
    # A fault shows as a failed pass, an errored send, or a batch handed back when storage failed
    # before a send (since reads moved into the pass, most faults land there).
    met = sum(s["failed_passes"] + s["errored"] + s["handed_back"] for s in stats)
    assert met > 0, "no worker met a fault"

    key_of = {s.lead_id: s.idempotency_key for s in sends}
    received = _received(*outs)
    assert {lead for _, lead in received} == set(key_of), "a send was lost"
    assert all(key == key_of[lead] for key, lead in received), "a repeat changed its key"
    stored = _stored_sends(backend)
    assert Counter(s.status for s in stored) == {SendStatus.SENT: SENDS}

    # Every send is charged exactly once (a charge a fault cut off is what reconcile posts).
    storage, ledger = open_storage(backend), open_ledger(backend)
    try:
        service = CampaignService(
            storage=storage, ledger=ledger, drafter=TemplateDrafter(), clock=FastClock()
        )
        for campaign_id in sorted({s.campaign_id for s in sends}):
            service.reconcile_credits(WS, campaign_id)
    finally:
        storage.close()  # type: ignore[attr-defined]
        ledger.close()  # type: ignore[attr-defined]
    account, movements = _ledger_state(backend)
    charges = Counter(m.key for m in movements if m.kind is MovementKind.CHARGE)
    assert len(charges) == SENDS
    assert set(charges.values()) == {1}
    assert account == CreditAccount(workspace=WS, available=0, reserved=0)
    assert sum(m.amount for m in movements if m.kind is MovementKind.CHARGE) == PRICE * SENDS
