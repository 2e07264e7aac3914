"""Events out through the service on the real storages, whose ledger shares their database
(so a sent step, its charge and its journal line are one transaction): what subscribed
callbacks hear is what ``activities_since`` hands out, in the same order. PostgreSQL cases
skip without ``STARLIGHT_PG_DSN`` (see ``tests/pg.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import RecordingEmailSender
from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.events import Activity, ActivityKind, EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.ports.storage import ChargingStorage
from starlight_sequences.service import CampaignService
from tests import pg
from tests.service_kit import MAILBOX, START, UNSUBSCRIBE, WS, ScriptedDrafter, lead

CID = CampaignId("c1")


@contextlib.contextmanager
def _service(kind: str, tmp_path: Path) -> Iterator[CampaignService]:
    clock = SettableClock(START)
    with contextlib.ExitStack() as stack:
        if kind == "sqlite":
            path = tmp_path / "events.sqlite3"
            storage: SQLiteStorage | PostgresStorage = stack.enter_context(SQLiteStorage(path))
            ledger: SQLiteCreditLedger | PostgresCreditLedger = stack.enter_context(
                SQLiteCreditLedger(path)
            )
        else:
            pg.skip_unless_configured()
            storage = stack.enter_context(PostgresStorage(pg.fresh_dsn(), max_size=2))
            assert isinstance(storage, PostgresStorage)
            ledger = PostgresCreditLedger(storage.pool)
        assert isinstance(storage, ChargingStorage)
        assert storage.charges_with(ledger)
        service = CampaignService(
            storage=storage,
            ledger=ledger,
            drafter=ScriptedDrafter(),
            clock=clock,
            email_sender=RecordingEmailSender(),
            unsubscribe_url=UNSUBSCRIBE,
        )
        service.top_up(WS, 1000)
        yield service


@pytest.fixture(params=["sqlite", "postgres"])
def service(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CampaignService]:
    with _service(request.param, tmp_path) as built:
        yield built


def _pulled(service: CampaignService, expected: int) -> list[Activity]:
    """Every activity the pull API hands out, waiting (a bounded number of tries) for other
    tests' open transactions on a shared PostgreSQL server to end."""
    activities: list[Activity] = []
    cursor = None
    for _ in range(400):
        page = service.activities_since(WS, cursor, limit=5)
        activities += [entry.activity for entry in page.entries]
        cursor = page.cursor
        if len(activities) >= expected and not page.more:
            return activities
        if not page.more:
            time.sleep(0.05)
    return activities


def test_callbacks_hear_what_the_pull_api_hands_out_in_the_same_order(
    service: CampaignService,
) -> None:
    heard: list[Activity] = []
    service.subscribe(lambda workspace, activity: heard.append(activity))
    service.create_campaign(
        WS,
        name="Q4",
        brief="We cut cloud bills by 30%.",
        shape="email-sequence",
        leads=[lead("ann"), lead("bob"), lead("cy")],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    service.approve(WS, CID)
    clock = service.clock
    assert isinstance(clock, SettableClock)
    end = clock.now() + dt.timedelta(days=21)
    replied = False
    while clock.now() < end:
        service.dispatch_due(worker_id="w1")
        if not replied and clock.now() > START + dt.timedelta(days=2):
            service.report_event(
                WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("bob"), at=clock.now())
            )
            replied = True
        clock.advance(dt.timedelta(hours=1))
    pulled = _pulled(service, len(heard))
    assert pulled == heard
    kinds = [a.kind for a in pulled]
    assert kinds.count(ActivityKind.SENT) == 3 + 3 + 1  # bob replied after his first step
    assert [a.reason for a in pulled if a.kind is ActivityKind.STOPPED] == ["reply"]
    assert pulled[-1].kind is ActivityKind.COMPLETED
    assert pulled[-1].lead_id is None
    for who in ("ann", "cy"):
        steps = [a.step for a in pulled if a.lead_id == who and a.kind is ActivityKind.SENT]
        assert steps == [1, 2, 3]
        assert [a.kind for a in pulled if a.lead_id == who][-1] is ActivityKind.COMPLETED
