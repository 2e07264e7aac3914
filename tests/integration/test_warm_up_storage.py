"""A mailbox's warm-up ramp is stored with its campaign in SQLite; rows from before ramps load."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from pathlib import Path

from starlight_sequences import EmailIdentity, WarmUp
from starlight_sequences.adapters.sqlite import SQLiteStorage
from starlight_sequences.ids import SenderId
from starlight_sequences.ports.storage import Changes
from starlight_sequences.testing.records import WS, make_campaign

RAMPED = EmailIdentity(
    id=SenderId("mbx-new"),
    address="new@acme.example.com",
    timezone="America/Chicago",
    daily_cap=45,
    warm_up=WarmUp(
        start=10, step=2, ceiling=40, since=dt.date(2028, 2, 29), country="us", subdivision="TX"
    ),
)


def _raw_identity(path: Path) -> dict[str, object]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        (text,) = conn.execute("SELECT email_identity FROM campaigns").fetchone()
    loaded: dict[str, object] = json.loads(text)
    return loaded


def test_a_ramped_mailbox_comes_back_from_a_reopened_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "ramp.sqlite3"
    campaign = make_campaign(email_identity=RAMPED)
    with SQLiteStorage(path) as storage:
        storage.commit(WS, Changes(campaigns=(campaign,)))
    with SQLiteStorage(path) as storage:
        stored = storage.get_campaign(WS, campaign.id)
    assert stored.email_identity == RAMPED
    assert stored.email_identity is not None
    assert stored.email_identity.warm_up == WarmUp(
        start=10, step=2, ceiling=40, since=dt.date(2028, 2, 29), country="US", subdivision="TX"
    )
    assert stored.email_identity.cap_on(dt.date(2028, 3, 1)) == 12
    assert _raw_identity(path)["warm_up"] == {
        "start": 10,
        "step": 2,
        "ceiling": 40,
        "since": "2028-02-29",
        "country": "US",
        "subdivision": "TX",
    }


def test_a_row_written_before_ramps_existed_loads_without_a_ramp(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    campaign = make_campaign()
    with SQLiteStorage(path) as storage:
        storage.commit(WS, Changes(campaigns=(campaign,)))
    # The identity exactly as the codec wrote it before warm-up ramps: no "warm_up" key.
    old = {
        "id": "mbx-old",
        "address": "old@acme.example.com",
        "display_name": "Old Box",
        "timezone": "Europe/Berlin",
        "min_spacing_us": 180_000_000,
        "daily_cap": 25,
    }
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE campaigns SET email_identity = ?", (json.dumps(old),))
    with SQLiteStorage(path) as storage:
        stored = storage.get_campaign(WS, campaign.id)
    assert stored.email_identity == EmailIdentity(
        id=SenderId("mbx-old"),
        address="old@acme.example.com",
        display_name="Old Box",
        timezone="Europe/Berlin",
        daily_cap=25,
    )
    assert stored.email_identity.cap_on(dt.date(2028, 3, 1)) == 25
    # And a mailbox without a ramp is still written without the key.
    with SQLiteStorage(path) as storage:
        storage.commit(WS, Changes(campaigns=(make_campaign("camp-2"),)))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        texts = [t for (t,) in conn.execute("SELECT email_identity FROM campaigns")]
    assert all("warm_up" not in json.loads(t) for t in texts)
