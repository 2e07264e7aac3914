from __future__ import annotations

import datetime as dt
import itertools

import attrs
import pytest

from starlight_sequences.calendar import BusinessHours
from starlight_sequences.campaigns import (
    CampaignSettings,
    CampaignStatus,
    EnrolmentStatus,
    SendStatus,
    StopScope,
)
from starlight_sequences.errors import UnknownContact
from starlight_sequences.events import EventKind, InboundEvent
from starlight_sequences.ids import CampaignId, LeadId
from starlight_sequences.locations import load_timezone
from starlight_sequences.planning import calendar_for
from starlight_sequences.ports.senders import SendFailure
from tests.service_kit import LINKEDIN, MAILBOX, WS, Kit, lead, make_kit

CID = CampaignId("c1")
DAY = dt.timedelta(days=1)


def launch(kit: Kit, leads, shape="email-sequence"):  # type: ignore[no-untyped-def]
    kit.service.create_campaign(
        WS,
        name="Q4",
        brief="We cut cloud bills by 30%.",
        shape=shape,
        leads=leads,
        email_identity=MAILBOX,
        linkedin_identity=LINKEDIN,
        campaign_id=CID,
    )
    kit.service.approve(WS, CID)


def run_for(kit: Kit, days: float, step: dt.timedelta = dt.timedelta(minutes=30)) -> None:
    end = kit.clock.now() + dt.timedelta(days=days)
    while kit.clock.now() < end:
        kit.service.dispatch_due(worker_id="w1")
        kit.clock.advance(step)


def sent_steps(kit: Kit, lead_id: str) -> list[int]:
    return [
        s.step
        for s in kit.storage.list_sends(WS, CID, LeadId(lead_id))
        if s.status is SendStatus.SENT
    ]


def test_nothing_is_sent_before_approval() -> None:
    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="x",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    run_for(kit, 3)
    assert kit.email.attempts == []


def test_a_sequence_is_sent_in_business_hours_with_waits_honoured_from_actual_sends() -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("dov", country="IL", timezone="Asia/Jerusalem")])
    run_for(kit, 21)
    assert sent_steps(kit, "ann") == [1, 2, 3]
    assert sent_steps(kit, "dov") == [1, 2, 3]
    for lead_id in ("ann", "dov"):
        enrolment = kit.storage.get_enrolment(WS, CID, LeadId(lead_id))
        assert enrolment.status is EnrolmentStatus.COMPLETED
        calendar = calendar_for(
            enrolment.lead, kit.storage.get_campaign(WS, CID).settings.business_hours
        )
        sends = kit.storage.list_sends(WS, CID, LeadId(lead_id))
        for send in sends:
            assert send.sent_at is not None
            local = send.sent_at.astimezone(calendar.zone)
            assert calendar.is_business_day(local.date())
            assert dt.time(9) <= local.time() < dt.time(17)
        for earlier, later, wait in zip(sends, sends[1:], (3, 4), strict=False):
            assert earlier.sent_at is not None
            assert later.sent_at is not None
            first_day = earlier.sent_at.astimezone(calendar.zone).date()
            due_day = calendar.add_business_days(first_day, wait)
            assert later.sent_at.astimezone(calendar.zone).date() >= due_day
    # Each (lead, step) went to the sender exactly once.
    assert len(kit.email.sent) == 6 == len(kit.email.attempts)


def test_a_reply_stops_the_remaining_steps_and_releases_their_credits() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    run_for(kit, 2)
    assert sent_steps(kit, "ann") == [1]
    reserved = kit.ledger.balance(WS).reserved
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now())
    )
    assert kit.ledger.balance(WS).reserved == reserved - 4
    run_for(kit, 15)
    assert sent_steps(kit, "ann") == [1]
    assert kit.storage.get_enrolment(WS, CID, LeadId("ann")).status is EnrolmentStatus.REPLIED


def test_the_same_event_twice_changes_nothing() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    event = InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now(), key="m1")
    assert kit.service.report_event(WS, event)
    balance = kit.ledger.balance(WS)
    assert kit.service.report_event(WS, event) == ()
    assert kit.ledger.balance(WS) == balance


