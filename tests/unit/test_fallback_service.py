"""The fallback branch through the service: an email when the connection request is declined
or times out, never alongside an accepted connection, with its credits exact."""

from __future__ import annotations

import datetime as dt

import attrs

from starlight_sequences.campaigns import EnrolmentStatus, SendStatus
from starlight_sequences.channels import Action
from starlight_sequences.credits import CreditMovement, MovementKind, PriceTable, estimate_credits
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.planning import calendar_for
from starlight_sequences.shapes import SendShape, Step, WaitAnchor, get
from tests.service_kit import LINKEDIN, MAILBOX, WS, Kit, lead, make_kit

CID = CampaignId("c1")

FALLBACK = Step(
    number=4,
    action=Action.EMAIL,
    wait_days=2,
    counts_from=WaitAnchor.CONNECTION_NOT_ACCEPTED,
    guidance="They did not connect on LinkedIn: one short email with the same ask.",
)
SHAPE = SendShape(
    key="email-linkedin-fallback",
    name="Email + LinkedIn, email if not accepted",
    description="email-linkedin, with an email when the request is not accepted",
    steps=(*get("email-linkedin").steps, FALLBACK),
)
# An email dearer than the LinkedIn message it replaces: the reservation is the dearer path.
PRICES = PriceTable(draft=4, email=5, linkedin_connect=2, linkedin_message=2)


def launch(kit: Kit, *leads: object, prices: PriceTable = PRICES) -> None:
    kit.service.prices = prices
    kit.service.create_campaign(
        WS,
        name="Q4",
        brief="We cut cloud bills by 30%.",
        shape=SHAPE,
        leads=list(leads),  # type: ignore[arg-type]
        email_identity=MAILBOX,
        linkedin_identity=LINKEDIN,
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)


def run_for(kit: Kit, days: float, step: dt.timedelta = dt.timedelta(hours=1)) -> None:
    end = kit.clock.now() + dt.timedelta(days=days)
    while kit.clock.now() < end:
        kit.service.dispatch_due(worker_id="w1")
        kit.clock.advance(step)


def statuses(kit: Kit, lead_id: str) -> dict[int, SendStatus]:
    return {s.step: s.status for s in kit.storage.list_sends(WS, CID, LeadId(lead_id))}


def event(kit: Kit, kind: EventKind, lead_id: str = "bob") -> None:
    kit.service.report_event(
        WS, InboundEvent(kind=kind, lead_id=LeadId(lead_id), at=kit.clock.now())
    )


def charged(kit: Kit) -> int:
    return sum(
        m.amount
        for m in kit.ledger.movements(WS, campaign_id=CID)
        if m.kind in (MovementKind.CHARGE, MovementKind.DRAFT)
    )


def both() -> object:
    return lead("bob", email=True, linkedin=True)


def test_the_reservation_at_approval_is_the_dearer_path_and_matches_the_estimate() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, both())
    estimate = estimate_credits(SHAPE, [both()], PRICES)  # type: ignore[list-item]
    # email 5 + connect 2 + max(message 2, fallback email 5); three drafts (no connect note).
    assert estimate.max_send_cost == 12
    assert estimate.drafting_cost == 12
    assert kit.ledger.balance(WS).reserved == estimate.max_send_cost
    assert kit.ledger.balance(WS).available == 1_000 - estimate.total


def test_a_timeout_sends_the_fallback_email_on_the_second_business_day_after_it() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, both())
    run_for(kit, 40, step=dt.timedelta(hours=2))
    sends = {s.step: s for s in kit.storage.list_sends(WS, CID, LeadId("bob"))}
    assert sends[3].status is SendStatus.SKIPPED
    assert "not accepted within 15 business days" in sends[3].reason
    assert sends[4].status is SendStatus.SENT
    enrolment = kit.storage.get_enrolment(WS, CID, LeadId("bob"))
    assert enrolment.status is EnrolmentStatus.COMPLETED
    calendar = calendar_for(
        enrolment.lead, kit.storage.get_campaign(WS, CID).settings.business_hours
    )
    assert sends[2].sent_at is not None
    assert sends[4].sent_at is not None
    connect_day = sends[2].sent_at.astimezone(calendar.zone).date()
    timeout_day = calendar.add_business_days(connect_day, 15)
    fallback_day = sends[4].sent_at.astimezone(calendar.zone).date()
    assert fallback_day == calendar.add_business_days(timeout_day, 2)
    # email 5 + connect 2 + fallback 5 charged; nothing stays reserved.
    assert charged(kit) == 12 + 12
    assert kit.ledger.balance(WS).reserved == 0
    assert kit.ledger.balance(WS).available == 1_000 - 24


