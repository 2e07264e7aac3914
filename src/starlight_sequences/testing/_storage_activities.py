"""The journal going out of ``Storage``: ``activities_since``.

Order, positions, a cursor that is stable and never skips, limits, bad and foreign cursors,
workspaces. Only the public port and value types: a host's own storage runs these as they are.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import ClassVar

import attrs
import pytest

from starlight_sequences.adapters.memory import InMemoryStorage
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.errors import InvalidInput
from starlight_sequences.events import Activity, ActivityKind, ActivityPage, ActivityReason
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.ports.storage import (
    MAX_ACTIVITY_PAGE,
    Changes,
    Storage,
    position_text,
)
from starlight_sequences.testing._storage_base import LEASE, StorageSection
from starlight_sequences.testing.records import (
    OTHER_WS,
    T0,
    WS,
    make_activity,
    make_campaign,
    make_send,
)

SETTLE_TRIES = 400
"""How many times :func:`settle_activities` reads the journal by default."""
SETTLE_PAUSE = 0.05
"""Seconds :func:`settle_activities` waits between two reads by default."""

BAD_CURSORS = ("", "garbage", "12", "mem", "mem.", "mem.x", "mem.1.2", "pg.1", "sqlite.-1", "...")
"""Cursors no adapter of the project writes (cut, edited, or of the wrong shape for it)."""


def settle_activities(
    storage: Storage,
    workspace_id: WorkspaceId = WS,
    *,
    tries: int = SETTLE_TRIES,
    pause: float = SETTLE_PAUSE,
) -> bool:
    """Wait until every committed activity of the workspace can be handed out.

    ``activities_since`` may hold back an activity that is committed while an older writer is
    still running (PostgreSQL hands a row out only once every transaction that was running
    when it was written has ended, and another test on the same server may hold one open for
    a moment). This reads the journal from its start until it hands out at least as many
    activities as ``list_activities`` lists: at most ``tries`` reads, ``pause`` seconds apart
    (a bounded wait, not a timed assertion). In memory and SQLite the first read settles.

    Args:
        storage: the adapter under test.
        workspace_id: whose journal.
        tries: the most reads (at least one).
        pause: seconds between two reads.

    Returns:
        True once the journal settled; False if it had not after ``tries`` reads (the test's
        next assertion then says what is missing).
    """
    for attempt in range(max(tries, 1)):
        committed = len(storage.list_activities(workspace_id))
        page = storage.activities_since(workspace_id, None, limit=MAX_ACTIVITY_PAGE)
        if len(page.entries) >= min(committed, MAX_ACTIVITY_PAGE):
            return True
        if attempt + 1 < tries:
            time.sleep(pause)
    return False


def numbered_activity(n: int, **overrides: object) -> Activity:
    """Activity number ``n``: detail ``"activity n"``, ``n`` minutes after ``T0``."""
    values: dict[str, object] = {
        "at": T0 + dt.timedelta(minutes=n),
        "lead_id": f"lead-{n % 3}",
        "step": 1 + n % 4,
        "detail": f"activity {n}",
    }
    values.update(overrides)
    return make_activity(**values)  # type: ignore[arg-type]


def details(page: ActivityPage) -> list[str]:
    """The details of a page's activities, in order."""
    return [entry.activity.detail for entry in page.entries]


