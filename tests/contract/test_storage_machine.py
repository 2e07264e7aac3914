"""InMemoryStorage, SQLiteStorage and PostgresStorage (and their ledgers), driven side by side,
must agree.

A hypothesis state machine applies the same random commits, claims, finishes, inbound events,
suppressions, cursor saves and credit posts to each, and checks after every step that each call
had the same outcome (the same result, or the same error class) and that all hold the same state.
PostgreSQL joins when ``STARLIGHT_PG_DSN`` is set (or required; see ``tests/pg.py``), with a
fresh schema per example.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from starlight_sequences.adapters.memory import InMemoryCreditLedger, InMemoryStorage
from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.campaigns import Campaign, CampaignStatus, ScheduledSend, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditMovement, MovementKind
from starlight_sequences.errors import StarlightError
from starlight_sequences.events import ActivityKind
from starlight_sequences.ids import SenderId, WorkspaceId
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.storage import Changes, Storage
from tests import pg
from tests.contract.conftest import (
    LINKEDIN_SENDER,
    OTHER_WS,
    T0,
    WS,
    make_activity,
    make_campaign,
    make_send,
)

WORKSPACES = (WS, OTHER_WS)
CAMPAIGNS = ("c1", "c2")
SENDERS = (SenderId("mailbox-1"), LINKEDIN_SENDER)
CURSORS = ("imap:a@h/INBOX", "imap:a@h/Replies")
LEASE = dt.timedelta(minutes=10)
WINDOW = (T0 - dt.timedelta(days=1), T0 + dt.timedelta(days=1))

workspaces = st.sampled_from(WORKSPACES)
minutes = st.integers(-120, 120).map(lambda m: T0 + dt.timedelta(minutes=m))
workers = st.sampled_from(["w1", "w2"])
picks = st.integers(0, 10_000)


def _campaign_id(workspace_id: WorkspaceId, name: str) -> str:
    # Distinct per workspace so that claim order (due_at, then id) never ties across them.
    return f"{workspace_id}:{name}"


Outcome = tuple[str, Any]


def _outcome(act: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", act())
    except StarlightError as exc:
        return ("error", type(exc))


class StorageAgreement(RuleBasedStateMachine):
    """The two adapters, and the same random operations on each."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.TemporaryDirectory()
        path = Path(self.directory.name) / "machine.sqlite3"
        self.storages: tuple[Storage, ...] = (InMemoryStorage(), SQLiteStorage(path))
        self.ledgers: tuple[CreditLedger, ...] = (InMemoryCreditLedger(), SQLiteCreditLedger(path))
        if pg.configured():
            dsn = pg.fresh_dsn()
            storage = PostgresStorage(dsn, min_size=1, max_size=1)
            self.storages += (storage,)
            self.ledgers += (PostgresCreditLedger(storage.pool),)
        for workspace_id in WORKSPACES:
            campaigns = tuple(
                make_campaign(_campaign_id(workspace_id, name), workspace_id=workspace_id)
                for name in CAMPAIGNS
            )
            self.both(lambda s, ws=workspace_id, c=campaigns: s.commit(ws, Changes(campaigns=c)))

    def teardown(self) -> None:
        for adapter in (*self.storages[1:], *self.ledgers[1:]):
            assert isinstance(
                adapter,
                SQLiteStorage | SQLiteCreditLedger | PostgresStorage | PostgresCreditLedger,
            )
            adapter.close()
        self.directory.cleanup()

    def both(self, act: Callable[[Storage], Any]) -> Outcome:
        memory, *others = (_outcome(lambda s=s: act(s)) for s in self.storages)
        assert all(other == memory for other in others), (memory, others)
        return memory

    def both_ledgers(self, act: Callable[[CreditLedger], Any]) -> Outcome:
        memory, *others = (_outcome(lambda x=x: act(x)) for x in self.ledgers)
        assert all(other == memory for other in others), (memory, others)
        return memory

    def sends(self, workspace_id: WorkspaceId) -> list[ScheduledSend]:
        memory = self.storages[0]
        return [
            send
            for name in CAMPAIGNS
            for send in memory.list_sends(workspace_id, _campaign_id(workspace_id, name))  # type: ignore[arg-type]
        ]

    def campaign(self, workspace_id: WorkspaceId, name: str) -> Campaign:
        return self.storages[0].get_campaign(workspace_id, _campaign_id(workspace_id, name))  # type: ignore[arg-type]

    # -- rules ----------------------------------------------------------------------------

    @rule(
        workspace_id=workspaces,
        name=st.sampled_from(CAMPAIGNS),
        lead=st.integers(0, 4),
        step=st.integers(1, 3),
        due_at=minutes,
        status=st.sampled_from(
            [SendStatus.SCHEDULED, SendStatus.SCHEDULED, SendStatus.WAITING, SendStatus.PENDING]
        ),
        sender=st.sampled_from(SENDERS),
    )
    def add_send(
        self,
        workspace_id: WorkspaceId,
        name: str,
        lead: int,
        step: int,
        due_at: dt.datetime,
        status: SendStatus,
        sender: SenderId,
    ) -> None:
        campaign = self.campaign(workspace_id, name)
        action = Action.EMAIL if sender == SENDERS[0] else Action.LINKEDIN_CONNECT
        send = make_send(
            campaign,
            f"lead-{lead}",
            step,
            due_at=due_at,
            status=status,
            sender_id=sender,
            action=action,
        )
        self.both(lambda s: s.commit(workspace_id, Changes(sends=(send,))))

    @rule(
        workspace_id=workspaces,
        pick=picks,
        status=st.sampled_from(SendStatus),
        due_at=minutes,
        skew=st.sampled_from([1, 1, 1, 0, 2]),
    )
    def update_send(
        self,
        workspace_id: WorkspaceId,
        pick: int,
        status: SendStatus,
        due_at: dt.datetime,
        skew: int,
    ) -> None:
        sends = self.sends(workspace_id)
        if not sends:
            return
        send = sends[pick % len(sends)]
        updated = attrs.evolve(
            send,
            status=status,
            due_at=due_at,
            sent_at=due_at if status is SendStatus.SENT else None,
            revision=send.revision + skew,
        )
        self.both(lambda s: s.commit(workspace_id, Changes(sends=(updated,))))

    @rule(
        workspace_id=workspaces,
        name=st.sampled_from(CAMPAIGNS),
        status=st.sampled_from([CampaignStatus.ACTIVE, CampaignStatus.PAUSED]),
    )
    def set_campaign_status(
        self, workspace_id: WorkspaceId, name: str, status: CampaignStatus
    ) -> None:
        campaign = self.campaign(workspace_id, name)
        updated = attrs.evolve(campaign, status=status, revision=campaign.revision + 1)
        self.both(lambda s: s.commit(workspace_id, Changes(campaigns=(updated,))))

    @rule(
        now=minutes,
        worker=workers,
        limit=st.integers(0, 4),
        workspace_id=st.none() | workspaces,
    )
    def claim(
        self, now: dt.datetime, worker: str, limit: int, workspace_id: WorkspaceId | None
    ) -> None:
        result = self.both(
            lambda s: s.claim_due(
                now, worker_id=worker, lease=LEASE, limit=limit, workspace_id=workspace_id
            )
        )
        event(f"claim: {'some' if result[1] else 'none'}")

    @rule(now=minutes, workspace_id=st.none() | workspaces)
    def next_due(self, now: dt.datetime, workspace_id: WorkspaceId | None) -> None:
        result = self.both(lambda s: s.next_due(now, workspace_id=workspace_id))
        event(f"next_due: {'some' if result[1] else 'none'}")

    @rule(
        workspace_id=workspaces,
        pick=picks,
        worker=workers,
        now=minutes,
        outcome=st.sampled_from([SendStatus.SENT, SendStatus.SCHEDULED, SendStatus.SKIPPED]),
        with_event=st.booleans(),
        honest=st.booleans(),
    )
    def finish(
        self,
        workspace_id: WorkspaceId,
        pick: int,
        worker: str,
        now: dt.datetime,
        outcome: SendStatus,
        with_event: bool,
        honest: bool,
    ) -> None:
        sends = self.sends(workspace_id)
        claimed = [s for s in sends if s.status is SendStatus.CLAIMED] or sends
        if not claimed:
            return
        send = claimed[pick % len(claimed)]
        if honest and send.lease_owner is not None and send.lease_expires_at is not None:
            # the holder, within its lease (or at its last instant)
            worker = send.lease_owner
            now = min(now, send.lease_expires_at)
        done = attrs.evolve(
            send,
            status=outcome,
            sent_at=now if outcome is SendStatus.SENT else None,
            revision=send.revision + 1,
        )
        line = make_activity(
            ActivityKind.SENT, campaign_id=send.campaign_id, lead_id=send.lead_id, at=now
        )
        changes = Changes(activities=(line,)) if with_event else None
        result = self.both(
            lambda s: s.finish_send(done, worker_id=worker, now=now, changes=changes)
        )
        event(f"finish: {result[0] if result[0] == 'ok' else result[1].__name__}")

    @rule(workspace_id=workspaces, key=st.sampled_from(["", "reply:1", "reply:2", "bounce:1"]))
    def record_event(self, workspace_id: WorkspaceId, key: str) -> None:
        line = make_activity(ActivityKind.EVENT, key=key, detail=key)
        self.both(
            lambda s: s.commit(workspace_id, Changes(activities=(line,), suppress=(key or "x",)))
        )

    @rule(
        workspace_id=workspaces,
        batch=st.lists(
            st.builds(
                CreditMovement,
                kind=st.sampled_from(MovementKind),
                amount=st.integers(0, 20),
                key=st.sampled_from(["", "k1", "k2", "k3"]),
                campaign_id=st.sampled_from([None, "c1"]),
            ),
            max_size=3,
        ),
    )
    def post(self, workspace_id: WorkspaceId, batch: list[CreditMovement]) -> None:
        self.both_ledgers(lambda ledger: ledger.post(workspace_id, *batch))

    @rule(
        workspace_id=workspaces,
        name=st.sampled_from(CURSORS),
        value=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20),
    )
    def save_cursor(self, workspace_id: WorkspaceId, name: str, value: str) -> None:
        self.both(lambda s: s.save_cursor(workspace_id, name, value))

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def both_hold_the_same_state(self) -> None:
        for workspace_id in WORKSPACES:
            self.both(lambda s, ws=workspace_id: s.list_campaigns(ws))
            for name in CAMPAIGNS:
                campaign_id = _campaign_id(workspace_id, name)
                self.both(lambda s, ws=workspace_id, c=campaign_id: s.list_sends(ws, c))
            for sender in SENDERS:
                self.both(lambda s, ws=workspace_id, x=sender: s.sender_bookings(ws, x, *WINDOW))
            self.both(lambda s, ws=workspace_id: s.list_activities(ws))
            self.both(lambda s, ws=workspace_id: s.suppressed(ws, ["x", "reply:1", "bounce:1"]))
            for name in CURSORS:
                self.both(lambda s, ws=workspace_id, n=name: s.load_cursor(ws, n))
            self.both_ledgers(lambda ledger, ws=workspace_id: ledger.balance(ws))
            self.both_ledgers(lambda ledger, ws=workspace_id: ledger.movements(ws))


StorageAgreement.TestCase.settings = settings(
    settings.default, stateful_step_count=30, deadline=None
)
TestStorageAgreement = StorageAgreement.TestCase
