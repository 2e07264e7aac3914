"""What the SQLite adapters promise beyond the port: the file, WAL, migrations, locking."""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import sqlite3
from pathlib import Path

import attrs
import pytest

from starlight_sequences.adapters import sqlite as sqlite_adapter
from starlight_sequences.adapters.sqlite import MIGRATIONS, SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.bounce_breaker import BounceBreaker, SenderHold
from starlight_sequences.cadence import CadenceStep
from starlight_sequences.calendar import BusinessHours, WarmUp
from starlight_sequences.campaigns import (
    Campaign,
    CampaignSettings,
    EmailIdentity,
    Enrolment,
    Excluded,
    LinkedInIdentity,
    ScheduledSend,
    SendStatus,
)
from starlight_sequences.credits import CreditMovement, MovementKind
from starlight_sequences.drafts import Draft
from starlight_sequences.errors import InvalidInput, StorageError
from starlight_sequences.events import Activity
from starlight_sequences.leads import Lead
from starlight_sequences.ports.storage import Changes
from tests.contract.conftest import T0, WS, make_campaign, make_send


def _pragma(path: Path, name: str) -> object:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_new_file_is_created_in_wal_mode_with_every_migration_applied(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    with SQLiteStorage(path) as storage:
        assert storage.path == path
        assert storage.schema_version == len(MIGRATIONS)
    assert _pragma(path, "journal_mode") == "wal"
    assert _pragma(path, "user_version") == len(MIGRATIONS)


def test_reopening_a_file_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "kept.sqlite3"
    campaign = make_campaign()
    with SQLiteStorage(path) as storage:
        storage.commit(WS, Changes(campaigns=(campaign,)))
    with SQLiteStorage(path) as storage:
        assert storage.list_campaigns(WS) == [campaign]
        assert storage.schema_version == len(MIGRATIONS)


def test_a_saved_cursor_survives_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cursor.sqlite3"
    with SQLiteStorage(path) as storage:
        storage.save_cursor(WS, "imap:ann@mail.example/INBOX", '{"last_uid": 7}')
    with SQLiteStorage(path) as storage:
        assert storage.load_cursor(WS, "imap:ann@mail.example/INBOX") == '{"last_uid": 7}'


def test_a_file_of_the_first_schema_gains_the_cursor_table_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "version1.sqlite3"
    campaign = make_campaign()
    with monkeypatch.context() as patched:
        patched.setattr(sqlite_adapter, "MIGRATIONS", MIGRATIONS[:1])
        with SQLiteStorage(path) as storage:
            storage.commit(WS, Changes(campaigns=(campaign,)))
    assert _pragma(path, "user_version") == 1
    with SQLiteStorage(path) as storage:
        assert storage.schema_version == len(MIGRATIONS)
        assert storage.list_campaigns(WS) == [campaign]
        assert storage.load_cursor(WS, "poller") is None
        storage.save_cursor(WS, "poller", "1")
        assert storage.load_cursor(WS, "poller") == "1"


def test_a_new_migration_is_applied_on_open_and_keeps_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "upgrade.sqlite3"
    campaign = make_campaign()
    with SQLiteStorage(path) as storage:
        storage.commit(WS, Changes(campaigns=(campaign,)))
    later = (*MIGRATIONS, ("ALTER TABLE campaigns ADD COLUMN colour TEXT",))
    monkeypatch.setattr(sqlite_adapter, "MIGRATIONS", later)
    with SQLiteStorage(path) as storage:
        assert storage.schema_version == len(later)
        assert storage.list_campaigns(WS) == [campaign]
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(campaigns)")]
    assert "colour" in columns


def test_a_failing_migration_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "broken.sqlite3"
    SQLiteStorage(path).close()
    broken = (*MIGRATIONS, ("CREATE TABLE extra (x INTEGER)", "THIS IS NOT SQL"))
    monkeypatch.setattr(sqlite_adapter, "MIGRATIONS", broken)
    with pytest.raises(StorageError, match=r"broken\.sqlite3"):
        SQLiteStorage(path)
    assert _pragma(path, "user_version") == len(MIGRATIONS)
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "extra" not in tables


def test_a_file_written_by_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    SQLiteStorage(path).close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(StorageError, match="schema version"):
        SQLiteStorage(path)


@pytest.mark.parametrize("path", ["", ":memory:", "file::memory:?cache=shared"])
def test_an_in_memory_database_is_refused(path: str) -> None:
    with pytest.raises(InvalidInput, match="file path"):
        SQLiteStorage(path)


def test_storage_and_ledger_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    with SQLiteStorage(path) as storage, SQLiteCreditLedger(path) as ledger:
        storage.commit(WS, Changes(campaigns=(make_campaign(),)))
        ledger.post(WS, CreditMovement(kind=MovementKind.TOP_UP, amount=5))
        assert len(storage.list_campaigns(WS)) == 1
        assert ledger.balance(WS).available == 5


def test_a_naive_datetime_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with SQLiteStorage(tmp_path / "naive.sqlite3") as storage:
        campaign = make_campaign()
        naive = make_send(campaign, due_at=dt.datetime(2026, 11, 30, 9))
        with pytest.raises(InvalidInput, match="naive"):
            storage.commit(WS, Changes(campaigns=(campaign,), sends=(naive,)))
        assert storage.list_campaigns(WS) == []


def test_a_write_locked_out_past_the_busy_timeout_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.sqlite3"
    with SQLiteStorage(path, busy_timeout=0.05) as storage:
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StorageError, match="locked"):
                storage.commit(WS, Changes(campaigns=(make_campaign(),)))
            assert storage.list_campaigns(WS) == []  # WAL: readers are not blocked
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert storage.commit(WS, Changes(campaigns=(make_campaign(),)))


