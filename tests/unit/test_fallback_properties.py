"""Properties of the fallback branch through the service, over leads and event timings drawn
at random: never to a lead without an address, never alongside an accepted connection,
charged == drafted + sent, and every reservation given back exactly."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from starlight_sequences.campaigns import SendStatus
from starlight_sequences.credits import (
    MovementKind,
    PriceTable,
    fallback_borrow,
    send_reservations,
)
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import LeadId
from tests.service_kit import WS, Kit, make_kit
from tests.service_kit import lead as make_lead
from tests.unit.test_fallback_service import CID, launch

CREDITS = 10_000
EVENTS = st.sampled_from(
    [None, EventKind.CONNECTION_ACCEPTED, EventKind.CONNECTION_DECLINED, EventKind.REPLY]
)


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[tuple[str, bool, bool]], list[tuple[int, int, EventKind | None]]]:
    count = draw(st.integers(min_value=1, max_value=4))
    people = [
        (f"lead{i}", draw(st.booleans()), draw(st.booleans()))  # email, linkedin
        for i in range(count)
    ]
    people = [p for p in people if p[1] or p[2]] or [("lead0", True, True)]
    events = [
        (i, draw(st.integers(min_value=0, max_value=30)), draw(EVENTS))
        for i in range(len(people))
        for _ in range(draw(st.integers(min_value=0, max_value=2)))
    ]
    return people, events


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scenarios(),
    st.sampled_from(
        [
            PriceTable(draft=4, email=5, linkedin_connect=2, linkedin_message=2),
            PriceTable(draft=1, email=1, linkedin_connect=2, linkedin_message=3),
        ]
    ),
)
def test_the_fallback_keeps_its_promises_whatever_happens(scenario, prices) -> None:  # type: ignore[no-untyped-def]
    people, events = scenario
    kit = make_kit(credits=CREDITS)
    leads = [make_lead(name, email=e, linkedin=li) for name, e, li in people]
    launch(kit, *leads, prices=prices)
    by_day: dict[int, list[tuple[str, EventKind]]] = {}
    for index, day, kind in events:
        if kind is not None:
            by_day.setdefault(day, []).append((people[index][0], kind))
    for day in range(45):
        for name, kind in by_day.get(day, []):
            kit.service.report_event(
                WS, InboundEvent(kind=kind, lead_id=LeadId(name), at=kit.clock.now())
            )
        for _ in range(12):
            kit.service.dispatch_due(worker_id="w1")
            kit.clock.advance(dt.timedelta(hours=2))
        _check_reservations(kit, prices)
    sends = kit.storage.list_sends(WS, CID)
    for who in leads:
        mine = {s.step: s for s in sends if s.lead_id == who.id}
        if 4 in mine:
            assert who.email, "a fallback for a lead without an address"
        fell_back = 4 in mine and mine[4].status is SendStatus.SENT
        messaged = 3 in mine and mine[3].status is SendStatus.SENT
        assert not (fell_back and messaged), "a fallback alongside an accepted connection"
        if fell_back:
            enrolment = kit.storage.get_enrolment(WS, CID, who.id)
            assert mine[4].sent_at is not None
            assert enrolment.accepted_at is None or enrolment.accepted_at > mine[4].sent_at
    movements = kit.ledger.movements(WS, campaign_id=CID)
    charged = sum(
        m.amount for m in movements if m.kind in (MovementKind.CHARGE, MovementKind.DRAFT)
    )
    drafted = len(kit.storage.list_drafts(WS, CID)) * prices.draft
    sent = sum(prices.price_of(s.action) for s in sends if s.status is SendStatus.SENT)
    assert charged == drafted + sent
    # 45 days is past every timeout and wait: every lead is done, nothing stays reserved.
    assert all(s.status.is_final for s in sends)
    assert all(e.status.is_final for e in kit.storage.list_enrolments(WS, CID))
    balance = kit.ledger.balance(WS)
    assert balance.reserved == 0
    assert balance.available + balance.reserved + charged == CREDITS
    assert kit.service.reconcile_credits(WS, CID) == []


def _check_reservations(kit: Kit, prices: PriceTable) -> None:
    """What stays reserved is exactly what the open sends still hold: each its approval
    reservation, and a fallback that took over its whole price."""
    held = 0
    sends = kit.storage.list_sends(WS, CID)
    for s in sends:
        if s.status.is_final:
            continue
        steps = kit.storage.get_enrolment(WS, CID, s.lead_id).steps
        own = send_reservations(steps, prices)[s.step]
        borrow = fallback_borrow(steps, prices)
        taken = any(
            o.lead_id == s.lead_id
            and o.step in borrow
            and o.status is SendStatus.SKIPPED
            and "takes over" in o.reason
            for o in sends
        )
        if s.step == 4 and taken:
            own += sum(borrow.values())
        held += own
    assert kit.ledger.balance(WS).reserved == held
