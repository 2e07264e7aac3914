from __future__ import annotations

import datetime as dt

import pytest

from starlight_sequences.campaigns import (
    CampaignSettings,
    CampaignStatus,
    EnrolmentStatus,
    LinkedInIdentity,
    SendStatus,
)
from starlight_sequences.drafts import DraftStatus
from starlight_sequences.errors import (
    CampaignNotFound,
    DraftsNeedAttention,
    InsufficientCredits,
    InvalidDraft,
    InvalidSettings,
)
from starlight_sequences.ids import CampaignId, LeadId, SenderId
from starlight_sequences.planning import calendar_for
from tests.service_kit import LINKEDIN, MAILBOX, OTHER_WS, WS, lead, make_kit

CID = CampaignId("c1")


def create(kit, leads, shape="email-sequence", **kwargs):  # type: ignore[no-untyped-def]
    return kit.service.create_campaign(
        WS,
        name="Q4 outreach",
        brief="We cut cloud bills by 30% for data teams.",
        shape=shape,
        leads=leads,
        email_identity=MAILBOX,
        linkedin_identity=LINKEDIN,
        campaign_id=kwargs.pop("campaign_id", CID),
        **kwargs,
    )


def test_creating_a_campaign_drafts_every_message_and_schedules_nothing() -> None:
    kit = make_kit()
    report = create(kit, [lead("ann"), lead("bob")])
    assert report.enrolled == 2
    assert report.drafts == 6
    assert report.campaign.status is CampaignStatus.DRAFT
    assert kit.storage.list_sends(WS, CID) == []
    drafts = kit.storage.list_drafts(WS, CID)
    assert [(d.lead_id, d.step) for d in drafts] == [
        ("ann", 1),
        ("ann", 2),
        ("ann", 3),
        ("bob", 1),
        ("bob", 2),
        ("bob", 3),
    ]
    assert all(d.status is DraftStatus.READY for d in drafts)


def test_each_draft_request_carries_the_leads_earlier_drafts() -> None:
    kit = make_kit()
    create(kit, [lead("ann")])
    third = next(r for r in kit.drafter.requests if r.step == 3)
    assert [t.step for t in third.earlier] == [1, 2]
    assert third.brief.startswith("We cut cloud bills")


def test_drafting_is_charged_per_message_drafted() -> None:
    kit = make_kit(credits=100)
    kit.drafter.fail.add("bob:2")
    report = create(kit, [lead("ann"), lead("bob")])
    assert report.drafts == 5
    assert report.drafting_credits == 20
    account = kit.ledger.balance(WS)
    assert (account.available, account.reserved) == (80, 0)


def test_too_few_credits_for_drafting_stores_nothing_and_drafts_nothing() -> None:
    kit = make_kit(credits=10)
    with pytest.raises(InsufficientCredits) as info:
        create(kit, [lead("ann"), lead("bob")])
    assert (info.value.needed, info.value.available) == (24, 10)
    assert kit.drafter.requests == []
    with pytest.raises(CampaignNotFound):
        kit.storage.get_campaign(WS, CID)
    assert kit.ledger.balance(WS).available == 10


def test_unreachable_suppressed_and_duplicate_leads_are_excluded_with_reasons() -> None:
    kit = make_kit()
    from starlight_sequences.ports.storage import Changes

    kit.storage.commit(WS, Changes(suppress=("sup",)))
    report = create(
        kit,
        [lead("ann"), lead("ann"), lead("nobody", email=False, linkedin=True), lead("sup")],
    )
    reasons = {(e.lead_id, e.reason) for e in report.excluded}
    assert reasons == {
        ("ann", "duplicate"),
        ("nobody", "no_email_for_shape"),
        ("sup", "suppressed"),
    }
    assert report.enrolled == 1
    preview = kit.service.preview(WS, CID)
    assert {e.lead_id for e in preview.excluded} == {"ann", "nobody", "sup"}


def test_a_contact_active_in_another_campaign_is_excluded_unless_overlap_is_allowed() -> None:
    kit = make_kit()
    create(kit, [lead("ann")])
    second = create(kit, [lead("ann")], campaign_id=CampaignId("c2"))
    assert [(e.lead_id, e.reason) for e in second.excluded] == [("ann", "active_elsewhere")]
    third = create(
        kit,
        [lead("ann")],
        campaign_id=CampaignId("c3"),
        settings=CampaignSettings(allow_overlap=True),
    )
    assert third.enrolled == 1


def test_leads_without_location_fall_back_to_campaign_defaults_or_are_excluded() -> None:
    kit = make_kit()
    from starlight_sequences.leads import Lead

    nowhere = Lead(id=LeadId("nowhere"), email="n@n.example.com")
    report = create(kit, [nowhere])
    assert [e.reason for e in report.excluded] == ["missing_location"]
    report = create(
        kit,
        [nowhere],
        campaign_id=CampaignId("c2"),
        settings=CampaignSettings(default_country="FR"),
    )
    assert report.enrolled == 1
    enrolment = kit.storage.get_enrolment(WS, CampaignId("c2"), LeadId("nowhere"))
    assert enrolment.lead.timezone == "Europe/Paris"


