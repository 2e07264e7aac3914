"""Sender pools round-trip through every storage adapter: a campaign's pools and retired
senders, and each enrolment's assigned senders; rows stored before pools still load."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from starlight_sequences.adapters import _rows
from starlight_sequences.adapters import sqlite as sqlite_adapter
from starlight_sequences.adapters.sqlite import MIGRATIONS, SQLiteStorage
from starlight_sequences.campaigns import EmailIdentity, Enrolment, LinkedInIdentity
from starlight_sequences.ids import SenderId
from starlight_sequences.ports.storage import Changes, Storage
from tests.contract.conftest import WS, make_campaign, make_enrolment, make_lead

MAILBOXES = (
    EmailIdentity(id=SenderId("mbx-a"), address="a@acme.example.com", daily_cap=10),
    EmailIdentity(id=SenderId("mbx-b"), address="b@acme.example.com", display_name="Bo"),
    EmailIdentity(id=SenderId("mbx-c"), address="c@acme.example.com", timezone="Europe/Berlin"),
)
ACCOUNTS = (
    LinkedInIdentity(id=SenderId("li-a"), premium=True),
    LinkedInIdentity(id=SenderId("li-b"), weekly_connect_cap=60),
)


def test_a_campaign_s_pools_and_retired_senders_round_trip(storage: Storage) -> None:
    campaign = make_campaign(
        email_identity=MAILBOXES[0],
        linkedin_identity=ACCOUNTS[0],
        email_identities=MAILBOXES,
        linkedin_identities=ACCOUNTS,
        retired_senders=(SenderId("mbx-b"),),
    )
    storage.commit(WS, Changes(campaigns=(campaign,)))
    stored = storage.get_campaign(WS, campaign.id)
    assert stored.email_identities == MAILBOXES
    assert stored.linkedin_identities == ACCOUNTS
    assert stored.retired_senders == (SenderId("mbx-b"),)
    assert stored == campaign


def test_an_enrolment_s_assigned_senders_round_trip(storage: Storage) -> None:
    campaign = make_campaign(email_identity=MAILBOXES[0], email_identities=MAILBOXES)
    lead = make_lead("lead-ann")
    enrolment = make_enrolment(campaign, lead, senders=(SenderId("mbx-c"), SenderId("li-b")))
    storage.commit(WS, Changes(campaigns=(campaign,), enrolments=(enrolment,)))
    stored = storage.get_enrolment(WS, campaign.id, lead.id)
    assert stored.senders == (SenderId("mbx-c"), SenderId("li-b"))
    assert storage.list_enrolments(WS, campaign.id) == [enrolment]
    assert campaign.sender_for(enrolment.steps[0].action, stored) == SenderId("mbx-c")


def test_a_campaign_with_one_identity_per_channel_reads_back_as_a_pool_of_one(
    storage: Storage,
) -> None:
    campaign = make_campaign()
    storage.commit(WS, Changes(campaigns=(campaign,)))
    stored = storage.get_campaign(WS, campaign.id)
    assert stored.email_identities == (campaign.email_identity,)
    assert stored.linkedin_identities == (campaign.linkedin_identity,)
    assert stored.retired_senders == ()


def test_an_enrolment_stored_before_pools_loads_with_no_senders_and_uses_the_first_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.sqlite3"
    pools = next(i for i, m in enumerate(MIGRATIONS) if any("senders" in sql for sql in m))
    before_pools = MIGRATIONS[:pools]
    campaign = make_campaign()
    lead = make_lead("lead-ann")
    with monkeypatch.context() as patched:
        patched.setattr(sqlite_adapter, "MIGRATIONS", before_pools)
        with sqlite3.connect(path) as conn, SQLiteStorage(path) as old:
            old.commit(WS, Changes(campaigns=(campaign,)))
            columns = [row[1] for row in conn.execute("PRAGMA table_info(enrolments)")]
            assert "senders" not in columns
            # Write the enrolment as the old schema would: every column it had but ``seq``.
            values = _old_enrolment_values(make_enrolment(campaign, lead))
            names = [c for c in columns if c in values]
            conn.execute(
                f"INSERT INTO enrolments ({', '.join(names)}) VALUES ({_marks(len(names))})",
                [values[c] for c in names],
            )
    with SQLiteStorage(path) as storage:
        stored = storage.get_enrolment(WS, campaign.id, lead.id)
    assert stored.senders == ()
    assert campaign.sender_for(stored.steps[0].action, stored) == campaign.email_identity.id  # type: ignore[union-attr]


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _old_enrolment_values(enrolment: Enrolment) -> dict[str, object]:
    names = [c.strip() for c in _rows.ENROLMENT_COLUMNS.split(",")]
    row = _rows.enrolment_row(sqlite_adapter._CODEC, enrolment, {})
    return dict(zip(names, row, strict=True))