class StorageActivities(StorageSection):
    """The journal going out: ``activities_since`` hands every committed activity out once, in
    a stable order, page by page, per workspace; it refuses bad limits and cursors.

    ``settle_tries`` and ``settle_pause`` bound the wait of :func:`settle_activities` after
    each write (raise them for a storage that holds activities back longer).
    """

    settle_tries: ClassVar[int] = SETTLE_TRIES
    settle_pause: ClassVar[float] = SETTLE_PAUSE

    def write_activities(
        self, storage: Storage, *numbers: int, workspace: WorkspaceId = WS
    ) -> None:
        """One commit per number (:func:`numbered_activity`), then the journal settled."""
        for n in numbers:
            assert storage.commit(workspace, Changes(activities=(numbered_activity(n),)))
        self.settle_journal(storage, workspace)

    def settle_journal(self, storage: Storage, workspace: WorkspaceId = WS) -> None:
        """:func:`settle_activities` with this class's bounds."""
        settle_activities(storage, workspace, tries=self.settle_tries, pause=self.settle_pause)

    def drain_journal(
        self, storage: Storage, cursor: str | None, *, limit: int
    ) -> tuple[list[str], str]:
        """Every activity of ``WS`` after ``cursor``, page by page: details and last cursor.

        Stops after as many pages as there are committed activities (and one more), so a
        storage whose pages never run dry fails instead of looping.
        """
        seen: list[str] = []
        for _ in range(len(storage.list_activities(WS)) + 2):
            page = storage.activities_since(WS, cursor, limit=limit)
            seen += details(page)
            if not page.entries:
                return seen, page.cursor
            cursor = page.cursor
        pytest.fail(f"activities_since kept handing out pages after {seen}")

    def foreign_activity_cursor(self, storage: Storage) -> str:
        """A cursor another adapter wrote, which ``storage`` must refuse.

        The in-memory adapter's, or, when ``storage`` is an in-memory one, a cursor in the
        shape of an adapter tagged ``other``. Override it to give one of another adapter.
        """
        if isinstance(storage, InMemoryStorage):
            return position_text("other", 0)
        return InMemoryStorage().activities_since(WS, None, limit=1).cursor

    # --- order and positions --------------------------------------------------------------

    def test_an_empty_journal_hands_out_nothing_and_a_cursor_to_start_from(
        self, storage: Storage
    ) -> None:
        page = storage.activities_since(WS, None, limit=10)
        assert page.entries == ()
        assert page.more is False
        assert isinstance(page.cursor, str)
        assert page.cursor
        self.write_activities(storage, 1)
        assert details(storage.activities_since(WS, page.cursor, limit=10)) == ["activity 1"]

    def test_activities_come_in_commit_order_each_with_a_position_that_resumes_after_it(
        self, storage: Storage
    ) -> None:
        self.write_activities(storage, 1, 2)
        both = Changes(activities=(numbered_activity(3), numbered_activity(4)))
        assert storage.commit(WS, both)
        self.write_activities(storage, 5)
        page = storage.activities_since(WS, None, limit=100)
        assert details(page) == [f"activity {n}" for n in range(1, 6)]
        positions = [entry.position for entry in page.entries]
        assert len(set(positions)) == len(positions)
        assert page.cursor == positions[-1]
        assert page.more is False
        for i, position in enumerate(positions):
            after = storage.activities_since(WS, position, limit=100)
            assert details(after) == [f"activity {n}" for n in range(i + 2, 6)]

    def test_every_field_of_an_activity_comes_back(self, storage: Storage) -> None:
        full = numbered_activity(
            7,
            kind=ActivityKind.STOPPED,
            at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            detail="reply: thanks, not now",
            reason=ActivityReason.REPLY,
        )
        bare = Activity(kind=ActivityKind.COMPLETED, at=T0)
        storage.commit(WS, Changes(activities=(full, bare)))
        self.settle_journal(storage)
        got = [entry.activity for entry in storage.activities_since(WS, None, limit=10).entries]
        assert got == [attrs.evolve(full, at=full.at.astimezone(dt.UTC)), bare]
        assert got[0].at.tzinfo is not None
        assert got[0].reason == "reply"

    def test_a_repeated_inbound_event_is_handed_out_once(self, storage: Storage) -> None:
        event = numbered_activity(1, kind=ActivityKind.EVENT, key="reply:<m1@x>")
        follow = numbered_activity(2, kind=ActivityKind.STOPPED, reason=ActivityReason.REPLY)
        assert storage.commit(WS, Changes(activities=(event, follow)))
        assert not storage.commit(WS, Changes(activities=(event, follow)))
        self.settle_journal(storage)
        page = storage.activities_since(WS, None, limit=10)
        assert details(page) == ["activity 1", "activity 2"]

    def test_activities_recorded_with_a_finished_send_are_handed_out(
        self, storage: Storage
    ) -> None:
        campaign = make_campaign()
        send = make_send(campaign)
        storage.commit(WS, Changes(campaigns=(campaign,), sends=(send,)))
        [claimed] = storage.claim_due(T0, worker_id="w1", lease=LEASE, limit=1)
        sent = attrs.evolve(
            claimed,
            status=SendStatus.SENT,
            sent_at=T0,
            lease_owner=None,
            lease_expires_at=None,
            revision=claimed.revision + 1,
        )
        changes = Changes(activities=(numbered_activity(1),))
        storage.finish_send(sent, worker_id="w1", now=T0, changes=changes)
        self.settle_journal(storage)
        assert details(storage.activities_since(WS, None, limit=10)) == ["activity 1"]

    # --- paging and the cursor ------------------------------------------------------------

    def test_paging_with_the_cursor_hands_out_every_activity_exactly_once(
        self, storage: Storage
    ) -> None:
        self.write_activities(storage, *range(1, 12))
        first = storage.activities_since(WS, None, limit=4)
        assert len(first.entries) == 4
        assert first.more is True
        seen, cursor = self.drain_journal(storage, None, limit=4)
        assert seen == [f"activity {n}" for n in range(1, 12)]
        self.write_activities(storage, 12, 13)
        later, _ = self.drain_journal(storage, cursor, limit=4)
        assert later == ["activity 12", "activity 13"]

    def test_a_page_that_ends_exactly_at_the_limit_says_whether_more_is_waiting(
        self, storage: Storage
    ) -> None:
        self.write_activities(storage, 1, 2)
        assert storage.activities_since(WS, None, limit=2).more is False
        self.write_activities(storage, 3)
        assert storage.activities_since(WS, None, limit=2).more is True

    def test_the_same_cursor_gives_the_same_page_again(self, storage: Storage) -> None:
        self.write_activities(storage, 1, 2, 3)
        cursor = storage.activities_since(WS, None, limit=1).cursor
        again = [storage.activities_since(WS, cursor, limit=2) for _ in range(3)]
        assert again[0] == again[1] == again[2]
        assert details(again[0]) == ["activity 2", "activity 3"]
        self.write_activities(storage, 4)
        grown = storage.activities_since(WS, cursor, limit=10)
        assert grown.entries[:2] == again[0].entries
        assert details(grown)[2:] == ["activity 4"]

    def test_an_empty_page_keeps_the_cursor_it_was_given(self, storage: Storage) -> None:
        self.write_activities(storage, 1)
        cursor = storage.activities_since(WS, None, limit=10).cursor
        empty = storage.activities_since(WS, cursor, limit=10)
        assert empty.entries == ()
        assert empty.cursor == cursor

    def test_a_workspace_never_sees_another_workspaces_activities(self, storage: Storage) -> None:
        self.write_activities(storage, 1, 2)
        self.write_activities(storage, 101, 102, workspace=OTHER_WS)
        self.write_activities(storage, 3)
        mine = storage.activities_since(WS, None, limit=100)
        theirs = storage.activities_since(OTHER_WS, None, limit=100)
        assert details(mine) == ["activity 1", "activity 2", "activity 3"]
        assert details(theirs) == ["activity 101", "activity 102"]
        assert storage.activities_since(WorkspaceId("ws-empty"), None, limit=10).entries == ()
        self.write_activities(storage, 103, workspace=OTHER_WS)
        assert storage.activities_since(WS, mine.cursor, limit=100).entries == ()

    # --- limits and bad cursors -----------------------------------------------------------

    @pytest.mark.parametrize("limit", [0, -1, MAX_ACTIVITY_PAGE + 1, True, 2.0, "10", None])
    def test_a_limit_out_of_range_is_refused_naming_it(
        self, storage: Storage, limit: object
    ) -> None:
        with pytest.raises(InvalidInput, match="limit"):
            storage.activities_since(WS, None, limit=limit)  # type: ignore[arg-type]

    def test_the_largest_page_is_allowed(self, storage: Storage) -> None:
        self.write_activities(storage, 1)
        page = storage.activities_since(WS, None, limit=MAX_ACTIVITY_PAGE)
        assert details(page) == ["activity 1"]

    @pytest.mark.parametrize("bad", BAD_CURSORS)
    def test_a_cursor_this_storage_did_not_write_is_refused_naming_it(
        self, storage: Storage, bad: str
    ) -> None:
        self.write_activities(storage, 1)
        with pytest.raises(InvalidInput, match="cursor") as raised:
            storage.activities_since(WS, bad, limit=10)
        assert repr(bad) in str(raised.value)

    def test_a_cursor_of_another_adapter_is_refused(self, storage: Storage) -> None:
        foreign = self.foreign_activity_cursor(storage)
        with pytest.raises(InvalidInput, match="cursor"):
            storage.activities_since(WS, foreign, limit=10)

    def test_a_cursor_that_is_not_text_is_refused(self, storage: Storage) -> None:
        with pytest.raises(InvalidInput, match="cursor"):
            storage.activities_since(WS, 5, limit=10)  # type: ignore[arg-type]

    def test_a_cursor_edited_by_hand_is_refused(self, storage: Storage) -> None:
        self.write_activities(storage, 1)
        cursor = storage.activities_since(WS, None, limit=1).cursor
        with pytest.raises(InvalidInput, match="cursor"):
            storage.activities_since(WS, cursor + ".0", limit=10)
        with pytest.raises(InvalidInput, match="cursor"):
            storage.activities_since(WS, "x" + cursor, limit=10)