def test_an_email_campaign_without_a_mailbox_is_refused_before_drafting() -> None:
    kit = make_kit()
    with pytest.raises(InvalidSettings, match="email_identity"):
        kit.service.create_campaign(
            WS, name="x", brief="b", shape="cold-email", leads=[lead("ann")], campaign_id=CID
        )
    assert kit.drafter.requests == []


def test_connection_notes_over_the_free_account_limit_need_attention() -> None:
    kit = make_kit()
    free = LinkedInIdentity(id=SenderId("li-free"), premium=False)
    kit.drafter.overlong.add("ann:1")
    report = kit.service.create_campaign(
        WS,
        name="x",
        brief="b",
        shape="linkedin-note",
        leads=[lead("ann", email=False, linkedin=True)],
        linkedin_identity=free,
        campaign_id=CID,
    )
    assert [d.lead_id for d in report.needs_attention] == ["ann"]
    assert "limit is 200" in report.needs_attention[0].problem


def test_an_exhausted_note_quota_plans_requests_without_a_note() -> None:
    kit = make_kit()
    exhausted = LinkedInIdentity(id=SenderId("li-x"), notes_exhausted=True)
    report = kit.service.create_campaign(
        WS,
        name="x",
        brief="b",
        shape="linkedin-note",
        leads=[lead("ann", email=False, linkedin=True)],
        linkedin_identity=exhausted,
        campaign_id=CID,
    )
    assert report.drafts == 0
    assert report.enrolled == 1
    enrolment = kit.storage.get_enrolment(WS, CID, LeadId("ann"))
    assert not enrolment.steps[0].with_note


def test_approval_is_refused_while_a_draft_needs_attention_unless_the_lead_is_excluded() -> None:
    kit = make_kit()
    kit.drafter.fail.add("bob:1")
    create(kit, [lead("ann"), lead("bob")])
    with pytest.raises(DraftsNeedAttention, match="bob step 1"):
        kit.service.approve(WS, CID)
    assert kit.storage.list_sends(WS, CID) == []
    kit.service.exclude_recipient(WS, CID, LeadId("bob"))
    campaign = kit.service.approve(WS, CID)
    assert campaign.status is CampaignStatus.ACTIVE
    assert {s.lead_id for s in kit.storage.list_sends(WS, CID)} == {"ann"}


def test_editing_a_draft_revalidates_it_and_keeps_the_old_one_when_invalid() -> None:
    kit = make_kit()
    create(kit, [lead("ann")])
    with pytest.raises(InvalidDraft, match="line break"):
        kit.service.edit_draft(WS, CID, LeadId("ann"), 1, subject="two\nlines")
    kept = kit.storage.list_drafts(WS, CID, LeadId("ann"))[0]
    assert kept.version == 1
    edited = kit.service.edit_draft(WS, CID, LeadId("ann"), 1, body="A better opening.")
    assert (edited.body, edited.version, edited.edited) == ("A better opening.", 2, True)


def test_regenerating_a_draft_charges_a_draft_again_and_fixes_a_failure() -> None:
    kit = make_kit(credits=100)
    kit.drafter.fail.add("ann:1")
    create(kit, [lead("ann")])
    before = kit.ledger.balance(WS).available
    kit.drafter.fail.clear()
    draft = kit.service.regenerate_draft(WS, CID, LeadId("ann"), 1)
    assert draft.status is DraftStatus.READY
    assert kit.ledger.balance(WS).available == before - 4


def test_approval_reserves_send_credits_and_schedules_first_steps_in_business_hours() -> None:
    kit = make_kit()
    leads = [
        lead("ann"),
        lead("dov", country="IL", timezone="Asia/Jerusalem"),
        lead("kim", country="AU", timezone="Australia/Sydney"),
    ]
    create(kit, leads)
    before = kit.ledger.balance(WS)
    kit.service.approve(WS, CID)
    after = kit.ledger.balance(WS)
    assert after.reserved - before.reserved == 3 * 3 * 2
    sends = kit.storage.list_sends(WS, CID)
    assert len(sends) == 9
    by_lead = {x.id: x for x in leads}
    for send in sends:
        assert send.status is (SendStatus.SCHEDULED if send.step == 1 else SendStatus.PENDING)
        calendar = calendar_for(
            kit.storage.get_enrolment(WS, CID, send.lead_id).lead,
            CampaignSettings().business_hours,
        )
        local = send.due_at.astimezone(calendar.zone)
        assert calendar.is_business_day(local.date()), (send.lead_id, local)
        assert dt.time(9) <= local.time() < dt.time(17), (send.lead_id, local)
        assert by_lead[send.lead_id]


def test_approving_twice_changes_nothing() -> None:
    kit = make_kit()
    create(kit, [lead("ann")])
    first = kit.service.approve(WS, CID)
    balance = kit.ledger.balance(WS)
    sends = kit.storage.list_sends(WS, CID)
    assert kit.service.approve(WS, CID) == first
    assert kit.ledger.balance(WS) == balance
    assert kit.storage.list_sends(WS, CID) == sends


