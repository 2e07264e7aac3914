"""InMemoryStorage, SQLiteStorage and PostgresStorage (and their ledgers), driven side by side,
must agree.

The machine ships as :class:`starlight_sequences.testing.StorageAgreement`: it applies the same
random operations to the in-memory adapters and to the adapters under test, and checks after
every step that each call had the same outcome and that all hold the same state. Here the
adapters under test are SQLite's and, when ``STARLIGHT_PG_DSN`` is set (or required; see
``tests/pg.py``), PostgreSQL's, with a fresh schema per example.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hypothesis import settings

from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.storage import Storage
from starlight_sequences.testing import StorageAgreement
from tests import pg


class ProjectStorageAgreement(StorageAgreement):
    """SQLite (and PostgreSQL when configured) against the in-memory reference."""

    def open_adapters(
        self, cleanup: contextlib.ExitStack
    ) -> tuple[Sequence[Storage], Sequence[CreditLedger]]:
        directory = cleanup.enter_context(tempfile.TemporaryDirectory())
        path = Path(directory) / "machine.sqlite3"
        storages: list[Storage] = [cleanup.enter_context(SQLiteStorage(path))]
        ledgers: list[CreditLedger] = [cleanup.enter_context(SQLiteCreditLedger(path))]
        if pg.configured():
            storage = cleanup.enter_context(PostgresStorage(pg.fresh_dsn(), min_size=1, max_size=1))
            ledger = PostgresCreditLedger(storage.pool)
            cleanup.callback(ledger.close)
            storages.append(storage)
            ledgers.append(ledger)
        return storages, ledgers


ProjectStorageAgreement.TestCase.settings = settings(
    settings.default, stateful_step_count=30, deadline=None
)
TestStorageAgreement = ProjectStorageAgreement.TestCase
