from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from starlight_sequences.campaigns import CampaignSettings, SendStatus
from starlight_sequences.errors import InsufficientCredits
from starlight_sequences.ids import CampaignId
from starlight_sequences.planning import calendar_for
from starlight_sequences.shapes import STOCK
from tests.service_kit import LINKEDIN, MAILBOX, OTHER_WS, WS, lead, make_kit

PLACES = [
    ("US", "America/New_York"),
    ("IL", "Asia/Jerusalem"),
    ("CN", "Asia/Shanghai"),
    ("GB", "Europe/London"),
    ("AE", "Asia/Dubai"),
    ("AU", "Australia/Sydney"),
    ("IN", "Asia/Kolkata"),
    ("BR", "America/Sao_Paulo"),
]

leads_strategy = st.lists(
    st.tuples(st.sampled_from(PLACES), st.booleans(), st.booleans(), st.booleans()),
    min_size=1,
    max_size=25,
).map(
    lambda rows: [
        lead(
            f"lead{i:03d}",
            country=place[0],
            timezone=place[1],
            email=has_email,
            linkedin=has_linkedin,
            connected=connected,
        )
        for i, (place, has_email, has_linkedin, connected) in enumerate(rows)
    ]
)
starts = st.datetimes(
    min_value=dt.datetime(2026, 1, 1),
    max_value=dt.datetime(2030, 12, 31),
    timezones=st.just(dt.UTC),
)


@given(leads=leads_strategy, shape=st.sampled_from(sorted(STOCK)), start=starts)
def test_drafting_charged_plus_sends_reserved_equals_the_estimate(leads, shape, start) -> None:  # type: ignore[no-untyped-def]
    kit = make_kit(start=start)
    estimate = kit.service.estimate(shape, leads)
    report = kit.service.create_campaign(
        WS,
        name="p",
        brief="b",
        shape=shape,
        leads=leads,
        email_identity=MAILBOX,
        linkedin_identity=LINKEDIN,
        campaign_id=CampaignId("c"),
    )
    if report.enrolled:
        kit.service.approve(WS, CampaignId("c"))
    account = kit.ledger.balance(WS)
    assert report.drafting_credits + account.reserved == estimate.total
    assert account.available >= 0


@given(leads=leads_strategy, shape=st.sampled_from(sorted(STOCK)), start=starts)
def test_planned_sends_lie_in_business_hours_and_respect_spacing_and_caps(
    leads, shape, start
) -> None:  # type: ignore[no-untyped-def]
    kit = make_kit(start=start)
    cid = CampaignId("c")
    report = kit.service.create_campaign(
        WS,
        name="p",
        brief="b",
        shape=shape,
        leads=leads,
        email_identity=MAILBOX,
        linkedin_identity=LINKEDIN,
        campaign_id=cid,
    )
    if not report.enrolled:
        return
    kit.service.approve(WS, cid)
    hours = CampaignSettings().business_hours
    scheduled = [s for s in kit.storage.list_sends(WS, cid) if s.status is SendStatus.SCHEDULED]
    assert len(scheduled) == report.enrolled
    for send in scheduled:
        assert send.due_at >= start
        calendar = calendar_for(kit.storage.get_enrolment(WS, cid, send.lead_id).lead, hours)
        local = send.due_at.astimezone(calendar.zone)
        assert calendar.is_business_day(local.date())
        assert hours.open <= local.time() < hours.close
    for sender in {s.sender_id for s in scheduled}:
        for action in {s.action for s in scheduled}:
            times = sorted(
                s.due_at for s in scheduled if s.sender_id == sender and s.action == action
            )
            spacing = MAILBOX.min_spacing if sender == MAILBOX.id else LINKEDIN.min_spacing
            assert all(b - a >= spacing for a, b in itertools.pairwise(times))
            if sender == MAILBOX.id:
                per_day = Counter(t.date() for t in times)
                assert max(per_day.values(), default=0) <= MAILBOX.daily_cap


@given(leads=leads_strategy, credits=st.integers(min_value=0, max_value=300))
def test_a_balance_never_goes_negative_and_another_workspace_sees_nothing(leads, credits) -> None:  # type: ignore[no-untyped-def]
    kit = make_kit(credits=credits)
    cid = CampaignId("c")
    try:
        report = kit.service.create_campaign(
            WS,
            name="p",
            brief="b",
            shape="email-linkedin",
            leads=leads,
            email_identity=MAILBOX,
            linkedin_identity=LINKEDIN,
            campaign_id=cid,
        )
        if report.enrolled:
            kit.service.approve(WS, cid)
    except InsufficientCredits:
        pass
    account = kit.ledger.balance(WS)
    assert account.available >= 0
    assert account.reserved >= 0
    assert account.available + account.reserved <= credits
    assert kit.service.campaigns(OTHER_WS) == []
    assert kit.storage.find_enrolments(OTHER_WS, lead_id=leads[0].id) == []
    assert kit.ledger.balance(OTHER_WS).available == 0
