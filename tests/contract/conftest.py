"""Fixtures of the project's contract tests: every storage and ledger adapter of the project.

The suites themselves ship in :mod:`starlight_sequences.testing` (a host runs them against its
own adapters); the modules here subclass them and take these fixtures, parametrised over
``STORAGE_FACTORIES`` and ``LEDGER_FACTORIES`` (in-memory, SQLite, and PostgreSQL through
``tests/pg.py``). The sample records (``WS``, ``T0``, ``make_campaign``, ...) live in
:mod:`starlight_sequences.testing.records`; they are re-exported here for the tests that import
them from this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from starlight_sequences.adapters.memory import InMemoryCreditLedger, InMemoryStorage
from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.storage import Storage
from starlight_sequences.testing.records import (
    EMAIL_SENDER,
    LINKEDIN_SENDER,
    OTHER_WS,
    T0,
    WS,
    bumped,
    cadence_of,
    make_activity,
    make_campaign,
    make_draft,
    make_enrolment,
    make_lead,
    make_send,
)
from tests import pg

__all__ = [
    "EMAIL_SENDER",
    "LEDGER_FACTORIES",
    "LINKEDIN_SENDER",
    "OTHER_WS",
    "STORAGE_FACTORIES",
    "T0",
    "WS",
    "bumped",
    "cadence_of",
    "ledger",
    "make_activity",
    "make_campaign",
    "make_draft",
    "make_enrolment",
    "make_lead",
    "make_send",
    "storage",
    "xfail_for",
]


# --- adapters --------------------------------------------------------------------------------


@contextlib.contextmanager
def _memory_storage(tmp_path: Path) -> Iterator[Storage]:
    yield InMemoryStorage()


@contextlib.contextmanager
def _sqlite_storage(tmp_path: Path) -> Iterator[Storage]:
    with SQLiteStorage(tmp_path / "contract.sqlite3") as storage:
        yield storage


@contextlib.contextmanager
def _memory_ledger(tmp_path: Path) -> Iterator[CreditLedger]:
    yield InMemoryCreditLedger()


@contextlib.contextmanager
def _sqlite_ledger(tmp_path: Path) -> Iterator[CreditLedger]:
    with SQLiteCreditLedger(tmp_path / "contract.sqlite3") as ledger:
        yield ledger


@contextlib.contextmanager
def _postgres_storage(tmp_path: Path) -> Iterator[Storage]:
    # A schema of its own per test (skips without STARLIGHT_PG_DSN; see tests/pg.py).
    with PostgresStorage(pg.fresh_dsn(), max_size=8) as storage:
        yield storage


@contextlib.contextmanager
def _postgres_ledger(tmp_path: Path) -> Iterator[CreditLedger]:
    with PostgresCreditLedger(pg.fresh_dsn(), max_size=8) as ledger:
        yield ledger


StorageFactory = Callable[[Path], contextlib.AbstractContextManager[Storage]]
LedgerFactory = Callable[[Path], contextlib.AbstractContextManager[CreditLedger]]

STORAGE_FACTORIES: dict[str, StorageFactory] = {
    "memory": _memory_storage,
    "postgres": _postgres_storage,
    "sqlite": _sqlite_storage,
}
LEDGER_FACTORIES: dict[str, LedgerFactory] = {
    "memory": _memory_ledger,
    "postgres": _postgres_ledger,
    "sqlite": _sqlite_ledger,
}


@pytest.fixture(params=sorted(STORAGE_FACTORIES))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    """A fresh, empty storage adapter of each kind."""
    with STORAGE_FACTORIES[request.param](tmp_path) as adapter:
        yield adapter


@pytest.fixture(params=sorted(LEDGER_FACTORIES))
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CreditLedger]:
    """A fresh, empty credit ledger of each kind."""
    with LEDGER_FACTORIES[request.param](tmp_path) as adapter:
        yield adapter


def xfail_for(request: pytest.FixtureRequest, fixture: str, adapter: str, reason: str) -> None:
    """Mark the running test as a known failure when ``fixture`` is the ``adapter`` kind."""
    if request.node.callspec.params.get(fixture) == adapter:
        request.applymarker(pytest.mark.xfail(reason=reason, strict=True))
