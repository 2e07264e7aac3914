"""The storage agreement machine: a host's adapters against the in-memory reference."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from operator import methodcaller
from typing import Any

import attrs
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from starlight_sequences.adapters.memory import InMemoryCreditLedger, InMemoryStorage
from starlight_sequences.campaigns import Campaign, CampaignStatus, ScheduledSend, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditMovement, MovementKind
from starlight_sequences.errors import StarlightError
from starlight_sequences.events import ActivityKind
from starlight_sequences.ids import CampaignId, SenderId, WorkspaceId
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.testing.records import (
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


def _campaign_id(workspace_id: WorkspaceId, name: str) -> CampaignId:
    # Distinct per workspace so that claim order (due_at, then id) never ties across them.
    return CampaignId(f"{workspace_id}:{name}")


Outcome = tuple[str, Any]


def _outcome(act: Callable[[], Any]) -> Outcome:
    try:
        return ("ok", act())
    except StarlightError as exc:
        return ("error", type(exc))


class StorageAgreement(RuleBasedStateMachine):
    """A hypothesis state machine: the adapters under test must agree with the in-memory ones.

    It applies the same random commits, claims, finishes, inbound events, suppressions, cursor
    saves and credit posts to :class:`~starlight_sequences.adapters.memory.InMemoryStorage`
    (and its ledger) and to each adapter :meth:`open_adapters` returns, and checks after every
    step that each call had the same outcome (the same result, or the same error class) and
    that all hold the same state. Subclass it, override :meth:`open_adapters`, and expose the
    machine's ``TestCase`` to pytest::

        class MyAgreement(StorageAgreement):
            def open_adapters(self, cleanup):
                storage = cleanup.enter_context(MyStorage(...))
                return [storage], [MyLedger(...)]

        TestMyAgreement = MyAgreement.TestCase
    """

    def __init__(self) -> None:
        super().__init__()
        self._cleanup = contextlib.ExitStack()
        try:
            storages, ledgers = self.open_adapters(self._cleanup)
        except BaseException:
            self._cleanup.close()
            raise
        self.storages: tuple[Storage, ...] = (InMemoryStorage(), *storages)
        self.ledgers: tuple[CreditLedger, ...] = (InMemoryCreditLedger(), *ledgers)
        for workspace_id in WORKSPACES:
            campaigns = tuple(
                make_campaign(_campaign_id(workspace_id, name), workspace_id=workspace_id)
                for name in CAMPAIGNS
            )
            self.both(methodcaller("commit", workspace_id, Changes(campaigns=campaigns)))

    def open_adapters(
        self, cleanup: contextlib.ExitStack
    ) -> tuple[Sequence[Storage], Sequence[CreditLedger]]:
        """The adapters under test, fresh and empty: storages, and credit ledgers (either may be
        empty). Called once per example; register anything to close on ``cleanup`` (e.g.
        ``cleanup.enter_context(adapter)`` or ``cleanup.callback(adapter.close)``)."""
        raise NotImplementedError(
            f"{type(self).__name__} must override open_adapters() to return the adapters under "
            "test (see starlight_sequences.testing.StorageAgreement)"
        )

    def teardown(self) -> None:
        self._cleanup.close()

    def both(self, act: Callable[[Storage], Any]) -> Outcome:
        memory, *others = (_outcome(functools.partial(act, s)) for s in self.storages)
        assert all(other == memory for other in others), (memory, others)
        return memory

    def both_ledgers(self, act: Callable[[CreditLedger], Any]) -> Outcome:
        memory, *others = (_outcome(functools.partial(act, x)) for x in self.ledgers)
        assert all(other == memory for other in others), (memory, others)
        return memory

    def sends(self, workspace_id: WorkspaceId) -> list[ScheduledSend]:
        memory = self.storages[0]
        return [
            send
            for name in CAMPAIGNS
            for send in memory.list_sends(workspace_id, _campaign_id(workspace_id, name))
        ]

    def campaign(self, workspace_id: WorkspaceId, name: str) -> Campaign:
        return self.storages[0].get_campaign(workspace_id, _campaign_id(workspace_id, name))

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
            self.both(methodcaller("list_campaigns", workspace_id))
            for name in CAMPAIGNS:
                campaign_id = _campaign_id(workspace_id, name)
                self.both(methodcaller("list_sends", workspace_id, campaign_id))
            for sender in SENDERS:
                self.both(methodcaller("sender_bookings", workspace_id, sender, *WINDOW))
            self.both(methodcaller("list_activities", workspace_id))
            self.both(methodcaller("suppressed", workspace_id, ["x", "reply:1", "bounce:1"]))
            for name in CURSORS:
                self.both(methodcaller("load_cursor", workspace_id, name))
            self.both_ledgers(methodcaller("balance", workspace_id))
            self.both_ledgers(methodcaller("movements", workspace_id))
