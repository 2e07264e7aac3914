"""The journal going out (``Storage.activities_since``), for every storage adapter: order,
positions, a cursor that is stable and never skips, limits, bad cursors, workspaces; and on
the real PostgreSQL server, transactions that commit out of the order they wrote in.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import psycopg
import pytest

from starlight_sequences.adapters import postgres as postgres_adapter
from starlight_sequences.adapters import sqlite as sqlite_adapter
from starlight_sequences.adapters.memory import InMemoryStorage
from starlight_sequences.adapters.postgres import PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteStorage
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.errors import InvalidInput
from starlight_sequences.events import Activity, ActivityKind, ActivityPage, ActivityReason
from starlight_sequences.ids import CampaignId, LeadId, WorkspaceId
from starlight_sequences.ports.storage import MAX_ACTIVITY_PAGE, Changes, Storage
from tests import pg
from tests.contract.conftest import OTHER_WS, T0, WS, make_campaign, make_send


def _activity(n: int, **overrides: object) -> Activity:
    values: dict[str, object] = {
        "kind": ActivityKind.SENT,
        "at": T0 + dt.timedelta(minutes=n),
        "campaign_id": CampaignId("camp-1"),
        "lead_id": LeadId(f"lead-{n % 3}"),
        "step": 1 + n % 4,
        "detail": f"activity {n}",
    }
    values.update(overrides)
    return Activity(**values)  # type: ignore[arg-type]


def _settle(storage: Storage, workspace: WorkspaceId = WS) -> None:
    """Wait until every committed activity of the workspace can be handed out.

    In memory and SQLite that is at once. PostgreSQL hands a row out only once every
    transaction older than its own has ended, and other tests on the same server may hold one
    open for a moment: this waits for them (a bounded number of tries, not a timed assertion).
    """
    for _ in range(400):
        committed = len(storage.list_activities(workspace))
        if len(storage.activities_since(workspace, None, limit=MAX_ACTIVITY_PAGE).entries) == (
            committed
        ):
            return
        time.sleep(0.05)


def _write(storage: Storage, *numbers: int, workspace: WorkspaceId = WS) -> None:
    """One commit per number, then settled."""
    for n in numbers:
        assert storage.commit(workspace, Changes(activities=(_activity(n),)))
    _settle(storage, workspace)


def _details(page: ActivityPage) -> list[str]:
    return [entry.activity.detail for entry in page.entries]


def _drain(storage: Storage, cursor: str | None, *, limit: int) -> tuple[list[str], str]:
    """Every activity after ``cursor``, page by page: their details and the last cursor."""
    seen: list[str] = []
    while True:
        page = storage.activities_since(WS, cursor, limit=limit)
        seen += _details(page)
        if not page.entries:
            return seen, page.cursor
        cursor = page.cursor


# --- every adapter ---------------------------------------------------------------------------


def test_an_empty_journal_hands_out_nothing_and_a_cursor_to_start_from(storage: Storage) -> None:
    page = storage.activities_since(WS, None, limit=10)
    assert page.entries == ()
    assert page.more is False
    assert isinstance(page.cursor, str)
    assert page.cursor
    _write(storage, 1)
    assert _details(storage.activities_since(WS, page.cursor, limit=10)) == ["activity 1"]


def test_activities_come_in_commit_order_each_with_a_position_that_resumes_after_it(
    storage: Storage,
) -> None:
    _write(storage, 1, 2)
    both = Changes(activities=(_activity(3), _activity(4)))
    assert storage.commit(WS, both)
    _write(storage, 5)
    page = storage.activities_since(WS, None, limit=100)
    assert _details(page) == [f"activity {n}" for n in range(1, 6)]
    positions = [entry.position for entry in page.entries]
    assert len(set(positions)) == len(positions)
    assert page.cursor == positions[-1]
    assert page.more is False
    for i, position in enumerate(positions):
        after = storage.activities_since(WS, position, limit=100)
        assert _details(after) == [f"activity {n}" for n in range(i + 2, 6)]


def test_every_field_of_an_activity_comes_back(storage: Storage) -> None:
    full = _activity(
        7,
        kind=ActivityKind.STOPPED,
        at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        detail="reply: thanks, not now",
        reason=ActivityReason.REPLY,
    )
    bare = Activity(kind=ActivityKind.COMPLETED, at=T0)
    storage.commit(WS, Changes(activities=(full, bare)))
    _settle(storage)
    got = [entry.activity for entry in storage.activities_since(WS, None, limit=10).entries]
    assert got == [attrs.evolve(full, at=full.at.astimezone(dt.UTC)), bare]
    assert got[0].at.tzinfo is not None
    assert got[0].reason == "reply"


def test_paging_with_the_cursor_hands_out_every_activity_exactly_once(storage: Storage) -> None:
    _write(storage, *range(1, 12))
    first = storage.activities_since(WS, None, limit=4)
    assert len(first.entries) == 4
    assert first.more is True
    seen, cursor = _drain(storage, None, limit=4)
    assert seen == [f"activity {n}" for n in range(1, 12)]
    _write(storage, 12, 13)
    later, _ = _drain(storage, cursor, limit=4)
    assert later == ["activity 12", "activity 13"]


def test_a_page_that_ends_exactly_at_the_limit_says_whether_more_is_waiting(
    storage: Storage,
) -> None:
    _write(storage, 1, 2)
    assert storage.activities_since(WS, None, limit=2).more is False
    _write(storage, 3)
    assert storage.activities_since(WS, None, limit=2).more is True


def test_the_same_cursor_gives_the_same_page_again(storage: Storage) -> None:
    _write(storage, 1, 2, 3)
    cursor = storage.activities_since(WS, None, limit=1).cursor
    again = [storage.activities_since(WS, cursor, limit=2) for _ in range(3)]
    assert again[0] == again[1] == again[2]
    assert _details(again[0]) == ["activity 2", "activity 3"]
    _write(storage, 4)
    grown = storage.activities_since(WS, cursor, limit=10)
    assert grown.entries[:2] == again[0].entries
    assert _details(grown)[2:] == ["activity 4"]


def test_an_empty_page_keeps_the_cursor_it_was_given(storage: Storage) -> None:
    _write(storage, 1)
    cursor = storage.activities_since(WS, None, limit=10).cursor
    empty = storage.activities_since(WS, cursor, limit=10)
    assert empty.entries == ()
    assert empty.cursor == cursor


def test_a_repeated_inbound_event_is_handed_out_once(storage: Storage) -> None:
    event = _activity(1, kind=ActivityKind.EVENT, key="reply:<m1@x>")
    follow = _activity(2, kind=ActivityKind.STOPPED, reason=ActivityReason.REPLY)
    assert storage.commit(WS, Changes(activities=(event, follow)))
    assert not storage.commit(WS, Changes(activities=(event, follow)))
    _settle(storage)
    assert _details(storage.activities_since(WS, None, limit=10)) == ["activity 1", "activity 2"]


def test_activities_recorded_with_a_finished_send_are_handed_out(storage: Storage) -> None:
    campaign = make_campaign()
    send = make_send(campaign)
    storage.commit(WS, Changes(campaigns=(campaign,), sends=(send,)))
    [claimed] = storage.claim_due(T0, worker_id="w1", lease=dt.timedelta(minutes=5), limit=1)
    sent = attrs.evolve(
        claimed,
        status=SendStatus.SENT,
        sent_at=T0,
        lease_owner=None,
        lease_expires_at=None,
        revision=claimed.revision + 1,
    )
    storage.finish_send(sent, worker_id="w1", now=T0, changes=Changes(activities=(_activity(1),)))
    _settle(storage)
    assert _details(storage.activities_since(WS, None, limit=10)) == ["activity 1"]


def test_a_workspace_never_sees_another_workspaces_activities(storage: Storage) -> None:
    _write(storage, 1, 2)
    _write(storage, 101, 102, workspace=OTHER_WS)
    _write(storage, 3)
    mine = storage.activities_since(WS, None, limit=100)
    theirs = storage.activities_since(OTHER_WS, None, limit=100)
    assert _details(mine) == ["activity 1", "activity 2", "activity 3"]
    assert _details(theirs) == ["activity 101", "activity 102"]
    assert storage.activities_since(WorkspaceId("ws-empty"), None, limit=10).entries == ()
    _write(storage, 103, workspace=OTHER_WS)
    assert storage.activities_since(WS, mine.cursor, limit=100).entries == ()


@pytest.mark.parametrize("limit", [0, -1, MAX_ACTIVITY_PAGE + 1, True, 2.0, "10", None])
def test_a_limit_out_of_range_is_refused_naming_it(storage: Storage, limit: object) -> None:
    with pytest.raises(InvalidInput, match="limit"):
        storage.activities_since(WS, None, limit=limit)  # type: ignore[arg-type]


def test_the_largest_page_is_allowed(storage: Storage) -> None:
    _write(storage, 1)
    page = storage.activities_since(WS, None, limit=MAX_ACTIVITY_PAGE)
    assert _details(page) == ["activity 1"]


def _foreign_cursor(storage: Storage, tmp_path: Path) -> str:
    """A cursor another kind of adapter wrote."""
    if isinstance(storage, InMemoryStorage):
        with SQLiteStorage(tmp_path / "other.sqlite3") as other:
            return other.activities_since(WS, None, limit=1).cursor
    return InMemoryStorage().activities_since(WS, None, limit=1).cursor


@pytest.mark.parametrize(
    "bad", ["", "garbage", "12", "mem", "mem.", "mem.x", "mem.1.2", "pg.1", "sqlite.-1", "..."]
)
def test_a_cursor_this_storage_did_not_write_is_refused_naming_it(
    storage: Storage, bad: str
) -> None:
    _write(storage, 1)
    with pytest.raises(InvalidInput, match="cursor") as raised:
        storage.activities_since(WS, bad, limit=10)
    assert repr(bad) in str(raised.value)


def test_a_cursor_of_another_adapter_is_refused(storage: Storage, tmp_path: Path) -> None:
    foreign = _foreign_cursor(storage, tmp_path)
    with pytest.raises(InvalidInput, match="not a cursor of this storage"):
        storage.activities_since(WS, foreign, limit=10)


def test_a_cursor_that_is_not_text_is_refused(storage: Storage) -> None:
    with pytest.raises(InvalidInput, match="cursor"):
        storage.activities_since(WS, 5, limit=10)  # type: ignore[arg-type]


def test_a_cursor_edited_by_hand_is_refused(storage: Storage) -> None:
    _write(storage, 1)
    cursor = storage.activities_since(WS, None, limit=1).cursor
    with pytest.raises(InvalidInput, match="cursor"):
        storage.activities_since(WS, cursor + ".0", limit=10)
    with pytest.raises(InvalidInput, match="cursor"):
        storage.activities_since(WS, "x" + cursor, limit=10)


# --- PostgreSQL: transactions that commit out of order ---------------------------------------


@pytest.fixture
def pg_dsn() -> str:
    return pg.fresh_dsn()


@contextlib.contextmanager
def _open_transaction(dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection in a transaction the test commits itself (rolled back if it does not)."""
    with psycopg.connect(dsn) as conn:  # not autocommit: the first statement opens it
        yield conn