def test_approval_without_enough_credits_schedules_nothing() -> None:
    kit = make_kit(credits=12)
    create(kit, [lead("ann")])
    with pytest.raises(InsufficientCredits):
        kit.service.approve(WS, CID)
    assert kit.storage.list_sends(WS, CID) == []
    assert kit.storage.get_campaign(WS, CID).status is CampaignStatus.DRAFT
    assert kit.ledger.balance(WS).available == 0


def test_preview_shows_planned_dates_in_the_recipients_local_time() -> None:
    kit = make_kit()
    create(kit, [lead("dov", country="IL", timezone="Asia/Jerusalem")])
    preview = kit.service.preview(WS, CID)
    (recipient,) = preview.recipients
    assert recipient.status is EnrolmentStatus.IN_REVIEW
    local = [step.due_local for step in recipient.steps]
    assert all(d is not None and str(d.tzinfo) == "Asia/Jerusalem" for d in local)
    # Israel works Sunday to Thursday: no step on a Friday or Saturday.
    assert all(d is not None and d.weekday() not in (4, 5) for d in local)


def test_a_workspace_never_sees_another_workspaces_campaigns() -> None:
    kit = make_kit()
    create(kit, [lead("ann")])
    assert kit.service.campaigns(OTHER_WS) == []
    with pytest.raises(CampaignNotFound):
        kit.service.preview(OTHER_WS, CID)


def test_the_estimate_equals_drafting_charged_plus_sends_reserved() -> None:
    kit = make_kit()
    leads = [lead("ann", linkedin=True), lead("bob", email=False, linkedin=True), lead("cy")]
    estimate = kit.service.estimate("email-linkedin", leads)
    report = create(kit, leads, shape="email-linkedin")
    kit.service.approve(WS, CID)
    reserved = kit.ledger.balance(WS).reserved
    assert report.drafting_credits + reserved == estimate.total


def test_drafting_many_leads_reports_progress_in_batches() -> None:
    kit = make_kit()
    kit.service.draft_batch_size = 50
    seen: list[tuple[int, int]] = []
    create(
        kit,
        [lead(f"lead{i:03d}") for i in range(60)],
        shape="cold-email",
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(0, 60), (50, 60), (60, 60)]


def test_campaign_credits_follow_drafting_reservation_sends_and_releases() -> None:
    from starlight_sequences.events import EventKind, InboundEvent

    kit = make_kit()
    create(kit, [lead("ann"), lead("bob")])
    kit.service.regenerate_draft(WS, CID, LeadId("ann"), 2)
    kit.service.approve(WS, CID)
    kit.clock.advance(dt.timedelta(hours=7))
    kit.service.dispatch_due(worker_id="w")
    kit.clock.advance(MAILBOX.min_spacing)  # the mailbox's next send keeps its distance
    kit.service.dispatch_due(worker_id="w")
    kit.service.report_event(
        WS, InboundEvent(kind=EventKind.REPLY, lead_id=LeadId("ann"), at=kit.clock.now())
    )
    credits = kit.service.campaign_credits(WS, CID)
    assert credits.drafting == 7 * 4
    assert credits.reserved == 6 * 2
    assert credits.charged == 2 * 2
    assert credits.released == 2 * 2
    assert credits.outstanding == 2 * 2 == kit.ledger.balance(WS).reserved
    assert credits.spent == 28 + 4


def test_two_approvals_racing_reserve_once_and_the_loser_returns_the_approved_campaign() -> None:
    kit = make_kit()
    create(kit, [lead("ann"), lead("bob")])
    storage = kit.storage
    real_commit = storage.commit
    raced = []

    def commit_after_a_rival(workspace_id, changes):  # type: ignore[no-untyped-def]
        if changes.campaigns and not raced:
            raced.append(True)
            kit.service.approve(WS, CID)  # the rival wins in between our read and our write
        return real_commit(workspace_id, changes)

    storage.commit = commit_after_a_rival  # type: ignore[method-assign]
    campaign = kit.service.approve(WS, CID)
    assert campaign.status is CampaignStatus.ACTIVE
    assert kit.ledger.balance(WS).reserved == 2 * 3 * 2
    assert len(kit.storage.list_sends(WS, CID)) == 6


def test_a_campaign_keeps_the_prices_it_was_created_under() -> None:
    from starlight_sequences.credits import PriceTable

    kit = make_kit()
    create(kit, [lead("ann")], shape="cold-email")
    kit.service.approve(WS, CID)
    kit.service.prices = PriceTable(email=5)  # the host raises its prices afterwards
    kit.clock.advance(dt.timedelta(hours=7))
    kit.service.dispatch_due(worker_id="w")
    credits = kit.service.campaign_credits(WS, CID)
    assert (credits.reserved, credits.charged, credits.outstanding) == (2, 2, 0)
    assert kit.storage.get_campaign(WS, CID).prices == PriceTable()