def test_an_event_for_an_unknown_contact_is_a_typed_error() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    with pytest.raises(UnknownContact):
        kit.service.report_event(
            WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("zed"), at=kit.clock.now())
        )


def test_unsubscribe_suppresses_the_contact_for_later_campaigns() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.UNSUBSCRIBE, lead_id=LeadId("ann"), at=kit.clock.now())
    )
    report = kit.service.create_campaign(
        WS,
        name="y",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=CampaignId("c2"),
    )
    assert [e.reason for e in report.excluded] == ["suppressed"]


def test_a_linkedin_message_waits_for_acceptance_then_its_wait() -> None:
    kit = make_kit()
    launch(kit, [lead("bob", email=False, linkedin=True)], shape="email-linkedin")
    run_for(kit, 2)
    assert sent_steps(kit, "bob") == [2]
    tasks = kit.service.waiting_on_connections(WS)
    assert [t.lead.id for t in tasks] == ["bob"]
    run_for(kit, 3)
    assert sent_steps(kit, "bob") == [2]
    accepted = kit.clock.now()
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.CONNECTION_ACCEPTED, lead_id=LeadId("bob"), at=accepted)
    )
    assert kit.service.waiting_on_connections(WS) == []
    run_for(kit, 4)
    assert sent_steps(kit, "bob") == [2, 3]
    message = kit.storage.list_sends(WS, CID, LeadId("bob"))[-1]
    assert message.sent_at is not None
    assert message.sent_at > accepted + dt.timedelta(hours=12)


def test_no_acceptance_within_the_timeout_skips_the_gated_message() -> None:
    kit = make_kit()
    launch(kit, [lead("bob", email=False, linkedin=True)], shape="email-linkedin")
    run_for(kit, 25, step=dt.timedelta(hours=2))
    sends = kit.storage.list_sends(WS, CID, LeadId("bob"))
    assert [s.status for s in sends] == [SendStatus.SENT, SendStatus.SKIPPED]
    assert "not accepted within 15 business days" in sends[1].reason
    assert kit.ledger.balance(WS).reserved == 0


def test_transient_failures_retry_and_permanent_ones_stop_the_lead() -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])
    kit.email.fail_next = [SendFailure(permanent=False, reason="451 try later")]
    run_for(kit, 1)
    assert {s.lead_id for s in kit.email.sent.values()} == {"ann", "bob"}
    kit.email.fail_next = [SendFailure(permanent=True, reason="550 no such user")] * 1
    run_for(kit, 8)
    statuses = {
        lid: kit.storage.get_enrolment(WS, CID, LeadId(lid)).status for lid in ("ann", "bob")
    }
    assert EnrolmentStatus.FAILED in statuses.values()


def test_pause_keeps_pending_sends_and_resume_retimes_them() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    kit.service.pause_campaign(WS, CID)
    run_for(kit, 3)
    assert kit.email.attempts == []
    kit.service.resume_campaign(WS, CID)
    (first, *_) = kit.storage.list_sends(WS, CID, LeadId("ann"))
    assert first.status is SendStatus.SCHEDULED
    assert first.due_at >= kit.clock.now()
    run_for(kit, 1)
    assert sent_steps(kit, "ann") == [1]


def test_cancel_skips_everything_pending_and_releases_all_reserved_credits() -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])
    kit.service.cancel_campaign(WS, CID)
    assert kit.ledger.balance(WS).reserved == 0
    assert kit.storage.get_campaign(WS, CID).status is CampaignStatus.CANCELLED
    run_for(kit, 3)
    assert kit.email.attempts == []


def test_status_lists_contacts_with_next_send_in_local_and_utc_time() -> None:
    kit = make_kit()
    launch(kit, [lead("dov", country="IL", timezone="Asia/Jerusalem")])
    report = kit.service.status(WS, CID)
    (row,) = report.contacts
    assert row.next_send_utc is not None
    assert row.next_send_local is not None
    assert row.next_send_local == row.next_send_utc
    assert str(row.next_send_local.tzinfo) == "Asia/Jerusalem"
    assert (1, "scheduled", 1) in report.counts


