"""The journal going out (``Storage.activities_since``), what is particular to one adapter:
on the real PostgreSQL server, transactions that commit out of the order they wrote in; the
project's adapters refusing each other's cursors in their own words; databases of the previous
schema giving their old activities positions.

The checks every adapter passes (order, positions, a stable cursor that never skips, limits,
bad and foreign cursors, workspaces) ship in :class:`starlight_sequences.testing.StorageContract`
(section ``StorageActivities``), which ``test_storage_contract.py`` runs on every adapter.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from starlight_sequences.adapters import postgres as postgres_adapter
from starlight_sequences.adapters import sqlite as sqlite_adapter
from starlight_sequences.adapters.memory import InMemoryStorage
from starlight_sequences.adapters.postgres import PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteStorage
from starlight_sequences.errors import InvalidInput
from starlight_sequences.events import Activity, ActivityPage
from starlight_sequences.ids import WorkspaceId
from starlight_sequences.ports.storage import Changes, Storage
from starlight_sequences.testing import settle_activities
from tests import pg
from tests.contract.conftest import T0, WS, make_activity


def _activity(n: int) -> Activity:
    return make_activity(detail=f"activity {n}")


def _write(storage: Storage, *numbers: int) -> None:
    """One commit per number, then settled."""
    for n in numbers:
        assert storage.commit(WS, Changes(activities=(_activity(n),)))
    settle_activities(storage, WS)


def _details(page: ActivityPage) -> list[str]:
    return [entry.activity.detail for entry in page.entries]


# --- the project's adapters and each other's cursors -----------------------------------------


def _foreign_cursor(storage: Storage, tmp_path: Path) -> str:
    """A cursor another of the project's adapters wrote."""
    if isinstance(storage, InMemoryStorage):
        with SQLiteStorage(tmp_path / "other.sqlite3") as other:
            return other.activities_since(WS, None, limit=1).cursor
    return InMemoryStorage().activities_since(WS, None, limit=1).cursor


def test_a_cursor_of_another_project_adapter_is_refused_in_its_own_words(
    storage: Storage, tmp_path: Path
) -> None:
    foreign = _foreign_cursor(storage, tmp_path)
    with pytest.raises(InvalidInput, match="not a cursor of this storage"):
        storage.activities_since(WS, foreign, limit=10)


# --- settle_activities: the bounded wait of the shipped suite -------------------------------


class _HoldingBack(InMemoryStorage):
    """Hands out nothing for the first ``held`` reads of the journal, then everything."""

    def __init__(self, held: int) -> None:
        super().__init__()
        self.held = held
        self.reads = 0

    def activities_since(
        self, workspace_id: WorkspaceId, cursor: str | None, *, limit: int
    ) -> ActivityPage:
        self.reads += 1
        if self.reads <= self.held:
            return ActivityPage(entries=(), cursor=cursor or "mem.0")
        return super().activities_since(workspace_id, cursor, limit=limit)


def test_settling_reads_again_until_the_journal_hands_out_every_committed_activity() -> None:
    storage = _HoldingBack(held=3)
    assert storage.commit(WS, Changes(activities=(_activity(1),)))
    assert settle_activities(storage, WS, tries=10, pause=0)
    assert storage.reads == 4


def test_settling_gives_up_after_its_tries_and_says_so() -> None:
    storage = _HoldingBack(held=100)
    assert storage.commit(WS, Changes(activities=(_activity(1),)))
    assert not settle_activities(storage, WS, tries=5, pause=0)
    assert storage.reads == 5
    assert settle_activities(InMemoryStorage(), WS, tries=1, pause=0)


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
        # The schema before the journal's positions (migration 4; later ones came after).
        patched.setattr(sqlite_adapter, "MIGRATIONS", sqlite_adapter.MIGRATIONS[:3])
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
        # The schema before the journal's positions (migration 5; later ones came after).
        patched.setattr(postgres_adapter, "MIGRATIONS", postgres_adapter.MIGRATIONS[:4])
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
