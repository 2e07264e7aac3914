"""What only the PostgreSQL adapter has: pools, migrations, errors, races between writers.

The port contract itself is ``tests/contract`` (run there on PostgreSQL too). These tests skip
without ``STARLIGHT_PG_DSN`` (see ``tests/pg.py``).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import multiprocessing.synchronize
import os
import threading
from pathlib import Path

import attrs
import psycopg
import pytest
from psycopg_pool import ConnectionPool

from starlight_sequences.adapters import postgres as postgres_adapter
from starlight_sequences.adapters.postgres import (
    MIGRATIONS,
    PostgresCreditLedger,
    PostgresStorage,
)
from starlight_sequences.campaigns import Campaign, ScheduledSend
from starlight_sequences.credits import CreditAccount, CreditMovement, MovementKind
from starlight_sequences.errors import ConcurrentUpdate, InvalidInput, StorageError
from starlight_sequences.ports.storage import Changes
from tests import pg
from tests.contract.conftest import T0, WS, make_campaign, make_send

JOIN_TIMEOUT = 60.0
NEW_YORK = dt.timezone(dt.timedelta(hours=-5))


@pytest.fixture
def dsn() -> str:
    """A DSN whose tables go to a fresh, empty schema."""
    return pg.fresh_dsn()


def test_opening_an_empty_database_applies_every_migration(dsn: str) -> None:
    with PostgresStorage(dsn) as storage:
        assert storage.schema_version == len(MIGRATIONS)
    with PostgresStorage(dsn) as again:
        assert again.schema_version == len(MIGRATIONS)


def test_a_saved_cursor_survives_reopening_the_database(dsn: str) -> None:
    with PostgresStorage(dsn) as storage:
        storage.save_cursor(WS, "imap:ann@mail.example/INBOX", '{"last_uid": 7}')
    with PostgresStorage(dsn) as storage:
        assert storage.load_cursor(WS, "imap:ann@mail.example/INBOX") == '{"last_uid": 7}'


def test_a_database_of_the_first_schema_gains_the_cursor_table_and_keeps_its_data(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = make_campaign()
    with monkeypatch.context() as patched:
        patched.setattr(postgres_adapter, "MIGRATIONS", MIGRATIONS[:1])
        with PostgresStorage(dsn) as storage:
            storage.commit(WS, Changes(campaigns=(campaign,)))
            assert storage.schema_version == 1
    with PostgresStorage(dsn) as storage:
        assert storage.schema_version == len(MIGRATIONS)
        assert storage.list_campaigns(WS) == [campaign]
        storage.save_cursor(WS, "poller", "1")
        assert storage.load_cursor(WS, "poller") == "1"


def test_a_database_migrated_by_a_newer_version_is_refused(dsn: str) -> None:
    PostgresStorage(dsn).close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE starlight_schema_version SET version = %s", (len(MIGRATIONS) + 1,))
    with pytest.raises(StorageError, match="schema version"):
        PostgresStorage(dsn)


def opening_worker(dsn: str, out: str, start: multiprocessing.synchronize.Barrier) -> None:
    """Open (and so migrate) the database at the same moment as the others."""
    start.wait(JOIN_TIMEOUT)
    with PostgresStorage(dsn) as storage:
        Path(out).write_text(str(storage.schema_version))


def test_processes_opening_a_new_database_at_once_all_get_the_whole_schema(
    dsn: str, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(4)
    outs = [tmp_path / f"open{n}.txt" for n in range(4)]
    processes = [ctx.Process(target=opening_worker, args=(dsn, str(out), start)) for out in outs]
    for process in processes:
        process.start()
    for process in processes:
        process.join(JOIN_TIMEOUT)
        assert process.exitcode == 0
    assert {out.read_text() for out in outs} == {str(len(MIGRATIONS))}


def test_an_unreachable_server_is_a_storage_error_that_hides_the_password() -> None:
    with pytest.raises(StorageError, match="no connection") as caught:
        PostgresStorage("postgresql://someone:s3cret@127.0.0.1:9/none", timeout=0.5)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("target", "sizes"),
    [("", {}), ("postgresql://x@127.0.0.1/x", {"min_size": 3, "max_size": 2})],
)
def test_an_empty_dsn_or_impossible_pool_sizes_are_invalid_input(
    target: str, sizes: dict[str, int]
) -> None:
    with pytest.raises(InvalidInput):
        PostgresStorage(target, **sizes)


def test_a_pool_of_the_callers_is_used_as_it_is_and_left_open(dsn: str) -> None:
    # Not autocommit, and the server's own session time zone: instants still come back UTC.
    with ConnectionPool(dsn, min_size=1, max_size=2, open=True) as pool:
        storage = PostgresStorage(pool)
        ledger = PostgresCreditLedger(pool)
        local = dt.datetime(2026, 11, 30, 9, tzinfo=NEW_YORK)
        campaign = make_campaign(created_at=local)
        storage.commit(WS, Changes(campaigns=(campaign,)))
        ledger.post(WS, CreditMovement(kind=MovementKind.TOP_UP, amount=5))
        storage.close()
        ledger.close()
        assert not pool.closed
        stored = PostgresStorage(pool).get_campaign(WS, campaign.id)
        assert stored.created_at == local
        assert stored.created_at.tzinfo is dt.UTC
        assert PostgresCreditLedger(pool).balance(WS) == CreditAccount(workspace=WS, available=5)


def test_two_writers_racing_to_create_one_record_never_both_win(dsn: str) -> None:
    with PostgresStorage(dsn, max_size=4) as storage:
        for round_ in range(20):
            campaign = make_campaign(f"race-{round_}")
            send = make_send(campaign)
            start = threading.Barrier(2)
            outcomes: list[str] = []

            def write(
                name: str,
                campaign: Campaign,
                send: ScheduledSend,
                start: threading.Barrier,
                outcomes: list[str],
            ) -> None:
                start.wait()
                try:
                    storage.commit(
                        WS, Changes(campaigns=(attrs.evolve(campaign, name=name),), sends=(send,))
                    )
                except ConcurrentUpdate:
                    outcomes.append("lost")
                else:
                    outcomes.append(name)

            threads = [
                threading.Thread(target=write, args=(n, campaign, send, start, outcomes))
                for n in ("a", "b")
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(outcomes)[1] == "lost", outcomes
            winner = next(o for o in outcomes if o != "lost")
            assert storage.get_campaign(WS, campaign.id).name == winner


def test_a_stale_update_is_a_concurrent_update_naming_the_record_and_writes_nothing(
    dsn: str,
) -> None:
    with PostgresStorage(dsn) as storage:
        campaign = make_campaign()
        sends = [make_send(campaign, f"lead-{n}") for n in range(3)]
        storage.commit(WS, Changes(campaigns=(campaign,), sends=tuple(sends)))
        fresh = [attrs.evolve(s, revision=1, reason="x") for s in sends[:2]]
        stale = attrs.evolve(sends[2], revision=2, reason="x")
        with pytest.raises(ConcurrentUpdate, match=sends[2].id):
            storage.commit(WS, Changes(sends=(*fresh, stale)))
        assert {s.revision for s in storage.list_sends(WS, campaign.id)} == {0}


def test_a_send_batch_of_ten_thousand_is_written_and_read_back(dsn: str) -> None:
    campaign = make_campaign()
    sends = tuple(
        make_send(campaign, f"lead-{n:05}", due_at=T0 + dt.timedelta(seconds=n))
        for n in range(10_000)
    )
    with PostgresStorage(dsn) as storage:
        assert storage.commit(WS, Changes(campaigns=(campaign,), sends=sends))
        assert storage.list_sends(WS, campaign.id) == sorted(sends, key=lambda s: s.lead_id)


def test_an_adapter_used_after_fork_refuses_with_a_storage_error(dsn: str) -> None:
    storage = PostgresStorage(dsn)
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what using the parent's adapter does, then leave
            try:
                storage.list_campaigns(WS)
                message = b"no error"
            except StorageError as exc:
                message = str(exc).encode()
            os.write(write, message)
            os._exit(0)
        os.close(write)
        _, status = os.waitpid(pid, 0)
        answer = os.read(read, 4096).decode()
        os.close(read)
        assert os.waitstatus_to_exitcode(status) == 0
        assert "cannot cross a fork" in answer
        assert storage.list_campaigns(WS) == []  # the parent's connections still work
    finally:
        storage.close()