def test_a_decline_schedules_the_fallback_email_from_the_decline() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, both())
    run_for(kit, 5)
    assert statuses(kit, "bob")[2] is SendStatus.SENT
    event(kit, EventKind.CONNECTION_DECLINED)
    assert statuses(kit, "bob")[3] is SendStatus.SKIPPED
    assert statuses(kit, "bob")[4] is SendStatus.SCHEDULED
    # The message's 2 credits are kept for the fallback (5 = own 3 + 2 handed over).
    assert kit.ledger.balance(WS).reserved == 5
    run_for(kit, 6)
    assert statuses(kit, "bob")[4] is SendStatus.SENT
    assert kit.ledger.balance(WS).reserved == 0
    assert charged(kit) == 12 + 12


def test_an_accepted_connection_drops_the_fallback_and_releases_its_reservation() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, both())
    run_for(kit, 5)
    before = kit.ledger.balance(WS).reserved
    event(kit, EventKind.CONNECTION_ACCEPTED)
    assert statuses(kit, "bob")[4] is SendStatus.SKIPPED
    assert kit.ledger.balance(WS).reserved == before - 3
    run_for(kit, 30, step=dt.timedelta(hours=2))
    assert statuses(kit, "bob") == {
        1: SendStatus.SENT,
        2: SendStatus.SENT,
        3: SendStatus.SENT,
        4: SendStatus.SKIPPED,
    }
    assert len(kit.email.sent) == 1
    assert kit.storage.get_enrolment(WS, CID, LeadId("bob")).status is EnrolmentStatus.COMPLETED
    assert kit.ledger.balance(WS).reserved == 0
    assert charged(kit) == 12 + 9


def test_a_reply_before_the_timeout_sends_nothing_more_and_releases_everything() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, both())
    run_for(kit, 5)
    event(kit, EventKind.REPLY)
    run_for(kit, 40, step=dt.timedelta(hours=4))
    assert statuses(kit, "bob") == {
        1: SendStatus.SENT,
        2: SendStatus.SENT,
        3: SendStatus.SKIPPED,
        4: SendStatus.SKIPPED,
    }
    assert kit.ledger.balance(WS).reserved == 0
    assert kit.ledger.balance(WS).available == 1_000 - 12 - 7


def test_an_acceptance_after_the_timeout_stops_the_fallback_and_returns_its_whole_price() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, both())
    run_for(kit, 5)
    event(kit, EventKind.CONNECTION_DECLINED)
    event(kit, EventKind.CONNECTION_ACCEPTED)
    assert statuses(kit, "bob")[4] is SendStatus.SKIPPED
    assert kit.storage.get_enrolment(WS, CID, LeadId("bob")).status is EnrolmentStatus.COMPLETED
    assert kit.ledger.balance(WS).reserved == 0
    assert kit.ledger.balance(WS).available == 1_000 - 12 - 7
    assert kit.service.reconcile_credits(WS, CID) == []


def test_a_lead_without_email_gets_no_fallback_and_the_preview_says_why() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, lead("bob", email=False, linkedin=True), lead("cyd", linkedin=True, connected=True))
    preview = kit.service.preview(WS, CID)
    bob, cy = preview.recipients
    assert [s.step for s in bob.steps] == [2, 3]
    assert bob.fallback_dropped.endswith("the lead has no email address")
    assert "already connected" in cy.fallback_dropped
    assert 4 not in statuses(kit, "bob")
    run_for(kit, 40, step=dt.timedelta(hours=2))
    # cyd (connected) gets its email 1; nobody gets a step 4.
    assert sorted((m.lead_id, m.step) for m in kit.email.sent.values()) == [("cyd", 1)]
    assert kit.ledger.balance(WS).reserved == 0


