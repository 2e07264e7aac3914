"""Storages that keep the ledger in their own database record a sent message and its charge in
one transaction (``ports.ChargingStorage``): SQLite and PostgreSQL. PostgreSQL cases skip
without ``STARLIGHT_PG_DSN`` (see ``tests/pg.py``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage
from starlight_sequences.campaigns import SendStatus
from starlight_sequences.credits import CreditMovement, MovementKind
from starlight_sequences.errors import LeaseLost
from starlight_sequences.ports.credits import CreditLedger
from starlight_sequences.ports.storage import Changes, ChargingStorage
from tests import pg
from tests.contract.conftest import T0, WS, make_campaign, make_enrolment, make_lead, make_send


@contextlib.contextmanager
def _adapters(kind: str, tmp_path: Path) -> Iterator[tuple[Any, CreditLedger]]:
    if kind == "sqlite":
        path = tmp_path / "joint.sqlite3"
        with SQLiteStorage(path) as storage, SQLiteCreditLedger(path) as ledger:
            yield storage, ledger
        return
    pg.skip_unless_configured()
    with PostgresStorage(pg.fresh_dsn(), max_size=1) as storage:
        yield storage, PostgresCreditLedger(storage.pool)


@pytest.fixture(params=["sqlite", "postgres"])
def joint(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, CreditLedger]]:
    with _adapters(request.param, tmp_path) as pair:
        storage, ledger = pair
        assert isinstance(storage, ChargingStorage)
        assert storage.charges_with(ledger)
        assert not storage.charges_with(object())
        yield pair


def _one_claimed_send(storage: Any) -> Any:
    campaign = make_campaign(shape_key="cold-email")
    lead = make_lead()
    storage.commit(
        WS,
        Changes(
            campaigns=(campaign,),
            enrolments=(make_enrolment(campaign, lead),),
            sends=(make_send(campaign, lead.id, due_at=T0),),
        ),
    )
    (claimed,) = storage.claim_due(T0, worker_id="w", lease=dt.timedelta(minutes=5), limit=1)
    return claimed


def _sent(claimed: Any) -> Any:
    return attrs.evolve(
        claimed,
        status=SendStatus.SENT,
        sent_at=T0,
        lease_owner=None,
        lease_expires_at=None,
        revision=claimed.revision + 1,
    )


CHARGE = CreditMovement(kind=MovementKind.CHARGE, amount=2, key="charge:k1")


def test_a_send_and_its_charge_are_recorded_in_one_transaction(
    joint: tuple[Any, CreditLedger],
) -> None:
    storage, ledger = joint
    ledger.post(
        WS,
        CreditMovement(kind=MovementKind.TOP_UP, amount=10),
        CreditMovement(kind=MovementKind.RESERVE, amount=4),
    )
    claimed = _one_claimed_send(storage)
    assert storage.finish_send_charging(
        _sent(claimed), worker_id="w", now=T0, changes=None, charge=CHARGE
    )
    assert ledger.balance(WS).reserved == 2
    assert [m.key for m in ledger.movements(WS)][-1] == "charge:k1"
    (stored,) = storage.list_sends(WS, claimed.campaign_id)
    assert stored.status is SendStatus.SENT


def test_a_charge_the_ledger_refuses_leaves_the_send_recorded_without_it(
    joint: tuple[Any, CreditLedger],
) -> None:
    storage, ledger = joint
    claimed = _one_claimed_send(storage)  # nothing reserved: a charge is refused
    assert not storage.finish_send_charging(
        _sent(claimed), worker_id="w", now=T0, changes=None, charge=CHARGE
    )
    (stored,) = storage.list_sends(WS, claimed.campaign_id)
    assert stored.status is SendStatus.SENT
    assert ledger.movements(WS) == []


def test_a_lost_lease_writes_neither_the_send_nor_its_charge(
    joint: tuple[Any, CreditLedger],
) -> None:
    storage, ledger = joint
    ledger.post(
        WS,
        CreditMovement(kind=MovementKind.TOP_UP, amount=10),
        CreditMovement(kind=MovementKind.RESERVE, amount=4),
    )
    claimed = _one_claimed_send(storage)
    with pytest.raises(LeaseLost):
        storage.finish_send_charging(
            _sent(claimed), worker_id="other", now=T0, changes=None, charge=CHARGE
        )
    assert ledger.balance(WS).reserved == 4
    assert [m.kind for m in ledger.movements(WS)] == [MovementKind.TOP_UP, MovementKind.RESERVE]
