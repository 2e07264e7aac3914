"""Warm-up ramp through the service: planning, dispatch, two campaigns, the preview forecast."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from starlight_sequences import EmailIdentity, WarmUp
from starlight_sequences.calendar import BusinessCalendar
from starlight_sequences.campaigns import ScheduledSend, SendStatus
from starlight_sequences.ids import CampaignId, SenderId
from tests.service_kit import WS, Kit, lead, make_kit

NEW_YORK = BusinessCalendar(country="US", timezone="America/New_York")
ZONE = NEW_YORK.zone


def ramped_mailbox(start: int, step: int, ceiling: int, since: dt.date) -> EmailIdentity:
    return EmailIdentity(
        id=SenderId("mbx-warm"),
        address="new@acme.test",
        timezone="America/New_York",
        daily_cap=ceiling,
        warm_up=WarmUp(start=start, step=step, ceiling=ceiling, since=since, country="US"),
    )


def create_and_approve(
    kit: Kit, campaign_id: str, mailbox: EmailIdentity, leads: int, *, prefix: str = "l"
) -> CampaignId:
    cid = CampaignId(campaign_id)
    kit.service.create_campaign(
        WS,
        name=campaign_id,
        brief="We cut cloud bills by 30% for data teams.",
        shape="cold-email",
        leads=[lead(f"{prefix}{i:04}") for i in range(leads)],
        email_identity=mailbox,
        campaign_id=cid,
    )
    kit.service.approve(WS, cid)
    return cid


def per_mailbox_day(moments: Iterable[dt.datetime]) -> Counter[dt.date]:
    return Counter(moment.astimezone(ZONE).date() for moment in moments)


def planned(sends: Iterable[ScheduledSend]) -> list[dt.datetime]:
    return [s.due_at for s in sends]


def test_a_thousand_leads_on_a_ramp_finish_on_the_day_the_arithmetic_says() -> None:
    # Monday 2 March 2026, 08:00 in New York; no US holiday until Memorial Day, and the DST
    # night of 8 March falls inside the ramp.
    kit = make_kit(credits=1_000_000, start=dt.datetime(2026, 3, 2, 13, 0, tzinfo=dt.UTC))
    mailbox = ramped_mailbox(10, 2, 40, since=dt.date(2026, 3, 2))
    cid = CampaignId("ramp-1000")
    kit.service.create_campaign(
        WS,
        name="ramp",
        brief="We cut cloud bills by 30% for data teams.",
        shape="cold-email",
        leads=[lead(f"l{i:04}") for i in range(1000)],
        email_identity=mailbox,
        campaign_id=cid,
    )
    preview = kit.service.preview(WS, cid)
    kit.service.approve(WS, cid)
    sends = kit.storage.list_sends(WS, cid)
    assert len(sends) == 1000
    days = per_mailbox_day(planned(sends))
    for day, count in days.items():
        assert count <= mailbox.cap_on(day), day
    # 10 + 12 + ... + 40 = 400 sends in the first 16 business days (day 0 to day 15), then
    # 600 at 40 a day: 15 more business days, so the last send is on business day 30 after
    # the start — Monday 13 April 2026.
    last_day = max(days)
    assert last_day == NEW_YORK.add_business_days(dt.date(2026, 3, 2), 30)
    assert last_day == dt.date(2026, 4, 13)
    assert days[dt.date(2026, 3, 2)] == 10
    assert days[dt.date(2026, 3, 3)] == 12
    assert days[last_day] == 40
    # Every business day up to the last is filled to its cap: nothing is left idle.
    assert len(days) == 31
    assert all(days[day] == mailbox.cap_on(day) for day in days)
    # The preview in review forecast the same last send as approval planned.
    assert preview.last_send_at == max(planned(sends))
    assert kit.service.preview(WS, cid).last_send_at == max(planned(sends))


def test_the_ramped_cap_is_shared_by_two_campaigns_using_the_same_mailbox() -> None:
    kit = make_kit(credits=1_000_000)  # Monday 30 November 2026, 03:00 in New York
    mailbox = ramped_mailbox(10, 2, 40, since=dt.date(2026, 11, 30))
    first = create_and_approve(kit, "first", mailbox, 30, prefix="a")
    second = create_and_approve(kit, "second", mailbox, 30, prefix="b")
    one = per_mailbox_day(planned(kit.storage.list_sends(WS, first)))
    two = per_mailbox_day(planned(kit.storage.list_sends(WS, second)))
    assert one == {dt.date(2026, 11, 30): 10, dt.date(2026, 12, 1): 12, dt.date(2026, 12, 2): 8}
    # The second campaign takes what the first left of each day's ramped cap.
    assert two == {dt.date(2026, 12, 2): 6, dt.date(2026, 12, 3): 16, dt.date(2026, 12, 4): 8}
    for day in one.keys() | two.keys():
        assert one[day] + two[day] <= mailbox.cap_on(day)


def run_worker_until(kit: Kit, end: dt.datetime) -> None:
    while True:
        kit.service.dispatch_due()
        following = kit.service.next_due()
        if following is None or following >= end:
            return
        kit.clock.set(following)


def test_sends_due_together_beyond_the_days_ramped_cap_go_on_the_next_business_day() -> None:
    kit = make_kit()  # Monday 30 November 2026, 03:00 in New York
    mailbox = ramped_mailbox(2, 1, 5, since=dt.date(2026, 11, 30))
    cid = create_and_approve(kit, "late", mailbox, 7)
    assert per_mailbox_day(planned(kit.storage.list_sends(WS, cid))) == {
        dt.date(2026, 11, 30): 2,
        dt.date(2026, 12, 1): 3,
        dt.date(2026, 12, 2): 2,
    }
    # No worker ran on Monday nor on Tuesday morning: at 16:00 on Tuesday five sends are due
    # together, two more than Tuesday's cap of 3.
    kit.clock.set(dt.datetime(2026, 12, 1, 16, 0, tzinfo=ZONE))
    due = [s for s in kit.storage.list_sends(WS, cid) if s.due_at <= kit.clock.now()]
    assert len(due) == 5
    run_worker_until(kit, dt.datetime(2026, 12, 5, tzinfo=ZONE))
    sends = kit.storage.list_sends(WS, cid)
    assert all(s.status is SendStatus.SENT for s in sends)
    sent = per_mailbox_day(s.sent_at for s in sends if s.sent_at is not None)
    for day, count in sent.items():
        assert count <= mailbox.cap_on(day), day
    assert sent[dt.date(2026, 12, 1)] <= 3
    # What Tuesday could not take went out on Wednesday (cap 4) and, once that was full, on
    # Thursday; none of it was lost.
    assert sent[dt.date(2026, 12, 2)] == 4
    assert sum(sent.values()) == 7
    assert min(d for d in sent if d > dt.date(2026, 12, 1)) == dt.date(2026, 12, 2)


def test_without_a_ramp_the_same_late_sends_all_go_on_tuesday() -> None:
    # The control of the test above: the re-timing to Wednesday is the ramp's doing.
    kit = make_kit()
    mailbox = EmailIdentity(
        id=SenderId("mbx-warm"), address="new@acme.test", timezone="America/New_York"
    )
    cid = create_and_approve(kit, "late", mailbox, 5)
    kit.clock.set(dt.datetime(2026, 12, 1, 16, 0, tzinfo=ZONE))
    run_worker_until(kit, dt.datetime(2026, 12, 5, tzinfo=ZONE))
    sends = kit.storage.list_sends(WS, cid)
    sent = per_mailbox_day(s.sent_at for s in sends if s.sent_at is not None)
    assert sent == {dt.date(2026, 12, 1): 5}


def test_the_preview_forecasts_a_sequences_last_step_as_approval_plans_it() -> None:
    kit = make_kit(credits=1_000_000)
    mailbox = ramped_mailbox(5, 5, 20, since=dt.date(2026, 11, 30))
    cid = CampaignId("sequence")
    kit.service.create_campaign(
        WS,
        name="sequence",
        brief="We cut cloud bills by 30% for data teams.",
        shape="email-sequence",
        leads=[lead(f"s{i:03}") for i in range(60)],
        email_identity=mailbox,
        campaign_id=cid,
    )
    forecast = kit.service.preview(WS, cid).last_send_at
    assert kit.service.preview(WS, cid, "s000").last_send_at is None
    kit.service.approve(WS, cid)
    sends = kit.storage.list_sends(WS, cid)
    assert forecast == max(planned(sends))
    # 5 + 10 + 15 + 20 first touches from Monday to Thursday, the last 10 on Friday 4 December;
    # the last third step follows 3 + 4 business days after it.
    first_touches = per_mailbox_day(s.due_at for s in sends if s.step == 1)
    assert max(first_touches) == dt.date(2026, 12, 4)
    assert forecast is not None
    assert forecast.astimezone(ZONE).date() == NEW_YORK.add_business_days(dt.date(2026, 12, 4), 7)