def test_a_reply_during_review_keeps_the_lead_out_of_the_approved_schedule() -> None:
    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="x",
        brief="b",
        shape="cold-email",
        leads=[lead("ann"), lead("bob")],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now())
    )
    kit.service.approve(WS, CID)
    assert {s.lead_id for s in kit.storage.list_sends(WS, CID)} == {"bob"}
    assert kit.storage.get_enrolment(WS, CID, LeadId("ann")).status is EnrolmentStatus.REPLIED
    run_for(kit, 3)
    assert {m.lead_id for m in kit.email.sent.values()} == {"bob"}


def test_timelines_come_from_the_service_for_the_shape_and_for_a_lead() -> None:
    from starlight_sequences.timeline import render_svg, render_text

    kit = make_kit()
    launch(kit, [lead("dov", country="IL", timezone="Asia/Jerusalem")])
    run_for(kit, 1)
    shape_text = render_text(kit.service.shape_timeline(WS, CID))
    assert "1 Email -- 3 business days --> 2 Email -- 4 business days --> 3 Email" in shape_text
    timeline = kit.service.lead_timeline(WS, CID, LeadId("dov"))
    text = render_text(timeline)
    assert "Dov Doe" in text
    assert "sent Mon 2026-11-30" in text
    assert "Asia/Jerusalem" in text
    assert render_svg(timeline).startswith("<svg")


def test_a_declined_connection_skips_the_gated_message_and_completes_the_lead() -> None:
    kit = make_kit()
    launch(kit, [lead("bob", email=False, linkedin=True)], shape="email-linkedin")
    run_for(kit, 2)
    reserved = kit.ledger.balance(WS).reserved
    kit.service.report_event(
        WS,
        InboundEvent(kind=EventKind.CONNECTION_DECLINED, lead_id=LeadId("bob"), at=kit.clock.now()),
    )
    sends = kit.storage.list_sends(WS, CID, LeadId("bob"))
    assert [s.status for s in sends] == [SendStatus.SENT, SendStatus.SKIPPED]
    assert kit.storage.get_enrolment(WS, CID, LeadId("bob")).status is EnrolmentStatus.COMPLETED
    assert kit.ledger.balance(WS).reserved == reserved - 2


def test_an_out_of_office_holds_the_lead_until_the_return_date_then_resumes() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    run_for(kit, 1)
    back = dt.date(2026, 12, 14)  # a Monday
    kit.service.report_event(
        WS,
        InboundEvent(
            kind=EventKind.OUT_OF_OFFICE,
            lead_id=LeadId("ann"),
            at=kit.clock.now(),
            return_date=back,
        ),
    )
    enrolment = kit.storage.get_enrolment(WS, CID, LeadId("ann"))
    assert enrolment.status is EnrolmentStatus.OUT_OF_OFFICE
    run_for(kit, 9)
    assert sent_steps(kit, "ann") == [1]
    run_for(kit, 7)
    second = kit.storage.list_sends(WS, CID, LeadId("ann"))[1]
    assert second.status is SendStatus.SENT
    assert second.sent_at is not None
    local = second.sent_at.astimezone(
        calendar_for(enrolment.lead, CampaignSettings().business_hours).zone
    )
    assert local.date() >= back
    assert (
        kit.storage.get_enrolment(WS, CID, LeadId("ann")).status
        is not EnrolmentStatus.OUT_OF_OFFICE
    )


def test_a_bounce_stops_the_contact_in_every_campaign_and_suppresses_the_address() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    other = CampaignId("c2")
    kit.service.create_campaign(
        WS,
        name="y",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=other,
        settings=CampaignSettings(allow_overlap=True),
    )
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.BOUNCE, lead_id=LeadId("ann"), at=kit.clock.now())
    )
    for campaign_id in (CID, other):
        enrolment = kit.storage.get_enrolment(WS, campaign_id, LeadId("ann"))
        assert enrolment.status is EnrolmentStatus.BOUNCED
    assert kit.storage.suppressed(WS, {"ann@ann.example.com"}) == {"ann@ann.example.com"}


