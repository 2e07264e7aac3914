"""How many round trips to PostgreSQL one dispatched send costs, counted on the wire side of
psycopg (every statement, and BEGIN and COMMIT of every transaction), so that a change that
adds a query per send fails here instead of showing up as a slower fleet.

Skipped without ``STARLIGHT_PG_DSN`` (see ``tests/pg.py``).
"""

from __future__ import annotations

import collections
import datetime as dt
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from starlight_sequences.adapters.clock import SettableClock
from starlight_sequences.adapters.memory import RecordingEmailSender
from starlight_sequences.adapters.postgres import PostgresCreditLedger, PostgresStorage
from starlight_sequences.adapters.template_drafter import TemplateDrafter
from starlight_sequences.campaigns import EmailIdentity
from starlight_sequences.credits import CreditMovement, MovementKind
from starlight_sequences.ports.storage import Changes
from starlight_sequences.service import CampaignService
from tests import pg
from tests.contract.conftest import (
    EMAIL_SENDER,
    T0,
    WS,
    make_campaign,
    make_draft,
    make_enrolment,
    make_lead,
    make_send,
)

SENDS = 120
BATCH = 40
MOST_ROUND_TRIPS_PER_SEND = 4.5
"""Measured 4.34 (13.1 before, 18.1 before that). Per send: the enrolment read again just
before the sender is called (a reply or an unsubscribe of this pass still stops the send);
BEGIN; ONE statement that locks the credit account and writes the send (its lease checked in
its WHERE), the enrolment, the activity, the keyed charge's journal row and the balance;
COMMIT. The campaign, the suppression list, the last send and the batch's drafts and sends
are read once per pass (0.34 per send at 40 sends a pass)."""

_counts: collections.Counter[str] = collections.Counter()


class _CountingCursor(psycopg.Cursor[Any]):
    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        _counts[" ".join(str(query).split())[:50]] += 1
        return super().execute(query, params, **kwargs)

    def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
        _counts[" ".join(str(query).split())[:50]] += 1
        super().executemany(query, params_seq, **kwargs)


class _CountingConnection(psycopg.Connection[Any]):
    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        _counts["BEGIN / COMMIT"] += 2
        return super().transaction(*args, **kwargs)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.cursor_factory = _CountingCursor
    conn.execute("SET TIME ZONE 'UTC'")


def test_a_dispatched_send_costs_a_bounded_number_of_round_trips() -> None:
    pg.skip_unless_configured()
    pool: ConnectionPool[Any] = ConnectionPool(
        pg.fresh_dsn(),
        min_size=1,
        max_size=1,
        kwargs={"autocommit": True},
        connection_class=_CountingConnection,
        configure=_configure,
        open=True,
    )
    try:
        storage, ledger = PostgresStorage(pool), PostgresCreditLedger(pool)
        mailbox = EmailIdentity(
            id=EMAIL_SENDER, address="sales@acme.example.com", min_spacing=dt.timedelta(0)
        )
        campaign = make_campaign(shape_key="cold-email", email_identity=mailbox)
        leads = [make_lead(f"lead-{n:04}") for n in range(SENDS)]
        storage.commit(
            WS,
            Changes(
                campaigns=(campaign,),
                enrolments=tuple(make_enrolment(campaign, lead) for lead in leads),
                drafts=tuple(make_draft(campaign, lead.id) for lead in leads),
                sends=tuple(
                    make_send(campaign, lead.id, due_at=T0 - dt.timedelta(seconds=n))
                    for n, lead in enumerate(leads)
                ),
            ),
        )
        ledger.post(
            WS,
            CreditMovement(kind=MovementKind.TOP_UP, amount=2 * SENDS),
            CreditMovement(kind=MovementKind.RESERVE, amount=2 * SENDS),
        )
        service = CampaignService(
            storage=storage,
            ledger=ledger,
            drafter=TemplateDrafter(),
            clock=SettableClock(T0),
            email_sender=RecordingEmailSender(),
            send_without_unsubscribe=True,
        )
        _counts.clear()
        sent = 0
        while (report := service.dispatch_due(worker_id="w", limit=BATCH)).handled:
            sent += report.sent
        assert sent == SENDS
        per_send = sum(_counts.values()) / SENDS
        assert per_send <= MOST_ROUND_TRIPS_PER_SEND, (per_send, _counts.most_common())
    finally:
        pool.close()