def test_a_closed_adapter_reopens_when_used_again(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "closed.sqlite3")
    storage.close()
    assert storage.list_campaigns(WS) == []
    storage.close()


def _claim_in_child(storage: SQLiteStorage) -> None:
    claimed = storage.claim_due(T0, worker_id="child", lease=dt.timedelta(minutes=1), limit=5)
    raise SystemExit(0 if len(claimed) == 1 else 1)


def test_a_forked_child_uses_its_own_connection(tmp_path: Path) -> None:
    with SQLiteStorage(tmp_path / "forked.sqlite3") as storage:
        campaign = make_campaign()
        storage.commit(WS, Changes(campaigns=(campaign,), sends=(make_send(campaign),)))
        assert storage.list_sends(WS, campaign.id)[0].status is SendStatus.SCHEDULED
        child = multiprocessing.get_context("fork").Process(target=_claim_in_child, args=(storage,))
        child.start()
        child.join(30)
        assert child.exitcode == 0
        assert storage.list_sends(WS, campaign.id)[0].lease_owner == "child"


# The adapter maps each of these classes field by field; a field it does not know would be
# silently dropped. When this test fails, teach the adapter the new field, then update it here.
KNOWN_FIELDS = {
    Campaign: "workspace_id id name brief shape settings email_identity linkedin_identity status "
    "created_at approved_at paused_at finished_at excluded revision prices variant_winners "
    "email_identities linkedin_identities retired_senders",
    CampaignSettings: "business_hours start default_country default_timezone default_subdivision "
    "closures connection_timeout_days stop_scope stop_company_on_reply allow_overlap "
    "out_of_office_days max_attempts seed",
    BusinessHours: "open close weekdays",
    EmailIdentity: "id address display_name timezone min_spacing daily_cap warm_up bounce_breaker",
    # _calendar is derived from country and subdivision on construction, not stored.
    WarmUp: "start step ceiling since country subdivision _calendar",
    BounceBreaker: "enabled window minimum_sends threshold",
    SenderHold: "workspace_id sender_id held_at sends hard_bounces threshold resumed_at revision",
    LinkedInIdentity: "id profile_url premium notes_exhausted send_without_note_when_exhausted "
    "timezone min_spacing weekly_connect_cap daily_message_cap",
    Excluded: "lead_id reason message",
    Enrolment: "workspace_id campaign_id lead steps status approved reason resume_at accepted_at "
    "connect_sent_at revision senders",
    Lead: "id first_name last_name company title email linkedin_url country subdivision timezone "
    "linkedin_connected fields timezone_reason",
    CadenceStep: "number action wait_days counts_from guidance with_note gated_on_acceptance "
    "new_thread variant",
    Draft: "campaign_id lead_id step action subject body status problem version edited",
    ScheduledSend: "id workspace_id campaign_id lead_id step action sender_id due_at forecast_at "
    "status attempts lease_owner lease_expires_at sent_at receipt reason with_note revision",
    Activity: "kind at campaign_id lead_id step detail key reason",
    CreditMovement: "kind amount campaign_id lead_id key note",
}


@pytest.mark.parametrize("cls", list(KNOWN_FIELDS), ids=lambda cls: cls.__name__)
def test_the_adapter_knows_every_field_of_what_it_stores(cls: type) -> None:
    assert [f.name for f in attrs.fields(cls)] == KNOWN_FIELDS[cls].split()
