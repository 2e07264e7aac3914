"""Many dispatcher processes on one database: the guarantees of DESIGN.md 1.6 and 1.8, proved.

Each test runs against SQLite (several processes on one host, one file) and PostgreSQL (a
schema of its own; skipped without ``STARLIGHT_PG_DSN``, see ``tests/pg.py``). Workers are real
processes started with "spawn", each building its own adapters and a real
:class:`~starlight_sequences.service.CampaignService`, and dispatching with
:func:`~starlight_sequences.worker.run_worker` passes. Their email sender appends each
idempotency key it is handed to a file of its own (``O_APPEND``, one ``write`` per key, so a
line survives a SIGKILL right after it): the files are what the "mail server" received.

Time is simulated (a fixed clock per process, 10:00 in New York on a Monday), so a lease
expires exactly when a test says so, without sleeping.

The SIGKILL test runs twice: workers sending one message at a time from one mailbox, and
workers with eight sends in flight over eight mailboxes (the doomed worker then dies with
several messages handed over and not recorded).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import multiprocessing.synchronize
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.campaigns import (
    Campaign,
    CampaignStatus,
    EmailIdentity,
    EnrolmentStatus,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.credits import CreditAccount, CreditMovement, MovementKind
from starlight_sequences.errors import InsufficientCredits
from starlight_sequences.ids import CampaignId, SenderId
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.senders import OutgoingEmail, SendReceipt
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.service import CampaignService
from starlight_sequences.service._dispatch import dispatch_continuously
from starlight_sequences.worker import run_worker
from tests import pg
from tests.contract.conftest import (
    EMAIL_SENDER,
    WS,
    make_campaign,
    make_draft,
    make_enrolment,
    make_lead,
    make_send,
)
from tests.service_kit import UNSUBSCRIBE

NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
"""Monday 2026-11-30, 10:00 in New York (the leads' zone): inside their business hours."""
LEASE = dt.timedelta(minutes=5)
BATCH = 50
PRICE = 2
"""Credits an email send costs (the default price table)."""
JOIN_TIMEOUT = 300.0
"""Generous: a loaded 2-core machine is slow to start and run four processes; what is checked
is what the workers did, never how fast."""

Backend = tuple[str, str]
"""(kind, location): "sqlite" and a file path, or "postgres" and a DSN. Picklable, so spawned
workers open their own adapters from it."""


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """A fresh, empty database of each kind."""
    if request.param == "postgres":
        return ("postgres", pg.fresh_dsn())
    return ("sqlite", str(tmp_path / "dispatch.sqlite3"))


def open_storage(backend: Backend, in_flight: int = 1) -> Storage:
    kind, location = backend
    if kind == "postgres":
        return PostgresStorage(location, max_size=in_flight + 1)
    return SQLiteStorage(location)


def open_ledger(backend: Backend, in_flight: int = 1) -> CreditLedger:
    kind, location = backend
    if kind == "postgres":
        return PostgresCreditLedger(location, max_size=in_flight + 1)
    return SQLiteCreditLedger(location)


def close(*adapters: object) -> None:
    for adapter in adapters:
        adapter.close()  # type: ignore[attr-defined]


# --- the database before the workers start ---------------------------------------------------


def seed_due_sends(backend: Backend, count: int, mailboxes: int = 1) -> list[ScheduledSend]:
    """Active one-email campaigns (one per mailbox) of ``count`` New York leads in all, every
    send due before NOW, drafted, and its send credits reserved (as approval leaves it). Built
    through the storage port directly: the drafter and the planner are not what these tests
    are about."""
    campaigns = [
        make_campaign(
            "camp-1" if number == 0 else f"camp-{number + 1}",
            shape_key="cold-email",
            approved_at=NOW - dt.timedelta(hours=1),
            # No spacing: with the clock standing still, a mailbox may send all of its sends.
            email_identity=EmailIdentity(
                id=EMAIL_SENDER if number == 0 else SenderId(f"mbx-{number}"),
                address=f"sales{number}@acme.example.com",
                min_spacing=dt.timedelta(0),
            ),
        )
        for number in range(mailboxes)
    ]
    leads = [make_lead(f"lead-{n:05}") for n in range(count)]
    owner = {lead.id: campaigns[n % mailboxes] for n, lead in enumerate(leads)}
    sends = [
        make_send(
            owner[lead.id],
            lead.id,
            due_at=NOW - dt.timedelta(seconds=count - n),
            sender_id=owner[lead.id].email_identity.id,  # type: ignore[union-attr]
        )
        for n, lead in enumerate(leads)
    ]
    storage, ledger = open_storage(backend), open_ledger(backend)
    try:
        storage.commit(
            WS,
            Changes(
                campaigns=tuple(campaigns),
                enrolments=tuple(make_enrolment(owner[lead.id], lead) for lead in leads),
                drafts=tuple(make_draft(owner[lead.id], lead.id) for lead in leads),
                sends=tuple(sends),
            ),
        )
        ledger.post(
            WS,
            CreditMovement(kind=MovementKind.TOP_UP, amount=PRICE * count),
            CreditMovement(kind=MovementKind.RESERVE, amount=PRICE * count),
        )
    finally:
        close(storage, ledger)
    return sends


# --- the workers -----------------------------------------------------------------------------


class KeyFileSender:
    """An email sender that appends ``<idempotency key> <lead id>`` to its file per message.

    With ``block_after``, the sender stops (sets ``blocked`` and sleeps) when handed message
    number ``block_after + 1``, after writing its line: a worker that dies right there has
    handed the message over but never recorded it.
    """

    def __init__(
        self,
        path: Path,
        *,
        block_after: int | None = None,
        blocked: multiprocessing.synchronize.Event | None = None,
    ) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._block_after = block_after
        self._blocked = blocked
        self._lock = threading.Lock()  # several sends may be in flight
        self.handed = 0

    def send_email(self, message: OutgoingEmail) -> SendReceipt:
        with self._lock:
            os.write(self._fd, f"{message.idempotency_key} {message.lead_id}\n".encode())
            self.handed += 1
            handed = self.handed
        if self._block_after is not None and handed > self._block_after:
            assert self._blocked is not None
            self._blocked.set()
            time.sleep(600)
        return SendReceipt(message_id=f"<{message.idempotency_key}@test>")


def _service(
    backend: Backend, sender: KeyFileSender, now: dt.datetime, in_flight: int = 1
) -> CampaignService:
    return CampaignService(
        storage=open_storage(backend, in_flight),
        ledger=open_ledger(backend, in_flight),
        drafter=TemplateDrafter(),
        clock=SettableClock(now),
        email_sender=sender,
        unsubscribe_url=UNSUBSCRIBE,
    )


def _dispatch_until_idle(service: CampaignService, worker_id: str, in_flight: int = 1) -> int:
    """run_worker passes until one finds nothing; the number of sends sent. With ``in_flight``
    above 1, the worker loop's continuous runs (no pass barrier) instead of passes."""
    sent = 0
    while True:
        if in_flight > 1:
            totals = dispatch_continuously(
                service._dispatch,
                worker_id=worker_id,
                lease=LEASE,
                limit=BATCH,
                workspace_id=None,
                should_stop=None,
                in_flight=in_flight,
            )
        else:
            totals = run_worker(
                service,
                worker_id=worker_id,
                lease=LEASE,
                batch=BATCH,
                once=True,
                handle_signals=False,
            ).totals
        sent += totals.sent
        assert totals.lease_lost == 0, f"{worker_id} lost a lease"
        if totals.handled == 0:
            return sent


def dispatch_worker(
    backend: Backend, worker_id: str, out: str, start: multiprocessing.synchronize.Barrier
) -> None:
    """Dispatch at NOW until nothing is due."""
    service = _service(backend, KeyFileSender(Path(out)), NOW)
    start.wait(JOIN_TIMEOUT)
    _dispatch_until_idle(service, worker_id)


def doomed_worker(
    backend: Backend,
    worker_id: str,
    out: str,
    start: multiprocessing.synchronize.Barrier,
    blocked: multiprocessing.synchronize.Event,
    in_flight: int = 1,
) -> None:
    """Dispatch at NOW; the sender blocks mid-batch (every send in flight from then on), and
    the test kills this process."""
    sender = KeyFileSender(Path(out), block_after=BATCH // 2, blocked=blocked)
    service = _service(backend, sender, NOW, in_flight)
    start.wait(JOIN_TIMEOUT)
    _dispatch_until_idle(service, worker_id, in_flight)


def surviving_worker(
    backend: Backend,
    worker_id: str,
    out: str,
    start: multiprocessing.synchronize.Barrier,
    after_kill: multiprocessing.synchronize.Barrier,
    in_flight: int = 1,
) -> None:
    """Dispatch at NOW until idle; once the doomed worker is dead, again after its lease."""
    sender = KeyFileSender(Path(out))
    service = _service(backend, sender, NOW, in_flight)
    start.wait(JOIN_TIMEOUT)
    _dispatch_until_idle(service, worker_id, in_flight)
    after_kill.wait(JOIN_TIMEOUT)
    assert isinstance(service.clock, SettableClock)
    service.clock.set(NOW + LEASE)
    _dispatch_until_idle(service, worker_id, in_flight)


# --- helpers of the tests --------------------------------------------------------------------


def _received(*outs: Path) -> list[tuple[str, str]]:
    """Every (idempotency key, lead id) the sender files hold, in file order."""
    lines = []
    for out in outs:
        if out.exists():
            lines.extend(tuple(line.split(" ")) for line in out.read_text().splitlines())
    return lines  # type: ignore[return-value]


@contextlib.contextmanager
def _reaped(*processes: multiprocessing.process.BaseProcess) -> Iterator[None]:
    """Start the processes; on the way out, kill any the test left running (it failed)."""
    for process in processes:
        process.start()
    try:
        yield
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


def _join(processes: list[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        process.join(JOIN_TIMEOUT)
        assert process.exitcode == 0, f"{process.name} exited with {process.exitcode}"


def _stored_sends(backend: Backend, campaign_id: CampaignId | None = None) -> list[ScheduledSend]:
    """The sends of one campaign, or (None) of every campaign."""
    storage = open_storage(backend)
    try:
        if campaign_id is not None:
            return storage.list_sends(WS, campaign_id)
        return [s for c in storage.list_campaigns(WS) for s in storage.list_sends(WS, c.id)]
    finally:
        close(storage)


def _ledger_state(backend: Backend) -> tuple[CreditAccount, list[CreditMovement]]:
    ledger = open_ledger(backend)
    try:
        return ledger.balance(WS), ledger.movements(WS)
    finally:
        close(ledger)


# --- 1. exactly once when nothing crashes ----------------------------------------------------

MANY = 10_000


@pytest.mark.slow
def test_four_worker_processes_hand_each_of_ten_thousand_sends_to_the_sender_exactly_once(
    backend: Backend, tmp_path: Path
) -> None:
    sends = seed_due_sends(backend, MANY)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    outs = [tmp_path / f"w{n}.keys" for n in range(4)]
    workers = [
        ctx.Process(target=dispatch_worker, args=(backend, f"w{n}", str(out), start), name=f"w{n}")
        for n, out in enumerate(outs)
    ]
    with _reaped(*workers):
        _join(workers)

    received = _received(*outs)
    expected = Counter((s.idempotency_key, s.lead_id) for s in sends)
    assert Counter(received) == expected, "a send was handed over twice, or never"
    assert sum(1 for out in outs if out.stat().st_size) >= 2, "the workers did not overlap"
    stored = _stored_sends(backend, sends[0].campaign_id)
    assert Counter(s.status for s in stored) == {SendStatus.SENT: MANY}
    assert {s.attempts for s in stored} == {1}
    account, movements = _ledger_state(backend)
    assert account == CreditAccount(workspace=WS, available=0, reserved=0)
    charges = [m for m in movements if m.kind is MovementKind.CHARGE]
    assert len(charges) == MANY
    assert sum(m.amount for m in charges) == PRICE * MANY


# --- 2. at least once, with the same key, when a worker dies ---------------------------------

SOME = 1_000


@pytest.mark.slow
@pytest.mark.parametrize("in_flight", [1, 8], ids=["one-in-flight", "eight-in-flight"])
def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_carry_the_same_key(
    backend: Backend, tmp_path: Path, in_flight: int
) -> None:
    sends = seed_due_sends(backend, SOME, mailboxes=in_flight)
    ctx = multiprocessing.get_context("spawn")
    start, after_kill, blocked = ctx.Barrier(3), ctx.Barrier(3), ctx.Event()
    doomed_out = tmp_path / "doomed.keys"
    doomed = ctx.Process(
        target=doomed_worker,
        args=(backend, "doomed", str(doomed_out), start, blocked, in_flight),
    )
    outs = [tmp_path / f"s{n}.keys" for n in range(2)]
    survivors = [
        ctx.Process(
            target=surviving_worker,
            args=(backend, f"s{n}", str(out), start, after_kill, in_flight),
        )
        for n, out in enumerate(outs)
    ]
    with _reaped(doomed, *survivors):
        assert blocked.wait(JOIN_TIMEOUT), "the doomed worker never got half-way into a batch"
        assert doomed.pid is not None
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.join(JOIN_TIMEOUT)
        assert doomed.exitcode == -signal.SIGKILL
        after_kill.wait(JOIN_TIMEOUT)
        _join(survivors)

    by_doomed = _received(doomed_out)
    received = _received(doomed_out, *outs)
    key_of = {s.lead_id: s.idempotency_key for s in sends}
    assert {lead for _, lead in received} == set(key_of), "a send was lost"
    assert all(key == key_of[lead] for key, lead in received), "a repeat changed its key"
    repeats = {pair for pair, n in Counter(received).items() if n > 1}
    assert repeats, "nothing was in the doomed worker's hands when it died"
    assert repeats <= set(by_doomed), "a send was repeated that no dead worker had touched"
    assert all(n == 2 for n in Counter(received).values() if n > 1)
    # A repeat is a send the doomed worker had in flight: at most in_flight of them.
    assert len(repeats) <= in_flight
    stored = _stored_sends(backend)
    assert Counter(s.status for s in stored) == {SendStatus.SENT: SOME}
    assert "doomed" not in {s.lease_owner for s in stored}
    # A worker killed between recording a send and posting its charge (another of its threads
    # may be there, not the one blocked in its sender) leaves the charge to reconcile_credits.
    missing = _reconciled(backend, {s.campaign_id for s in stored}, tmp_path)
    assert len(missing) < in_flight
    assert all(m.kind is MovementKind.CHARGE for m in missing)
    account, movements = _ledger_state(backend)
    assert account == CreditAccount(workspace=WS, available=0, reserved=0)
    assert sum(m.amount for m in movements if m.kind is MovementKind.CHARGE) == PRICE * SOME


def _reconciled(
    backend: Backend, campaign_ids: set[CampaignId], tmp_path: Path
) -> list[CreditMovement]:
    """What ``reconcile_credits`` posts for the campaigns (the movements that were missing)."""
    service = _service(backend, KeyFileSender(tmp_path / "reconcile.keys"), NOW)
    try:
        return [m for c in sorted(campaign_ids) for m in service.reconcile_credits(WS, c)]
    finally:
        close(service.storage, service.ledger)


# --- 3. racing approvals never overdraw ------------------------------------------------------

RACERS = 4
LEADS_PER_CAMPAIGN = 20
CAMPAIGN_COST = PRICE * LEADS_PER_CAMPAIGN


def _draft_campaign(number: int) -> tuple[Campaign, Changes]:
    campaign = make_campaign(f"race-{number}", shape_key="cold-email", status=CampaignStatus.DRAFT)
    leads = [make_lead(f"lead-{number}-{n:03}") for n in range(LEADS_PER_CAMPAIGN)]
    return campaign, Changes(
        campaigns=(campaign,),
        enrolments=tuple(
            make_enrolment(campaign, lead, status=EnrolmentStatus.IN_REVIEW, approved=False)
            for lead in leads
        ),
        drafts=tuple(make_draft(campaign, lead.id) for lead in leads),
    )


def approving_worker(
    backend: Backend, campaign_id: str, out: str, start: multiprocessing.synchronize.Barrier
) -> None:
    """Approve one campaign at the same moment as the others; write what happened."""
    service = _service(backend, KeyFileSender(Path(out + ".keys")), NOW)
    start.wait(JOIN_TIMEOUT)
    try:
        service.approve(WS, CampaignId(campaign_id))
    except InsufficientCredits:
        Path(out).write_text("insufficient")
    else:
        Path(out).write_text("approved")


def reserving_worker(
    backend: Backend, out: str, start: multiprocessing.synchronize.Barrier, attempts: int
) -> None:
    """Reserve 3 credits ``attempts`` times as fast as it can; write how many were refused."""
    ledger = open_ledger(backend)
    start.wait(JOIN_TIMEOUT)
    refused = 0
    for _ in range(attempts):
        try:
            ledger.post(WS, CreditMovement(kind=MovementKind.RESERVE, amount=3))
        except InsufficientCredits:
            refused += 1
    close(ledger)
    Path(out).write_text(str(refused))


@pytest.mark.slow
def test_concurrent_approvals_never_overdraw_and_the_losers_get_insufficient_credits(
    backend: Backend, tmp_path: Path
) -> None:
    storage, ledger = open_storage(backend), open_ledger(backend)
    campaigns = []
    for number in range(RACERS):
        campaign, changes = _draft_campaign(number)
        storage.commit(WS, changes)
        campaigns.append(campaign)
    # Enough for two campaigns and a half: two approvals win, two lose.
    funds = 2 * CAMPAIGN_COST + CAMPAIGN_COST // 2
    ledger.post(WS, CreditMovement(kind=MovementKind.TOP_UP, amount=funds))
    close(storage, ledger)

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(RACERS)
    outs = [tmp_path / f"approve-{n}.txt" for n in range(RACERS)]
    racers = [
        ctx.Process(target=approving_worker, args=(backend, c.id, str(out), start))
        for c, out in zip(campaigns, outs, strict=True)
    ]
    with _reaped(*racers):
        _join(racers)

    results = {c.id: out.read_text() for c, out in zip(campaigns, outs, strict=True)}
    assert Counter(results.values()) == {"approved": 2, "insufficient": 2}
    account, _ = _ledger_state(backend)
    assert account == CreditAccount(
        workspace=WS, available=funds - 2 * CAMPAIGN_COST, reserved=2 * CAMPAIGN_COST
    )
    storage = open_storage(backend)
    try:
        for campaign_id, result in results.items():
            stored = storage.get_campaign(WS, campaign_id)
            sends = storage.list_sends(WS, campaign_id)
            if result == "approved":
                assert stored.status is CampaignStatus.ACTIVE
                assert len(sends) == LEADS_PER_CAMPAIGN
            else:
                assert stored.status is CampaignStatus.DRAFT, "a loser was scheduled"
                assert sends == []
    finally:
        close(storage)


@pytest.mark.slow
def test_reservations_hammered_from_four_processes_stop_exactly_at_zero(
    backend: Backend, tmp_path: Path
) -> None:
    ledger = open_ledger(backend)
    ledger.post(WS, CreditMovement(kind=MovementKind.TOP_UP, amount=300))
    close(ledger)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    outs = [tmp_path / f"reserve-{n}.txt" for n in range(4)]
    workers = [
        ctx.Process(target=reserving_worker, args=(backend, str(out), start, 40)) for out in outs
    ]
    with _reaped(*workers):
        _join(workers)

    refused = sum(int(out.read_text()) for out in outs)
    assert refused == 4 * 40 - 100
    account, movements = _ledger_state(backend)
    assert account == CreditAccount(workspace=WS, available=0, reserved=300)
    assert sum(1 for m in movements if m.kind is MovementKind.RESERVE) == 100