def test_a_reply_with_workspace_scope_stops_every_campaign_and_company_scope_stops_colleagues() -> (
    None
):
    kit = make_kit()
    settings = CampaignSettings(
        stop_scope=StopScope.WORKSPACE, stop_company_on_reply=True, allow_overlap=True
    )
    colleague = attrs.evolve(lead("zoe"), email="zoe@ann.example.com")
    kit.service.create_campaign(
        WS,
        name="x",
        brief="b",
        shape="email-sequence",
        leads=[lead("ann"), colleague, lead("bob")],
        email_identity=MAILBOX,
        campaign_id=CID,
        settings=settings,
    )
    other = CampaignId("c2")
    kit.service.create_campaign(
        WS,
        name="y",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=other,
        settings=settings,
    )
    kit.service.report_event(
        WS,
        InboundEvent(
            kind=EventKind.REPLY, lead_id=LeadId("ann"), campaign_id=CID, at=kit.clock.now()
        ),
    )
    status = {
        (e.campaign_id, e.lead_id): e.status
        for cid in (CID, other)
        for e in kit.storage.list_enrolments(WS, cid)
    }
    assert status[(CID, "ann")] is EnrolmentStatus.REPLIED
    assert status[(other, "ann")] is EnrolmentStatus.REPLIED
    assert status[(CID, "zoe")] is EnrolmentStatus.COMPLETED
    assert status[(CID, "bob")] is EnrolmentStatus.IN_REVIEW


def test_pausing_one_lead_holds_its_steps_and_resuming_sends_them() -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])
    kit.service.pause_enrolment(WS, CID, LeadId("ann"))
    run_for(kit, 2)
    assert sent_steps(kit, "ann") == []
    assert sent_steps(kit, "bob") == [1]
    kit.service.resume_enrolment(WS, CID, LeadId("ann"))
    run_for(kit, 1)
    assert sent_steps(kit, "ann") == [1]


def test_changed_business_hours_are_checked_again_at_send_time() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    campaign = kit.storage.get_campaign(WS, CID)
    afternoons = BusinessHours(open=dt.time(13), close=dt.time(17))
    kit.service.update_settings(WS, CID, attrs.evolve(campaign.settings, business_hours=afternoons))
    run_for(kit, 1)
    (first, *_) = kit.storage.list_sends(WS, CID, LeadId("ann"))
    assert first.sent_at is not None
    local = first.sent_at.astimezone(load_timezone("America/New_York"))
    assert dt.time(13) <= local.time() < dt.time(17)


def test_a_worker_polling_rarely_still_keeps_a_mailboxs_sends_apart() -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob"), lead("cy")])
    kit.clock.advance(dt.timedelta(hours=8))  # 16:00 UTC, long after all three fell due
    kit.service.dispatch_due(worker_id="w")
    assert len(kit.email.sent) == 1
    for _ in range(12):
        kit.clock.advance(dt.timedelta(minutes=1))
        kit.service.dispatch_due(worker_id="w")
    sent = sorted(s.sent_at for s in kit.storage.list_sends(WS, CID) if s.sent_at is not None)
    assert len(sent) == 3
    assert all(b - a >= MAILBOX.min_spacing for a, b in itertools.pairwise(sent))


def test_an_out_of_office_without_a_return_date_holds_the_campaigns_default_days() -> None:
    kit = make_kit()
    launch(kit, [lead("ann")])
    run_for(kit, 1)
    at = kit.clock.now()
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.OUT_OF_OFFICE, lead_id=LeadId("ann"), at=at)
    )
    enrolment = kit.storage.get_enrolment(WS, CID, LeadId("ann"))
    calendar = calendar_for(enrolment.lead, CampaignSettings().business_hours)
    expected = calendar.add_business_days(at.astimezone(calendar.zone).date(), 5)
    assert enrolment.resume_at is not None
    assert enrolment.resume_at.astimezone(calendar.zone).date() == expected
    (_, second, _) = kit.storage.list_sends(WS, CID, LeadId("ann"))
    assert second.due_at >= enrolment.resume_at