def _insert_directly(conn: psycopg.Connection[tuple[object, ...]], detail: str) -> None:
    """An activity written as the adapter writes it (the defaults give seq and xid)."""
    conn.execute(
        "INSERT INTO starlight_activities (workspace_id, kind, at, detail, key) "
        "VALUES (%s, 'sent', %s, %s, '')",
        (WS, T0, detail),
    )


def _seq_of(conn: psycopg.Connection[tuple[object, ...]], detail: str) -> int:
    row = conn.execute(
        "SELECT seq FROM starlight_activities WHERE detail = %s", (detail,)
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def _read_until(storage: PostgresStorage, cursor: str, wanted: int) -> list[str]:
    """Pages after ``cursor`` until ``wanted`` activities came. Transactions of other tests on
    the same server hold the snapshot's xmin back for a moment, so this waits for them (a
    bounded number of tries, not a timed assertion)."""
    seen: list[str] = []
    for _ in range(400):
        page = storage.activities_since(WS, cursor, limit=100)
        seen += _details(page)
        cursor = page.cursor
        if len(seen) >= wanted:
            return seen
        time.sleep(0.05)
    return seen


def test_a_row_committed_after_a_later_seq_was_read_is_not_skipped(pg_dsn: str) -> None:
    with PostgresStorage(pg_dsn) as storage:
        start = storage.activities_since(WS, None, limit=10).cursor
        with _open_transaction(pg_dsn) as slow:
            _insert_directly(slow, "slow")  # takes the smaller seq, commits last
            # takes the larger seq, commits first
            assert storage.commit(WS, Changes(activities=(_activity(1),)))
            assert _seq_of(slow, "slow") < _seq_of(slow, "activity 1")
            # The committed row waits while the slow transaction is open: handing it out now
            # would move the cursor past the slow row's seq.
            page = storage.activities_since(WS, start, limit=10)
            assert page.entries == ()
            assert page.cursor == start
            slow.commit()
        assert sorted(_read_until(storage, start, 2)) == ["activity 1", "slow"]


def test_a_row_handed_out_before_an_older_open_transaction_commits_is_not_passed(
    pg_dsn: str,
) -> None:
    # Three writers: "older" takes its transaction id first, "old" second. "old" writes the
    # smaller seq and stays open; "older" writes the larger seq and commits. Ordering by seq
    # and handing out only rows whose xid is below the snapshot's xmin would hand out
    # "older" (its xid is below "old"'s, the xmin) and move the cursor past "old"'s seq.
    with PostgresStorage(pg_dsn) as storage:
        start = storage.activities_since(WS, None, limit=10).cursor
        with _open_transaction(pg_dsn) as older, _open_transaction(pg_dsn) as old:
            older.execute("SELECT pg_current_xact_id()")
            old.execute("SELECT pg_current_xact_id()")
            _insert_directly(old, "old")
            _insert_directly(older, "older")
            older.commit()
            assert _seq_of(old, "old") < _seq_of(old, "older")
            first = _read_until(storage, start, 1)
            assert first == ["older"]
            cursor = storage.activities_since(WS, start, limit=1).cursor
            old.commit()
        assert _read_until(storage, cursor, 1) == ["old"]
        assert _details(storage.activities_since(WS, None, limit=10)) == ["older", "old"]


def test_positions_order_by_transaction_id_as_a_number_not_as_text(pg_dsn: str) -> None:
    # Ids of past transactions, written as a transaction with that id would write them:
    # 1000 sorts before 999 as text, after it as a number.
    with PostgresStorage(pg_dsn) as storage, psycopg.connect(pg_dsn, autocommit=True) as conn:
        for xid, detail in (("1000", "second"), ("999", "first"), ("10000", "third")):
            conn.execute(
                "INSERT INTO starlight_activities (workspace_id, kind, at, detail, key, xid) "
                "VALUES (%s, 'sent', %s, %s, '', %s::text::xid8)",
                (WS, T0, detail, xid),
            )
        assert _details(storage.activities_since(WS, None, limit=10)) == [
            "first",
            "second",
            "third",
        ]
        first = storage.activities_since(WS, None, limit=1)
        assert _details(storage.activities_since(WS, first.cursor, limit=10)) == [
            "second",
            "third",
        ]


def test_rows_of_a_rolled_back_transaction_never_hold_the_journal_back(pg_dsn: str) -> None:
    with PostgresStorage(pg_dsn) as storage:
        start = storage.activities_since(WS, None, limit=10).cursor
        with _open_transaction(pg_dsn) as slow:
            _insert_directly(slow, "rolled back")
            assert storage.commit(WS, Changes(activities=(_activity(1),)))
            slow.rollback()
        assert _read_until(storage, start, 1) == ["activity 1"]
        assert _details(storage.activities_since(WS, None, limit=10)) == ["activity 1"]


# --- existing databases get positions --------------------------------------------------------


def test_a_sqlite_file_of_the_previous_schema_gives_its_old_activities_positions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.sqlite3"
    with monkeypatch.context() as patched:
        patched.setattr(sqlite_adapter, "MIGRATIONS", sqlite_adapter.MIGRATIONS[:-1])
        SQLiteStorage(path).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for n in (1, 2):
            conn.execute(
                "INSERT INTO activities (workspace_id, kind, at, detail, key) "
                "VALUES (?, 'sent', 0, ?, '')",
                (WS, f"old {n}"),
            )
    with SQLiteStorage(path) as storage:
        _write(storage, 3)
        page = storage.activities_since(WS, None, limit=10)
        assert _details(page) == ["old 1", "old 2", "activity 3"]
        assert [e.activity.reason for e in page.entries] == ["", "", ""]


def test_a_postgres_database_of_the_previous_schema_gives_its_old_activities_positions(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(postgres_adapter, "MIGRATIONS", postgres_adapter.MIGRATIONS[:-1])
        PostgresStorage(pg_dsn).close()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for n in (1, 2):
            conn.execute(
                "INSERT INTO starlight_activities (workspace_id, kind, at, detail, key) "
                "VALUES (%s, 'sent', %s, %s, '')",
                (WS, T0, f"old {n}"),
            )
    with PostgresStorage(pg_dsn) as storage:
        _write(storage, 3)
        seen = _read_until(storage, "pg.0.0", 3)
        assert seen == ["old 1", "old 2", "activity 3"]