def test_a_reconcile_after_a_fallback_finds_nothing_to_post() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, both(), attrs.evolve(both(), id=LeadId("ann"), email="ann@ann.example.com"))  # type: ignore[misc]
    run_for(kit, 5)
    event(kit, EventKind.CONNECTION_DECLINED, "ann")
    event(kit, EventKind.CONNECTION_ACCEPTED, "bob")
    run_for(kit, 30, step=dt.timedelta(hours=2))
    assert kit.service.reconcile_credits(WS, CID) == []
    assert kit.ledger.balance(WS).reserved == 0


def test_a_leads_timeline_and_the_monitoring_page_draw_the_fallback_branch() -> None:
    from starlight_sequences.monitoring_page import campaign_page
    from starlight_sequences.timeline import render_svg, render_text

    kit = make_kit(credits=1_000)
    launch(kit, both())
    run_for(kit, 5)
    event(kit, EventKind.CONNECTION_DECLINED)
    run_for(kit, 6)
    timeline = kit.service.lead_timeline(WS, CID, "bob")
    assert timeline.connectors[-1].fork_from == 2
    text = render_text(timeline, width=400)
    fork = text.splitlines()[-1]
    assert fork.startswith("from 2 \\-- if not accepted, then 2 business days --> 4 Email [sent")
    assert "3 LinkedIn message [skipped" in text
    assert "if not accepted, then 2 business days" in render_svg(timeline)
    page = campaign_page(kit.service, WS, CID)
    assert "from step 2: if not accepted, then 2 business days" in page


def test_the_fallback_runs_the_same_on_sqlite_storage_and_ledger(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from starlight_sequences.adapters.sqlite import SQLiteCreditLedger, SQLiteStorage

    kit = make_kit(credits=1_000)
    storage = SQLiteStorage(tmp_path / "s.db")
    ledger = SQLiteCreditLedger(tmp_path / "s.db")
    ledger.post(WS, CreditMovement(kind=MovementKind.TOP_UP, amount=1_000, key="grant"))
    kit.service.storage = storage
    kit.service.ledger = ledger
    kit.storage, kit.ledger = storage, ledger  # type: ignore[assignment]
    launch(kit, both(), attrs.evolve(both(), id=LeadId("ann"), email="ann@ann.example.com"))
    run_for(kit, 5)
    event(kit, EventKind.CONNECTION_DECLINED, "ann")
    event(kit, EventKind.CONNECTION_ACCEPTED, "bob")
    run_for(kit, 12, step=dt.timedelta(hours=2))
    assert statuses(kit, "ann")[4] is SendStatus.SENT
    assert statuses(kit, "bob")[4] is SendStatus.SKIPPED
    assert statuses(kit, "bob")[3] is SendStatus.SENT
    assert kit.ledger.balance(WS).reserved == 0
    assert kit.service.reconcile_credits(WS, CID) == []
    storage.close()
    ledger.close()


def test_an_acceptance_while_the_fallback_is_being_sent_skips_it_and_completes_the_lead() -> None:
    kit = make_kit(credits=1_000)
    launch(kit, both())
    run_for(kit, 5)
    event(kit, EventKind.CONNECTION_DECLINED)
    real_claim = kit.storage.claim_due

    def claim_then_accept(*args, **kwargs):  # type: ignore[no-untyped-def]
        claimed = real_claim(*args, **kwargs)
        if any(s.step == 4 for s in claimed):
            event(kit, EventKind.CONNECTION_ACCEPTED)  # arrives while step 4 is claimed
        return claimed

    kit.storage.claim_due = claim_then_accept  # type: ignore[method-assign]
    run_for(kit, 6)
    assert statuses(kit, "bob")[4] is SendStatus.SKIPPED
    assert [m.step for m in kit.email.sent.values()] == [1]
    enrolment = kit.storage.get_enrolment(WS, CID, LeadId("bob"))
    assert enrolment.status is EnrolmentStatus.COMPLETED
    assert kit.ledger.balance(WS).reserved == 0
    assert kit.service.reconcile_credits(WS, CID) == []