def test_a_timeline_of_an_unknown_campaign_says_the_campaign_is_unknown() -> None:
    from starlight_sequences.errors import CampaignNotFound, EnrolmentNotFound

    kit = make_kit()
    with pytest.raises(CampaignNotFound):
        kit.service.lead_timeline(WS, CampaignId("nope"), LeadId("ann"))
    launch(kit, [lead("ann")])
    with pytest.raises(EnrolmentNotFound):
        kit.service.lead_timeline(WS, CID, LeadId("zed"))


class _CrashOnce:
    """A ledger whose next post matching ``when`` raises, as a crash would cut it off."""

    def __init__(self, ledger, when):  # type: ignore[no-untyped-def]
        self.ledger, self.when, self.crashed = ledger, when, False

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self.ledger, name)

    def post(self, workspace_id, *movements):  # type: ignore[no-untyped-def]
        if not self.crashed and any(self.when(m) for m in movements):
            self.crashed = True
            raise RuntimeError("process killed")
        return self.ledger.post(workspace_id, *movements)


def _open_send_cost(kit: Kit) -> int:
    prices = kit.service.prices
    return sum(
        prices.price_of(s.action) for s in kit.storage.list_sends(WS, CID) if not s.status.is_final
    )


def test_reconciling_posts_the_releases_a_crash_cut_off_and_nothing_twice() -> None:
    from starlight_sequences.credits import MovementKind

    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])
    run_for(kit, 1)
    kit.service.ledger = _CrashOnce(  # type: ignore[assignment]
        kit.ledger, lambda m: m.kind is MovementKind.RELEASE
    )
    with pytest.raises(RuntimeError):
        kit.service.report_event(
            WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now())
        )
    assert kit.ledger.balance(WS).reserved > _open_send_cost(kit)
    fixed = kit.service.reconcile_credits(WS, CID)
    assert [m.kind for m in fixed] == [MovementKind.RELEASE, MovementKind.RELEASE]
    assert kit.ledger.balance(WS).reserved == _open_send_cost(kit)
    assert kit.service.reconcile_credits(WS, CID) == []


def test_reconciling_returns_the_reservation_of_an_approval_that_never_committed() -> None:
    kit = make_kit()
    kit.service.create_campaign(
        WS,
        name="x",
        brief="b",
        shape="cold-email",
        leads=[lead("ann")],
        email_identity=MAILBOX,
        campaign_id=CID,
    )
    before = kit.ledger.balance(WS)
    kit.service.ledger = _CrashOnce(  # type: ignore[assignment]
        kit.ledger, lambda m: m.key.startswith("undo-")
    )
    real_commit = kit.storage.commit

    def failing_commit(workspace_id, changes):  # type: ignore[no-untyped-def]
        if changes.campaigns:
            raise OSError("disk full")
        return real_commit(workspace_id, changes)

    kit.storage.commit = failing_commit  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        kit.service.approve(WS, CID)
    kit.storage.commit = real_commit  # type: ignore[method-assign]
    assert kit.ledger.balance(WS).reserved == 2
    kit.service.reconcile_credits(WS, CID)
    assert kit.ledger.balance(WS) == before
    # And the campaign can still be approved, reserving once.
    kit.service.approve(WS, CID)
    assert kit.ledger.balance(WS).reserved == 2
    assert kit.service.reconcile_credits(WS, CID) == []


def test_a_campaign_completes_when_every_lead_is_done() -> None:
    kit = make_kit()
    launch(kit, [lead("ann"), lead("bob")])
    run_for(kit, 2)
    assert kit.storage.get_campaign(WS, CID).status is CampaignStatus.ACTIVE
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now())
    )
    run_for(kit, 20)
    campaign = kit.storage.get_campaign(WS, CID)
    assert campaign.status is CampaignStatus.COMPLETED
    assert campaign.finished_at is not None
