"""A host's test module, as ``docs/testing.md`` tells hosts to write it (run by
``test_shipped_suite.py`` in a pytest of its own; this file's name keeps it out of the project's
own collection).

The honest classes run the shipped suites on the in-memory adapters and must pass. The broken
ones wrap the in-memory storage the way a faulty host adapter would be wrong, and the shipped
suites must report them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Sequence

import pytest
from hypothesis import Phase, settings

from starlight_sequences.adapters.memory import InMemoryCreditLedger, InMemoryStorage
from starlight_sequences.campaigns import ScheduledSend
from starlight_sequences.events import ActivityPage
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.storage import (
    MAX_ACTIVITY_PAGE,
    Changes,
    Storage,
    finish_changes,
)
from starlight_sequences.testing import LedgerContract, StorageAgreement, StorageContract

# --- honest: the few lines a host writes ---------------------------------------------------


class TestHonestStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> Storage:
        return InMemoryStorage()


class TestHonestLedger(LedgerContract):
    @pytest.fixture
    def ledger(self) -> CreditLedger:
        return InMemoryCreditLedger()


class HonestAgreement(StorageAgreement):
    def open_adapters(
        self, cleanup: contextlib.ExitStack
    ) -> tuple[Sequence[Storage], Sequence[CreditLedger]]:
        return [InMemoryStorage()], [InMemoryCreditLedger()]


# Based on the machine's own settings (no deadline, no health checks): a slow database is fine.
HonestAgreement.TestCase.settings = settings(
    HonestAgreement.TestCase.settings, max_examples=20, stateful_step_count=20
)
TestHonestAgreement = HonestAgreement.TestCase


# --- broken: adapters the suites must catch -------------------------------------------------


class DoubleClaimStorage(InMemoryStorage):
    """Hands every claimed send out twice: to the worker that claimed it, and again to the
    next worker that asks (as a claim that reads, then writes, without a lock would)."""

    def __init__(self) -> None:
        super().__init__()
        self._again: list[ScheduledSend] = []

    def claim_due(
        self,
        now: dt.datetime,
        *,
        worker_id: str,
        lease: dt.timedelta,
        limit: int,
        workspace_id: WorkspaceId | None = None,
    ) -> list[ScheduledSend]:
        claimed = super().claim_due(
            now, worker_id=worker_id, lease=lease, limit=limit, workspace_id=workspace_id
        )
        again, self._again = self._again, list(claimed)
        return claimed + again


class LeaseIgnoringStorage(InMemoryStorage):
    """``finish_send`` records the outcome whoever holds the lease, and after it ended."""

    def finish_send(
        self,
        send: ScheduledSend,
        *,
        worker_id: str,
        now: dt.datetime,
        changes: Changes | None = None,
    ) -> None:
        self.commit(send.workspace_id, finish_changes(send, changes))


class TestDoubleClaimStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> Storage:
        return DoubleClaimStorage()


class TestLeaseIgnoringStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> Storage:
        return LeaseIgnoringStorage()


class LeaseIgnoringAgreement(StorageAgreement):
    def open_adapters(
        self, cleanup: contextlib.ExitStack
    ) -> tuple[Sequence[Storage], Sequence[CreditLedger]]:
        return [LeaseIgnoringStorage()], []


LeaseIgnoringAgreement.TestCase.settings = settings(
    LeaseIgnoringAgreement.TestCase.settings,
    max_examples=200,
    stateful_step_count=30,
    phases=(Phase.generate,),  # the first disagreement is enough here: no shrinking
)
TestLeaseIgnoringAgreement = LeaseIgnoringAgreement.TestCase


class SkippingJournalStorage(InMemoryStorage):
    """``activities_since`` after a cursor starts one activity too late (an off-by-one in
    "the rows after this position")."""

    def activities_since(
        self, workspace_id: WorkspaceId, cursor: str | None, *, limit: int
    ) -> ActivityPage:
        if cursor is None:
            return super().activities_since(workspace_id, cursor, limit=limit)
        wider = min(limit + 1, MAX_ACTIVITY_PAGE)
        page = super().activities_since(workspace_id, cursor, limit=wider)
        entries = page.entries[1:]
        return ActivityPage(
            entries=entries[:limit],
            cursor=entries[:limit][-1].position if entries else cursor,
            more=len(entries) > limit or page.more,
        )


ALL_WORKSPACES = WorkspaceId("ws-every")
"""Where ``WorkspaceBlindJournalStorage`` keeps its one journal."""


class WorkspaceBlindJournalStorage(InMemoryStorage):
    """Keeps one journal for every workspace, and ``activities_since`` hands it out whichever
    workspace asks (a query that forgot its ``WHERE workspace_id``)."""

    def commit(self, workspace_id: WorkspaceId, changes: Changes) -> bool:
        done = super().commit(workspace_id, changes)
        if done and changes.activities:
            super().commit(ALL_WORKSPACES, Changes(activities=changes.activities))
        return done

    def activities_since(
        self, workspace_id: WorkspaceId, cursor: str | None, *, limit: int
    ) -> ActivityPage:
        return super().activities_since(ALL_WORKSPACES, cursor, limit=limit)


class TestSkippingJournalStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> Storage:
        return SkippingJournalStorage()


class TestWorkspaceBlindJournalStorage(StorageContract):
    @pytest.fixture
    def storage(self) -> Storage:
        return WorkspaceBlindJournalStorage()


class TestForgottenFixture(StorageContract):
    """No ``storage`` fixture: every test errors, naming what is missing."""
